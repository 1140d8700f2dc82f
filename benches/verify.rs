//! What each layer costs per request, beside references measured in the
//! same run:
//! - `hmac`: one HMAC-SHA256 over the whole body (the cheapest signature
//!   check of the bytes received);
//! - `reference`: the work no layer can avoid: one HMAC of what the
//!   provider signs (for Kourier, the token's SHA-256 digest compared in
//!   constant time) plus decoding, borrowed, the few fields the
//!   `ShipmentEvent` is made of (for Shipmondo, through its format: the
//!   envelope, the JWT's header and payload from base64, the payload's JSON
//!   string unescaped);
//! - `bare`: the same request to a service with no layer that reads the
//!   body, what the bench's request and handler cost: the layer's own cost
//!   is `layer - bare - reference`;
//! - `json`: decoding the JSON into the provider's typed payload, what a
//!   handler that also takes it pays.
//!
//! `cargo bench --bench verify`, then `python3 benches/ratios.py` for the table.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Request, Response};
use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use sha2::{Digest, Sha256};
use shipment_webhooks::{
    GoShiipEvent, GoShiipSignature, KosmoEvent, KosmoSignature, KourierBearer, KourierEvent,
    ShipmondoEvent, ShipmondoJwt,
};
use subtle::ConstantTimeEq;
use tower::{Layer, Service, ServiceExt, service_fn};

mod common;
use common::{SECRET, body_of, decode_fields, samples, signed};

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

/// The same request to a service with no layer, which reads the body as a
/// bare axum handler taking `Bytes` does: what sending a request costs the
/// bench, which `layer` pays too.
fn bench_bare(group: &mut BenchmarkGroup<'_, WallTime>, parts: &Parts, body: &Bytes) {
    let service = service_fn(|request: Request<Full<Bytes>>| async move {
        let body = request
            .into_body()
            .collect()
            .await
            .map_err(|never| match never {})?
            .to_bytes();
        black_box(body);
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    group.bench_function("bare", |b| {
        b.iter_batched(
            || Request::from_parts(parts.clone(), Full::new(body.clone())),
            |request| {
                let response = service
                    .oneshot(request)
                    .now_or_never()
                    .expect("ready")
                    .unwrap();
                assert!(response.status().is_success());
                response
            },
            BatchSize::SmallInput,
        )
    });
}

/// The whole layer as a Tower service: buffer, verify, parse, record, call the handler.
fn bench_layer<L>(group: &mut BenchmarkGroup<'_, WallTime>, layer: L, parts: &Parts, body: &Bytes)
where
    L: Layer<Handler>,
    L::Service:
        Service<Request<Full<Bytes>>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let service = layer.layer(service_fn(handler as fn(_) -> _));
    group.bench_function("layer", |b| {
        b.iter_batched(
            || Request::from_parts(parts.clone(), Full::new(body.clone())),
            |request| {
                let response = service
                    .clone()
                    .oneshot(request)
                    .now_or_never()
                    .expect("ready")
                    .unwrap();
                assert!(response.status().is_success());
                response
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench(c: &mut Criterion) {
    let key = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    let token = Sha256::digest(SECRET.as_bytes());
    for (size_name, size) in SIZES {
        for (provider, webhook) in samples(size) {
            let request = webhook.sign(SECRET);
            let (parts, _) = request.into_parts();
            let body = body_of(&webhook);
            let mut group = c.benchmark_group(format!("{provider}/{size_name}"));
            group.throughput(criterion::Throughput::Bytes(body.len() as u64));

            group.bench_function("hmac", |b| {
                b.iter(|| {
                    let mut mac = key.clone();
                    mac.update(black_box(&body));
                    black_box(mac.finalize())
                })
            });

            let message = signed(provider, &webhook, &body);
            group.bench_function("reference", |b| {
                b.iter(|| {
                    if provider == "kourier" {
                        let received = Sha256::digest(black_box(SECRET.as_bytes()));
                        assert!(bool::from(received.ct_eq(&token)));
                    } else {
                        let mut mac = key.clone();
                        mac.update(black_box(&message));
                        black_box(mac.finalize());
                    }
                    decode_fields(provider, black_box(&body));
                })
            });

            // Shipmondo's typed payload is the JWT's (the object its JSON string holds).
            let json = match provider {
                "shipmondo" => Bytes::from(webhook.payload_json()),
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
                _ => b.iter(|| serde_json::from_slice::<ShipmondoEvent>(black_box(&json)).unwrap()),
            });

            bench_bare(&mut group, &parts, &body);
            match provider {
                "kosmo" => bench_layer(&mut group, KosmoSignature::new(SECRET), &parts, &body),
                "kourier" => bench_layer(&mut group, KourierBearer::new(SECRET), &parts, &body),
                "shipmondo" => bench_layer(&mut group, ShipmondoJwt::new(SECRET), &parts, &body),
                _ => bench_layer(&mut group, GoShiipSignature::new(SECRET), &parts, &body),
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    // Short runs: every ratio is taken within one run, and each bench is
    // tens of thousands of iterations even so.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
