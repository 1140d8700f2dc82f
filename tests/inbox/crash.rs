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
use shipment_webhooks::inbox::sqlx;
use shipment_webhooks::inbox::sqlx::Row;
use shipment_webhooks::inbox::{BoxError, Inbox};
use shipment_webhooks::testing::Webhook;
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
/// With `INBOX_CHILD_GATES` (a directory), each handler first appends
/// "id attempt" to the log's `.started` twin, then waits until the gate of
/// its shipment's group (the shipment id up to its first `-`) is open (a
/// file of that name in the directory), then appends to the log and
/// returns. `INBOX_CHILD_CONCURRENCY`, `INBOX_CHILD_BATCH` and
/// `INBOX_CHILD_LEASE_MS` set the worker's (4, 8 and 900 ms by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a receiver process the crash tests start"]
async fn receiver_process() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    let log_path = std::env::var("INBOX_CHILD_LOG").expect("INBOX_CHILD_LOG");
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
    let log = appending(&log_path);
    let setting = |name: &str, default: u64| {
        std::env::var(name).map_or(default, |value| value.parse().expect(name))
    };
    let worker = if let Some(gates) = std::env::var_os("INBOX_CHILD_GATES") {
        let started = appending(&format!("{log_path}.started"));
        let open = watch_gates(gates.into());
        inbox.worker(move |delivery: shipment_webhooks::inbox::Delivery| {
            let (started, log, mut open) = (Arc::clone(&started), Arc::clone(&log), open.clone());
            let group = delivery
                .event()
                .id
                .split('-')
                .next()
                .unwrap_or_default()
                .to_owned();
            async move {
                append(&started, &delivery)?;
                open.wait_for(|gates| gates.contains(&group)).await?;
                append(&log, &delivery)
            }
        })
    } else if std::env::var_os("INBOX_CHILD_EFFECTS").is_some() {
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
                append(&log, &delivery)
            }
        })
    };
    let _worker = worker
        .concurrency(setting("INBOX_CHILD_CONCURRENCY", 4) as usize)
        .batch_size(setting("INBOX_CHILD_BATCH", 8) as usize)
        .lease(Duration::from_millis(setting("INBOX_CHILD_LEASE_MS", 900)))
        .poll_interval(Duration::from_millis(50))
        .spawn();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    axum::serve(listener, app(&inbox)).await.unwrap();
}

type Log = Arc<std::sync::Mutex<std::fs::File>>;

/// The file at `path`, opened to append lines to.
fn appending(path: &str) -> Log {
    Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    ))
}

/// Appends "id attempt" for `delivery` to `log`.
fn append(log: &Log, delivery: &shipment_webhooks::inbox::Delivery) -> Result<(), BoxError> {
    use std::io::Write;
    let line = format!("{} {}\n", delivery.id(), delivery.attempt());
    log.lock().unwrap().write_all(line.as_bytes())?;
    Ok(())
}

/// The names of the files in `dir`, read every 2 ms: the open gates. Every
/// handler waiting for a gate sees it open at once.
fn watch_gates(dir: std::path::PathBuf) -> tokio::sync::watch::Receiver<Vec<String>> {
    let (gates, open) = tokio::sync::watch::channel(Vec::new());
    tokio::spawn(async move {
        loop {
            let mut now: Vec<String> = std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            now.sort();
            gates.send_if_modified(|gates| {
                let changed = *gates != now;
                *gates = now;
                changed
            });
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    open
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
    async fn record(&self, delivery: &shipment_webhooks::inbox::Delivery) -> Result<(), BoxError> {
        let (id, attempt) = (delivery.id(), i64::from(delivery.attempt()));
        let pause = Duration::from_millis(3);
        // The same steps on either pool: sqlx's types differ by database.
        macro_rules! in_one_transaction {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(INSERT_EFFECT)
                    .bind(id)
                    .bind(attempt)
                    .execute(&mut *tx)
                    .await?;
                tokio::time::sleep(pause).await;
                let marked = delivery.mark_done_in(&mut *tx).await?;
                if marked {
                    tx.commit().await?;
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
    let env: &[(&str, &std::ffi::OsStr)] = if effects {
        &[("INBOX_CHILD_EFFECTS", "1".as_ref())]
    } else {
        &[]
    };
    start_env(store, log, env).await
}

/// [`start`], with more of the child's settings in its environment.
async fn start_env(
    store: &Store,
    log: &std::path::Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> Receiver {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.envs(env.iter().copied());
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
    // Handled again: those the handlers were running at the kill, and those
    // handled whose outcomes were not recorded yet: all held by the worker,
    // which holds at most its batch of 8.
    assert!(
        handled_again <= 8,
        "{handled_again} handled again: more than the worker's batch of 8"
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
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_effects_commit_exactly_once_across_kills() {
    effects_commit_exactly_once_across_kills(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_receiver_killed_mid_load_loses_nothing() {
    killed_mid_load_loses_nothing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_receiver_killed_mid_load_loses_nothing() {
    killed_mid_load_loses_nothing(true).await;
}

/// (b) Two receiver processes on one PostgreSQL database, the load split
/// between them: every webhook handled exactly once across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn two_postgres_receivers_handle_each_webhook_once() {
    let Some(store) = fresh(true, "pair").await else {
        return;
    };
    let logs = [sqlite_path("pair-log-a"), sqlite_path("pair-log-b")];
    // Nothing crashes here: a lease long enough that a busy machine never
    // lets one lapse (a lapsed lease hands a running webhook out again, by
    // design), so twice can only mean two processes claimed one webhook.
    let env: [(&str, &std::ffi::OsStr); 1] = [("INBOX_CHILD_LEASE_MS", "10000".as_ref())];
    let a = start_env(&store, &logs[0], &env).await;
    let b = start_env(&store, &logs[1], &env).await;
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
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_sixteen_concurrent_duplicates_over_tcp() {
    sixteen_concurrent_duplicates_over_tcp(true).await;
}

/// Lines of a receiver's log: how many.
fn lines(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .count()
}

/// Waits up to 30 s for `done`, polling every 10 ms; panics with `what`.
async fn until<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Rows in `state`.
async fn ids_in(store: &Store, state: &str) -> Vec<i64> {
    rows(store)
        .await
        .into_iter()
        .filter(|(_, (row_state, _))| row_state == state)
        .map(|(id, _)| id)
        .collect()
}

/// What keeps the receiver from recording outcomes: on SQLite, the write
/// lock, held by a transaction of the test's; on PostgreSQL, an advisory
/// lock that a trigger makes every transaction wait for once it has marked
/// a second webhook handled (so a batch of outcomes stops mid-way, its rows
/// updated, before its commit), held by the test's session `pid`.
enum Hold {
    Sqlite(sqlx::SqliteConnection),
    Postgres {
        session: sqlx::PgConnection,
        pid: i32,
        key: i64,
    },
}

impl Hold {
    async fn take(store: &Store) -> Self {
        use sqlx::Connection;
        match store {
            Store::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .busy_timeout(Duration::from_secs(10));
                let mut session = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut session)
                    .await
                    .unwrap();
                Self::Sqlite(session)
            }
            Store::Postgres(url, schema) => {
                let mut session = sqlx::PgConnection::connect_with(&in_schema(url, schema))
                    .await
                    .unwrap();
                // Advisory locks are the database's, shared by every schema:
                // a key no other test takes.
                let key = unique() as i64;
                for statement in [
                    format!(
                        "CREATE FUNCTION hold_batched_completion() RETURNS trigger \
                         LANGUAGE plpgsql AS $$ \
                         DECLARE marked int := coalesce(nullif(current_setting(\
                           'shipment_webhooks_test.marked', true), ''), '0')::int + 1; \
                         BEGIN \
                           PERFORM set_config('shipment_webhooks_test.marked', marked::text, true); \
                           IF marked >= 2 THEN PERFORM pg_advisory_xact_lock_shared({key}); END IF; \
                           RETURN NULL; \
                         END $$"
                    ),
                    "CREATE TRIGGER hold_batched_completion AFTER UPDATE ON webhook_inbox \
                     FOR EACH ROW WHEN (NEW.state = 'done' AND OLD.state <> 'done') \
                     EXECUTE FUNCTION hold_batched_completion()"
                        .to_owned(),
                    format!("SELECT pg_advisory_lock({key})"),
                ] {
                    sqlx::query(&statement).execute(&mut session).await.unwrap();
                }
                let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut session)
                    .await
                    .unwrap();
                Self::Postgres { session, pid, key }
            }
        }
    }

    /// On PostgreSQL, the session of the transaction waiting for the hold,
    /// and the rows it has marked handled (locked, not yet committed).
    async fn caught(&mut self) -> Option<(i32, Vec<i64>)> {
        let Self::Postgres { session, pid, .. } = self else {
            return None;
        };
        let waiting: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
        )
        .bind(*pid)
        .fetch_optional(&mut *session)
        .await
        .unwrap();
        let waiting = waiting?;
        // Rows another transaction has updated are locked: those a
        // `SKIP LOCKED` read passes over.
        sqlx::query("BEGIN").execute(&mut *session).await.unwrap();
        let processing: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM webhook_inbox WHERE state = 'processing'")
                .fetch_all(&mut *session)
                .await
                .unwrap();
        let free: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM webhook_inbox WHERE state = 'processing' FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *session)
        .await
        .unwrap();
        sqlx::query("ROLLBACK")
            .execute(&mut *session)
            .await
            .unwrap();
        let mut locked: Vec<i64> = processing
            .into_iter()
            .filter(|id| !free.contains(id))
            .collect();
        locked.sort_unstable();
        Some((waiting, locked))
    }

    /// Lets go, once the receiver is dead: its stopped transaction, which
    /// finds its client gone, rolls back; the trigger is dropped.
    async fn release(self, waiting: Option<i32>) {
        match self {
            Self::Sqlite(mut session) => {
                sqlx::query("ROLLBACK").execute(&mut session).await.unwrap();
            }
            Self::Postgres {
                mut session, key, ..
            } => {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(key)
                    .execute(&mut session)
                    .await
                    .unwrap();
                if let Some(waiting) = waiting {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        let left: i64 = sqlx::query_scalar(
                            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                        )
                        .bind(waiting)
                        .fetch_one(&mut session)
                        .await
                        .unwrap();
                        if left == 0 {
                            break;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "the dead receiver's session ended within 30 s"
                        );
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                for statement in [
                    "DROP TRIGGER hold_batched_completion ON webhook_inbox",
                    "DROP FUNCTION hold_batched_completion()",
                ] {
                    sqlx::query(statement).execute(&mut session).await.unwrap();
                }
            }
        }
    }
}

/// (d) A receiver killed with SIGKILL while its worker records a batch of
/// outcomes (several webhooks handled, their outcomes in one transaction):
/// after a restart every acknowledged webhook is handled, none lost, and
/// only those whose outcome was not yet committed handled again, once.
///
/// 12 webhooks of 12 shipments, groups A and B, are claimed and held at
/// their handlers' gates. Gate A opens and A's outcomes are recorded. Then
/// the store is held, gate B opens, and B's handlers all return. On
/// PostgreSQL a trigger stops the first transaction that marks two
/// webhooks handled, with its rows updated and uncommitted; the kill comes
/// then. On SQLite, which has one writer, the test holds the write lock, so
/// no outcome of B's can be written; the kill comes once all of B's
/// handlers have returned.
async fn killed_during_a_batched_completion(postgres: bool) {
    let Some(store) = fresh(postgres, "batch").await else {
        return;
    };
    let started = Instant::now();
    let log = sqlite_path("batch-log");
    let started_log = std::path::PathBuf::from(format!("{}.started", log.display()));
    let gates = sqlite_path("batch-gates");
    std::fs::create_dir(&gates).unwrap();
    let env: [(&str, &std::ffi::OsStr); 4] = [
        ("INBOX_CHILD_GATES", gates.as_os_str()),
        ("INBOX_CHILD_CONCURRENCY", "16".as_ref()),
        ("INBOX_CHILD_BATCH", "16".as_ref()),
        ("INBOX_CHILD_LEASE_MS", "2000".as_ref()),
    ];
    let mut receiver = start_env(&store, &log, &env).await;
    let webhooks: Vec<Webhook> = ["A", "B"]
        .iter()
        .flat_map(|group| (0..6).map(move |n| kosmo(&format!("{group}-{n}"), "DELIVERED", at(0))))
        .collect();
    let every: Vec<usize> = (0..webhooks.len()).collect();
    send_all(&client(), &[receiver.address.clone()], &webhooks, &every).await;
    until("every webhook claimed and its handler running", || async {
        lines(&started_log) == webhooks.len()
    })
    .await;
    std::fs::write(gates.join("A"), "").unwrap();
    until("group A's outcomes recorded", || async {
        ids_in(&store, "done").await.len() == 6
    })
    .await;
    let group_a = ids_in(&store, "done").await;

    let mut hold = Hold::take(&store).await;
    std::fs::write(gates.join("B"), "").unwrap();
    until("every handler returned", || async {
        lines(&log) == webhooks.len()
    })
    .await;
    // On PostgreSQL: a transaction that has marked two or more handled.
    let mut caught = None;
    if postgres {
        let deadline = Instant::now() + Duration::from_secs(30);
        while caught.is_none() {
            assert!(
                Instant::now() < deadline,
                "no transaction marked two webhooks handled within 30 s: {:?}",
                rows(&store).await
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            caught = hold.caught().await;
        }
    }
    receiver.child.start_kill().unwrap();
    receiver.child.wait().await.unwrap();
    // Handled, and their outcomes not committed (nor will they be, the
    // receiver being dead and its transaction stopped).
    let in_flight = ids_in(&store, "processing").await;
    let waiting = caught.as_ref().map(|(pid, _)| *pid);
    hold.release(waiting).await;

    let batch = caught.map(|(_, batch)| batch).unwrap_or_default();
    if postgres {
        assert!(
            batch.len() >= 2,
            "the stopped transaction holds {batch:?}: not a batch"
        );
    } else {
        assert_eq!(in_flight.len(), 6, "none of B's outcomes written");
    }
    let after_kill = rows(&store).await;
    for id in &batch {
        assert!(
            in_flight.contains(id),
            "row {id} of the batch was in flight"
        );
        assert_eq!(
            after_kill[id].0, "processing",
            "row {id}: the killed batch's transaction did not commit"
        );
    }

    let restarted = start_env(&store, &log, &env).await;
    let rows = drained(&store).await;
    drop(restarted);
    assert_eq!(rows.len(), webhooks.len(), "one row per webhook");
    let handled = handled(&[log]);
    for (id, (state, attempts)) in &rows {
        assert_eq!(state, "done", "row {id}");
        let mut logged = handled.get(id).cloned().unwrap_or_default();
        logged.sort_unstable();
        let expected = if in_flight.contains(id) {
            vec![1, 2]
        } else {
            vec![1]
        };
        assert_eq!(
            logged,
            expected,
            "row {id} (in flight at the kill: {}) handled at attempts",
            in_flight.contains(id)
        );
        assert_eq!(Some(attempts), logged.last(), "row {id}: its last attempt");
    }
    assert!(group_a.iter().all(|id| !in_flight.contains(id)));
    eprintln!(
        "{store:?} killed during a batched completion: group A {group_a:?} recorded; \
         {in_flight:?} in flight, {batch:?} in the stopped transaction; {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_during_a_batched_completion_loses_nothing() {
    tokio::time::timeout(
        Duration::from_secs(120),
        killed_during_a_batched_completion(false),
    )
    .await
    .expect("within 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_killed_during_a_batched_completion_loses_nothing() {
    tokio::time::timeout(
        Duration::from_secs(120),
        killed_during_a_batched_completion(true),
    )
    .await
    .expect("within 120 s");
}
