//! The `shipment-webhooks` command line, run as a user runs it: the built
//! binary against real SQLite files (and PostgreSQL where
//! `SHIPMENT_WEBHOOKS_TEST_POSTGRES` is set), its stdout, stderr and exit code.

#[path = "common/mod.rs"]
mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "inbox/harness.rs"]
mod harness;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use shipment_webhooks::inbox::sqlx::{self, Connection as _};
use shipment_webhooks::inbox::{Delivery, Inbox};

use crate::common::send;
use crate::harness::*;

const BIN: &str = env!("CARGO_BIN_EXE_shipment-webhooks");

/// Runs the binary on database `db` with `args`.
fn cli(db: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("SHIPMENT_WEBHOOKS_DB")
        .output()
        .expect("the binary runs")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// Fails with a message on stderr, nothing on stdout, and no panic.
#[track_caller]
fn refused(output: &Output, says: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "succeeded: {stderr}");
    assert_ne!(output.status.code(), Some(101), "panicked: {stderr}");
    assert!(stderr.contains(says), "{says:?} not in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty());
}

/// An inbox at `db` with `count` webhooks that failed every attempt.
async fn dead_inbox(inbox: &Inbox, count: u64) {
    let app = app(inbox);
    for n in 0..count {
        let answer = send(
            &app,
            kosmo(&format!("SG-C{n}"), "DELIVERED", at(0)).sign(KOSMO),
        )
        .await;
        assert_eq!(answer.json["status"], "stored");
    }
    let worker = inbox
        .worker(|delivery: Delivery| async move {
            Err(format!("carrier API down for {}", delivery.event().id).into())
        })
        .max_attempts(2)
        .concurrency(16)
        .poll_interval(Duration::from_millis(10))
        .backoff(Duration::from_millis(5), Duration::from_millis(10))
        .spawn();
    wait_for(inbox, |stats| stats.dead == count).await;
    worker.shutdown().await;
}

async fn fifty_dead_found_shown_and_replayed(db: &str, inbox: &Inbox) {
    dead_inbox(inbox, 50).await;
    let db = db.to_owned();
    let started = Instant::now();
    let stats = stdout_json(&cli(&db, &["--json", "inbox", "stats"]));
    assert_eq!(stats["dead"], 50);

    let page = stdout_json(&cli(
        &db,
        &[
            "inbox", "list", "--state", "dead", "--limit", "30", "--json",
        ],
    ));
    assert_eq!(page["webhooks"].as_array().expect("a list").len(), 30);
    let next = page["next"].as_i64().expect("a next page");
    let rest = stdout_json(&cli(
        &db,
        &[
            "inbox",
            "list",
            "--state",
            "dead",
            "--after",
            &next.to_string(),
            "--json",
        ],
    ));
    assert_eq!(rest["webhooks"].as_array().expect("a list").len(), 20);
    assert_eq!(rest["next"], Value::Null);

    let id = page["webhooks"][0]["id"].as_i64().expect("an id");
    let shown = stdout_json(&cli(&db, &["inbox", "show", &id.to_string(), "--json"]));
    assert_eq!(shown["state"], "dead");
    assert_eq!(shown["body"]["orderId"], "SG-C0");
    assert_eq!(shown["dedup_key"].as_str().expect("hex").len(), 64);
    let history = shown["history"].as_array().expect("attempts");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["outcome"], "dead");
    assert_eq!(history[1]["error"], "carrier API down for SG-C0");

    // The human table says the same.
    let table = cli(&db, &["inbox", "show", &id.to_string()]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("carrier API down for SG-C0"), "{table}");
    assert!(table.contains("\"orderId\": \"SG-C0\""), "{table}");

    let replayed = stdout_json(&cli(&db, &["inbox", "replay", "--dead", "--json"]));
    assert_eq!(replayed["replayed"], 50);
    assert!(started.elapsed() < Duration::from_secs(60));
    let stats = inbox.stats().await.expect("counts");
    assert_eq!((stats.dead, stats.pending), (0, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fifty_dead_webhooks_found_shown_and_replayed() {
    let path = sqlite_path("cli-fifty");
    let inbox = Inbox::sqlite(&path).await.expect("a SQLite inbox");
    fifty_dead_found_shown_and_replayed(&path.display().to_string(), &inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_fifty_dead_webhooks_found_shown_and_replayed() {
    let Some((db, pool)) = postgres_db("cli").await else {
        return;
    };
    let inbox = Inbox::postgres_pool(pool)
        .await
        .expect("a PostgreSQL inbox");
    fifty_dead_found_shown_and_replayed(&db, &inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_discard_and_list_by_id_and_filter() {
    let path = sqlite_path("cli-ids");
    let inbox = Inbox::sqlite(&path).await.expect("a SQLite inbox");
    dead_inbox(&inbox, 3).await;
    let db = path.display().to_string();
    let replayed = cli(&db, &["inbox", "replay", "1", "2"]);
    assert!(replayed.status.success());
    assert_eq!(
        String::from_utf8_lossy(&replayed.stdout),
        "replayed 2 dead webhook(s)\n"
    );
    let listed = stdout_json(&cli(
        &db,
        &["inbox", "list", "--shipment", "SG-C2", "--json"],
    ));
    assert_eq!(listed["webhooks"][0]["state"], "dead");
    // Webhook 1 is pending already: skipped without a word, 3 replayed.
    let again = cli(&db, &["inbox", "replay", "1", "3"]);
    assert!(again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "replayed 1 dead webhook(s)\n"
    );
    assert!(again.stderr.is_empty());
    let discarded = cli(&db, &["inbox", "discard", "3"]);
    assert!(discarded.status.success());
    refused(
        &cli(&db, &["inbox", "discard", "3"]),
        "no webhook with id 3",
    );
    let table = cli(&db, &["inbox", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("pending"), "{table}");
    assert!(table.contains("2 shown"), "{table}");
    let purged = stdout_json(&cli(&db, &["inbox", "purge", "--json"]));
    assert_eq!(purged["purged"], 0);
    // Handled: a replay of it is said on stderr, and changes nothing.
    let (worker, _record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 2).await;
    worker.shutdown().await;
    let done = cli(&db, &["inbox", "replay", "1"]);
    assert!(done.status.success());
    assert_eq!(
        String::from_utf8_lossy(&done.stdout),
        "replayed 0 dead webhook(s)\n"
    );
    let said = String::from_utf8_lossy(&done.stderr);
    assert!(said.contains("webhook 1 is done, not dead"), "{said}");
    assert_eq!(inbox.stats().await.expect("counts").done, 2);
}

#[test]
fn missing_file_is_refused_and_not_created() {
    let path = sqlite_path("cli-missing");
    refused(
        &cli(&path.display().to_string(), &["inbox", "stats"]),
        "does not exist",
    );
    assert!(!path.exists(), "the command line created a file");
}

#[test]
fn a_file_that_is_not_an_inbox_is_refused_untouched() {
    let path = sqlite_path("cli-other");
    std::fs::write(&path, b"not a database").expect("a file");
    let db = path.display().to_string();
    refused(&cli(&db, &["inbox", "stats"]), "cannot open the inbox");
    assert_eq!(std::fs::read(&path).expect("kept"), b"not a database");
    let empty = sqlite_path("cli-empty");
    std::fs::write(&empty, b"").expect("an empty file");
    refused(
        &cli(&empty.display().to_string(), &["inbox", "list"]),
        "is not a shipment-webhooks inbox",
    );
    assert_eq!(std::fs::metadata(&empty).expect("kept").len(), 0);
}

#[test]
fn postgres_out_of_reach_is_refused_without_its_password() {
    let started = Instant::now();
    let output = cli(
        "postgres://someone:hunter2@127.0.0.1:1/inbox",
        &["inbox", "stats"],
    );
    refused(
        &output,
        "cannot open the inbox at postgres://someone:***@127.0.0.1:1/inbox",
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("hunter2"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn no_database_given_is_refused() {
    let output = Command::new(BIN)
        .args(["inbox", "stats"])
        .env_remove("SHIPMENT_WEBHOOKS_DB")
        .output()
        .expect("the binary runs");
    refused(&output, "SHIPMENT_WEBHOOKS_DB");
}

#[tokio::test]
async fn database_from_the_environment() {
    let path = sqlite_path("cli-env");
    drop(Inbox::sqlite(&path).await.expect("a SQLite inbox"));
    let output = Command::new(BIN)
        .args(["inbox", "stats", "--json"])
        .env("SHIPMENT_WEBHOOKS_DB", &path)
        .output()
        .expect("the binary runs");
    assert_eq!(stdout_json(&output)["pending"], 0);
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let path = sqlite_path("cli-newer");
    drop(Inbox::sqlite(&path).await.expect("a SQLite inbox"));
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("the file");
    sqlx::query("INSERT INTO webhook_inbox_schema (version) VALUES (99)")
        .execute(&pool)
        .await
        .expect("a newer version");
    pool.close().await;
    refused(
        &cli(&path.display().to_string(), &["inbox", "stats"]),
        "schema version 99",
    );
}

#[tokio::test]
async fn locked_database_is_refused() {
    let path = sqlite_path("cli-locked");
    drop(Inbox::sqlite(&path).await.expect("a SQLite inbox"));
    let mut lock = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("the file");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .expect("locked");
    let db = path.display().to_string();
    let output = tokio::task::spawn_blocking(move || cli(&db, &["inbox", "stats"]))
        .await
        .expect("the binary ran");
    refused(&output, "locked");
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("unlocked");
}

#[tokio::test]
async fn unknown_ids_are_refused() {
    let path = sqlite_path("cli-unknown");
    drop(Inbox::sqlite(&path).await.expect("a SQLite inbox"));
    unknown_ids_refused(&path.display().to_string());
}

#[tokio::test]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_unknown_ids_and_a_newer_schema_are_refused() {
    let Some((db, pool)) = postgres_db("cli_unknown").await else {
        return;
    };
    drop(Inbox::postgres_pool(pool.clone()).await.expect("an inbox"));
    let checked = db.clone();
    tokio::task::spawn_blocking(move || unknown_ids_refused(&checked))
        .await
        .expect("ran");
    sqlx::query("INSERT INTO webhook_inbox_schema (version) VALUES (99)")
        .execute(&pool)
        .await
        .expect("a newer version");
    let output = tokio::task::spawn_blocking(move || cli(&db, &["inbox", "stats"]))
        .await
        .expect("ran");
    refused(&output, "schema version 99");
}

/// A URL the binary reaches a fresh schema of the test database by, and a
/// pool on it.
async fn postgres_db(name: &str) -> Option<(String, sqlx::PgPool)> {
    let url = postgres_url()?;
    let schema = postgres_schema(&url, name).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(in_schema(&url, &schema))
        .await
        .expect("a pool on the test schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    Some((
        format!("{url}{separator}options=-c%20search_path%3D{schema}"),
        pool,
    ))
}

fn unknown_ids_refused(db: &str) {
    refused(&cli(db, &["inbox", "show", "42"]), "no webhook with id 42");
    refused(
        &cli(db, &["inbox", "replay", "42"]),
        "no webhook with id 42",
    );
    refused(
        &cli(db, &["inbox", "discard", "42"]),
        "no webhook with id 42",
    );
    refused(&cli(db, &["inbox", "show", "forty-two"]), "invalid value");
}

#[tokio::test]
async fn bad_filters_are_refused() {
    let path = sqlite_path("cli-filters");
    drop(Inbox::sqlite(&path).await.expect("a SQLite inbox"));
    let db = path.display().to_string();
    refused(
        &cli(&db, &["inbox", "list", "--state", "bogus"]),
        "unknown state",
    );
    refused(
        &cli(&db, &["inbox", "list", "--provider", "nobody"]),
        "--provider",
    );
    refused(
        &cli(&db, &["inbox", "list", "--from", "yesterday"]),
        "RFC 3339",
    );
    refused(&cli(&db, &["inbox", "list", "--limit", "0"]), "--limit");
    refused(&cli(&db, &["inbox", "replay"]), "<IDS>");
}

/// `--shipment` finds an id in any scope (a Shipmondo order and shipment
/// numbered alike), and `order:ID` the order only; `replay --dead` takes the
/// same filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipment_filter_finds_an_id_in_any_scope_or_one_by_prefix() {
    let path = sqlite_path("cli-scoped");
    let inbox = Inbox::sqlite(&path).await.expect("a SQLite inbox");
    let app = app(&inbox);
    for webhook in [
        shipment_webhooks::testing::Webhook::shipmondo_order("sent").field("/data/id", 4711),
        shipment_webhooks::testing::Webhook::shipmondo_shipment("create").field("/data/id", 4711),
    ] {
        assert_eq!(
            send(&app, webhook.sign(SHIPMONDO)).await.json["status"],
            "stored"
        );
    }
    let db = path.display().to_string();
    let listed = |shipment: &str| {
        stdout_json(&cli(
            &db,
            &["inbox", "list", "--shipment", shipment, "--json"],
        ))["webhooks"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|webhook| webhook["status"].as_str().expect("a status").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(listed("4711").len(), 2);
    assert_eq!(listed("order:4711"), ["in_transit"], "the order, sent");
    assert!(listed("order:4712").is_empty());
    let table = cli(&db, &["inbox", "list", "--shipment", "order:4711"]);
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("1 shown"));
}

/// The database goes away mid-command: `replay --dead` has opened the inbox
/// and waits on a table another transaction holds when the server ends its
/// connection (`pg_terminate_backend`, what a server shutting down does to
/// it). One line on stderr, a non-zero exit, no panic, no row changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_database_gone_mid_command_is_refused_and_changes_nothing() {
    let Some((db, pool)) = postgres_db("cli_gone").await else {
        return;
    };
    let inbox = Inbox::postgres_pool(pool.clone())
        .await
        .expect("a PostgreSQL inbox");
    dead_inbox(&inbox, 2).await;
    let mut held = pool.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE webhook_inbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *held)
        .await
        .expect("the table held");
    let command = tokio::task::spawn_blocking(move || cli(&db, &["inbox", "replay", "--dead"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE 'UPDATE webhook_inbox SET state = ''pending''%'",
        )
        .fetch_all(&pool)
        .await
        .expect("the server's activity");
        if !waiting.is_empty() {
            for pid in waiting {
                sqlx::query("SELECT pg_terminate_backend($1)")
                    .bind(pid)
                    .execute(&pool)
                    .await
                    .expect("its connection ended");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the command never reached its query"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let output = command.await.expect("the binary ran");
    refused(&output, "database unavailable");
    refused(
        &output,
        "stopped answering during the command: run it again",
    );
    held.rollback().await.expect("released");
    let stats = inbox.stats().await.expect("counts");
    assert_eq!((stats.dead, stats.pending), (2, 0), "no row changed");
}
