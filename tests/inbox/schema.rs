//! Databases written by an older version of this crate: opened, migrated,
//! and every row kept. The fixtures in `tests/fixtures` were written by
//! shipment-webhooks at schema 1 (before provider headers were stored
//! generically): three webhooks handled, one dead, five pending (one older
//! than a handled event of its shipment), one retried delivery dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use shipment_webhooks::inbox::sqlx;
use shipment_webhooks::inbox::{Delivery, Inbox, InboxError, InboxStats};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{Provider, ShipmondoEvent};

use crate::common::send;
use crate::harness::*;

const SQLITE_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/inbox-schema-1.db"
);
const POSTGRES_FIXTURE: &str = include_str!("../fixtures/inbox-schema-1.sql");

/// What the schema-1 fixtures hold.
fn stored() -> InboxStats {
    let mut stats = InboxStats::default();
    stats.pending = 5;
    stats.done = 3;
    stats.dead = 1;
    stats.duplicates = 1;
    stats
}

/// A copy of the SQLite fixture, to migrate.
fn sqlite_copy(name: &str) -> std::path::PathBuf {
    let path = sqlite_path(name);
    std::fs::copy(SQLITE_FIXTURE, &path).expect("a copy of the schema-1 fixture");
    path
}

/// The PostgreSQL fixture loaded in a schema of its own: connections to it.
async fn postgres_copy(name: &str) -> Option<sqlx::PgPool> {
    let url = postgres_url()?;
    let schema = postgres_schema(&url, name).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(in_schema(&url, &schema))
        .await
        .expect("a pool on the test schema");
    sqlx::raw_sql(POSTGRES_FIXTURE)
        .execute(&pool)
        .await
        .expect("the schema-1 fixture loads");
    Some(pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_written_at_schema_1_opens_and_keeps_every_row() {
    let path = sqlite_copy("schema1");
    let inbox = Inbox::sqlite(&path).await.expect("the old file opens");
    keeps_every_row(&inbox).await;
    drop(inbox);
    // The shipment index the old version made is replaced, not kept beside.
    let file = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("the file opens from outside");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'webhook_inbox_%ship%'",
    )
    .fetch_all(&file)
    .await
    .expect("the index names");
    assert_eq!(indexes, ["webhook_inbox_by_shipment"]);
    file.close().await;
    // Migrated once: it opens again as it is.
    let again = Inbox::sqlite(&path).await.expect("the migrated file opens");
    let stats = again.stats().await.expect("counts");
    assert_eq!((stats.done, stats.superseded), (7, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_schema_written_at_schema_1_opens_and_keeps_every_row() {
    let Some(pool) = postgres_copy("schema1").await else {
        return;
    };
    let inbox = Inbox::postgres_pool(pool.clone())
        .await
        .expect("the old schema opens");
    keeps_every_row(&inbox).await;
    let again = Inbox::postgres_pool(pool)
        .await
        .expect("the migrated schema opens");
    let stats = again.stats().await.expect("counts");
    assert_eq!((stats.done, stats.superseded), (7, 1));
}

#[tokio::test]
async fn sqlite_file_of_a_newer_schema_is_refused_untouched() {
    let path = sqlite_copy("newer");
    let url = format!("sqlite://{}", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("the copy");
    sqlx::query(MAKE_NEWER)
        .execute(&pool)
        .await
        .expect("a newer version");
    let refused = Inbox::sqlite(&path).await.expect_err("a newer schema");
    assert_newer_refused(&refused);
    let headers: String = sqlx::query_scalar(HEADERS_OF_ROW_8)
        .fetch_one(&pool)
        .await
        .expect("row 8");
    assert!(headers.contains("\"resource_type\""), "migrated: {headers}");
}

#[tokio::test]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_schema_of_a_newer_version_is_refused_untouched() {
    let Some(pool) = postgres_copy("newer").await else {
        return;
    };
    sqlx::query(MAKE_NEWER)
        .execute(&pool)
        .await
        .expect("a newer version");
    let refused = Inbox::postgres_pool(pool.clone())
        .await
        .expect_err("a newer schema");
    assert_newer_refused(&refused);
    let headers: String = sqlx::query_scalar(HEADERS_OF_ROW_8)
        .fetch_one(&pool)
        .await
        .expect("row 8");
    assert!(headers.contains("\"resource_type\""), "migrated: {headers}");
}

/// In a rolling deploy, an instance of the previous version still running
/// after the migration stores its rows' headers in schema 1's shape: they
/// are read as stored, not lost, and the row is not dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_an_old_instance_stores_after_the_migration_are_read() {
    let path = sqlite_copy("rolling");
    let url = format!("sqlite://{}", path.display());
    let raw = sqlx::SqlitePool::connect(&url).await.expect("the copy");
    let old: String = sqlx::query_scalar(HEADERS_OF_ROW_9)
        .fetch_one(&raw)
        .await
        .expect("row 9");
    assert!(old.contains("\"resource_type\""), "{old}");
    let inbox = Inbox::sqlite(&path).await.expect("migrated");
    let migrated: String = sqlx::query_scalar(HEADERS_OF_ROW_9)
        .fetch_one(&raw)
        .await
        .expect("row 9");
    assert!(migrated.contains("\"smd-resource-type\""), "{migrated}");
    // The old instance writes row 9 again, in its own shape.
    sqlx::query("UPDATE webhook_inbox SET provider_headers = $1 WHERE id = 9")
        .bind(&old)
        .execute(&raw)
        .await
        .expect("an old instance's write");
    let seen = handle_all(&inbox).await;
    let row_9 = seen
        .iter()
        .find(|seen| seen.id == 9)
        .expect("row 9 handled");
    assert_eq!(row_9.resource_type.as_deref(), Some("Shipment Monitor"));
    assert_eq!(row_9.action.as_deref(), Some("latest"));
    assert_eq!(inbox.stats().await.expect("counts").dead, 1);
}

/// Marks the fixture as laid out by a version newer than this one.
const MAKE_NEWER: &str = "INSERT INTO webhook_inbox_schema (version) VALUES (99)";
/// A Shipmondo row's headers, in schema 1's shape until migrated.
const HEADERS_OF_ROW_8: &str = "SELECT provider_headers FROM webhook_inbox WHERE id = 8";
/// Another's: a Shipment Monitor's.
const HEADERS_OF_ROW_9: &str = "SELECT provider_headers FROM webhook_inbox WHERE id = 9";

#[track_caller]
fn assert_newer_refused(refused: &InboxError) {
    assert!(
        matches!(
            refused,
            InboxError::NewerSchema {
                found: 99,
                known: 5
            }
        ),
        "{refused:?}"
    );
    assert!(!refused.is_transient());
    assert!(
        refused.to_string().contains("schema version 99"),
        "{refused}"
    );
}

/// What a handler saw of a delivery from the fixture.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: i64,
    provider: Provider,
    tenant: Option<String>,
    resource_type: Option<String>,
    action: Option<String>,
}

/// The fixture's rows are all there, its dead row listed, its dedup keys
/// still drop a retry, and its pending rows are handled (the older one
/// superseded) with the headers they were stored with.
async fn keeps_every_row(inbox: &Inbox) {
    assert_eq!(inbox.stats().await.expect("counts"), stored());
    let dead = inbox.dead(10).await.expect("the dead rows");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, 5);
    assert_eq!(dead[0].event.provider, Provider::GoShiip);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("boom: the handler failed")
    );

    // The first webhook the old version stored, sent again.
    let retry = Webhook::kosmo("ASSIGNED")
        .field("/eventId", "11111111-0000-4000-8000-000000000001")
        .field("/orderId", "SG-1")
        .at(at(0));
    let answer = send(&app(inbox), retry.sign(KOSMO)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["status"], "duplicate", "{}", answer.json);
    assert_eq!(answer.json["id"], 1);

    // Schema 5's history: none kept before it, every attempt after.
    let dead_row = inbox.get(5).await.expect("row 5").expect("kept");
    assert!(dead_row.history.is_empty());
    assert_eq!(dead_row.summary.attempts, dead[0].attempts);

    let seen = handle_all(inbox).await;
    let stats = inbox.stats().await.expect("counts");
    assert_eq!((stats.done, stats.superseded, stats.dead), (7, 1, 1));
    let handled = inbox.get(6).await.expect("row 6").expect("kept");
    let outcomes: Vec<_> = handled.history.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [shipment_webhooks::inbox::AttemptOutcome::Handled]
    );
    let shipmondo = |id, resource_type: &str, action: &str| Seen {
        id,
        provider: Provider::Shipmondo,
        tenant: None,
        resource_type: Some(resource_type.to_owned()),
        action: Some(action.to_owned()),
    };
    assert_eq!(
        seen,
        [
            Seen {
                id: 6,
                provider: Provider::Kosmo,
                tenant: None,
                resource_type: None,
                action: None,
            },
            shipmondo(8, "Shipments", "create"),
            shipmondo(9, "Shipment Monitor", "latest"),
            Seen {
                id: 10,
                provider: Provider::Kosmo,
                tenant: Some("shop-a".to_owned()),
                resource_type: None,
                action: None,
            },
        ]
    );
}

/// Runs a worker until nothing is left to do; what it saw, by row id.
async fn handle_all(inbox: &Inbox) -> Vec<Seen> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let worker = inbox
        .worker(move |delivery: Delivery| {
            let headers = delivery
                .payload::<ShipmondoEvent>()
                .map(|payload| payload.headers)
                .ok();
            record.lock().expect("the record").push(Seen {
                id: delivery.id(),
                provider: delivery.event().provider,
                tenant: delivery.webhook().secret().tenant().map(str::to_owned),
                resource_type: headers.as_ref().and_then(|h| h.resource_type.clone()),
                action: headers.and_then(|h| h.action),
            });
            async { Ok(()) }
        })
        .poll_interval(Duration::from_millis(20))
        .spawn();
    wait_for(inbox, settled).await;
    worker.shutdown().await;
    let mut seen = seen.lock().expect("the record").clone();
    seen.sort_by_key(|seen| seen.id);
    seen
}

/// Turns a current database back into schema 4's: no attempts table.
const MAKE_SCHEMA_4: [&str; 3] = [
    "DROP TABLE webhook_inbox_attempts",
    "DELETE FROM webhook_inbox_schema",
    "INSERT INTO webhook_inbox_schema (version) VALUES (4)",
];

/// A dead webhook in an inbox at schema 4 is kept through the migration to
/// 5, and its next attempts are recorded.
async fn schema_4_migrates_and_records_attempts(inbox: Inbox, reopen: impl AsyncFnOnce() -> Inbox) {
    let app = app(&inbox);
    send(&app, kosmo("SG-4", "DELIVERED", at(0)).sign(KOSMO)).await;
    let worker = inbox
        .worker(|_: Delivery| async { Err("down".into()) })
        .max_attempts(1)
        .poll_interval(Duration::from_millis(10))
        .spawn();
    wait_for(&inbox, |stats| stats.dead == 1).await;
    worker.shutdown().await;
    drop(inbox);
    let inbox = reopen().await;
    let dead = inbox.dead(10).await.expect("the dead row");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].history.is_empty(), "none kept before schema 5");
    assert_eq!(inbox.replay_many(&[dead[0].id]).await.expect("replayed"), 1);
    handle_all(&inbox).await;
    let detail = inbox.get(dead[0].id).await.expect("read").expect("kept");
    let outcomes: Vec<_> = detail.history.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [shipment_webhooks::inbox::AttemptOutcome::Handled]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_written_at_schema_4_migrates_to_5() {
    let path = sqlite_path("schema4");
    let inbox = Inbox::sqlite(&path).await.expect("a SQLite inbox");
    let url = format!("sqlite://{}", path.display());
    schema_4_migrates_and_records_attempts(inbox, async || {
        let raw = sqlx::SqlitePool::connect(&url).await.expect("the file");
        for statement in MAKE_SCHEMA_4 {
            sqlx::query(statement)
                .execute(&raw)
                .await
                .expect("schema 4");
        }
        raw.close().await;
        Inbox::sqlite(&path).await.expect("the schema-4 file opens")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_schema_written_at_schema_4_migrates_to_5() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = postgres_schema(&url, "schema4").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(in_schema(&url, &schema))
        .await
        .expect("a pool on the test schema");
    let inbox = Inbox::postgres_pool(pool.clone())
        .await
        .expect("a PostgreSQL inbox");
    schema_4_migrates_and_records_attempts(inbox, async || {
        for statement in MAKE_SCHEMA_4 {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .expect("schema 4");
        }
        Inbox::postgres_pool(pool.clone())
            .await
            .expect("the schema-4 schema opens")
    })
    .await;
}
