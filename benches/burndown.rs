//! The inbox burning down a preloaded backlog (issue 21): how fast its
//! worker hands out and records 20,000 stored webhooks, and whether it hands
//! each shipment's events out in order. `benches/burndown.sh` runs it round
//! by round against graphile-worker on the same PostgreSQL cluster
//! (`benches/peers/graphile-burndown.js`); run alone, it measures the inbox:
//!
//! ```sh
//! cargo bench -p shipment-webhooks-benches --bench burndown    # SQLite
//! .ci/with-postgres cargo bench -p shipment-webhooks-benches --bench burndown    # and PostgreSQL
//! bash benches/burndown.sh                          # both, and graphile-worker
//! ```
//!
//! Each run fills a fresh inbox (a new SQLite file under the target
//! directory, a new PostgreSQL schema) with distinct Kosmo webhooks, four per
//! shipment (`ASSIGNED`, `PICKED UP`, `OUT FOR DELIVERY`, `DELIVERED`) with
//! increasing signed times, as a provider sends them: each is signed with the
//! `testing` signer, verified by `KosmoSignature::verify` and stored with
//! `Inbox::receive`, 32 shipments at a time, each shipment's four in order
//! (the inbox hands a shipment's webhooks out in the order it stored them).
//! That preload is not timed. The preloading inbox is then closed and a
//! fresh one opened on the same store (as after a restart; on PostgreSQL its
//! backends thereby report their statistics before the drain starts), and a
//! worker is spawned on it (poll interval 50 ms, the default lease) with a
//! handler that does nothing but record the shipment and signed time of each
//! webhook, yield once to the runtime (so that another call about the same
//! shipment, were one handed out meanwhile, would be seen running beside
//! it; any handler doing I/O yields), and return `Ok`. The time is counted from the spawn until
//! `Inbox::stats()` says every webhook is done (or superseded, or dead):
//! while the handler has not yet been called for all of them, the stats
//! are read every 250 ms only (the handler's count is checked every 1 ms), so
//! that the polling adds little load; after that, every 10 ms.
//!
//! It then checks the order: each shipment's four events handled exactly
//! once each, one at a time (no call beginning while another of its shipment
//! runs: `overlaps` counts those), their signed times strictly increasing. A
//! shipment where that fails is a violation (in a run given up, a shipment
//! whose events were handled in order so far is only unfinished); the bench
//! exits with 1 after its report if any run had one, or gave up (timeout).
//!
//! On PostgreSQL it also reports, over the drain, the transactions committed
//! in the database per webhook (`pg_stat_database.xact_commit`, less the
//! stats polls), the rows updated in `webhook_inbox` and the rows written in
//! the run's schema per webhook (`pg_stat_user_tables`), and, where the
//! `pg_stat_statements` extension is installed in the database (the shell
//! script sets it up), the statements executed per webhook (`BEGIN` and
//! `COMMIT` included; the stats polls excluded) and the most frequent ones.
//!
//! Each run prints one JSON line on stdout; a Markdown summary follows.
//!
//! Settings, by environment variable:
//!
//! - `BURNDOWN`: the runs, comma-separated `backend@concurrency`, a backend
//!   being `postgres`, `sqlite-full` or `sqlite-normal` (default
//!   `postgres@4,postgres@16,postgres@64,sqlite-full@4,sqlite-full@16,sqlite-full@64`);
//!   `postgres` runs only when `SHIPMENT_WEBHOOKS_TEST_POSTGRES` holds a URL;
//! - `BURNDOWN_ROUNDS`: rounds (3); each round runs every configuration once,
//!   in reverse order every other round;
//! - `BURNDOWN_FIRST_ROUND`: the number of the first round, for the JSON
//!   lines (1);
//! - `BURNDOWN_WEBHOOKS`: webhooks per run (20,000), rounded up to a multiple
//!   of 4;
//! - `BURNDOWN_BATCH`: the worker's batch size, the most webhooks one claim
//!   takes (its default, 256);
//! - `BURNDOWN_POOL`: PostgreSQL connections in the pool (32);
//! - `BURNDOWN_PRELOAD_CONCURRENCY`: shipments stored at once (32);
//! - `BURNDOWN_TIMEOUT_SECS`: the longest preload, and the longest drain,
//!   before the run is given up and reported as a timeout (120);
//! - `BURNDOWN_HANDLER`: what the handler does after recording: `yield`
//!   once (the default), `return` at once (a call then never runs beside
//!   another, so overlaps go unseen), or sleep a number of milliseconds, to
//!   see the order kept under handlers that take time.

#[path = "common/env.rs"]
mod env;
use env::env_or;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use http_body_util::BodyExt;
use hyper::HeaderMap;
use serde_json::{Value, json};
use shipment_webhooks::KosmoSignature;
use shipment_webhooks::bytes::Bytes;
use shipment_webhooks::inbox::{Delivery, Inbox, InboxStats, SqliteSync};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::time::OffsetDateTime;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::time::Instant;

const KOSMO: &str = "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm";
const ENDPOINT: &str = "/webhooks/kosmo";
/// A shipment's events, in the order they happen.
const STATUSES: [&str; 4] = ["ASSIGNED", "PICKED UP", "OUT FOR DELIVERY", "DELIVERED"];
const EVENTS_PER_SHIPMENT: usize = STATUSES.len();
/// The worker's poll interval, as the issue's runs set it.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often the stats are read once the handler has seen every webhook.
const STATS_EVERY_AT_END: Duration = Duration::from_millis(10);
/// How often the stats are read before that (superseded or dead webhooks
/// never reach the handler).
const STATS_EVERY: Duration = Duration::from_millis(250);
/// How many of the most frequent statements a PostgreSQL run reports.
const TOP_STATEMENTS: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    Sqlite(SqliteSync),
}

impl Backend {
    fn system(self) -> &'static str {
        match self {
            Self::Postgres => "inbox-postgres",
            Self::Sqlite(SqliteSync::Normal) => "inbox-sqlite-normal",
            Self::Sqlite(_) => "inbox-sqlite-full",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Config {
    backend: Backend,
    concurrency: usize,
}

struct Settings {
    configs: Vec<Config>,
    rounds: usize,
    first_round: usize,
    webhooks: usize,
    batch: Option<usize>,
    pool: u32,
    preload_concurrency: usize,
    timeout: Duration,
    handler: Handler,
    postgres: Option<String>,
}

impl Settings {
    fn shipments(&self) -> usize {
        self.webhooks / EVENTS_PER_SHIPMENT
    }
}

fn settings() -> Settings {
    let list = std::env::var("BURNDOWN").unwrap_or_else(|_| {
        "postgres@4,postgres@16,postgres@64,sqlite-full@4,sqlite-full@16,sqlite-full@64".into()
    });
    let configs = list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (backend, concurrency) = item
                .split_once('@')
                .unwrap_or_else(|| panic!("{item:?} is not backend@concurrency"));
            let backend = match backend {
                "postgres" => Backend::Postgres,
                "sqlite-full" | "sqlite" => Backend::Sqlite(SqliteSync::Full),
                "sqlite-normal" => Backend::Sqlite(SqliteSync::Normal),
                other => panic!("unknown backend {other:?}"),
            };
            let concurrency = concurrency
                .parse()
                .ok()
                .filter(|&concurrency| concurrency > 0)
                .unwrap_or_else(|| panic!("{item:?}: the concurrency is not a positive integer"));
            Config {
                backend,
                concurrency,
            }
        })
        .collect();
    let postgres = std::env::var("SHIPMENT_WEBHOOKS_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty());
    let webhooks = env_or("BURNDOWN_WEBHOOKS", 20_000usize)
        .max(1)
        .next_multiple_of(EVENTS_PER_SHIPMENT);
    Settings {
        configs,
        rounds: env_or("BURNDOWN_ROUNDS", 3usize).max(1),
        first_round: env_or("BURNDOWN_FIRST_ROUND", 1usize),
        webhooks,
        batch: std::env::var("BURNDOWN_BATCH").ok().map(|batch| {
            batch
                .parse()
                .unwrap_or_else(|_| panic!("BURNDOWN_BATCH={batch:?} is not a number"))
        }),
        pool: env_or("BURNDOWN_POOL", 32u32).max(2),
        preload_concurrency: env_or("BURNDOWN_PRELOAD_CONCURRENCY", 32usize).max(1),
        timeout: Duration::from_secs(env_or("BURNDOWN_TIMEOUT_SECS", 120u64).max(1)),
        handler: env_or("BURNDOWN_HANDLER", Handler::Yield),
        postgres,
    }
}

/// What the handler does once it has recorded a call.
#[derive(Debug, Clone, Copy)]
enum Handler {
    /// Returns at once.
    Return,
    /// Yields to the runtime once: long enough for another call about the
    /// same shipment to begin meanwhile, were one handed out.
    Yield,
    /// Sleeps.
    Sleep(Duration),
}

impl std::str::FromStr for Handler {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "return" => Ok(Self::Return),
            "yield" => Ok(Self::Yield),
            ms => Ok(Self::Sleep(Duration::from_millis(
                ms.trim_end_matches("ms").parse()?,
            ))),
        }
    }
}

impl std::fmt::Display for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Return => f.write_str("return"),
            Self::Yield => f.write_str("yield"),
            Self::Sleep(pause) => write!(f, "{}ms", pause.as_millis()),
        }
    }
}

/// A webhook signed once, before the run, as the provider would send it.
struct Signed {
    headers: HeaderMap,
    body: Bytes,
}

/// The signed time of event `step` of shipment `shipment`: a minute apart.
fn event_time(shipment: usize, step: usize) -> OffsetDateTime {
    let seconds = 1_790_000_000 + (shipment * 600 + step * 60) as i64;
    OffsetDateTime::from_unix_timestamp(seconds).expect("a valid time")
}

fn shipment_id(shipment: usize) -> String {
    format!("ship-{shipment}")
}

/// Every shipment's four webhooks, signed, shipment by shipment.
async fn sign_all(settings: &Settings, run: usize) -> Vec<Vec<Signed>> {
    let mut shipments = Vec::with_capacity(settings.shipments());
    for shipment in 0..settings.shipments() {
        let mut events = Vec::with_capacity(EVENTS_PER_SHIPMENT);
        for (step, status) in STATUSES.iter().enumerate() {
            let n = shipment * EVENTS_PER_SHIPMENT + step;
            // Kosmo's eventId is a UUID (8-4-4-4-12 hex digits).
            let event = format!(
                "{:08x}-{:04x}-4000-8000-{n:012x}",
                std::process::id(),
                run & 0xffff
            );
            let request = Webhook::kosmo(status)
                .field("/eventId", event)
                .field("/orderId", shipment_id(shipment))
                .at(event_time(shipment, step))
                .sign(KOSMO);
            let (parts, body) = request.into_parts();
            let body = body.collect().await.expect("a signed body").to_bytes();
            events.push(Signed {
                headers: parts.headers,
                body,
            });
        }
        shipments.push(events);
    }
    shipments
}

/// Verifies every webhook as the Kosmo layer would and stores it, with
/// `concurrency` shipments at a time, each shipment's webhooks in order.
async fn preload(inbox: &Inbox, signed: &[Vec<Signed>], concurrency: usize) {
    let layer = KosmoSignature::new(KOSMO);
    let layer = &layer;
    stream::iter(signed)
        .map(|events| async move {
            for event in events {
                let webhook = layer
                    .verify(&event.headers, event.body.clone())
                    .expect("a webhook signed with the right secret")
                    .into_webhook()
                    .expect("a webhook, not a connection test");
                inbox
                    .receive(&webhook, ENDPOINT)
                    .await
                    .expect("the webhook stored");
            }
        })
        .buffer_unordered(concurrency)
        .collect::<()>()
        .await;
}

/// What the handler saw.
#[derive(Default)]
struct Recorder {
    calls: AtomicUsize,
    /// Calls that began while another of the same shipment was running.
    overlaps: AtomicUsize,
    first: OnceLock<Instant>,
    shipments: Mutex<HashMap<String, Seen>>,
}

/// One shipment's calls.
#[derive(Default)]
struct Seen {
    /// Its signed times (Unix seconds), in the order handled.
    times: Vec<Option<i64>>,
    running: u32,
    overlapped: bool,
}

impl Recorder {
    /// A call begins: its shipment, for [`end`](Self::end).
    fn begin(&self, delivery: &Delivery) -> String {
        let _ = self.first.set(Instant::now());
        let event = delivery.event();
        let mut shipments = self.shipments.lock().expect("the recorder's lock");
        let seen = shipments.entry(event.id.clone()).or_default();
        seen.times
            .push(event.timestamp.map(OffsetDateTime::unix_timestamp));
        seen.running += 1;
        if seen.running > 1 {
            seen.overlapped = true;
            self.overlaps.fetch_add(1, Ordering::Relaxed);
        }
        self.calls.fetch_add(1, Ordering::Release);
        event.id.clone()
    }

    fn end(&self, shipment: &str) {
        let mut shipments = self.shipments.lock().expect("the recorder's lock");
        if let Some(seen) = shipments.get_mut(shipment) {
            seen.running -= 1;
        }
    }

    /// How many shipments were handed out wrongly (an event before an
    /// earlier one of its shipment, twice, or beside another of its
    /// shipment, or a shipment that was not preloaded), and how many others
    /// did not have all their events handled.
    fn check(&self, shipments: usize) -> (usize, usize) {
        let seen = self.shipments.lock().expect("the recorder's lock");
        let (mut violations, mut unfinished) = (0, 0);
        for shipment in 0..shipments {
            let Some(calls) = seen.get(&shipment_id(shipment)) else {
                unfinished += 1;
                continue;
            };
            // Its events in order, once each: as many of them as were handled.
            let in_order =
                calls.times.len() <= EVENTS_PER_SHIPMENT
                    && calls.times.iter().enumerate().all(|(step, time)| {
                        *time == Some(event_time(shipment, step).unix_timestamp())
                    });
            if !in_order || calls.overlapped {
                violations += 1;
            } else if calls.times.len() < EVENTS_PER_SHIPMENT {
                unfinished += 1;
            }
        }
        violations += seen
            .keys()
            .filter(|id| {
                id.strip_prefix("ship-")
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_none_or(|n| n >= shipments)
            })
            .count();
        (violations, unfinished)
    }
}

fn finished(stats: &InboxStats) -> u64 {
    stats.done + stats.superseded + stats.dead
}

/// A fresh SQLite file under the target directory.
fn sqlite_path(run: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("burndown-bench");
    std::fs::create_dir_all(&dir).expect("a directory for the bench's databases");
    let path = dir.join(format!("run-{}-{run}.db", std::process::id()));
    remove_sqlite(&path);
    path
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn in_schema(url: &str, schema: &str) -> PgConnectOptions {
    url.parse::<PgConnectOptions>()
        .expect("a PostgreSQL URL")
        .options([("search_path", schema)])
}

async fn admin(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new().max_connections(1).connect(url).await
}

/// The counters a PostgreSQL run reads before and after the drain.
#[derive(Debug, Clone, Copy, Default)]
struct PgCounters {
    xacts: i64,
    inbox_updates: i64,
    writes: i64,
}

async fn pg_counters(url: &str, schema: &str) -> Result<PgCounters, sqlx::Error> {
    let admin = admin(url).await?;
    let xacts: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&admin)
    .await?;
    let (inbox_updates, writes): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT CAST(SUM(n_tup_upd) FILTER (WHERE relname = 'webhook_inbox') AS BIGINT), \
         CAST(SUM(n_tup_ins + n_tup_upd + n_tup_del) AS BIGINT) \
         FROM pg_stat_user_tables WHERE schemaname = $1",
    )
    .bind(schema)
    .fetch_one(&admin)
    .await?;
    admin.close().await;
    Ok(PgCounters {
        xacts,
        inbox_updates: inbox_updates.unwrap_or_default(),
        writes: writes.unwrap_or_default(),
    })
}

/// Empties `pg_stat_statements`; `false` if it is not installed.
async fn reset_statements(url: &str) -> bool {
    let Ok(admin) = admin(url).await else {
        return false;
    };
    let installed: Option<String> =
        sqlx::query_scalar("SELECT CAST(to_regclass('pg_stat_statements') AS TEXT)")
            .fetch_one(&admin)
            .await
            .unwrap_or_default();
    let reset = installed.is_some()
        && sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(&admin)
            .await
            .is_ok();
    admin.close().await;
    reset
}

/// Every statement run in this database since the reset, with its calls,
/// most frequent first: not the stats polls, nor these reads.
async fn statements(url: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let admin = admin(url).await?;
    let rows = sqlx::query_as(
        "SELECT query, CAST(SUM(calls) AS BIGINT) AS calls FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND query NOT LIKE '%pg_stat%' \
           AND query NOT LIKE '%FROM webhook_inbox GROUP BY state%' \
         GROUP BY query ORDER BY calls DESC",
    )
    .fetch_all(&admin)
    .await?;
    admin.close().await;
    Ok(rows)
}

/// Where a run's webhooks are stored.
enum Store {
    Postgres { url: String, schema: String },
    Sqlite(PathBuf, SqliteSync),
}

impl Store {
    /// An inbox on the store, and its pool on PostgreSQL, to close.
    async fn open(&self, pool_size: u32) -> (Inbox, Option<PgPool>) {
        match self {
            Self::Postgres { url, schema } => {
                let pool = PgPoolOptions::new()
                    .max_connections(pool_size)
                    .connect_with(in_schema(url, schema))
                    .await
                    .expect("a pool on the run's schema");
                let inbox = Inbox::postgres_pool(pool.clone())
                    .await
                    .expect("a PostgreSQL inbox");
                (inbox, Some(pool))
            }
            Self::Sqlite(path, sync) => {
                let inbox = Inbox::sqlite_with(path, *sync)
                    .await
                    .expect("a SQLite inbox");
                (inbox, None)
            }
        }
    }

    async fn remove(&self) {
        match self {
            Self::Postgres { url, schema } => {
                if let Ok(admin) = admin(url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                        .execute(&admin)
                        .await;
                    admin.close().await;
                }
            }
            Self::Sqlite(path, _) => remove_sqlite(path),
        }
    }
}

/// One run's outcome, as its JSON line says it.
#[derive(Debug, Clone)]
struct Outcome {
    line: Value,
    handled_per_s: Option<f64>,
    violations: usize,
    timed_out: bool,
}

/// The drain's per-webhook counters on PostgreSQL.
#[derive(Debug, Default)]
struct PgReport {
    before: Option<PgCounters>,
    after: Option<PgCounters>,
    statements: Option<Vec<(String, i64)>>,
}

async fn run(config: Config, settings: &Settings, round: usize, run: usize) -> Outcome {
    let total = settings.webhooks;
    let signed = sign_all(settings, run).await;
    let mut line = json!({
        "system": config.backend.system(),
        "setting": format!("c={}", config.concurrency),
        "concurrency": config.concurrency,
        "round": round,
        "webhooks": total,
        "shipments": settings.shipments(),
        "handler": settings.handler.to_string(),
    });

    // The store, and the preload through a first inbox on it.
    let store = match config.backend {
        Backend::Postgres => {
            let url = settings.postgres.clone().expect("a PostgreSQL URL");
            let schema = format!("burndown_{}_{run}", std::process::id());
            let admin = admin(&url).await.expect("the PostgreSQL database");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .expect("a schema for the run");
            admin.close().await;
            Store::Postgres { url, schema }
        }
        Backend::Sqlite(sync) => Store::Sqlite(sqlite_path(run), sync),
    };
    let postgres = match &store {
        Store::Postgres { url, schema } => Some((url.as_str(), schema.as_str())),
        Store::Sqlite(..) => None,
    };

    let preload_start = Instant::now();
    let (inbox, pool) = store.open(settings.pool).await;
    let preloaded = tokio::time::timeout(
        settings.timeout,
        preload(&inbox, &signed, settings.preload_concurrency),
    )
    .await
    .is_ok();
    let stored = inbox.stats().await.expect("the inbox's stats");
    drop(inbox);
    close(pool).await;
    line["preload_secs"] = json!(round3(preload_start.elapsed().as_secs_f64()));
    drop(signed);

    let mut timed_out = !preloaded;
    let mut violations = 0;
    let mut handled_per_s = None;
    let mut report = PgReport::default();
    if !preloaded || stored.pending != total as u64 {
        eprintln!(
            "  preload {}: {} of {total} stored",
            if preloaded { "incomplete" } else { "timed out" },
            stored.pending
        );
        line["timeout"] = json!(!preloaded);
        line["stored"] = json!(stored.pending);
        timed_out = true;
    } else {
        let (inbox, pool) = store.open(settings.pool).await;
        if let Some((url, schema)) = postgres {
            // The new pool's first transactions reported, as they are at once.
            tokio::time::sleep(Duration::from_millis(300)).await;
            report.before = pg_counters(url, schema).await.ok();
            report.statements = reset_statements(url).await.then(Vec::new);
        }

        let recorder = Arc::new(Recorder::default());
        let handler = {
            let recorder = Arc::clone(&recorder);
            let what = settings.handler;
            move |delivery: Delivery| {
                let recorder = Arc::clone(&recorder);
                let shipment = recorder.begin(&delivery);
                async move {
                    match what {
                        Handler::Return => {}
                        Handler::Yield => tokio::task::yield_now().await,
                        Handler::Sleep(pause) => tokio::time::sleep(pause).await,
                    }
                    recorder.end(&shipment);
                    Ok(())
                }
            }
        };
        let start = Instant::now();
        let mut worker = inbox
            .worker(handler)
            .concurrency(config.concurrency)
            .poll_interval(POLL_INTERVAL);
        if let Some(batch) = settings.batch {
            worker = worker.batch_size(batch);
        }
        let worker = worker.spawn();
        let mut polls = 0u64;
        let mut last_poll: Option<Instant> = None;
        let mut stats = InboxStats::default();
        let took = loop {
            let now = Instant::now();
            if now - start > settings.timeout {
                break None;
            }
            let all_seen = recorder.calls.load(Ordering::Acquire) >= total;
            let every = if all_seen {
                STATS_EVERY_AT_END
            } else {
                STATS_EVERY
            };
            if last_poll.is_none_or(|last| now - last >= every) {
                last_poll = Some(now);
                polls += 1;
                match inbox.stats().await {
                    Ok(read) => stats = read,
                    Err(error) => eprintln!("  stats: {error}"),
                }
                if finished(&stats) >= total as u64 {
                    break Some(start.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        if let (Some((url, _)), Some(_)) = (postgres, &report.statements) {
            report.statements = statements(url).await.ok();
        }
        worker.shutdown().await;
        drop(inbox);
        close(pool).await;
        if let Some((url, schema)) = postgres {
            // The closed backends report their statistics as they exit.
            tokio::time::sleep(Duration::from_millis(300)).await;
            report.after = pg_counters(url, schema).await.ok();
        }

        let calls = recorder.calls.load(Ordering::Acquire);
        let unfinished;
        (violations, unfinished) = recorder.check(settings.shipments());
        line["handled"] = json!(stats.done);
        line["handler_calls"] = json!(calls);
        line["superseded"] = json!(stats.superseded);
        line["dead"] = json!(stats.dead);
        // A run that finished with a shipment not wholly handled (an event
        // superseded or dead) failed the check too; one given up has
        // unfinished shipments, which are not violations.
        if took.is_some() {
            violations += unfinished;
        }
        line["order_violations"] = json!(violations);
        line["unfinished_shipments"] = json!(unfinished);
        line["overlaps"] = json!(recorder.overlaps.load(Ordering::Relaxed));
        line["stats_polls"] = json!(polls);
        if let Some(first) = recorder.first.get() {
            line["first_handled_ms"] = json!(round3(ms(*first - start)));
        }
        match took {
            Some(took) => {
                let rate = stats.done as f64 / took.as_secs_f64();
                handled_per_s = Some(rate);
                line["secs"] = json!(round3(took.as_secs_f64()));
                line["handled_per_s"] = json!(rate.round());
                line["timeout"] = json!(false);
            }
            None => {
                timed_out = true;
                line["secs"] = json!(null);
                line["handled_per_s"] = json!(null);
                line["timeout"] = json!(true);
                // What it did get through, over the whole wait.
                line["partial_per_s"] =
                    json!((stats.done as f64 / settings.timeout.as_secs_f64()).round());
            }
        }
        if let (Some(before), Some(after)) = (report.before, report.after) {
            let per = |n: i64| round3(n as f64 / total as f64);
            // Each stats poll is a transaction of its own.
            line["xacts_per_webhook"] = json!(per(after.xacts - before.xacts - polls as i64));
            line["inbox_updates_per_webhook"] =
                json!(per(after.inbox_updates - before.inbox_updates));
            line["row_writes_per_webhook"] = json!(per(after.writes - before.writes));
        }
        if let Some(statements) = &report.statements {
            let sum: i64 = statements.iter().map(|(_, calls)| calls).sum();
            line["statements_per_webhook"] = json!(round3(sum as f64 / total as f64));
            line["top_statements"] = statements
                .iter()
                .take(TOP_STATEMENTS)
                .map(|(query, calls)| {
                    json!({
                        "per_webhook": round3(*calls as f64 / total as f64),
                        "query": shorten(query, 160),
                    })
                })
                .collect();
        }
    }
    line["load_average"] = json!(load_average());

    store.remove().await;
    Outcome {
        line,
        handled_per_s,
        violations,
        timed_out,
    }
}

/// Closes a PostgreSQL pool, waiting at most a few seconds for it.
async fn close(pool: Option<PgPool>) {
    if let Some(pool) = pool
        && tokio::time::timeout(Duration::from_secs(5), pool.close())
            .await
            .is_err()
    {
        eprintln!("  the pool did not close within 5 s");
    }
}

/// `text` on one line, at most `max` characters.
fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn round3(value: f64) -> f64 {
    (value * 1e3).round() / 1e3
}

/// The 1-minute load average, to tell a quiet machine from a busy one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn median(sorted: &[f64]) -> f64 {
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let settings = settings();
    let configs: Vec<Config> = settings
        .configs
        .iter()
        .copied()
        .filter(|config| {
            let skip = config.backend == Backend::Postgres && settings.postgres.is_none();
            if skip {
                eprintln!(
                    "SHIPMENT_WEBHOOKS_TEST_POSTGRES is not set: postgres@{} skipped (run under .ci/with-postgres)",
                    config.concurrency
                );
            }
            !skip
        })
        .collect();

    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let mut run_number = 0;
    for round in 0..settings.rounds {
        let mut order: Vec<usize> = (0..configs.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let config = configs[index];
            run_number += 1;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("burndown")
                .enable_all()
                .build()
                .expect("the bench's runtime");
            let outcome = runtime.block_on(run(
                config,
                &settings,
                settings.first_round + round,
                run_number,
            ));
            runtime.shutdown_timeout(Duration::from_secs(2));
            println!("{}", outcome.line);
            outcomes.push((index, outcome));
        }
    }

    let mut summary = String::new();
    for (index, config) in configs.iter().enumerate() {
        let runs: Vec<&Outcome> = outcomes
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, outcome)| outcome)
            .collect();
        let mut rates: Vec<f64> = runs.iter().filter_map(|o| o.handled_per_s).collect();
        rates.sort_by(f64::total_cmp);
        let per = |key: &str| {
            let mut values: Vec<f64> = runs.iter().filter_map(|o| o.line[key].as_f64()).collect();
            values.sort_by(f64::total_cmp);
            if values.is_empty() {
                "–".to_owned()
            } else {
                format!("{:.2}", median(&values))
            }
        };
        let (xacts, updates, statements) = (
            per("xacts_per_webhook"),
            per("inbox_updates_per_webhook"),
            per("statements_per_webhook"),
        );
        let rate = if rates.is_empty() {
            "–".to_owned()
        } else {
            format!(
                "**{:.0}** ({:.0}–{:.0})",
                median(&rates),
                rates[0],
                rates[rates.len() - 1]
            )
        };
        writeln!(
            summary,
            "| {} | {} | {rate} | {} | {} | {xacts} | {updates} | {statements} |",
            config.backend.system(),
            config.concurrency,
            runs.iter().map(|o| o.violations).sum::<usize>(),
            runs.iter().filter(|o| o.timed_out).count(),
        )
        .expect("a String");
    }
    println!(
        "\n{} webhooks over {} shipments, preloaded; worker poll interval {} ms; {} round(s). Handled/s: the median round (range); per webhook: medians over the drain.\n",
        settings.webhooks,
        settings.shipments(),
        POLL_INTERVAL.as_millis(),
        settings.rounds
    );
    println!(
        "| system | concurrency | handled/s | order violations | timeouts | transactions | webhook_inbox updates | statements |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    print!("{summary}");

    if outcomes
        .iter()
        .any(|(_, outcome)| outcome.violations > 0 || outcome.timed_out)
    {
        std::process::exit(1);
    }
}
