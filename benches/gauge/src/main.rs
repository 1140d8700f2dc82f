//! The instruction gauge (`benches/instructions.sh`): sends COUNT
//! signed 1 KiB webhooks through an axum `Router` in-process, with no
//! network, runtime or subscriber, so callgrind counts the same instructions
//! on every run.
//!
//! `instructions ROUTE COUNT [SIZE]` (SIZE in bytes, default 1024), where ROUTE is
//! - `bare`: the GoShiip webhook to a route that takes the body as `Bytes`;
//! - `floor`: the GoShiip webhook to a route behind benches/common's
//!   `Floor`, the least a layer with this crate's API does, whose handler
//!   takes the record it left (`floor - bare` is what any such layer costs);
//! - `kosmo`, `kourier`, `shipmondo`, `goshiip`, `easypost`, `aftership`,
//!   `sendcloud`, `shippo`, `shipbob`, `shipengine`: that provider's webhook to
//!   a route behind its layer whose handler takes the `ShipmentEvent`;
//! - `hmac-kosmo`... : one HMAC-SHA256 of what that provider signs (for
//!   Kourier, the token's SHA-256 digest compared in constant time, as
//!   `KourierBearer` compares tokens; for ShipEngine, the RSA-SHA256
//!   verification of its signature), so that the hashing, which takes
//!   sha2's software path under valgrind (no SHA-NI), shows apart;
//! - `fields-kosmo`... : serde_json decoding, borrowed, the few fields the
//!   `ShipmentEvent` is made of (for Shipmondo, through its format: the
//!   envelope, the JWT's header and payload from base64, the payload's JSON
//!   string unescaped), as the criterion reference does.
//!
//! `hmac-` plus `fields-` is the reference of `benches/verify.rs`: the work no
//! layer can avoid.
//!
//! The script runs each route twice, with two counts, and divides the
//! difference, so start-up cancels out.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Extension, Router};
use futures_util::FutureExt;
use shipment_webhooks::{
    AfterShipSignature, EasyPostSignature, GoShiipSignature, KosmoSignature, KourierBearer,
    SendcloudSignature, ShipBobSignature, ShipmentEvent, ShipmondoJwt, ShippoSignature,
};
use tower::Service;

#[path = "../../common/mod.rs"]
mod common;
use common::{
    ANY_AGE, FloorLayer, FloorRecord, Reference, SECRET, body_of, decode_fields, samples,
    shipengine_layer, signing_key, whsec,
};

async fn bare(_body: Bytes) -> StatusCode {
    StatusCode::OK
}

async fn verified(_event: ShipmentEvent) -> StatusCode {
    StatusCode::OK
}

async fn floor(Extension(_record): Extension<FloorRecord>) -> StatusCode {
    StatusCode::OK
}

/// Every provider's path, behind its layer, or for `bare` and `floor` behind
/// none or the floor's.
fn router(route: &str) -> Router {
    let route = |layered: axum::routing::MethodRouter| match route {
        "bare" => post(bare),
        "floor" => post(floor).route_layer(FloorLayer::default()),
        _ => layered,
    };
    Router::new()
        .route(
            "/webhooks/kosmo",
            route(post(verified).route_layer(KosmoSignature::new(SECRET))),
        )
        .route(
            "/webhooks/kourier",
            route(post(verified).route_layer(KourierBearer::new(SECRET))),
        )
        .route(
            "/webhooks/shipmondo",
            route(post(verified).route_layer(ShipmondoJwt::new(SECRET))),
        )
        .route(
            "/webhooks/goshiip",
            route(post(verified).route_layer(GoShiipSignature::new(SECRET))),
        )
        .route(
            "/webhooks/easypost",
            route(post(verified).route_layer(EasyPostSignature::new(SECRET))),
        )
        .route(
            "/webhooks/aftership",
            route(post(verified).route_layer(AfterShipSignature::new(SECRET))),
        )
        .route(
            "/webhooks/sendcloud",
            route(post(verified).route_layer(SendcloudSignature::new(SECRET))),
        )
        .route(
            "/webhooks/shippo",
            route(post(verified).route_layer(ShippoSignature::new(SECRET).max_age(ANY_AGE))),
        )
        .route(
            "/webhooks/shipbob",
            route(post(verified).route_layer(ShipBobSignature::new(whsec()).max_age(ANY_AGE))),
        )
        .route(
            "/webhooks/shipengine",
            route(post(verified).route_layer(shipengine_layer())),
        )
}

/// The global allocator, counting what is asked of it: the allocations
/// of a run, and their bytes, do not depend on the machine's load either.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

impl Counting {
    fn count(size: usize) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(route), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: instructions ROUTE COUNT");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("COUNT is a number");
    let size: usize = args
        .next()
        .map_or(1024, |size| size.parse().expect("SIZE is a number"));
    run(&route, count, size);
    // For the script, which divides the difference between two counts.
    eprintln!(
        "allocations {} bytes {}",
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed)
    );
}

/// Sends `count` of `route`'s requests (or runs its reference) of `size` bytes.
fn run(route: &str, count: usize, size: usize) {
    let provider = route
        .strip_prefix("hmac-")
        .or_else(|| route.strip_prefix("fields-"))
        .unwrap_or(route);
    let provider = if provider == "bare" || provider == "floor" {
        "goshiip"
    } else {
        provider
    };
    let (provider, webhook) = samples(size)
        .into_iter()
        .find(|(name, _)| *name == provider)
        .unwrap_or_else(|| panic!("unknown route {route}"));
    let body = body_of(&webhook);

    if route.starts_with("fields-") {
        for _ in 0..count {
            decode_fields(provider, black_box(&body));
        }
        return;
    }
    if route.starts_with("hmac-") {
        let reference = Reference::new(provider, &webhook, &body);
        for _ in 0..count {
            reference.hmac();
        }
        return;
    }

    let (parts, _) = webhook.sign(signing_key(provider)).into_parts();
    // As `axum::serve` does: every route made once, not per request.
    let mut app = router(route).with_state::<()>(()).into_service::<Body>();
    for _ in 0..count {
        let request = Request::from_parts(parts.clone(), Body::from(body.clone()));
        let response = app
            .call(request)
            .now_or_never()
            .expect("answered at once")
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{route}");
    }
}
