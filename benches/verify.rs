//! What each layer costs per request, beside two references measured in the
//! same run: one HMAC-SHA256 over the same body (the cheapest signature
//! check), and decoding its JSON into the provider's typed payload (what a
//! receiver that reads the payload does). The layer decodes only what
//! `ShipmentEvent` needs; a handler that also takes the typed payload pays
//! that decode too.
//!
//! `cargo bench --bench verify`, then `python3 benches/ratios.py` for the table.

use std::convert::Infallible;
use std::hint::black_box;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Request, Response};
use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use sha2::Sha256;
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{
    GoShiipEvent, GoShiipSignature, KosmoEvent, KosmoSignature, KourierBearer, KourierEvent,
    ShipmondoEvent, ShipmondoJwt,
};
use tower::{Layer, Service, ServiceExt, service_fn};

const SECRET: &str = "a-benchmark-secret-of-32-bytes!!";
const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("64KiB", 64 * 1024)];

/// `webhook` with items appended to the array at `pointer` until its signed
/// body reaches `size` bytes: realistic bulk (stops, order lines, history).
fn grow(webhook: Webhook, pointer: &str, item: Value, size: usize) -> Webhook {
    let mut items = Vec::new();
    loop {
        let candidate = webhook.clone().field(pointer, Value::Array(items.clone()));
        if body_of(&candidate).len() >= size {
            return candidate;
        }
        items.push(item.clone());
    }
}

fn body_of(webhook: &Webhook) -> Bytes {
    let body = webhook.sign(SECRET).into_body();
    body.collect()
        .now_or_never()
        .expect("a full body")
        .expect("infallible")
        .to_bytes()
}

fn samples(size: usize) -> [(&'static str, Webhook); 4] {
    let stop = json!({"type": "DROPOFF", "status": "PENDING", "address": "8 Marina View, Singapore 018960", "contact": {"name": "Ana Lim", "phone": "+65 8123 4567"}});
    let line = json!({"sku": "TSHIRT-M-BLK", "name": "T-shirt, black, M", "quantity": 2, "unit_price": "129.00", "vat": "32.25"});
    let history = json!({"status": "In Progress", "at": "2025-05-01T09:30:00Z", "location": "Lekki hub, Lagos"});
    [
        (
            "kosmo",
            grow(Webhook::kosmo("PICKED UP"), "/stops", stop, size),
        ),
        (
            "kourier",
            grow(Webhook::kourier("in_transit"), "/items", line.clone(), size),
        ),
        (
            "shipmondo",
            grow(
                Webhook::shipmondo_order("sent"),
                "/data/order_lines",
                line,
                size,
            ),
        ),
        (
            "goshiip",
            grow(
                Webhook::goshiip("In Progress"),
                "/shipment/history",
                history,
                size,
            ),
        ),
    ]
}

type Ready = std::future::Ready<Result<Response<Body>, Infallible>>;
type Handler = tower::util::ServiceFn<fn(Request<Body>) -> Ready>;

/// A handler that checks the layer recorded the event and answers at once.
fn handler(request: Request<Body>) -> Ready {
    assert!(
        request.extensions().len() >= 3,
        "the layer recorded the event"
    );
    std::future::ready(Ok(Response::new(Body::empty())))
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

            let json = match provider {
                // Shipmondo's JSON is the JWT's payload (the object its JSON string holds).
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

criterion_group!(benches, bench);
criterion_main!(benches);
