//! What each layer costs per request, beside references measured in the
//! same run:
//! - `hmac`: one HMAC-SHA256 over the whole body (the cheapest signature
//!   check of the bytes received);
//! - `reference`: the work no layer can avoid: one HMAC of what the
//!   provider signs (for Kourier, the token's SHA-256 digest compared in
//!   constant time) plus decoding, borrowed, the few fields the
//!   `ShipmentEvent` is made of, its time parsed (for Shipmondo, through its
//!   format: the envelope, the JWT's header and payload from base64, the
//!   payload's JSON string unescaped);
//! - `bare`: the same request to a service with no layer that reads the
//!   body, what the bench's request and handler cost: the layer's own cost
//!   is `layer - bare - reference`;
//! - `json`: decoding the JSON into the provider's typed payload, what a
//!   handler that also takes it pays.
//!
//! After criterion, **paired rounds** measure the layer's own cost at 1 KiB
//! again: each round times `bare`, `bare + reference` (the two back to
//! back, as the layer interleaves that work), `layer` and `floor` (the
//! least a layer with this crate's API does, benches/common's `Floor`,
//! doing the reference's work on the body it read), `PAIRED_ITERS`
//! requests each (2,000 by default) in a rotating order, and takes
//! `layer - (bare + reference)` and `floor - (bare + reference)` within the
//! round, so that the machine's drift, which moves criterion's separate
//! figures by more than those differences, reaches them alike. It prints
//! the medians over `PAIRED_ROUNDS` rounds (101 by default) and the spread.
//!
//! `cargo bench -p shipment-webhooks-benches --bench verify`, then `python3 benches/ratios.py` for
//! criterion's table.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Request, Response};
use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion};
use futures_util::FutureExt;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{
    AfterShipEvent, AfterShipSignature, EasyPostEvent, EasyPostSignature, GoShiipEvent,
    GoShiipSignature, KosmoEvent, KosmoSignature, KourierBearer, KourierEvent, SendcloudEvent,
    SendcloudSignature, ShipBobEvent, ShipBobSignature, ShipEngineEvent, ShipmondoEvent,
    ShipmondoJwt, ShippoEvent, ShippoSignature,
};
use tower::{Layer, Service, ServiceExt, service_fn};

mod common;
use common::{
    ANY_AGE, FloorLayer, Reference, SECRET, body_of, samples, shipengine_layer, signing_key, whsec,
};

const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("64KiB", 64 * 1024)];

type Ready = std::future::Ready<Result<Response<Body>, Infallible>>;
type Handler = tower::util::ServiceFn<fn(Request<Body>) -> Ready>;

/// A handler that checks the layer recorded the event and answers at once.
fn handler(request: Request<Body>) -> Ready {
    assert!(
        request
            .extensions()
            .get::<shipment_webhooks::VerifiedWebhook>()
            .is_some(),
        "the layer recorded the event"
    );
    std::future::ready(Ok(Response::new(Body::empty())))
}

/// The handler behind [`common::Floor`], which checks its record.
fn floor_handler(request: Request<Body>) -> Ready {
    assert!(
        request.extensions().get::<common::FloorRecord>().is_some(),
        "the floor recorded the event"
    );
    std::future::ready(Ok(Response::new(Body::empty())))
}

/// A service with no layer, which reads the body as a bare axum handler
/// taking `Bytes` does.
async fn bare(request: Request<Full<Bytes>>) -> Result<Response<Body>, Infallible> {
    let Ok(body) = request.into_body().collect().await;
    black_box(body.to_bytes());
    Ok(Response::new(Body::empty()))
}

/// Sends one request to `service` and checks it was answered 200.
fn send<S>(service: &S, request: Request<Full<Bytes>>) -> Response<Body>
where
    S: Service<Request<Full<Bytes>>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let Ok(response) = service
        .clone()
        .oneshot(request)
        .now_or_never()
        .expect("answered at once");
    assert!(response.status().is_success());
    response
}

/// One webhook as the benches send it: its request's head and its body.
struct Sample {
    provider: &'static str,
    webhook: Webhook,
    parts: Parts,
    body: Bytes,
}

impl Sample {
    fn new(provider: &'static str, webhook: Webhook) -> Self {
        let (parts, _) = webhook.sign(signing_key(provider)).into_parts();
        let body = body_of(&webhook);
        Self {
            provider,
            webhook,
            parts,
            body,
        }
    }

    fn request(&self) -> Request<Full<Bytes>> {
        Request::from_parts(self.parts.clone(), Full::new(self.body.clone()))
    }
}

/// Calls `measure` with `sample`'s provider's layer around [`handler`].
macro_rules! with_layer {
    ($sample:expr, $measure:ident($($arg:expr),*)) => {
        match $sample.provider {
            "kosmo" => $measure($($arg,)* KosmoSignature::new(SECRET)),
            "kourier" => $measure($($arg,)* KourierBearer::new(SECRET)),
            "shipmondo" => $measure($($arg,)* ShipmondoJwt::new(SECRET)),
            "goshiip" => $measure($($arg,)* GoShiipSignature::new(SECRET)),
            "easypost" => $measure($($arg,)* EasyPostSignature::new(SECRET)),
            "aftership" => $measure($($arg,)* AfterShipSignature::new(SECRET)),
            "sendcloud" => $measure($($arg,)* SendcloudSignature::new(SECRET)),
            "shippo" => $measure($($arg,)* ShippoSignature::new(SECRET).max_age(ANY_AGE)),
            "shipbob" => $measure($($arg,)* ShipBobSignature::new(whsec()).max_age(ANY_AGE)),
            "shipengine" => $measure($($arg,)* shipengine_layer()),
            other => unreachable!("no layer for {other}"),
        }
    };
}

/// Times `service` in criterion, each request built outside the timing.
fn bench_service<S>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    sample: &Sample,
    service: S,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<Body>, Error = Infallible> + Clone,
{
    group.bench_function(name, |b| {
        b.iter_batched(
            || sample.request(),
            |request| send(&service, request),
            BatchSize::SmallInput,
        )
    });
}

/// The whole layer as a Tower service: buffer, verify, parse, record, call the handler.
fn bench_layer<L>(group: &mut BenchmarkGroup<'_, WallTime>, sample: &Sample, layer: L)
where
    L: Layer<Handler>,
    L::Service:
        Service<Request<Full<Bytes>>, Response = Response<Body>, Error = Infallible> + Clone,
{
    bench_service(
        group,
        "layer",
        sample,
        layer.layer(service_fn(handler as fn(_) -> _)),
    );
}

fn bench(c: &mut Criterion) {
    for (size_name, size) in SIZES {
        for (provider, webhook) in samples(size) {
            let sample = Sample::new(provider, webhook);
            let body = &sample.body;
            let mut group = c.benchmark_group(format!("{provider}/{size_name}"));
            group.throughput(criterion::Throughput::Bytes(body.len() as u64));

            let key = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
            group.bench_function("hmac", |b| {
                b.iter(|| {
                    let mut mac = key.clone();
                    mac.update(black_box(body));
                    black_box(mac.finalize())
                })
            });

            let reference = Reference::new(provider, &sample.webhook, body);
            group.bench_function("reference", |b| b.iter(|| reference.work(black_box(body))));

            // Shipmondo's typed payload is the JWT's (the object its JSON string holds).
            let json = match provider {
                "shipmondo" => Bytes::from(sample.webhook.payload_json()),
                _ => body.clone(),
            };
            group.bench_function("json", |b| match provider {
                "kosmo" => {
                    b.iter(|| serde_json::from_slice::<KosmoEvent>(black_box(&json)).unwrap())
                }
                "kourier" => {
                    b.iter(|| serde_json::from_slice::<KourierEvent>(black_box(&json)).unwrap())
                }
                "goshiip" => {
                    b.iter(|| serde_json::from_slice::<GoShiipEvent>(black_box(&json)).unwrap())
                }
                "easypost" => {
                    b.iter(|| serde_json::from_slice::<EasyPostEvent>(black_box(&json)).unwrap())
                }
                "aftership" => {
                    b.iter(|| serde_json::from_slice::<AfterShipEvent>(black_box(&json)).unwrap())
                }
                "sendcloud" => {
                    b.iter(|| serde_json::from_slice::<SendcloudEvent>(black_box(&json)).unwrap())
                }
                "shippo" => {
                    b.iter(|| serde_json::from_slice::<ShippoEvent>(black_box(&json)).unwrap())
                }
                "shipbob" => {
                    b.iter(|| serde_json::from_slice::<ShipBobEvent>(black_box(&json)).unwrap())
                }
                "shipengine" => {
                    b.iter(|| serde_json::from_slice::<ShipEngineEvent>(black_box(&json)).unwrap())
                }
                _ => b.iter(|| serde_json::from_slice::<ShipmondoEvent>(black_box(&json)).unwrap()),
            });

            bench_service(&mut group, "bare", &sample, service_fn(bare));
            with_layer!(sample, bench_layer(&mut group, &sample));
            group.finish();
        }
    }
}

/// Nanoseconds per call of `f`, over `iters` calls.
fn time_per_call(iters: u32, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The layer's own cost in paired rounds: `layer - (bare + reference)`
/// within each round, where `bare + reference` runs the bare request and the
/// reference back to back, as the layer interleaves that work (each alone in
/// a loop of its own runs faster than in between others); and the floor's,
/// `floor - (bare + reference)`, the floor doing the reference's work. The
/// requests are built inside the timing, alike for each, so they cancel out.
fn paired<L>(sample: &Sample, layer: L) -> Vec<[f64; 6]>
where
    L: Layer<Handler>,
    L::Service:
        Service<Request<Full<Bytes>>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let rounds: usize = env_or("PAIRED_ROUNDS", 101);
    let iters: u32 = env_or("PAIRED_ITERS", 2000);
    let layered = layer.layer(service_fn(handler as fn(_) -> _));
    let reference = Arc::new(Reference::new(
        sample.provider,
        &sample.webhook,
        &sample.body,
    ));
    let floor = FloorLayer {
        reference: Some(Arc::clone(&reference)),
    }
    .layer(service_fn(floor_handler as fn(_) -> _));
    let bare = service_fn(bare);
    let mut runs: [&mut dyn FnMut(); 4] = [
        &mut || drop(black_box(send(&bare, sample.request()))),
        &mut || {
            drop(black_box(send(&bare, sample.request())));
            reference.work(black_box(&sample.body));
        },
        &mut || drop(black_box(send(&layered, sample.request()))),
        &mut || drop(black_box(send(&floor, sample.request()))),
    ];
    // A warm-up round, not kept.
    for run in &mut runs {
        time_per_call(iters, &mut **run);
    }
    (0..rounds)
        .map(|round| {
            let mut times = [0.0; 4];
            for step in 0..4 {
                let which = (round + step) % 4;
                times[which] = time_per_call(iters, &mut *runs[which]);
            }
            let [bare, bare_and_reference, layer, floor] = times;
            [
                bare,
                bare_and_reference - bare,
                layer,
                floor,
                layer - bare_and_reference,
                floor - bare_and_reference,
            ]
        })
        .collect()
}

/// The `share` quantile of `values`, sorted.
fn quantile(sorted: &[f64], share: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * share).round() as usize]
}

fn paired_rounds() {
    println!("\nThe layer's own cost at 1 KiB in paired rounds (ns a request):\n");
    println!(
        "| provider | rounds | bare | reference | layer | own: layer - (bare + reference), median | own, 10th–90th percentile | target | the floor's own: floor - (bare + reference), median |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (provider, webhook) in samples(1024) {
        let sample = Sample::new(provider, webhook);
        let rounds = with_layer!(sample, paired(&sample));
        let column = |index: usize| {
            let mut values: Vec<f64> = rounds.iter().map(|round| round[index]).collect();
            values.sort_by(f64::total_cmp);
            values
        };
        let [bare, reference, layer, _, _, floor] =
            [0, 1, 2, 3, 4, 5].map(|index| quantile(&column(index), 0.5));
        let own = column(4);
        let median = quantile(&own, 0.5);
        println!(
            "| {provider} | {} | {bare:.0} | {reference:.0} | {layer:.0} | **{median:.0}** | {:.0} to {:.0} | own ≤ 500 ns: {} | {floor:.0} |",
            own.len(),
            quantile(&own, 0.1),
            quantile(&own, 0.9),
            if median <= 500.0 { "met" } else { "not met" }
        );
    }
}

fn main() {
    // As `criterion_main!` would, with short runs: every ratio is taken
    // within one run, and each bench is tens of thousands of iterations even so.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    // Only under `cargo bench`, not when `cargo test` runs each bench once.
    if std::env::args().any(|arg| arg == "--bench") && env_or("PAIRED_ROUNDS", 101) > 0 {
        paired_rounds();
    }
}
