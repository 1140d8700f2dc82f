//! Reliability load test: `cargo run --release -p shipment-webhooks-benches --example reliability`.
//!
//! Starts this same binary as a child server (`reliability serve`) with the
//! providers' layers, so its memory can be read from `/proc` (Linux) and
//! a crash shows, then sends it `REQUESTS` webhooks (default 100 000) over
//! `CONNECTIONS` concurrent connections (default 64) on 127.0.0.1: a fixed mix
//! of valid, forged, malformed-body, malformed-proof and oversized ones across
//! all the providers, each with its own id.
//!
//! Exits 1 unless every valid webhook reached the handler exactly once and no
//! other one did, every answer had its kind's status, the server is still up
//! at the end, its peak RSS stayed under `MAX_RSS_MIB` (default 64), and all
//! of it took less than `DEADLINE_SECS` (default 120). The server is killed on
//! every exit path, and exits by itself if this process dies.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use shipment_webhooks::testing::{
    SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, aftership_signature, easypost_signature,
    goshiip_signature, sendcloud_signature, shipengine_demo_jwks, shipengine_signature,
    shippo_signature, standard_webhooks_signature,
};
use shipment_webhooks::{
    AfterShipSignature, EasyPostSignature, GoShiipSignature, KosmoSignature, KourierBearer,
    Provider, SendcloudSignature, ShipBobSignature, ShipEngineSignature, ShipmentEvent,
    ShipmondoJwt, ShippoSignature, aftership, easypost, goshiip, kosmo, sendcloud, shipengine,
    shippo, standard_webhooks,
};

/// Small, so oversized bodies are cheap to send.
const BODY_LIMIT: usize = 64 * 1024;

const PROVIDERS: [Provider; 10] = [
    Provider::Kosmo,
    Provider::Kourier,
    Provider::Shipmondo,
    Provider::GoShiip,
    Provider::EasyPost,
    Provider::AfterShip,
    Provider::Sendcloud,
    Provider::Shippo,
    Provider::ShipBob,
    Provider::ShipEngine,
];

/// The server's secrets, all of 32 bytes or more as Shipmondo's keys must be;
/// for ShipEngine, the demo private key whose JWKS the server verifies with.
fn secret(provider: Provider) -> &'static str {
    match provider {
        Provider::Kosmo => "whk_load_test_kosmo_secret_0123456789",
        Provider::Kourier => "load-test-kourier-token-0123456789abcdef",
        Provider::Shipmondo => "load-test-shipmondo-key-0123456789abcdef",
        Provider::GoShiip => "load-test-goshiip-secret-0123456789abcdef",
        Provider::EasyPost => "load-test-easypost-secret-0123456789abcdef",
        Provider::AfterShip => "load-test-aftership-secret-0123456789abcdef",
        Provider::Sendcloud => "load-test-sendcloud-secret-0123456789abcdef",
        Provider::Shippo => "load-test-shippo-secret-0123456789abcdef",
        // `whsec_` and base64, as Standard Webhooks secrets are.
        Provider::ShipBob => "whsec_bG9hZC10ZXN0LXNoaXBib2Itc2VjcmV0LTAxMjM0NTY3",
        Provider::ShipEngine => SHIPENGINE_DEMO_PRIVATE_KEY,
        other => unreachable!("no secret for {other}"),
    }
}

/// What forged webhooks are signed with: another secret, or another RSA key.
fn wrong_secret(provider: Provider) -> &'static str {
    match provider {
        Provider::ShipEngine => {
            include_str!("../tests/fixtures/shipengine/other-private-key.pem")
        }
        _ => "not-the-configured-secret-0123456789abcdef",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Valid,
    Forged,
    BadBody,
    BadProof,
    Oversized,
}

const KINDS: [Kind; 5] = [
    Kind::Valid,
    Kind::Forged,
    Kind::BadBody,
    Kind::BadProof,
    Kind::Oversized,
];

/// Six valid webhooks in ten, one of each other kind.
const MIX: [Kind; 10] = [
    Kind::Valid,
    Kind::Forged,
    Kind::Valid,
    Kind::BadBody,
    Kind::Valid,
    Kind::BadProof,
    Kind::Valid,
    Kind::Oversized,
    Kind::Valid,
    Kind::Valid,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Valid => "valid",
            Kind::Forged => "forged",
            Kind::BadBody => "malformed body",
            Kind::BadProof => "malformed proof",
            Kind::Oversized => "oversized",
        }
    }

    fn expected(self) -> StatusCode {
        match self {
            Kind::Valid => StatusCode::OK,
            Kind::Forged | Kind::BadProof => StatusCode::UNAUTHORIZED,
            Kind::BadBody => StatusCode::BAD_REQUEST,
            Kind::Oversized => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

/// Request `i`'s provider and kind; every `PROVIDERS.len() * MIX.len()`
/// requests cover every pair.
fn plan(i: usize) -> (Provider, Kind) {
    let n = PROVIDERS.len();
    (PROVIDERS[i % n], MIX[(i / n) % MIX.len()])
}

fn webhook_id(i: usize) -> String {
    format!("load-{i}")
}

/// Where each provider's webhook carries the id `ShipmentEvent::id` is read from.
fn id_pointer(provider: Provider) -> &'static str {
    match provider {
        Provider::Kosmo => "/orderId",
        Provider::Kourier => "/delivery_id",
        Provider::Shipmondo => "/data/id",
        Provider::GoShiip => "/shipment/data/reference",
        Provider::EasyPost => "/result/id",
        Provider::AfterShip => "/msg/tracking_number",
        Provider::Sendcloud => "/parcel/id",
        Provider::Shippo => "/data/tracking_number",
        Provider::ShipBob => "/shipment_id",
        Provider::ShipEngine => "/data/tracking_number",
        other => unreachable!("no id for {other}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, requests] = &args[..]
        && command == "serve"
    {
        return match serve(requests) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("server: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let mut server = match Server::spawn(config.requests) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("could not start the server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let run = runtime
        .block_on(async { tokio::time::timeout(config.deadline, run(&config, &mut server)).await });
    // Runs before any exit: the server must not outlive the test.
    drop(server);
    let problems = match run {
        Ok(problems) => problems,
        Err(_) => vec![format!(
            "the run did not finish within {} s",
            config.deadline.as_secs()
        )],
    };
    if problems.is_empty() {
        println!("\nPASS");
        ExitCode::SUCCESS
    } else {
        println!("\nFAIL: {} problem(s)", problems.len());
        for problem in problems.iter().take(20) {
            println!("  {problem}");
        }
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------- the server

/// What the handler saw: how many times each request number `n` (id
/// `load-<n>`) arrived, and any event that is not one of the driver's.
/// Counters, not a map of ids, so the server's memory is the layers' own.
#[derive(Debug, Serialize, Deserialize)]
struct Deliveries {
    counts: Vec<u32>,
    strays: Vec<String>,
}

type SharedDeliveries = Arc<Mutex<Deliveries>>;

async fn deliver(State(deliveries): State<SharedDeliveries>, event: ShipmentEvent) -> StatusCode {
    let mut deliveries = deliveries.lock().unwrap_or_else(PoisonError::into_inner);
    let n = (event.id.strip_prefix("load-"))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n < deliveries.counts.len() && plan(n).0 == event.provider);
    match n {
        Some(n) => deliveries.counts[n] += 1,
        None => {
            let stray = format!("{} {:?}", event.provider, event.id);
            deliveries.strays.push(stray);
        }
    }
    StatusCode::OK
}

async fn stats(State(deliveries): State<SharedDeliveries>) -> Response {
    Json(&*deliveries.lock().unwrap_or_else(PoisonError::into_inner)).into_response()
}

fn serve(requests: &str) -> Result<(), Box<dyn std::error::Error>> {
    let deliveries = Deliveries {
        // Written now, where `vec![0; n]` would leave its pages to be touched
        // during the run, so that RSS growth during the run is the server's own.
        counts: std::iter::repeat_n(0, requests.parse()?).collect(),
        strays: Vec::new(),
    };
    // The driver holds our stdin open: when it dies, even killed, so do we.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let route = |provider| format!("/webhooks/{provider}");
    let app = Router::new()
        .route(
            &route(Provider::Kosmo),
            post(deliver)
                .route_layer(KosmoSignature::new(secret(Provider::Kosmo)).body_limit(BODY_LIMIT)),
        )
        .route(
            &route(Provider::Kourier),
            post(deliver)
                .route_layer(KourierBearer::new(secret(Provider::Kourier)).body_limit(BODY_LIMIT)),
        )
        .route(
            &route(Provider::Shipmondo),
            post(deliver)
                .route_layer(ShipmondoJwt::new(secret(Provider::Shipmondo)).body_limit(BODY_LIMIT)),
        )
        .route(
            &route(Provider::GoShiip),
            post(deliver).route_layer(
                GoShiipSignature::new(secret(Provider::GoShiip)).body_limit(BODY_LIMIT),
            ),
        )
        .route(
            &route(Provider::EasyPost),
            post(deliver).route_layer(
                EasyPostSignature::new(secret(Provider::EasyPost)).body_limit(BODY_LIMIT),
            ),
        )
        .route(
            &route(Provider::AfterShip),
            post(deliver).route_layer(
                AfterShipSignature::new(secret(Provider::AfterShip)).body_limit(BODY_LIMIT),
            ),
        )
        .route(
            &route(Provider::Sendcloud),
            post(deliver).route_layer(
                SendcloudSignature::new(secret(Provider::Sendcloud)).body_limit(BODY_LIMIT),
            ),
        )
        .route(
            &route(Provider::Shippo),
            post(deliver)
                .route_layer(ShippoSignature::new(secret(Provider::Shippo)).body_limit(BODY_LIMIT)),
        )
        .route(
            &route(Provider::ShipBob),
            post(deliver).route_layer(
                ShipBobSignature::new(secret(Provider::ShipBob)).body_limit(BODY_LIMIT),
            ),
        )
        .route(
            &route(Provider::ShipEngine),
            post(deliver).route_layer(
                ShipEngineSignature::from_jwks(shipengine_demo_jwks())?.body_limit(BODY_LIMIT),
            ),
        )
        .route("/stats", get(stats))
        .with_state(Arc::new(Mutex::new(deliveries)));
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        // The driver reads the port from this line.
        println!("{}", listener.local_addr()?.port());
        axum::serve(listener, app).await
    })?;
    Ok(())
}

/// The child server process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn spawn(requests: usize) -> std::io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", &requests.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // From here on, an early return kills the child.
        let mut server = Self { child, port: 0 };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        server.port = line.trim().parse().map_err(|_| {
            std::io::Error::other(format!("the server printed {line:?}, not its port"))
        })?;
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memory figure of process `pid` (`VmRSS`, `VmHWM`), in KiB.
fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix(" kB")?
            .parse()
            .ok()
    })
}

// ---------------------------------------------------------------- the driver

struct Config {
    requests: usize,
    connections: usize,
    deadline: Duration,
    max_rss_kib: u64,
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let var = |name: &str, default: u64| match std::env::var(name) {
            Ok(value) => value
                .parse::<u64>()
                .ok()
                .filter(|&value| value > 0)
                .ok_or(format!("{name}={value:?} is not a positive number")),
            Err(_) => Ok(default),
        };
        Ok(Self {
            requests: var("REQUESTS", 100_000)? as usize,
            connections: var("CONNECTIONS", 64)? as usize,
            deadline: Duration::from_secs(var("DEADLINE_SECS", 120)?),
            max_rss_kib: var("MAX_RSS_MIB", 64)? * 1024,
        })
    }
}

type HttpClient = Client<HttpConnector, Body>;

/// Request `i`, built as its kind says.
async fn build(i: usize, base: &str) -> Request<Body> {
    let (provider, kind) = plan(i);
    let status = match provider {
        Provider::Kosmo => "PICKED UP",
        Provider::Kourier => "in_transit",
        Provider::Shipmondo => "sent",
        Provider::EasyPost => "in_transit",
        Provider::AfterShip => "InTransit",
        Provider::Sendcloud => "22",
        Provider::Shippo => "TRANSIT",
        Provider::ShipBob => "InTransit",
        Provider::ShipEngine => "IT",
        _ => "Picked Up",
    };
    let mut webhook = Webhook::sample(provider, status)
        .field(id_pointer(provider), webhook_id(i))
        .uri(
            format!("{base}/webhooks/{provider}")
                .parse()
                .expect("a URI"),
        );
    if kind == Kind::Oversized {
        webhook = webhook.field("/padding", "x".repeat(BODY_LIMIT));
    }
    let signer = if kind == Kind::Forged {
        wrong_secret(provider)
    } else {
        secret(provider)
    };
    let request = webhook.sign(signer);
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await.expect("an in-memory body").to_bytes();
    let headers = &mut parts.headers;
    let body = match (kind, provider) {
        (Kind::Valid | Kind::Forged, _) => Body::from(body),
        // Half the body: not JSON, though its proof holds (a signature over
        // the body and
        // ShipEngine's are made again).
        (Kind::BadBody, _) => {
            let half = body.slice(..body.len() / 2);
            let secret = secret(provider);
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let resigned = match provider {
                Provider::GoShiip => {
                    Some((goshiip::SIGNATURE_HEADER, goshiip_signature(secret, &half)))
                }
                Provider::EasyPost => Some((
                    easypost::SIGNATURE_HEADER,
                    easypost_signature(secret, &half),
                )),
                Provider::AfterShip => Some((
                    aftership::SIGNATURE_HEADER,
                    aftership_signature(secret, &half),
                )),
                Provider::Sendcloud => Some((
                    sendcloud::SIGNATURE_HEADER,
                    sendcloud_signature(secret, &half),
                )),
                Provider::Shippo => Some((
                    shippo::DEFAULT_SIGNATURE_HEADER,
                    shippo_signature(secret, now, &half),
                )),
                Provider::ShipBob => {
                    let id = headers[standard_webhooks::ID_HEADER]
                        .to_str()
                        .expect("an ASCII id")
                        .to_owned();
                    headers.insert(
                        standard_webhooks::TIMESTAMP_HEADER,
                        header(&now.to_string()),
                    );
                    Some((
                        standard_webhooks::SIGNATURE_HEADER,
                        standard_webhooks_signature(secret, &id, now, &half),
                    ))
                }
                Provider::ShipEngine => {
                    let time = headers[shipengine::TIMESTAMP_HEADER]
                        .to_str()
                        .expect("the signed time as text")
                        .to_owned();
                    Some((
                        shipengine::SIGNATURE_HEADER,
                        shipengine_signature(secret, &time, &half),
                    ))
                }
                _ => None,
            };
            if let Some((name, signature)) = resigned {
                headers.insert(name, header(&signature));
            }
            Body::from(half)
        }
        (Kind::BadProof, Provider::Kosmo) => {
            headers.insert(kosmo::DEFAULT_SIGNATURE_HEADER, header("not base64!"));
            Body::from(body)
        }
        (Kind::BadProof, Provider::Kourier) => {
            headers.insert(AUTHORIZATION, header("Basic bG9hZDp0ZXN0"));
            Body::from(body)
        }
        // The classic JWT forgery: the same payload, `"alg": "none"` and no signature.
        (Kind::BadProof, Provider::Shipmondo) => {
            let envelope: serde_json::Value =
                serde_json::from_slice(&body).expect("a signed Shipmondo body");
            let jwt = envelope["data"].as_str().expect("a JWT in data");
            let payload = jwt.split('.').nth(1).expect("a JWT payload");
            let none = format!("eyJhbGciOiJub25lIn0.{payload}.");
            Body::from(serde_json::json!({ "data": none }).to_string())
        }
        (Kind::BadProof, Provider::ShipEngine) => {
            headers.insert(shipengine::SIGNATURE_HEADER, header("not base64!"));
            Body::from(body)
        }
        (Kind::BadProof, Provider::Shippo) => {
            let not_hex = format!("t=1,v1={}", "zz".repeat(32));
            headers.insert(shippo::DEFAULT_SIGNATURE_HEADER, header(&not_hex));
            Body::from(body)
        }
        (Kind::BadProof, Provider::ShipBob) => {
            headers.insert(
                standard_webhooks::SIGNATURE_HEADER,
                header("v1,not base64!"),
            );
            Body::from(body)
        }
        (Kind::BadProof, Provider::GoShiip) => {
            headers.insert(goshiip::SIGNATURE_HEADER, header(&"zz".repeat(32)));
            Body::from(body)
        }
        (Kind::BadProof, Provider::EasyPost) => {
            let value = format!("{}{}", easypost::SIGNATURE_PREFIX, "zz".repeat(32));
            headers.insert(easypost::SIGNATURE_HEADER, header(&value));
            Body::from(body)
        }
        (Kind::BadProof, Provider::AfterShip) => {
            headers.insert(aftership::SIGNATURE_HEADER, header("not base64!"));
            Body::from(body)
        }
        (Kind::BadProof, Provider::Sendcloud) => {
            headers.insert(sendcloud::SIGNATURE_HEADER, header(&"zz".repeat(32)));
            Body::from(body)
        }
        (Kind::BadProof, other) => unreachable!("no malformed proof for {other}"),
        // Every other one chunked, so its length is not declared and the limit
        // is met while reading.
        (Kind::Oversized, _) if (i / (PROVIDERS.len() * MIX.len())) % 2 == 1 => {
            let chunks: Vec<Result<Bytes, std::convert::Infallible>> = (0..body.len())
                .step_by(16 * 1024)
                .map(|start| Ok(body.slice(start..body.len().min(start + 16 * 1024))))
                .collect();
            Body::from_stream(futures_util::stream::iter(chunks))
        }
        (Kind::Oversized, _) => Body::from(body),
    };
    Request::from_parts(parts, body)
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("a valid header value")
}

/// What one kind of request got.
#[derive(Debug, Default)]
struct KindTally {
    sent: usize,
    statuses: BTreeMap<u16, usize>,
    errors: usize,
    max_latency: Duration,
}

#[derive(Debug, Default)]
struct Tally {
    kinds: [KindTally; KINDS.len()],
    /// Answers with the wrong status, one line each.
    problems: Vec<String>,
    /// Requests that got no answer, counted by error.
    wire_errors: BTreeMap<String, usize>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            mine.sent += theirs.sent;
            mine.errors += theirs.errors;
            mine.max_latency = mine.max_latency.max(theirs.max_latency);
            for (status, count) in theirs.statuses {
                *mine.statuses.entry(status).or_default() += count;
            }
        }
        self.problems.extend(other.problems);
        for (error, count) in other.wire_errors {
            *self.wire_errors.entry(error).or_default() += count;
        }
    }
}

/// What the workers share.
struct Load {
    client: HttpClient,
    base: String,
    requests: usize,
    next: AtomicUsize,
    server_pid: u32,
    rss_halfway: OnceLock<Option<u64>>,
}

/// Sends the next request not yet taken, one at a time, until there is none.
async fn worker(load: Arc<Load>) -> Tally {
    let mut tally = Tally::default();
    loop {
        let i = load.next.fetch_add(1, Ordering::Relaxed);
        if i >= load.requests {
            return tally;
        }
        if i == load.requests / 2 {
            let _ = load.rss_halfway.set(memory_kib(load.server_pid, "VmRSS"));
        }
        let (provider, kind) = plan(i);
        let request = build(i, &load.base).await;
        let started = Instant::now();
        let answer = match load.client.request(request).await {
            // Read the whole answer, so the connection can be reused.
            Ok(response) => {
                let status = response.status();
                response
                    .into_body()
                    .collect()
                    .await
                    .map(|_| status)
                    .map_err(|error| error.to_string())
            }
            // Debug: the client error's Display omits the cause.
            Err(error) => Err(format!("{error:?}")),
        };
        let kind_tally = &mut tally.kinds[kind as usize];
        kind_tally.sent += 1;
        kind_tally.max_latency = kind_tally.max_latency.max(started.elapsed());
        match answer {
            Ok(status) => {
                *kind_tally.statuses.entry(status.as_u16()).or_default() += 1;
                if status != kind.expected() {
                    tally.problems.push(format!(
                        "#{i} {provider} {}: answered {status}, expected {}",
                        kind.name(),
                        kind.expected()
                    ));
                }
            }
            Err(error) => {
                kind_tally.errors += 1;
                *tally.wire_errors.entry(error).or_default() += 1;
            }
        }
    }
}

/// Runs the load and every check; returns what went wrong.
async fn run(config: &Config, server: &mut Server) -> Vec<String> {
    let pid = server.child.id();
    let load = Arc::new(Load {
        client: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.connections)
            .build_http(),
        base: format!("http://127.0.0.1:{}", server.port),
        requests: config.requests,
        next: AtomicUsize::new(0),
        server_pid: pid,
        rss_halfway: OnceLock::new(),
    });
    let rss_at_start = memory_kib(pid, "VmRSS");

    let started = Instant::now();
    let workers: Vec<_> = (0..config.connections)
        .map(|_| tokio::spawn(worker(Arc::clone(&load))))
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await.expect("a worker panicked"));
    }
    let elapsed = started.elapsed();

    // Before /stats, whose answer is the test's, not the layers'.
    let peak = memory_kib(pid, "VmHWM");
    let rss_at_end = memory_kib(pid, "VmRSS");
    let mut problems = std::mem::take(&mut tally.problems);
    for (error, count) in &tally.wire_errors {
        problems.push(format!("{count} request(s) got no answer: {error}"));
    }
    match peak {
        Some(peak) if peak > config.max_rss_kib => problems.push(format!(
            "the server's peak RSS, {}, is over the {} limit",
            mib(Some(peak)),
            mib(Some(config.max_rss_kib))
        )),
        Some(_) => {}
        None => problems.push(format!("could not read /proc/{pid}/status")),
    }
    let delivered_by_kind = match deliveries(&load.client, &load.base).await {
        Ok(deliveries) => check_deliveries(&deliveries, config.requests, &mut problems),
        Err(error) => {
            problems.push(format!("could not read the server's /stats: {error}"));
            [0; KINDS.len()]
        }
    };
    let running = match server.child.try_wait() {
        Ok(None) => true,
        Ok(Some(exit)) => {
            problems.push(format!("the server exited: {exit}"));
            false
        }
        Err(error) => {
            problems.push(format!("could not check on the server: {error}"));
            false
        }
    };

    println!(
        "{:<16} {:>7} {:>8}  {:<24} {:>9} {:>11}",
        "kind", "sent", "expected", "answers", "delivered", "max latency"
    );
    for kind in KINDS {
        let kind_tally = &tally.kinds[kind as usize];
        let mut answers: Vec<String> = kind_tally
            .statuses
            .iter()
            .map(|(status, count)| format!("{status} x{count}"))
            .collect();
        if kind_tally.errors > 0 {
            answers.push(format!("error x{}", kind_tally.errors));
        }
        println!(
            "{:<16} {:>7} {:>8}  {:<24} {:>9} {:>8} ms",
            kind.name(),
            kind_tally.sent,
            kind.expected().as_u16(),
            answers.join(", "),
            delivered_by_kind[kind as usize],
            kind_tally.max_latency.as_millis()
        );
    }
    let sent: usize = tally.kinds.iter().map(|kind| kind.sent).sum();
    println!(
        "\n{sent} requests over {} connections in {:.2} s: {:.0} requests/s",
        config.connections,
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!(
        "server RSS: {} at start, {} halfway, {} at the end; peak {} (limit {})",
        mib(rss_at_start),
        mib(load.rss_halfway.get().copied().flatten()),
        mib(rss_at_end),
        mib(peak),
        mib(Some(config.max_rss_kib))
    );
    println!(
        "server: {}",
        if running {
            "still running"
        } else {
            "NOT running"
        }
    );
    problems
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |kib| format!("{:.1} MiB", kib as f64 / 1024.0))
}

async fn deliveries(client: &HttpClient, base: &str) -> Result<Deliveries, String> {
    let uri = format!("{base}/stats").parse().expect("a URI");
    let response = client.get(uri).await.map_err(|error| error.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("answered {}", response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|error| error.to_string())
}

/// Checks that each valid webhook reached the handler once and nothing else
/// did; returns how many deliveries each kind got.
fn check_deliveries(
    deliveries: &Deliveries,
    requests: usize,
    problems: &mut Vec<String>,
) -> [usize; KINDS.len()] {
    if deliveries.counts.len() != requests {
        problems.push(format!(
            "the server counted {} requests, not {requests}",
            deliveries.counts.len()
        ));
    }
    let mut by_kind = [0; KINDS.len()];
    // (kind, times delivered) -> (how many requests, the first of them)
    let mut wrong: BTreeMap<(&str, u32), (usize, usize)> = BTreeMap::new();
    for (n, &count) in deliveries.counts.iter().enumerate() {
        let kind = plan(n).1;
        by_kind[kind as usize] += count as usize;
        if count != u32::from(kind == Kind::Valid) {
            wrong.entry((kind.name(), count)).or_insert((0, n)).0 += 1;
        }
    }
    for ((kind, count), (requests, first)) in wrong {
        problems.push(format!(
            "{requests} {kind} request(s) reached the handler {count} time(s), the first #{first}"
        ));
    }
    for stray in &deliveries.strays {
        problems.push(format!("{stray} reached the handler, but was never sent"));
    }
    by_kind
}
