//! What the crate records through the `metrics` facade (feature `metrics`):
//! the layers' counters of accepted and refused webhooks, and the inbox's
//! counters and gauges. Alone in its own test binary: it installs the
//! process's global recorder, which every test here shares; each test uses
//! providers no other test here does, so their counts do not mix.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Request, Response};
use common::{echo_app, send, with_body};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{
    AfterShipSignature, GoShiipEvent, GoShiipSignature, KourierBearer, KourierEvent,
};
use tower::{Layer, ServiceExt};

/// Counters and gauges by name and labels (`name{label=value,...}`), in the
/// order the crate gives the labels. A gauge holds its `f64`'s bits.
#[derive(Default, Clone)]
struct Recorded {
    counters: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
    gauges: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
}

impl Recorded {
    fn counter(&self, key: &str) -> u64 {
        let counters = self.counters.lock().unwrap();
        counters
            .get(key)
            .map_or(0, |count| count.load(Ordering::SeqCst))
    }

    /// A gauge's value, `None` if it was never set.
    #[cfg(feature = "inbox")]
    fn gauge(&self, key: &str) -> Option<f64> {
        let gauges = self.gauges.lock().unwrap();
        gauges
            .get(key)
            .map(|bits| f64::from_bits(bits.load(Ordering::SeqCst)))
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.counters.lock().unwrap().keys().cloned().collect();
        keys.extend(self.gauges.lock().unwrap().keys().cloned());
        keys
    }
}

fn name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(counters.entry(name(key)).or_default().clone())
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut gauges = self.gauges.lock().unwrap();
        Gauge::from_arc(gauges.entry(name(key)).or_default().clone())
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// The process's recorder, installed by the first test that asks.
fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let recorded = Recorded::default();
        metrics::set_global_recorder(recorded.clone()).expect("the only recorder");
        recorded
    })
}

#[tokio::test]
async fn counts_accepted_and_refused_webhooks_by_provider_reason_and_route() {
    let recorded = recorded();
    let app = echo_app::<_, KourierEvent>("/webhooks/kourier", KourierBearer::new("token"));
    for _ in 0..3 {
        send(&app, Webhook::kourier("delivered").sign("token")).await;
    }
    send(&app, Webhook::kourier("delivered").sign("wrong")).await;
    send(
        &app,
        with_body(Webhook::kourier("delivered").sign("token"), "{}"),
    )
    .await;

    assert_eq!(
        recorded
            .counter("shipment_webhooks_accepted_total{provider=kourier,route=/webhooks/kourier}"),
        3
    );
    assert_eq!(
        recorded.counter(
            "shipment_webhooks_refused_total{provider=kourier,reason=signature_mismatch,route=/webhooks/kourier}"
        ),
        1
    );
    assert_eq!(
        recorded.counter(
            "shipment_webhooks_refused_total{provider=kourier,reason=invalid_payload,route=/webhooks/kourier}"
        ),
        1
    );
}

/// A route with a parameter is one label, whatever the paths sent to it:
/// the raw path would be a new time series per value.
#[tokio::test]
async fn the_route_label_is_the_matched_route_never_the_path() {
    let recorded = recorded();
    let app = echo_app::<_, GoShiipEvent>(
        "/webhooks/{shop}/goshiip",
        GoShiipSignature::new("goshiip-secret"),
    );
    for shop in ["a", "b", "c"] {
        let mut request = Webhook::goshiip("Delivered").sign("wrong");
        *request.uri_mut() = format!("/webhooks/{shop}/goshiip").parse().unwrap();
        let answer = send(&app, request).await;
        assert_eq!(answer.status, 401);
    }
    let mut request = Webhook::goshiip("Delivered").sign("goshiip-secret");
    *request.uri_mut() = "/webhooks/d/goshiip".parse().unwrap();
    assert_eq!(send(&app, request).await.status, 200);

    assert_eq!(
        recorded.counter(
            "shipment_webhooks_refused_total{provider=goshiip,reason=signature_mismatch,route=/webhooks/{shop}/goshiip}"
        ),
        3
    );
    assert_eq!(
        recorded.counter(
            "shipment_webhooks_accepted_total{provider=goshiip,route=/webhooks/{shop}/goshiip}"
        ),
        1
    );
    let keys = recorded.keys();
    assert!(
        !keys.iter().any(|key| key.contains("/webhooks/a/")),
        "{keys:?}"
    );
}

/// Outside an axum `Router` no route was matched: the label is `unknown`.
#[tokio::test]
async fn a_layer_outside_axum_routing_counts_route_unknown() {
    let recorded = recorded();
    let service = AfterShipSignature::new("aftership-secret").layer(tower::service_fn(
        |_: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::empty())) },
    ));
    let refused = service
        .clone()
        .oneshot(Webhook::aftership("Delivered").sign("wrong"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let accepted = service
        .oneshot(Webhook::aftership("Delivered").sign("aftership-secret"))
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(
        recorded.counter(
            "shipment_webhooks_refused_total{provider=aftership,reason=signature_mismatch,route=unknown}"
        ),
        1
    );
    assert_eq!(
        recorded.counter("shipment_webhooks_accepted_total{provider=aftership,route=unknown}"),
        1
    );
}

/// The inbox's signals (feature `inbox`; `cargo test --all-features`).
#[cfg(feature = "inbox")]
mod inbox {
    use std::time::Duration;

    use axum::Router;
    use axum::routing::post_service;
    use shipment_webhooks::inbox::{Delivery, Inbox};
    use shipment_webhooks::{KosmoSignature, SendcloudSignature};

    use super::*;

    const KOSMO: &str = "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm";

    /// A Kosmo event about `order` at `seconds` past a fixed time, its event id
    /// drawn from `n`.
    fn kosmo(n: u64, order: &str, status: &str, seconds: i64) -> Webhook {
        let time = time::OffsetDateTime::from_unix_timestamp(1_790_000_000 + seconds).unwrap();
        Webhook::kosmo(status)
            .field("/eventId", format!("00000000-0000-4000-8000-{:012x}", n))
            .field("/orderId", order)
            .at(time)
    }

    /// Waits up to 10 s for `done`.
    async fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The inbox's counters and gauges after real traffic through a Router and
    /// a worker: a duplicate, an older event superseded, a webhook handled and
    /// one dead after two failed attempts; the gauges while one is held and
    /// two wait, then once all is settled. On the memory store, then SQLite
    /// (with `--features sqlite`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_inbox_counts_by_provider_and_its_worker_sets_the_gauges() {
        inbox_signals(0, &Inbox::in_memory()).await;
        #[cfg(feature = "sqlite")]
        {
            let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join(format!("metrics-{}.db", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            let sqlite = Inbox::sqlite(&path).await.expect("a SQLite inbox");
            inbox_signals(100, &sqlite).await;
        }
    }

    async fn inbox_signals(n: u64, inbox: &Inbox) {
        let recorded = recorded();
        let counter = |name: &str| recorded.counter(&format!("{name}{{provider=kosmo}}"));
        let gauge = |name: &str| recorded.gauge(&format!("{name}{{provider=kosmo}}"));
        let names = [
            "shipment_webhooks_inbox_handled_total",
            "shipment_webhooks_inbox_failed_attempts_total",
            "shipment_webhooks_inbox_dead_lettered_total",
            "shipment_webhooks_inbox_superseded_total",
            "shipment_webhooks_duplicates_total",
        ];
        let before: Vec<u64> = names.iter().map(|name| counter(name)).collect();
        let app = Router::new().route(
            "/webhooks/kosmo",
            post_service(inbox.receiver()).route_layer(KosmoSignature::new(KOSMO)),
        );
        let newer = kosmo(n + 1, "SG-1", "DELIVERED", 10);
        for _ in 0..2 {
            assert_eq!(send(&app, newer.sign(KOSMO)).await.status, 200);
        }
        send(&app, kosmo(n + 2, "SG-1", "PICKED UP", 0).sign(KOSMO)).await;
        send(&app, kosmo(n + 3, "SG-2", "PICKED UP", 0).sign(KOSMO)).await;

        // One webhook at a time, the first held until released: one
        // processing, two pending.
        let (release, released) = tokio::sync::watch::channel(false);
        let worker = inbox
            .worker(move |delivery: Delivery| {
                let mut released = released.clone();
                async move {
                    released
                        .wait_for(|released| *released)
                        .await
                        .map_err(|_| "the test ended".to_owned())?;
                    match delivery.event().id.as_str() {
                        "SG-2" => Err("carrier API down".into()),
                        _ => Ok(()),
                    }
                }
            })
            .concurrency(1)
            .batch_size(1)
            .max_attempts(2)
            .poll_interval(Duration::from_millis(10))
            .backoff(Duration::from_millis(10), Duration::from_millis(20))
            .gauge_interval(Duration::from_millis(20))
            .spawn();
        eventually("one processing, two pending, waiting", || {
            gauge("shipment_webhooks_inbox_processing") == Some(1.0)
                && gauge("shipment_webhooks_inbox_pending") == Some(2.0)
                && gauge("shipment_webhooks_inbox_oldest_pending_age_seconds")
                    .is_some_and(|age| age > 0.0)
        })
        .await;
        assert_eq!(gauge("shipment_webhooks_inbox_dead"), Some(0.0));

        release.send_replace(true);
        eventually("settled: one dead, nothing pending", || {
            gauge("shipment_webhooks_inbox_dead") == Some(1.0)
                && gauge("shipment_webhooks_inbox_pending") == Some(0.0)
                && gauge("shipment_webhooks_inbox_processing") == Some(0.0)
                && gauge("shipment_webhooks_inbox_oldest_pending_age_seconds") == Some(0.0)
        })
        .await;
        worker.shutdown().await;

        let after: Vec<u64> = names.iter().map(|name| counter(name)).collect();
        let counted: Vec<(&str, u64)> = names
            .iter()
            .zip(before.iter().zip(&after))
            .map(|(name, (before, after))| (*name, after - before))
            .collect();
        assert_eq!(
            counted,
            [
                ("shipment_webhooks_inbox_handled_total", 1),
                ("shipment_webhooks_inbox_failed_attempts_total", 2),
                ("shipment_webhooks_inbox_dead_lettered_total", 1),
                ("shipment_webhooks_inbox_superseded_total", 1),
                ("shipment_webhooks_duplicates_total", 1),
            ]
        );
    }

    /// A webhook whose lease ran out on its last attempt, found by another
    /// worker's sweep, is dead-lettered as the worker's own are: counted by
    /// provider (not as a failed attempt: no handler failed).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_lost_on_the_last_attempt_is_counted_dead_lettered() {
        const SENDCLOUD: &str = "secretkey";
        let recorded = recorded();
        let counter = |name: &str| recorded.counter(&format!("{name}{{provider=sendcloud}}"));
        let dead_before = counter("shipment_webhooks_inbox_dead_lettered_total");
        let failed_before = counter("shipment_webhooks_inbox_failed_attempts_total");
        let inbox = Inbox::in_memory();
        let app = Router::new().route(
            "/webhooks/sendcloud",
            post_service(inbox.receiver()).route_layer(SendcloudSignature::new(SENDCLOUD)),
        );
        assert_eq!(
            send(&app, Webhook::sendcloud(3).sign(SENDCLOUD))
                .await
                .status,
            200
        );
        // A worker on a runtime of its own, dropped mid-handler: a crash.
        let crashed = inbox.clone();
        common::crash_after(move || async move {
            let _worker = crashed
                .worker(|_| {
                    std::future::pending::<Result<(), shipment_webhooks::inbox::BoxError>>()
                })
                .lease(Duration::from_millis(300))
                .poll_interval(Duration::from_millis(10))
                .spawn();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while crashed.stats().await.expect("counts").processing == 0 {
                assert!(tokio::time::Instant::now() < deadline, "never claimed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let ran = inbox
            .worker(|_: Delivery| async { Ok(()) })
            .max_attempts(1)
            .poll_interval(Duration::from_millis(10))
            .run_until_idle()
            .await
            .expect("the worker runs");
        assert_eq!(ran.handled, 0, "nothing was left to handle");
        assert_eq!(inbox.stats().await.expect("counts").dead, 1);
        assert_eq!(
            counter("shipment_webhooks_inbox_dead_lettered_total") - dead_before,
            1
        );
        assert_eq!(
            counter("shipment_webhooks_inbox_failed_attempts_total") - failed_before,
            0
        );
    }
}
