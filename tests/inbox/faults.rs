//! Faults and odd input every store must survive: a panicking handler, a
//! backoff past 32 doublings, odd shipment ids, reshaped envelopes, bursts,
//! two instances on one file, a stalled instance, a row locked mid-claim, a
//! row edited by hand, and
//! PostgreSQL itself stopped and started again mid-load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use shipment_webhooks::inbox::sqlx;
use shipment_webhooks::inbox::{Delivery, Inbox, InboxError};
use shipment_webhooks::testing::Webhook;

use crate::cluster::Shutdown;
use crate::common::send;
use crate::harness::*;

/// A handler whose *closure* (not its future) panics kills the whole worker:
/// `Worker::start` calls `(self.handler)(delivery)` on the worker's own task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_panicking_before_its_future_is_retried() {
    let inbox = Inbox::in_memory();
    let app = app(&inbox);
    assert_eq!(
        send(&app, kosmo("BOOM", "PICKED UP", at(0)).sign(KOSMO))
            .await
            .status,
        StatusCode::OK
    );
    let record = Record::default();
    let seen = record.clone();
    let worker = inbox
        .worker(move |delivery: Delivery| {
            seen.push(&delivery);
            // e.g. `delivery.payload::<KosmoEvent>().unwrap()` before the async block
            assert!(delivery.event().id != "BOOM", "bug in sync part of handler");
            async { Ok(()) }
        })
        .poll_interval(Duration::from_millis(10))
        .backoff(Duration::from_millis(10), Duration::from_millis(10))
        .lease(Duration::from_millis(200))
        .max_attempts(3)
        .spawn();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A later, healthy webhook of another shipment.
    send(&app, kosmo("FINE", "PICKED UP", at(0)).sign(KOSMO)).await;
    let stats = wait_for(&inbox, |s| s.done == 1 && s.dead == 1).await;
    worker.shutdown().await;
    eprintln!("stats: {stats:?}; handled: {:?}", record.handled());
    assert_eq!(stats.done, 1, "the healthy webhook is handled");
    assert_eq!(
        stats.dead, 1,
        "the panicking one ends dead after 3 attempts"
    );
}

/// `retry_delay` computes `1 << doublings` with doublings up to 32 on a u32:
/// attempt 33 overflows the shift (a panic in debug builds) inside `record`,
/// on the worker's own task, so the worker dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_past_32_attempts_does_not_overflow() {
    let inbox = Inbox::in_memory();
    let app = app(&inbox);
    send(&app, kosmo("SG-RETRY", "PICKED UP", at(0)).sign(KOSMO)).await;
    let tries = Arc::new(AtomicU32::new(0));
    let tries_ = Arc::clone(&tries);
    let worker = inbox
        .worker(move |_delivery: Delivery| {
            tries_.fetch_add(1, Ordering::SeqCst);
            async { Err("downstream down".into()) }
        })
        .max_attempts(40)
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .poll_interval(Duration::from_millis(1))
        .spawn();
    let stats = wait_for(&inbox, |s| s.dead == 1).await;
    worker.shutdown().await;
    eprintln!(
        "stats: {stats:?}; handler ran {} times",
        tries.load(Ordering::SeqCst)
    );
    assert_eq!(stats.dead, 1, "dead after 40 attempts");
    assert_eq!(tries.load(Ordering::SeqCst), 40);
}

/// A verified webhook whose shipment id holds U+0000: stored on memory and
/// SQLite, but PostgreSQL TEXT refuses NUL, so every delivery is a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipment_id_with_nul_is_stored_everywhere() {
    for backend in [Backend::Memory, Backend::Sqlite, Backend::Postgres] {
        let Some(inbox) = open(backend, "nul").await else {
            continue;
        };
        let app = app(&inbox);
        let webhook = Webhook::kourier("DELIVERED").field("/delivery_id", "K-\u{0}1");
        let answer = send(&app, webhook.sign(KOURIER)).await;
        eprintln!("{backend:?}: {} {}", answer.status, answer.json);
        assert_eq!(answer.status, StatusCode::OK, "{backend:?}: stored");
    }
}

/// A database out of reach is an outage that may pass: the error says so.
#[tokio::test]
async fn a_database_out_of_reach_is_a_transient_error() {
    // Nothing listens on port 1 of the loopback address.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy("postgres://postgres@127.0.0.1:1/postgres")
        .unwrap();
    let error = Inbox::postgres_pool(pool)
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(error, InboxError::Unavailable(_)) && error.is_transient(),
        "{error:?}"
    );
}

/// A pool closed under a running inbox does not come back: the error says
/// so, and the receiver answers 503 so that the provider sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn a_closed_postgres_pool_is_refused_with_503() {
    let Some(url) = postgres_url() else { return };
    let schema = postgres_schema(&url, "closed").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(in_schema(&url, &schema))
        .await
        .unwrap();
    let inbox = Inbox::postgres_pool(pool.clone()).await.unwrap();
    pool.close().await;
    let error = inbox.stats().await.expect_err("the pool is closed");
    assert!(
        matches!(error, InboxError::Closed) && !error.is_transient(),
        "{error:?}"
    );
    let answer = send(
        &app(&inbox),
        kosmo("SG-CLOSED", "PICKED UP", at(0)).sign(KOSMO),
    )
    .await;
    answer.assert_refused(StatusCode::SERVICE_UNAVAILABLE, "could not be stored");
    answer.assert_reason("not_stored");
}

/// `run_until_idle` on a store it cannot read returns the error, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn run_until_idle_on_a_closed_postgres_pool_is_an_error() {
    let Some(url) = postgres_url() else { return };
    let schema = postgres_schema(&url, "idle_closed").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(in_schema(&url, &schema))
        .await
        .unwrap();
    let inbox = Inbox::postgres_pool(pool.clone()).await.unwrap();
    pool.close().await;
    let (worker, record) = recording(&inbox);
    let run = tokio::time::timeout(Duration::from_secs(10), worker.run_until_idle())
        .await
        .expect("it returns");
    let error = run.expect_err("the pool is closed");
    assert!(matches!(error, InboxError::Closed), "{error:?}");
    assert!(record.handled().is_empty());
}

/// A pool of one connection, which LISTEN would hold while receivers and
/// claims wait for it, is refused at open; two or three work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_pool_too_small_for_listen_is_refused() {
    let Some(url) = postgres_url() else { return };
    for size in [1u32, 2, 3] {
        let schema = postgres_schema(&url, "smallpool").await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(size)
            .connect_with(in_schema(&url, &schema))
            .await
            .unwrap();
        let inbox = match Inbox::postgres_pool(pool).await {
            Err(error) => {
                assert_eq!(size, 1, "{error}");
                assert!(
                    error.to_string().contains("2 connections or more"),
                    "{error}"
                );
                continue;
            }
            Ok(inbox) => inbox,
        };
        assert!(size >= 2);
        let app = app(&inbox);
        let (worker, _record) = recording(&inbox);
        let worker = worker.concurrency(8).spawn();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sends = (0..32).map(|i| {
            let app = app.clone();
            async move {
                send(
                    &app,
                    kosmo(&format!("SG-POOL-{size}-{i}"), "PICKED UP", at(0)).sign(KOSMO),
                )
                .await
                .status
            }
        });
        let statuses = futures_util::future::join_all(sends).await;
        assert!(
            statuses.iter().all(|status| *status == StatusCode::OK),
            "pool of {size}: {statuses:?}"
        );
        let stats = wait_for(&inbox, settled).await;
        assert_eq!(stats.done, 32, "pool of {size}");
        let stopped = tokio::time::timeout(Duration::from_secs(15), worker.shutdown()).await;
        assert!(stopped.is_ok(), "pool of {size}: shutdown returns");
    }
}

/// An instance that stalls mid-claim (paused, cut off) holding the claim
/// lock delays other instances' claims only until the server ends its
/// session (claims set `idle_in_transaction_session_timeout`, 1 s here), and
/// never keeps a worker from shutting down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_instance_stalled_mid_claim_does_not_wedge_others() {
    let Some((inbox, mut other)) = postgres_inbox_and_outsider("stalled").await else {
        return;
    };
    let app = app(&inbox);
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SET LOCAL idle_in_transaction_session_timeout = '1s'")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
        .bind(0x0063_6c61_696d_i64)
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(
        send(&app, kosmo("SG-STALL", "PICKED UP", at(0)).sign(KOSMO))
            .await
            .status,
        StatusCode::OK
    );
    let (worker, _record) = recording(&inbox);
    let worker = worker.spawn();
    let stats = wait_for(&inbox, |s| s.done == 1).await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), worker.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown returns");
    assert_eq!(stats.done, 1, "handled once the stalled session was ended");
    drop(other);
}

/// PostgreSQL: a shipment's oldest webhook locked by a duplicate's count
/// being committed (held open here) is waited for, not passed over: its
/// shipment's later webhooks are not handed out before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_row_locked_by_a_duplicate_count_is_waited_for() {
    let Some((inbox, mut other)) = postgres_inbox_and_outsider("locked").await else {
        return;
    };
    let app = app(&inbox);
    for status in ["In Progress", "Picked Up", "In Transit"] {
        let stored = send(&app, goshiip("SG-LOCKED", status).sign(GOSHIIP)).await;
        assert_eq!(stored.status, StatusCode::OK);
    }
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query(
        "UPDATE webhook_inbox SET duplicates = duplicates + 1 \
         WHERE id = (SELECT MIN(id) FROM webhook_inbox)",
    )
    .execute(&mut other)
    .await
    .unwrap();
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    // Time enough for several claims: none may hand out the later two.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        record.handled().is_empty(),
        "handed out while the oldest was locked: {:?}",
        record.handled()
    );
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    wait_for(&inbox, |s| s.done == 3).await;
    worker.shutdown().await;
    let ids: Vec<i64> = record.handled().iter().map(|handled| handled.id).collect();
    let mut in_order = ids.clone();
    in_order.sort_unstable();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(
        ids, in_order,
        "the shipment's webhooks handled oldest first"
    );
}

/// A PostgreSQL inbox in a schema of its own, and a connection of the
/// test's to that schema, to lock from outside; `None` without PostgreSQL.
async fn postgres_inbox_and_outsider(name: &str) -> Option<(Inbox, sqlx::PgConnection)> {
    use sqlx::Connection;
    let url = postgres_url()?;
    let schema = postgres_schema(&url, name).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(in_schema(&url, &schema))
        .await
        .unwrap();
    let inbox = Inbox::postgres_pool(pool).await.unwrap();
    let other = sqlx::PgConnection::connect_with(&in_schema(&url, &schema))
        .await
        .unwrap();
    Some((inbox, other))
}

/// Shipmondo: the same JWT in a reshaped envelope (whitespace, an escaped
/// character) is one delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipmondo_envelope_variations_are_duplicates() {
    for backend in [Backend::Memory, Backend::Sqlite, Backend::Postgres] {
        let Some(inbox) = open(backend, "envelope").await else {
            continue;
        };
        let app = app(&inbox);
        let request = Webhook::shipmondo_order("sent").sign(SHIPMONDO);
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let envelope: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let jwt = envelope["data"].as_str().unwrap().to_owned();
        let escaped = format!("\\u{:04x}{}", jwt.as_bytes()[0], &jwt[1..]);
        let bodies = [
            bytes.to_vec(),
            format!("  {{ \"data\" :\n \"{jwt}\" }}\n").into_bytes(),
            format!("{{\"data\":\"{escaped}\"}}").into_bytes(),
        ];
        let mut answers = Vec::new();
        for body in bodies {
            let mut request = axum::http::Request::new(axum::body::Body::from(body));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.headers_mut() = parts.headers.clone();
            let answer = send(&app, request).await;
            answers.push((answer.status.as_u16(), answer.json["status"].clone()));
        }
        eprintln!("{backend:?}: {answers:?}");
        assert_eq!(answers[1].1, "duplicate", "{backend:?}");
        assert_eq!(answers[2].1, "duplicate", "{backend:?}");
    }
}

/// SQLite under a burst of concurrent deliveries with the worker running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_burst_of_deliveries_gets_no_503() {
    let inbox = Inbox::sqlite(sqlite_path("burst")).await.unwrap();
    let app = app(&inbox);
    let (worker, _record) = recording(&inbox);
    let worker = worker.concurrency(16).spawn();
    let started = std::time::Instant::now();
    let sends = (0..400).map(|i| {
        let app = app.clone();
        async move {
            send(
                &app,
                kosmo(&format!("SG-BURST-{}", i % 50), "IN TRANSIT", at(i)).sign(KOSMO),
            )
            .await
            .status
            .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(sends).await;
    let n503 = statuses.iter().filter(|s| **s == 503).count();
    let stats = wait_for(&inbox, settled).await;
    worker.shutdown().await;
    eprintln!(
        "400 at once in {:?}: {n503} answered 503; {stats:?}",
        started.elapsed()
    );
    assert_eq!(n503, 0);
}

/// A long (incompressible) shipment id: fine on memory and SQLite; on
/// PostgreSQL the btree index on shipment_id refuses rows over ~2.7 kB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_shipment_id_is_stored_everywhere() {
    use std::fmt::Write;
    let mut id = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while id.len() < 4000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        write!(id, "{x:016x}").unwrap();
    }
    for backend in [Backend::Memory, Backend::Sqlite, Backend::Postgres] {
        let Some(inbox) = open(backend, "longid").await else {
            continue;
        };
        let app = app(&inbox);
        let webhook = Webhook::kourier("DELIVERED").field("/delivery_id", id.clone());
        let answer = send(&app, webhook.sign(KOURIER)).await;
        eprintln!("{backend:?}: {} {}", answer.status, answer.json);
        assert_eq!(answer.status, StatusCode::OK, "{backend:?}: stored");
    }
}

/// Two inboxes (two processes' worth) on one SQLite file: opening at once,
/// then a burst on both with both workers running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_instances_share_one_file() {
    let mut open_errors = Vec::new();
    let mut pair = None;
    for _ in 0..10 {
        let path = sqlite_path("twofile");
        let (a, b) = tokio::join!(Inbox::sqlite(&path), Inbox::sqlite(&path));
        match (a, b) {
            (Ok(a), Ok(b)) => pair = Some((a, b)),
            (a, b) => open_errors.push(format!("{:?} / {:?}", a.err(), b.err())),
        }
    }
    eprintln!("open errors: {open_errors:?}");
    let (a, b) = pair.expect("one pair opened");
    let (app_a, app_b) = (app(&a), app(&b));
    let (wa, _ra) = recording(&a);
    let (wb, _rb) = recording(&b);
    let (wa, wb) = (wa.concurrency(8).spawn(), wb.concurrency(8).spawn());
    let sends = (0..300).map(|i| {
        let app = if i % 2 == 0 {
            app_a.clone()
        } else {
            app_b.clone()
        };
        async move {
            send(
                &app,
                kosmo(&format!("SG-TWO-{}", i % 40), "IN TRANSIT", at(i)).sign(KOSMO),
            )
            .await
            .status
            .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(sends).await;
    let n503 = statuses.iter().filter(|s| **s == 503).count();
    let stats = wait_for(&a, settled).await;
    wa.shutdown().await;
    wb.shutdown().await;
    eprintln!("{n503}/300 answered 503; {stats:?}");
    assert!(open_errors.is_empty());
    assert_eq!(n503, 0);
}

/// One row the store cannot decode (a column of the wrong type, written by
/// hand or by a botched migration) fails every claim, so no other webhook
/// is handled either: the worker's "unreadable row: dead at once" path only
/// covers rows that decode but do not parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_row_is_dead_and_others_are_handled() {
    use sqlx::Connection;
    let path = sqlite_path("poison");
    let inbox = Inbox::sqlite(&path).await.unwrap();
    let app = app(&inbox);
    send(&app, kosmo("SG-POISON", "PICKED UP", at(0)).sign(KOSMO)).await;
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE webhook_inbox SET secret_label = x'00ff' WHERE id = 1")
        .execute(&mut other)
        .await
        .unwrap();
    drop(other);
    send(&app, kosmo("SG-FINE", "PICKED UP", at(0)).sign(KOSMO)).await;
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    let stats = wait_for(&inbox, |s| s.done == 1 && s.dead == 1).await;
    worker.shutdown().await;
    eprintln!("{stats:?}; handled {:?}", record.handled());
    assert_eq!((stats.done, stats.dead), (1, 1));
}

/// What one delivery over HTTP got: when it was sent and answered, and the
/// answer (`None`: no answer within 10 s, or the connection failed).
#[derive(Debug, Clone)]
struct Sent {
    shipment: usize,
    step: i64,
    sent: std::time::Instant,
    answered: std::time::Instant,
    answer: Option<(StatusCode, serde_json::Value)>,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<shipment_webhooks::bytes::Bytes>,
>;

/// Posts `webhook`, signed, to the Kosmo route at `address`.
async fn post(
    client: &HttpClient,
    address: std::net::SocketAddr,
    webhook: &Webhook,
) -> Option<(StatusCode, serde_json::Value)> {
    use http_body_util::BodyExt;
    let uri = format!("http://{address}/webhooks/kosmo").parse().unwrap();
    let (parts, body) = webhook.clone().uri(uri).sign(KOSMO).into_parts();
    let body = body.collect().await.ok()?.to_bytes();
    let request = axum::http::Request::from_parts(parts, http_body_util::Full::new(body));
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .ok()?
        .ok()?;
    let status = response.status();
    let bytes = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, serde_json::from_slice(&bytes).unwrap_or_default()))
}

/// Waits up to `limit` for `done`, polling every 20 ms; panics with `what`.
async fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// PostgreSQL stopped (`pg_ctl stop -m fast`) and started again a few
/// seconds later, on a private cluster of this test's own, while webhooks
/// keep arriving over HTTP at a receiver and a worker on 127.0.0.1: 16
/// shipments, each sending its events one after another, each retried every
/// 100 ms until answered 200, as providers retry. Nothing is restarted but
/// the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_restarted_mid_load_loses_nothing() {
    restarted_mid_load(Shutdown::Fast).await;
}

/// The same, with the server killed (`pg_ctl stop -m immediate`), a crash:
/// acknowledged webhooks survive it (their inserts wait for the disk), but
/// claims and outcomes do not wait for it, so one lost may hand a webhook
/// out again under an attempt number already seen, and a shipment's order
/// is only kept for what the database remembers (the README says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_crashed_mid_load_loses_nothing() {
    restarted_mid_load(Shutdown::Immediate).await;
}

async fn restarted_mid_load(shutdown: Shutdown) {
    if postgres_url().is_none() {
        return;
    }
    tokio::time::timeout(Duration::from_secs(150), restart_mid_load(shutdown))
        .await
        .expect("the restart test within 150 s");
}

async fn restart_mid_load(shutdown: Shutdown) {
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    use shipment_webhooks::inbox::DEFAULT_RECEIVE_TIMEOUT;
    use sqlx::Row;

    use crate::cluster::Cluster;

    let started = Instant::now();
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let inbox = Inbox::postgres(&cluster.url())
        .await
        .expect("an inbox on the private cluster");
    let record = Record::default();
    let seen = record.clone();
    // One handler runs across the stop: its first attempt returns only once
    // the database is down, so its outcome is recorded after the restart (or
    // it is handed out again).
    let down = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&down);
    let worker = inbox
        .worker(move |delivery: Delivery| {
            seen.push(&delivery);
            let straddles = delivery.event().id == "RESTART-STRADDLE" && delivery.attempt() == 1;
            let stopped = Arc::clone(&stopped);
            async move {
                while straddles && !stopped.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(())
            }
        })
        .concurrency(4)
        .lease(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(50))
        .spawn();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app(&inbox)).into_future());
    let client: HttpClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();

    let straddler = post(
        &client,
        address,
        &kosmo("RESTART-STRADDLE", "IN TRANSIT", at(0)),
    )
    .await;
    assert_eq!(straddler.map(|(status, _)| status), Some(StatusCode::OK));

    // The load: each shipment's events in order, the next sent once the
    // last is acknowledged, until told to stop.
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..16)
        .map(|shipment| {
            let (log, stop, client) = (Arc::clone(&log), Arc::clone(&stop), client.clone());
            tokio::spawn(async move {
                let mut step = 0;
                while !stop.load(Ordering::SeqCst) {
                    let webhook =
                        kosmo(&format!("RESTART-{shipment}"), "IN TRANSIT", at(step * 60));
                    loop {
                        let sent = Instant::now();
                        let answer = post(&client, address, &webhook).await;
                        let acknowledged = matches!(answer, Some((StatusCode::OK, _)));
                        log.lock().unwrap().push(Sent {
                            shipment,
                            step,
                            sent,
                            answered: Instant::now(),
                            answer,
                        });
                        if acknowledged {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    step += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();
    let answered_ok_since = |since: Instant| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|sent| sent.sent >= since && matches!(sent.answer, Some((StatusCode::OK, _))))
            .count()
    };

    wait_until(
        Duration::from_secs(30),
        "40 webhooks stored before the stop",
        || answered_ok_since(started) >= 40,
    )
    .await;
    cluster.stop(shutdown).await;
    let down_from = Instant::now();
    down.store(true, Ordering::SeqCst);
    wait_until(
        Duration::from_secs(30),
        "10 deliveries sent and answered while the database was down",
        || {
            log.lock()
                .unwrap()
                .iter()
                .filter(|sent| sent.sent >= down_from)
                .count()
                >= 10
        },
    )
    .await;
    // Down for a few seconds, as a restart is.
    tokio::time::sleep_until((down_from + Duration::from_secs(3)).into()).await;
    let handled_while_down = record.handled().len();
    let down_until = Instant::now();
    cluster.start_again().await;
    let up_from = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "the worker handling webhooks again after the restart",
        || record.handled().len() > handled_while_down,
    )
    .await;
    let worker_back = up_from.elapsed();
    wait_until(
        Duration::from_secs(30),
        "40 webhooks stored after the restart (the pool reconnects)",
        || answered_ok_since(up_from) >= 40,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        tokio::time::timeout(Duration::from_secs(30), sender)
            .await
            .expect("each sender's last webhook acknowledged within 30 s")
            .unwrap();
    }
    let mut stats = inbox.stats().await.expect("the inbox's counts");
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while !settled(&stats) {
        assert!(
            Instant::now() < drain_deadline,
            "the worker did not drain the inbox within 30 s of the last webhook: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = inbox.stats().await.expect("the inbox's counts");
    }
    tokio::time::timeout(Duration::from_secs(15), worker.shutdown())
        .await
        .expect("the worker shuts down within 15 s");
    server.abort();

    let pool = sqlx::PgPool::connect(&cluster.url()).await.unwrap();
    let rows: BTreeMap<i64, (String, i64)> =
        sqlx::query("SELECT id, state, attempts FROM webhook_inbox")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2))))
            .collect();
    pool.close().await;
    let sends = log.lock().unwrap().clone();
    let handled = record.handled();

    // Every answer a 200 or a 503 "not stored", within the receiver's
    // timeout (and 2 s of a loaded 2-core machine's slack).
    let limit = DEFAULT_RECEIVE_TIMEOUT + Duration::from_secs(2);
    for sent in &sends {
        let took = sent.answered - sent.sent;
        assert!(took <= limit, "an answer took {took:?}: {sent:?}");
        match &sent.answer {
            Some((StatusCode::OK, json)) => {
                assert!(
                    json["status"] == "stored" || json["status"] == "duplicate",
                    "{json}"
                );
            }
            Some((StatusCode::SERVICE_UNAVAILABLE, json)) => {
                assert_eq!(json["reason"], "not_stored", "{json}");
            }
            other => panic!("neither a 200 nor a 503: {other:?} for {sent:?}"),
        }
    }
    // Sent and answered while the database was down: 503, never 200.
    let while_down: Vec<&Sent> = sends
        .iter()
        .filter(|sent| sent.sent >= down_from && sent.answered <= down_until)
        .collect();
    assert!(
        while_down.len() >= 10,
        "only {} deliveries were sent and answered while the database was down",
        while_down.len()
    );
    for sent in &while_down {
        assert_eq!(
            sent.answer.as_ref().map(|(status, _)| *status),
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "answered while the database was down: {sent:?}"
        );
    }
    // Every acknowledged webhook is one row, under the id its 200 named.
    let mut acknowledged: HashMap<(usize, i64), HashSet<i64>> = HashMap::new();
    for sent in &sends {
        if let Some((StatusCode::OK, json)) = &sent.answer {
            let id = json["id"].as_i64().expect("a 200 names its row");
            acknowledged
                .entry((sent.shipment, sent.step))
                .or_default()
                .insert(id);
        }
    }
    for (webhook, ids) in &acknowledged {
        assert_eq!(
            ids.len(),
            1,
            "{webhook:?} acknowledged as several rows: {ids:?}"
        );
        let id = ids.iter().next().unwrap();
        assert!(
            rows.contains_key(id),
            "{webhook:?} acknowledged as row {id}, not in the database"
        );
    }
    assert_eq!(
        rows.len(),
        acknowledged.len() + 1,
        "one row per acknowledged webhook (and the straddler's), none other"
    );
    // Each row handled: done, its last attempt one the handler saw; after a
    // fast stop, which loses no commit, no attempt handed out twice.
    let strict = shutdown == Shutdown::Fast;
    let mut attempts: HashMap<i64, Vec<u32>> = HashMap::new();
    for delivery in &handled {
        attempts
            .entry(delivery.id)
            .or_default()
            .push(delivery.attempt);
    }
    for (id, (state, last)) in &rows {
        assert_eq!(state, "done", "row {id}");
        let mut logged = attempts.get(id).cloned().unwrap_or_default();
        logged.sort_unstable();
        let count = logged.len();
        logged.dedup();
        assert!(
            logged.len() == count || !strict,
            "row {id}: an attempt handed out twice: {logged:?}"
        );
        assert_eq!(
            logged.last().map(|&attempt| i64::from(attempt)),
            Some(*last),
            "row {id}: its last attempt is one the handler saw"
        );
    }
    // Each shipment's webhooks handled in order, across a fast restart too.
    let mut last_of: HashMap<&str, i64> = HashMap::new();
    for delivery in handled.iter().filter(|_| strict) {
        let last = last_of.entry(&delivery.shipment).or_default();
        assert!(
            delivery.id >= *last,
            "{}: row {} handled after row {last}",
            delivery.shipment,
            delivery.id
        );
        *last = delivery.id;
    }
    let refused = sends.len()
        - sends
            .iter()
            .filter(|s| matches!(s.answer, Some((StatusCode::OK, _))))
            .count();
    let again = attempts.values().filter(|logged| logged.len() > 1).count();
    let receiver_back = sends
        .iter()
        .filter(|sent| sent.answered >= up_from && matches!(sent.answer, Some((StatusCode::OK, _))))
        .map(|sent| sent.answered - up_from)
        .min();
    let straddled: Vec<u32> = handled
        .iter()
        .filter(|delivery| delivery.shipment == "RESTART-STRADDLE")
        .map(|delivery| delivery.attempt)
        .collect();
    eprintln!(
        "{shutdown:?} restart mid-load: {} deliveries, {refused} answered 503 ({} while down), {} webhooks, \
         {again} handled again (the straddler's attempts: {straddled:?}); once the server was \
         up, the first 200 after {receiver_back:?}, the worker handling again after \
         {worker_back:?}; {:?}",
        sends.len(),
        while_down.len(),
        rows.len(),
        started.elapsed()
    );
}
