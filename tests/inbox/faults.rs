//! Faults and odd input every store must survive: a panicking handler, a
//! backoff past 32 doublings, odd shipment ids, reshaped envelopes, bursts,
//! two instances on one file, a stalled instance, a row edited by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use shipment_webhooks::inbox::{Delivery, Inbox, InboxError};
use shipment_webhooks::testing::Webhook;

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
            async { Ok::<(), String>(()) }
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
            async { Err::<(), _>("downstream down") }
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

/// A pool of one connection, which LISTEN would hold while receivers and
/// claims wait for it, is refused at open; two or three work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
async fn postgres_instance_stalled_mid_claim_does_not_wedge_others() {
    use sqlx::Connection;
    let Some(url) = postgres_url() else { return };
    let schema = postgres_schema(&url, "stalled").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(in_schema(&url, &schema))
        .await
        .unwrap();
    let inbox = Inbox::postgres_pool(pool).await.unwrap();
    let app = app(&inbox);
    let mut other = sqlx::PgConnection::connect_with(&in_schema(&url, &schema))
        .await
        .unwrap();
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
