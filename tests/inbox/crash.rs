//! Receiver processes on 127.0.0.1, as users run them: this test binary
//! started again as `crash::receiver_process` (a receiver and a worker on one
//! store, logging each delivery it handles), sent a load over TCP, and
//! killed with SIGKILL mid-run.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::stream::{self, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shipment_webhooks::bytes::Bytes;
use shipment_webhooks::inbox::Inbox;
use shipment_webhooks::testing::Webhook;
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::*;

/// Where a receiver process keeps its inbox.
#[derive(Debug, Clone)]
enum Store {
    Sqlite(std::path::PathBuf),
    /// A URL and the schema the process works in.
    Postgres(String, String),
}

/// The child: serves the four routes into the store its environment names,
/// with a worker that appends "id attempt" to its log for each delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a receiver process the crash tests start"]
async fn receiver_process() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    let log = std::env::var("INBOX_CHILD_LOG").expect("INBOX_CHILD_LOG");
    let inbox = match std::env::var("INBOX_CHILD_STORE")
        .expect("INBOX_CHILD_STORE")
        .as_str()
    {
        "sqlite" => Inbox::sqlite(std::env::var("INBOX_CHILD_DB").unwrap())
            .await
            .unwrap(),
        _ => {
            let url = std::env::var("INBOX_CHILD_DB").unwrap();
            let schema = std::env::var("INBOX_CHILD_SCHEMA").unwrap();
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect_with(in_schema(&url, &schema))
                .await
                .unwrap();
            Inbox::postgres_pool(pool).await.unwrap()
        }
    };
    let log = Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap(),
    ));
    let worker = if std::env::var_os("INBOX_CHILD_EFFECTS").is_some() {
        // Each handler's effect and the mark commit in one transaction.
        let effects = Effects::connect().await;
        inbox.worker(move |delivery: shipment_webhooks::inbox::Delivery| {
            let effects = effects.clone();
            async move { effects.record(&delivery).await }
        })
    } else {
        inbox.worker(move |delivery: shipment_webhooks::inbox::Delivery| {
            let log = Arc::clone(&log);
            async move {
                // Work that takes a while, so a kill finds handlers running.
                tokio::time::sleep(Duration::from_millis(3)).await;
                use std::io::Write;
                let line = format!("{} {}\n", delivery.id(), delivery.attempt());
                log.lock()
                    .unwrap()
                    .write_all(line.as_bytes())
                    .map_err(|e| e.to_string())
            }
        })
    };
    let _worker = worker
        .concurrency(4)
        .batch_size(8)
        .lease(Duration::from_millis(900))
        .poll_interval(Duration::from_millis(50))
        .spawn();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    axum::serve(listener, app(&inbox)).await.unwrap();
}

/// The child's own connections to the inbox's database, where its handler
/// writes each webhook's effect in the transaction that marks it handled.
#[derive(Clone)]
enum Effects {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

const CREATE_EFFECTS: &str =
    "CREATE TABLE IF NOT EXISTS effects (row_id BIGINT NOT NULL, attempt BIGINT NOT NULL)";
const INSERT_EFFECT: &str = "INSERT INTO effects (row_id, attempt) VALUES ($1, $2)";

impl Effects {
    async fn connect() -> Self {
        let db = std::env::var("INBOX_CHILD_DB").unwrap();
        let effects = if std::env::var("INBOX_CHILD_STORE").unwrap() == "sqlite" {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db)
                .busy_timeout(Duration::from_secs(10));
            Self::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
        } else {
            let schema = std::env::var("INBOX_CHILD_SCHEMA").unwrap();
            Self::Postgres(
                sqlx::PgPool::connect_with(in_schema(&db, &schema))
                    .await
                    .unwrap(),
            )
        };
        match &effects {
            Self::Sqlite(pool) => sqlx::query(CREATE_EFFECTS).execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query(CREATE_EFFECTS).execute(pool).await.map(drop),
        }
        .unwrap();
        effects
    }

    /// The effect and the mark, in one transaction, slowly enough that a
    /// kill finds transactions open.
    async fn record(&self, delivery: &shipment_webhooks::inbox::Delivery) -> Result<(), String> {
        let (id, attempt) = (delivery.id(), i64::from(delivery.attempt()));
        let pause = Duration::from_millis(3);
        // The same steps on either pool: sqlx's types differ by database.
        macro_rules! in_one_transaction {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await.map_err(|e| e.to_string())?;
                sqlx::query(INSERT_EFFECT)
                    .bind(id)
                    .bind(attempt)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::time::sleep(pause).await;
                let marked = delivery
                    .mark_done_in(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                if marked {
                    tx.commit().await.map_err(|e| e.to_string())?;
                }
                marked
            }};
        }
        let marked = match self {
            Self::Sqlite(pool) => in_one_transaction!(pool),
            Self::Postgres(pool) => in_one_transaction!(pool),
        };
        if marked {
            Ok(())
        } else {
            Err("lease lost: rolled back".into())
        }
    }
}

/// Each row's effects: row id to how many.
async fn effects(store: &Store) -> HashMap<i64, usize> {
    let select = "SELECT row_id FROM effects";
    let ids: Vec<i64> = match store {
        Store::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query_scalar(select).fetch_all(&pool).await.unwrap()
        }
        Store::Postgres(url, schema) => {
            let pool = sqlx::PgPool::connect_with(in_schema(url, schema))
                .await
                .unwrap();
            sqlx::query_scalar(select).fetch_all(&pool).await.unwrap()
        }
    };
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id).or_default() += 1;
    }
    counts
}

/// A started receiver process and its address.
struct Receiver {
    child: Child,
    address: String,
}

async fn start(store: &Store, log: &std::path::Path) -> Receiver {
    start_with(store, log, false).await
}

/// [`start`], with a handler whose effects commit with the mark if `effects`.
async fn start_with(store: &Store, log: &std::path::Path, effects: bool) -> Receiver {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if effects {
        command.env("INBOX_CHILD_EFFECTS", "1");
    }
    command
        .args([
            "--exact",
            "crash::receiver_process",
            "--ignored",
            "--nocapture",
        ])
        .env("INBOX_CHILD_LOG", log)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    match store {
        Store::Sqlite(path) => command
            .env("INBOX_CHILD_STORE", "sqlite")
            .env("INBOX_CHILD_DB", path),
        Store::Postgres(url, schema) => command
            .env("INBOX_CHILD_STORE", "postgres")
            .env("INBOX_CHILD_DB", url)
            .env("INBOX_CHILD_SCHEMA", schema),
    };
    let mut child = command.spawn().expect("the receiver process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(address) = line.strip_prefix("listening ") {
                return address.to_owned();
            }
        }
        panic!("the receiver process ended before listening");
    })
    .await
    .expect("the receiver process listening within 30 s");
    Receiver { child, address }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends `webhook` to `address`: the status, or `None` if the connection failed.
async fn deliver(client: &HttpClient, address: &str, webhook: &Webhook) -> Option<StatusCode> {
    let uri = format!("http://{address}{}", path(webhook));
    let request: Request<Body> = webhook
        .clone()
        .uri(uri.parse().unwrap())
        .sign(secret_of(webhook));
    let (parts, body) = request.into_parts();
    let body = body.collect().await.ok()?.to_bytes();
    let response = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .ok()?;
    Some(response.status())
}

fn path(webhook: &Webhook) -> &'static str {
    match webhook.provider() {
        shipment_webhooks::Provider::Kosmo => "/webhooks/kosmo",
        _ => "/webhooks/goshiip",
    }
}

fn secret_of(webhook: &Webhook) -> &'static str {
    match webhook.provider() {
        shipment_webhooks::Provider::Kosmo => KOSMO,
        _ => GOSHIIP,
    }
}

/// `shipments` Kosmo orders of five statuses each, every other order's
/// events sent newest first, then one in ten sent again: (webhook, its
/// index among the distinct ones).
fn load(shipments: usize) -> (Vec<Webhook>, Vec<usize>) {
    let statuses = [
        "ASSIGNED",
        "PICKED UP",
        "IN TRANSIT",
        "OUT FOR DELIVERY",
        "DELIVERED",
    ];
    let mut webhooks = Vec::new();
    for shipment in 0..shipments {
        let order = format!("LOAD-{shipment}");
        let mut events: Vec<_> = statuses
            .iter()
            .enumerate()
            .map(|(step, status)| kosmo(&order, status, at(step as i64 * 60)))
            .collect();
        if shipment % 2 == 1 {
            events.reverse();
        }
        webhooks.extend(events);
    }
    let sends = (0..webhooks.len())
        .flat_map(|index| {
            if index % 10 == 3 {
                vec![index, index]
            } else {
                vec![index]
            }
        })
        .collect();
    (webhooks, sends)
}

/// Rows of the inbox table: id to (state, attempts).
async fn rows(store: &Store) -> BTreeMap<i64, (String, i64)> {
    let select = "SELECT id, state, attempts FROM webhook_inbox";
    match store {
        Store::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            let rows = sqlx::query(select).fetch_all(&pool).await.unwrap();
            rows.iter()
                .map(|row| (row.get(0), (row.get(1), row.get(2))))
                .collect()
        }
        Store::Postgres(url, schema) => {
            let pool = sqlx::PgPool::connect_with(in_schema(url, schema))
                .await
                .unwrap();
            let rows = sqlx::query(select).fetch_all(&pool).await.unwrap();
            rows.iter()
                .map(|row| (row.get(0), (row.get(1), row.get(2))))
                .collect()
        }
    }
}

/// Each id's handled attempts, from the receivers' logs.
fn handled(logs: &[std::path::PathBuf]) -> HashMap<i64, Vec<i64>> {
    let mut handled: HashMap<i64, Vec<i64>> = HashMap::new();
    for log in logs {
        for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
            let (id, attempt) = line.split_once(' ').expect("an id and an attempt");
            handled
                .entry(id.parse().unwrap())
                .or_default()
                .push(attempt.parse().unwrap());
        }
    }
    handled
}

/// Waits until no row is pending or processing; panics after 60 s.
async fn drained(store: &Store) -> BTreeMap<i64, (String, i64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = rows(store).await;
        if rows
            .values()
            .all(|(state, _)| state != "pending" && state != "processing")
        {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "the inbox did not drain in 60 s: {:?}",
            {
                let open: Vec<_> = rows
                    .iter()
                    .filter(|(_, (state, _))| state == "pending" || state == "processing")
                    .collect();
                open
            }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every webhook acknowledged is handled to success once in effect: each
/// row done (handled, its last attempt logged, no attempt logged twice) or
/// superseded; returns how many rows were handled more than once (by a
/// worker that died before recording it).
fn assert_exactly_once_in_effect(
    rows: &BTreeMap<i64, (String, i64)>,
    handled: &HashMap<i64, Vec<i64>>,
    distinct: usize,
) -> usize {
    assert_eq!(
        rows.len(),
        distinct,
        "one row per distinct webhook, duplicates dropped"
    );
    let mut again = 0;
    for (id, (state, attempts)) in rows {
        let mut logged = handled.get(id).cloned().unwrap_or_default();
        logged.sort_unstable();
        let count = logged.len();
        logged.dedup();
        assert_eq!(
            logged.len(),
            count,
            "row {id}: an attempt handed out twice: {logged:?}"
        );
        match state.as_str() {
            "done" => {
                assert_eq!(
                    logged.last(),
                    Some(attempts),
                    "row {id}: its last attempt is the one logged"
                );
            }
            "superseded" => {}
            other => panic!("row {id} is {other}"),
        }
        if count > 1 {
            again += 1;
        }
    }
    again
}

/// Sends every index in `sends` until it is acknowledged with a 200, over 8
/// connections at a time, to whichever of `addresses` is up.
async fn send_all(
    client: &HttpClient,
    addresses: &[String],
    webhooks: &[Webhook],
    sends: &[usize],
) -> usize {
    let failures = stream::iter(sends.iter().enumerate())
        .map(|(n, &index)| async move {
            let mut failures = 0;
            let address = &addresses[n % addresses.len()];
            while deliver(client, address, &webhooks[index]).await != Some(StatusCode::OK) {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            failures
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    failures.into_iter().sum()
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A fresh store of each kind: `None` where PostgreSQL is not given.
async fn fresh(postgres: bool, name: &str) -> Option<Store> {
    if !postgres {
        return Some(Store::Sqlite(sqlite_path(name)));
    }
    let url = postgres_url()?;
    let schema = postgres_schema(&url, name).await;
    Some(Store::Postgres(url, schema))
}

/// (a) A receiver killed with SIGKILL mid-load and started again: every
/// acknowledged webhook handled once in effect, none lost.
async fn killed_mid_load_loses_nothing(postgres: bool) {
    let Some(store) = fresh(postgres, "crash").await else {
        return;
    };
    let log = sqlite_path("crash-log");
    let (webhooks, sends) = load(60);
    let (first, rest) = sends.split_at(sends.len() / 3);
    let client = client();
    let started = Instant::now();

    let mut receiver = start(&store, &log).await;
    let address = [receiver.address.clone()];
    let kill_at = first.len() * 2 / 3;
    send_all(&client, &address, &webhooks, &first[..kill_at]).await;
    // Some of the rest in flight, then a kill without warning.
    let in_flight = send_all(&client, &address, &webhooks, &first[kill_at..]);
    let _ = tokio::time::timeout(Duration::from_millis(30), in_flight).await;
    receiver.child.start_kill().unwrap();
    receiver.child.wait().await.unwrap();

    let restarted = start(&store, &log).await;
    let address = [restarted.address.clone()];
    // What was in flight is sent again, as providers retry what got no 200.
    send_all(&client, &address, &webhooks, &first[kill_at..]).await;
    send_all(&client, &address, &webhooks, rest).await;
    let rows = drained(&store).await;
    let handled_again = assert_exactly_once_in_effect(&rows, &handled(&[log]), webhooks.len());
    // Handled again: those the 4 handlers were running at the kill, and
    // those handled whose outcomes were not recorded yet (the outcomes of
    // one claim of 8, about, at this pace).
    assert!(
        handled_again <= 12,
        "{handled_again} handled again: more than the 4 handlers running and the 8 of one claim"
    );
    let superseded = rows
        .values()
        .filter(|(state, _)| state == "superseded")
        .count();
    assert!(superseded > 0, "out-of-order events were superseded");
    eprintln!(
        "{store:?} killed mid-load: {} sends, {} webhooks, {superseded} superseded, \
         {handled_again} handled again, {:?}",
        sends.len(),
        webhooks.len(),
        started.elapsed()
    );
}

/// (c) Handlers whose effects commit in the transaction that marks their
/// webhook handled, killed with SIGKILL three times mid-load: every handled
/// webhook's effect is there exactly once, and no other webhook's.
async fn effects_commit_exactly_once_across_kills(postgres: bool) {
    let Some(store) = fresh(postgres, "effects").await else {
        return;
    };
    let log = sqlite_path("effects-log");
    let (webhooks, sends) = load(60);
    let client = client();
    let parts: Vec<&[usize]> = sends.chunks(sends.len().div_ceil(4)).collect();
    for (round, part) in parts.iter().enumerate() {
        let mut receiver = start_with(&store, &log, true).await;
        let address = [receiver.address.clone()];
        send_all(&client, &address, &webhooks, part).await;
        if round + 1 < parts.len() {
            // Kill while handlers hold transactions open.
            tokio::time::sleep(Duration::from_millis(20)).await;
            receiver.child.start_kill().unwrap();
            receiver.child.wait().await.unwrap();
        } else {
            let rows = drained(&store).await;
            let effects = effects(&store).await;
            assert_eq!(rows.len(), webhooks.len(), "one row per distinct webhook");
            for (id, (state, _)) in &rows {
                let expected = usize::from(state == "done");
                assert_eq!(
                    effects.get(id).copied().unwrap_or(0),
                    expected,
                    "row {id}, {state}: its effects"
                );
            }
            assert!(
                effects.keys().all(|id| rows.contains_key(id)),
                "no effect of a row that does not exist"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_effects_commit_exactly_once_across_kills() {
    effects_commit_exactly_once_across_kills(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_effects_commit_exactly_once_across_kills() {
    effects_commit_exactly_once_across_kills(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_receiver_killed_mid_load_loses_nothing() {
    killed_mid_load_loses_nothing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_receiver_killed_mid_load_loses_nothing() {
    killed_mid_load_loses_nothing(true).await;
}

/// (b) Two receiver processes on one PostgreSQL database, the load split
/// between them: every webhook handled exactly once across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_receivers_handle_each_webhook_once() {
    let Some(store) = fresh(true, "pair").await else {
        return;
    };
    let logs = [sqlite_path("pair-log-a"), sqlite_path("pair-log-b")];
    let a = start(&store, &logs[0]).await;
    let b = start(&store, &logs[1]).await;
    let (webhooks, sends) = load(60);
    let addresses = [a.address.clone(), b.address.clone()];
    send_all(&client(), &addresses, &webhooks, &sends).await;
    let rows = drained(&store).await;
    let handled = handled(&logs);
    let handled_again = assert_exactly_once_in_effect(&rows, &handled, webhooks.len());
    assert_eq!(handled_again, 0, "no crash, so nothing handled twice");
    let by_a = std::fs::read_to_string(&logs[0])
        .unwrap_or_default()
        .lines()
        .count();
    let by_b = std::fs::read_to_string(&logs[1])
        .unwrap_or_default()
        .lines()
        .count();
    assert!(
        by_a > 0 && by_b > 0,
        "both workers took part: {by_a} and {by_b}"
    );
    eprintln!("two receivers: {by_a} and {by_b} handled");
}

/// (c) 16 deliveries of one webhook at once over TCP leave one row: to one
/// SQLite receiver, and split between two PostgreSQL receivers.
async fn sixteen_concurrent_duplicates_over_tcp(postgres: bool) {
    let Some(store) = fresh(postgres, "sixteen").await else {
        return;
    };
    let log = sqlite_path("sixteen-log");
    let a = start(&store, &log).await;
    let b = if postgres {
        Some(start(&store, &log).await)
    } else {
        None
    };
    let addresses: Vec<String> = [Some(&a), b.as_ref()]
        .into_iter()
        .flatten()
        .map(|receiver| receiver.address.clone())
        .collect();
    let webhook = kosmo("SIXTEEN", "DELIVERED", at(0));
    let client = client();
    let statuses = futures_util::future::join_all((0..16).map(|n| {
        let (client, webhook, address) = (&client, &webhook, &addresses[n % addresses.len()]);
        async move { deliver(client, address, webhook).await }
    }))
    .await;
    assert!(
        statuses
            .iter()
            .all(|status| *status == Some(StatusCode::OK)),
        "{statuses:?}"
    );
    let rows = drained(&store).await;
    assert_eq!(rows.len(), 1, "one row");
    assert_eq!(
        handled(&[log]).values().map(Vec::len).sum::<usize>(),
        1,
        "handled once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sixteen_concurrent_duplicates_over_tcp() {
    sixteen_concurrent_duplicates_over_tcp(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sixteen_concurrent_duplicates_over_tcp() {
    sixteen_concurrent_duplicates_over_tcp(true).await;
}
