//! The inbox under a fixed request rate on 127.0.0.1, with its worker
//! running: how long a provider waits for its 200 (acknowledgement latency),
//! the throughput achieved, and whether the worker drains the backlog.
//!
//! ```sh
//! cargo bench -p shipment-webhooks-benches --bench inbox    # memory and SQLite
//! .ci/with-postgres cargo bench -p shipment-webhooks-benches --bench inbox    # and PostgreSQL
//! ```
//!
//! Each run serves the four providers' routes into a fresh inbox (a new
//! SQLite file under the target directory, a new PostgreSQL schema) from a
//! Tokio runtime of 2 threads, with a worker running a handler that returns
//! `Ok` at once, and sends pre-signed, distinct Kosmo, Kourier, Shipmondo and
//! GoShiip webhooks (one in ten a duplicate of one sent a little earlier)
//! from a single-threaded runtime of its own in the same process, over
//! keep-alive HTTP/1 connections (as many as are in flight). The load is
//! open-loop: request `i` is due at `start + i / rate` whatever became of
//! the others, and its latency is counted from that time to the end of its
//! response, so a stalled server is not hidden by a stalled client
//! (coordinated omission). A warm-up of 1 s at the same rate, drained,
//! comes first. After the load, it waits for the worker to drain the
//! backlog (bounded), then prints Markdown tables.
//!
//! Settings, by environment variable:
//!
//! - `INBOX_BENCH`: the runs, comma-separated `backend@rate`, a backend being
//!   `memory`, `sqlite-full`, `sqlite-normal` or `postgres`, with
//!   `:noworker` after it to run no worker (default
//!   `memory@1000,sqlite-full@200,sqlite-full:noworker@200,sqlite-normal@200,sqlite-normal@1000,postgres@1000`);
//!   `postgres` runs only when `SHIPMENT_WEBHOOKS_TEST_POSTGRES` holds a URL;
//! - `INBOX_BENCH_SECS`: seconds of load per run (10);
//! - `INBOX_BENCH_ROUNDS`: runs of each configuration (3);
//! - `INBOX_BENCH_DRAIN_SECS`: the longest wait for the backlog to drain (30);
//! - `INBOX_BENCH_CONCURRENCY`: the worker's concurrency (4).

#[path = "common/env.rs"]
mod env;
use env::env_or;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post_service;
use axum::serve::ListenerExt;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shipment_webhooks::bytes::Bytes;
use shipment_webhooks::inbox::{Delivery, Inbox, InboxStats, SqliteSync, WorkerHandle};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::time::OffsetDateTime;
use shipment_webhooks::{GoShiipSignature, KosmoSignature, KourierBearer, ShipmondoJwt};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::runtime::Runtime;
use tokio::time::Instant;

const KOSMO: &str = "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm";
const KOURIER: &str = "kourier-bench-token";
const SHIPMONDO: &str = "shipmondo-bench-key-of-32-bytes!";
const GOSHIIP: &str = "goshiip-bench-secret";

/// The target of issue 12: p99 acknowledgement latency under 15 ms.
const TARGET_P99_MS: f64 = 15.0;
/// A request still unanswered after this counts as failed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Every tenth request is a duplicate.
const DUPLICATE_EVERY: usize = 10;
/// A duplicate repeats the webhook sent this many requests before it.
const DUPLICATE_LAG: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Sqlite(SqliteSync),
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite(SqliteSync::Normal) => "sqlite NORMAL",
            Self::Sqlite(_) => "sqlite FULL",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Config {
    backend: Backend,
    rate: u32,
    worker: bool,
}

impl Config {
    fn label(&self) -> String {
        if self.worker {
            self.backend.name().to_owned()
        } else {
            format!("{} (no worker)", self.backend.name())
        }
    }

    /// The issue's target for this backend and rate, if it sets one.
    fn target(&self) -> Option<&'static str> {
        match (self.backend, self.rate) {
            (Backend::Sqlite(SqliteSync::Full), 200) if self.worker => Some("p99 < 15 ms at 200/s"),
            (Backend::Postgres, 1000) if self.worker => Some("p99 < 15 ms at 1000/s"),
            _ => None,
        }
    }
}

struct Settings {
    configs: Vec<Config>,
    secs: u64,
    rounds: usize,
    drain: Duration,
    concurrency: usize,
    postgres: Option<String>,
}

fn settings() -> Settings {
    let list = std::env::var("INBOX_BENCH").unwrap_or_else(|_| {
        "memory@1000,sqlite-full@200,sqlite-full:noworker@200,sqlite-normal@200,sqlite-normal@1000,postgres@1000".into()
    });
    let configs = list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (backend, rate) = item
                .split_once('@')
                .unwrap_or_else(|| panic!("{item:?} is not backend@rate"));
            let (backend, worker) = match backend.strip_suffix(":noworker") {
                Some(backend) => (backend, false),
                None => (backend, true),
            };
            let backend = match backend {
                "memory" => Backend::Memory,
                "sqlite-full" | "sqlite" => Backend::Sqlite(SqliteSync::Full),
                "sqlite-normal" => Backend::Sqlite(SqliteSync::Normal),
                "postgres" => Backend::Postgres,
                other => panic!("unknown backend {other:?}"),
            };
            let rate = rate
                .parse()
                .ok()
                .filter(|&rate| rate > 0)
                .unwrap_or_else(|| panic!("{item:?}: the rate is not a positive integer"));
            Config {
                backend,
                rate,
                worker,
            }
        })
        .collect();
    let postgres = std::env::var("SHIPMENT_WEBHOOKS_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty());
    Settings {
        configs,
        secs: env_or("INBOX_BENCH_SECS", 10u64).max(1),
        rounds: env_or("INBOX_BENCH_ROUNDS", 3usize).max(1),
        drain: Duration::from_secs(env_or("INBOX_BENCH_DRAIN_SECS", 30u64)),
        concurrency: env_or("INBOX_BENCH_CONCURRENCY", 4usize).max(1),
        postgres,
    }
}

/// A webhook signed once, before the run: what a request is made of.
#[derive(Clone)]
struct Signed {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// Distinct webhook number `n` of a run, about one of `n / 20` shipments
/// per provider, five events each in time order.
fn webhook(n: usize, prefix: &str) -> (Webhook, &'static str) {
    let shipment = n / 20;
    let step = (n / 4) % 5;
    let time =
        OffsetDateTime::from_unix_timestamp(1_790_000_000 + (shipment * 300 + step * 60) as i64)
            .expect("a valid time");
    match n % 4 {
        0 => {
            let status = [
                "ASSIGNED",
                "PICKED UP",
                "IN TRANSIT",
                "OUT FOR DELIVERY",
                "DELIVERED",
            ];
            let event = format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), n);
            let webhook = Webhook::kosmo(status[step])
                .field("/eventId", event)
                .field("/orderId", format!("{prefix}-{shipment}"))
                .at(time);
            (webhook, KOSMO)
        }
        1 => {
            let status = [
                "created",
                "in_transit",
                "in_transit",
                "in_transit",
                "delivered",
            ];
            let webhook = Webhook::kourier(status[step])
                .field("/delivery_id", format!("{prefix}-{shipment}"))
                .at(time);
            (webhook, KOURIER)
        }
        2 => {
            let status = ["open", "processing", "processing", "sent", "sent"];
            let id = 1_000_000 + shipment as u64 + if prefix == "warm" { 500_000_000 } else { 0 };
            let webhook = Webhook::shipmondo_order(status[step])
                .field("/data/id", id)
                .field("/data/order_id", format!("{prefix}-{shipment}"))
                .at(time);
            (webhook, SHIPMONDO)
        }
        _ => {
            let status = [
                "Pending",
                "In Progress",
                "Picked Up",
                "In Progress",
                "Delivered",
            ];
            let webhook = Webhook::goshiip(status[step])
                .field("/shipment/data/reference", format!("{prefix}-{shipment}"))
                .field("/shipment/data/id", n.to_string());
            (webhook, GOSHIIP)
        }
    }
}

/// `count` distinct webhooks, signed.
async fn sign_all(count: usize, prefix: &str) -> Vec<Signed> {
    let mut signed = Vec::with_capacity(count);
    for n in 0..count {
        let (webhook, secret) = webhook(n, prefix);
        let (parts, body) = webhook.sign(secret).into_parts();
        let body = body.collect().await.expect("a signed body").to_bytes();
        signed.push(Signed {
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body,
        });
    }
    signed
}

/// The order of a run's `total` requests, as indexes into its distinct
/// webhooks: every tenth a duplicate of the one sent `DUPLICATE_LAG` before.
/// Returns the sends and how many distinct webhooks they use.
fn schedule(total: usize) -> (Vec<usize>, usize) {
    let mut sends = Vec::with_capacity(total);
    let mut distinct = 0;
    for i in 0..total {
        if i % DUPLICATE_EVERY == DUPLICATE_EVERY - 1 && i >= DUPLICATE_LAG {
            sends.push(sends[i - DUPLICATE_LAG]);
        } else {
            sends.push(distinct);
            distinct += 1;
        }
    }
    (sends, distinct)
}

/// The four providers' routes into `inbox`.
fn app(inbox: &Inbox) -> Router {
    let receive = || post_service(inbox.receiver());
    Router::new()
        .route(
            "/webhooks/kosmo",
            receive().route_layer(KosmoSignature::new(KOSMO)),
        )
        .route(
            "/webhooks/kourier",
            receive().route_layer(KourierBearer::new(KOURIER)),
        )
        .route(
            "/webhooks/shipmondo",
            receive().route_layer(ShipmondoJwt::new(SHIPMONDO)),
        )
        .route(
            "/webhooks/goshiip",
            receive().route_layer(GoShiipSignature::new(GOSHIIP)),
        )
}

/// A fresh SQLite file under the target directory.
fn sqlite_path(run: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inbox-bench");
    std::fs::create_dir_all(&dir).expect("a directory for the bench's databases");
    let path = dir.join(format!("run-{}-{run}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn in_schema(url: &str, schema: &str) -> PgConnectOptions {
    url.parse::<PgConnectOptions>()
        .expect("a PostgreSQL URL")
        .options([("search_path", schema)])
}

/// The server side of one run, on its own runtime.
struct Server {
    runtime: Runtime,
    inbox: Inbox,
    worker: Option<WorkerHandle>,
    address: std::net::SocketAddr,
    cleanup: Cleanup,
}

enum Cleanup {
    None,
    File(PathBuf),
    Schema(String, String),
}

fn start_server(config: Config, settings: &Settings, run: usize) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("inbox-server")
        .enable_all()
        .build()
        .expect("the server's runtime");
    let (inbox, worker, address, cleanup) = runtime.block_on(async {
        let (inbox, cleanup) = match config.backend {
            Backend::Memory => (Inbox::in_memory(), Cleanup::None),
            Backend::Sqlite(sync) => {
                let path = sqlite_path(run);
                let inbox = Inbox::sqlite_with(&path, sync)
                    .await
                    .expect("a SQLite inbox");
                (inbox, Cleanup::File(path))
            }
            Backend::Postgres => {
                let url = settings.postgres.clone().expect("a PostgreSQL URL");
                let schema = format!("inbox_bench_{}_{run}", std::process::id());
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&url)
                    .await
                    .expect("the PostgreSQL database");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&admin)
                    .await
                    .expect("a schema for the run");
                admin.close().await;
                // As `Inbox::postgres` sizes its pool.
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .connect_with(in_schema(&url, &schema))
                    .await
                    .expect("a pool on the run's schema");
                let inbox = Inbox::postgres_pool(pool)
                    .await
                    .expect("a PostgreSQL inbox");
                (inbox, Cleanup::Schema(url, schema))
            }
        };
        let worker = config.worker.then(|| {
            inbox
                .worker(|_: Delivery| async { Ok(()) })
                .concurrency(settings.concurrency)
                .spawn()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port on 127.0.0.1");
        let address = listener.local_addr().expect("the bound address");
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let router = app(&inbox);
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("server stopped: {error}");
            }
        });
        (inbox, worker, address, cleanup)
    });
    Server {
        runtime,
        inbox,
        worker,
        address,
        cleanup,
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// What became of one request.
struct Sent {
    latency: Duration,
    ok: bool,
    done: Instant,
}

struct Load {
    sent: Vec<Sent>,
    start: Instant,
    max_in_flight: usize,
}

/// Sends `sends` (indexes into `signed`) to `address`, request `i` due at
/// `start + i / rate`.
async fn load(
    client: &HttpClient,
    address: std::net::SocketAddr,
    signed: &[Signed],
    sends: &[usize],
    rate: u32,
) -> Load {
    let base = format!("http://{address}");
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(sends.len());
    for (i, &index) in sends.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
        tokio::time::sleep_until(due).await;
        let webhook = &signed[index];
        let uri: Uri = format!("{base}{}", webhook.path).parse().expect("a URI");
        let mut request = Request::new(Full::new(webhook.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = webhook.headers.clone();
        let client = client.clone();
        let (in_flight, max_in_flight) = (Arc::clone(&in_flight), Arc::clone(&max_in_flight));
        tasks.push(tokio::spawn(async move {
            let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            max_in_flight.fetch_max(now, Ordering::Relaxed);
            let answered = tokio::time::timeout(CLIENT_TIMEOUT, async {
                let response = client.request(request).await.ok()?;
                let status = response.status();
                response.into_body().collect().await.ok()?;
                Some(status)
            })
            .await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let done = Instant::now();
            Sent {
                latency: done - due,
                ok: matches!(answered, Ok(Some(status)) if status == 200),
                done,
            }
        }));
    }
    let mut sent = Vec::with_capacity(tasks.len());
    for task in tasks {
        sent.push(task.await.expect("a request task"));
    }
    Load {
        sent,
        start,
        max_in_flight: max_in_flight.load(Ordering::Relaxed),
    }
}

fn backlog(stats: &InboxStats) -> u64 {
    stats.pending + stats.processing
}

/// Waits up to `limit` for the backlog to drain: how long it took, or the
/// rows left.
async fn drain(inbox: &Inbox, limit: Duration) -> Result<Duration, u64> {
    let start = Instant::now();
    loop {
        let stats = inbox.stats().await.expect("the inbox's counts");
        if backlog(&stats) == 0 {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= limit {
            return Err(backlog(&stats));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One run's figures.
#[derive(Debug, Clone)]
struct Outcome {
    requests: usize,
    throughput: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    failed: usize,
    max_in_flight: usize,
    backlog_at_end: u64,
    drained: Result<Duration, u64>,
    duplicates: u64,
    distinct: usize,
    load_average: String,
    /// The fsync probe's p50 and p99 just before the round, on SQLite.
    fsync: Option<(f64, f64)>,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The `q` quantile of sorted latencies (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    ms(sorted[rank - 1])
}

fn run(
    config: Config,
    settings: &Settings,
    client_runtime: &Runtime,
    run_number: usize,
) -> Outcome {
    let rate = config.rate as usize;
    let warm_total = rate;
    let total = rate * settings.secs as usize;
    let (sends, distinct) = schedule(total);
    let (warm, measured) = client_runtime.block_on(async {
        (
            sign_all(warm_total, "warm").await,
            sign_all(distinct, "bench").await,
        )
    });
    let fsync = matches!(config.backend, Backend::Sqlite(_)).then(|| fsync_floor(100));
    let server = start_server(config, settings, run_number);
    let client = client_runtime.block_on(async { client() });

    // Warm-up: connections opened, caches and the database's pages warm.
    let warm_sends: Vec<usize> = (0..warm_total).collect();
    client_runtime.block_on(load(
        &client,
        server.address,
        &warm,
        &warm_sends,
        config.rate,
    ));
    if config.worker {
        let _ = server
            .runtime
            .block_on(drain(&server.inbox, settings.drain));
    }
    let before = server
        .runtime
        .block_on(server.inbox.stats())
        .expect("the inbox's counts");

    let load = client_runtime.block_on(load(
        &client,
        server.address,
        &measured,
        &sends,
        config.rate,
    ));
    let at_end = server
        .runtime
        .block_on(server.inbox.stats())
        .expect("the inbox's counts");
    let drained = if config.worker {
        server
            .runtime
            .block_on(drain(&server.inbox, settings.drain))
    } else {
        Err(backlog(&at_end).saturating_sub(backlog(&before)))
    };
    let after = server
        .runtime
        .block_on(server.inbox.stats())
        .expect("the inbox's counts");

    let mut latencies: Vec<Duration> = load.sent.iter().map(|sent| sent.latency).collect();
    latencies.sort_unstable();
    let ok = load.sent.iter().filter(|sent| sent.ok).count();
    let last = load
        .sent
        .iter()
        .map(|sent| sent.done)
        .max()
        .unwrap_or(load.start);
    let outcome = Outcome {
        requests: load.sent.len(),
        throughput: ok as f64 / (last - load.start).as_secs_f64(),
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
        p999: quantile(&latencies, 0.999),
        max: quantile(&latencies, 1.0),
        failed: load.sent.len() - ok,
        max_in_flight: load.max_in_flight,
        backlog_at_end: backlog(&at_end).saturating_sub(backlog(&before)),
        drained,
        duplicates: after.duplicates - before.duplicates,
        load_average: load_average(),
        fsync,
        distinct,
    };

    let Server {
        runtime,
        worker,
        cleanup,
        inbox,
        ..
    } = server;
    runtime.block_on(async {
        if let Some(worker) = worker {
            worker.shutdown().await;
        }
        drop(inbox);
        if let Cleanup::Schema(url, schema) = &cleanup
            && let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(url).await
        {
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Cleanup::File(path) = cleanup {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    outcome
}

/// The 1-minute load average, to tell a quiet machine from a busy one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn drained(outcome: &Outcome) -> String {
    match outcome.drained {
        Ok(took) => format!("yes, {:.0} ms", ms(took)),
        Err(left) => format!("no, {left} rows left"),
    }
}

/// The time to write 4 KiB and `fdatasync` it, appending to one file, as
/// SQLite's WAL does at each commit with `synchronous=FULL`: p50 and p99.
fn fsync_floor(count: usize) -> (f64, f64) {
    use std::io::Write as _;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inbox-bench-fsync");
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("the target directory");
    let mut file = std::fs::File::create(&path).expect("a file for the fsync probe");
    let page = [7u8; 4096];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = std::time::Instant::now();
        file.write_all(&page).expect("a write");
        file.sync_data().expect("an fdatasync");
        times.push(start.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    times.sort_unstable();
    (quantile(&times, 0.5), quantile(&times, 0.99))
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let settings = settings();
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the client's runtime");

    if settings
        .configs
        .iter()
        .any(|config| matches!(config.backend, Backend::Sqlite(_)))
    {
        let (p50, p99) = fsync_floor(300);
        println!(
            "fsync floor: 4 KiB appended and fdatasync'd under the target directory: p50 {p50:.2} ms, p99 {p99:.2} ms\n"
        );
    }

    let mut rows = String::new();
    let mut summary = String::new();
    let mut run_number = 0;
    for config in &settings.configs {
        if config.backend == Backend::Postgres && settings.postgres.is_none() {
            eprintln!(
                "SHIPMENT_WEBHOOKS_TEST_POSTGRES is not set: postgres@{} skipped (run under .ci/with-postgres)",
                config.rate
            );
            continue;
        }
        let mut outcomes = Vec::new();
        for round in 1..=settings.rounds {
            run_number += 1;
            let outcome = run(*config, &settings, &client_runtime, run_number);
            let line = format!(
                "| {} | {} | {round} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
                config.label(),
                config.rate,
                outcome.requests,
                outcome.throughput,
                outcome.p50,
                outcome.p99,
                outcome.p999,
                outcome.max,
                outcome.failed,
                outcome.max_in_flight,
                outcome.backlog_at_end,
                drained(&outcome),
                outcome.duplicates,
                outcome.load_average,
                outcome.fsync.map_or("–".to_owned(), |(p50, p99)| format!(
                    "{p50:.2} / {p99:.2}"
                )),
            );
            eprintln!("{line}");
            if outcome.duplicates as usize != outcome.requests - outcome.distinct
                && outcome.failed == 0
            {
                eprintln!(
                    "  note: {} duplicates counted, {} sent",
                    outcome.duplicates,
                    outcome.requests - outcome.distinct
                );
            }
            writeln!(rows, "{line}").expect("a String");
            outcomes.push(outcome);
        }
        let mut by_p99 = outcomes.clone();
        by_p99.sort_by(|a, b| a.p99.total_cmp(&b.p99));
        let median = &by_p99[by_p99.len() / 2];
        let (low, high) = (by_p99[0].p99, by_p99[by_p99.len() - 1].p99);
        let target = match config.target() {
            Some(target)
                if outcomes
                    .iter()
                    .all(|o| o.p99 < TARGET_P99_MS && o.failed == 0) =>
            {
                format!("{target}: met in every round")
            }
            Some(target) if median.p99 < TARGET_P99_MS => format!("{target}: met at the median"),
            Some(target) => format!("{target}: **missed**"),
            None => "–".to_owned(),
        };
        writeln!(
            summary,
            "| {} | {} | {} | {:.0} | {:.2} | **{:.2}** | {:.2}–{:.2} | {:.2} | {:.2} | {} | {} | {} |",
            config.label(),
            config.rate,
            median.requests,
            median.throughput,
            median.p50,
            median.p99,
            low,
            high,
            median.p999,
            median.max,
            outcomes.iter().map(|o| o.failed).sum::<usize>(),
            drained(median),
            target,
        )
        .expect("a String");
    }

    println!(
        "Each round: {} s of load after a 1 s warm-up, 10 % duplicates, worker concurrency {}; latency in ms from each request's scheduled time to the end of its response.\n",
        settings.secs, settings.concurrency
    );
    println!("Every round:\n");
    println!(
        "| backend | rate/s | round | requests | throughput/s | p50 | p99 | p99.9 | max | non-200 | max in flight | backlog at end of load | drained | duplicates counted | load average | fsync p50 / p99 before |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    print!("{rows}");
    println!(
        "\nThe median round of {} by p99 (its other figures), the spread of p99 over the rounds, and non-200 over all rounds:\n",
        settings.rounds
    );
    println!(
        "| backend | rate/s | requests | throughput/s | p50 | p99 | p99 spread | p99.9 | max | non-200 | drained | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    print!("{summary}");
}
