//! What the inbox tests share: opening each store, the app, signed webhooks
//! that differ, a recording handler, and waiting for the worker.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use shipment_webhooks::inbox::sqlx;
use shipment_webhooks::inbox::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use shipment_webhooks::inbox::{Delivery, Inbox, InboxStats, Worker};
use shipment_webhooks::testing::{SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, shipengine_demo_jwks};
use shipment_webhooks::{
    AfterShipSignature, EasyPostSignature, GoShiipSignature, KosmoSignature, KourierBearer,
    PerTenant, SendcloudSignature, ShipBobSignature, ShipEngineSignature, ShipmentStatus,
    ShipmondoJwt, ShippoSignature, TenantSource,
};
use time::OffsetDateTime;

pub const KOSMO: &str = "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm";
pub const KOURIER: &str = "kourier-test-token";
pub const SHIPMONDO: &str = "shipmondo-test-key-of-32-bytes!!";
pub const GOSHIIP: &str = "goshiip-test-secret";
pub const EASYPOST: &str = "A1B2C3";
pub const AFTERSHIP: &str = "aftership-test-secret";
pub const SENDCLOUD: &str = "secretkey";
pub const SHIPPO: &str = "shippo-test-secret";
pub const SHIPBOB: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// ShipEngine's signing key: the demo key pair, whose JWKS the app verifies with.
pub const SHIPENGINE: &str = SHIPENGINE_DEMO_PRIVATE_KEY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// A PostgreSQL URL to test against, if one is given.
pub fn postgres_url() -> Option<String> {
    match std::env::var("SHIPMENT_WEBHOOKS_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("SHIPMENT_WEBHOOKS_REQUIRE_POSTGRES").is_none(),
                "SHIPMENT_WEBHOOKS_REQUIRE_POSTGRES is set but SHIPMENT_WEBHOOKS_TEST_POSTGRES is not"
            );
            eprintln!("SHIPMENT_WEBHOOKS_TEST_POSTGRES is not set: PostgreSQL test skipped");
            None
        }
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A number no other call in this process returns, mixed with the process id.
pub fn unique() -> u64 {
    (u64::from(std::process::id()) << 32) | UNIQUE.fetch_add(1, Ordering::Relaxed)
}

/// A fresh SQLite file under the target directory.
pub fn sqlite_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inbox");
    std::fs::create_dir_all(&dir).expect("a directory for test databases");
    let path = dir.join(format!("{name}-{}.db", unique()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// A schema of its own in the test database: its name.
pub async fn postgres_schema(url: &str, name: &str) -> String {
    let schema = format!("inbox_{name}_{}", unique());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("the PostgreSQL test database");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("a schema for the test");
    admin.close().await;
    schema
}

/// Connections to `url` that work in `schema`.
pub fn in_schema(url: &str, schema: &str) -> PgConnectOptions {
    url.parse::<PgConnectOptions>()
        .expect("a PostgreSQL URL")
        .options([("search_path", schema)])
}

/// A fresh, empty inbox in `backend`, or `None` where PostgreSQL is not given.
pub async fn open(backend: Backend, name: &str) -> Option<Inbox> {
    Some(match backend {
        Backend::Memory => Inbox::in_memory(),
        Backend::Sqlite => Inbox::sqlite(sqlite_path(name))
            .await
            .expect("a SQLite inbox"),
        Backend::Postgres => {
            let url = postgres_url()?;
            let schema = postgres_schema(&url, name).await;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .connect_with(in_schema(&url, &schema))
                .await
                .expect("a pool on the test schema");
            Inbox::postgres_pool(pool)
                .await
                .expect("a PostgreSQL inbox")
        }
    })
}

/// Every provider's route into `inbox`, and a tenant route for Kosmo.
pub fn app(inbox: &Inbox) -> Router {
    let receive = || post(inbox.receiver());
    let tenants = PerTenant::new(
        TenantSource::path_segment(2),
        |tenant: std::sync::Arc<str>| async move {
            Ok::<_, std::convert::Infallible>(
                (tenant.starts_with("shop-")).then(|| KosmoSignature::new(KOSMO)),
            )
        },
    );
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
        .route(
            "/webhooks/easypost",
            receive().route_layer(EasyPostSignature::new(EASYPOST)),
        )
        .route(
            "/webhooks/aftership",
            receive().route_layer(AfterShipSignature::new(AFTERSHIP)),
        )
        .route(
            "/webhooks/sendcloud",
            receive().route_layer(SendcloudSignature::new(SENDCLOUD)),
        )
        .route(
            "/webhooks/shippo",
            receive().route_layer(ShippoSignature::new(SHIPPO)),
        )
        .route(
            "/webhooks/shipbob",
            receive().route_layer(ShipBobSignature::new(SHIPBOB)),
        )
        .route(
            "/webhooks/shipengine",
            // The tests stamp events with fixed times (`at`), far from now.
            receive().route_layer(
                ShipEngineSignature::from_jwks(shipengine_demo_jwks())
                    .expect("the demo JWKS")
                    .max_age(Duration::from_secs(100 * 365 * 24 * 3600))
                    .max_future_skew(Duration::from_secs(100 * 365 * 24 * 3600)),
            ),
        )
        .route(
            "/webhooks/tenants/{tenant}/kosmo",
            receive().route_layer(tenants),
        )
}

/// A UUID (Kosmo's `eventId` must be one) no other call returns.
pub fn uuid() -> String {
    let n = unique();
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        n >> 32,
        n & 0xffff_ffff_ffff
    )
}

/// A Kosmo event of a fresh id about `order`, at `time`.
pub fn kosmo(order: &str, status: &str, time: OffsetDateTime) -> Webhook {
    Webhook::kosmo(status)
        .field("/eventId", uuid())
        .field("/orderId", order)
        .at(time)
}

/// A GoShiip update of shipment `reference`.
pub fn goshiip(reference: &str, status: &str) -> Webhook {
    Webhook::goshiip(status).field("/shipment/data/reference", reference)
}

/// A Shippo Track update of tracking number `number`, its event at `time`.
pub fn shippo(number: &str, status: &str, time: OffsetDateTime) -> Webhook {
    Webhook::shippo(status)
        .field("/data/tracking_number", number)
        .at(time)
}

/// A ShipBob update of shipment `shipment`, its event at `time`, under a
/// fresh `webhook-id`.
pub fn shipbob(shipment: u64, status: &str, time: OffsetDateTime) -> Webhook {
    Webhook::shipbob(status)
        .field("/shipment_id", shipment)
        .header(
            shipment_webhooks::standard_webhooks::ID_HEADER,
            &format!("msg_{}", unique()),
        )
        .at(time)
}

/// A ShipEngine tracking update of `tracking_number` whose carrier event
/// happened at `time`, sent (and signed) at `sent`.
pub fn shipengine(
    tracking_number: &str,
    status_code: &str,
    time: OffsetDateTime,
    sent: OffsetDateTime,
) -> Webhook {
    let occurred_at = time
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time RFC 3339 writes");
    Webhook::shipengine(status_code)
        .field("/data/tracking_number", tracking_number)
        .field(
            "/data/events",
            serde_json::json!([{ "occurred_at": occurred_at }]),
        )
        .header(
            shipment_webhooks::shipengine::TIMESTAMP_HEADER,
            &sent
                .format(&time::format_description::well_known::Rfc3339)
                .expect("a time RFC 3339 writes"),
        )
}

/// A time `seconds` from a fixed instant, to order events by.
pub fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + seconds).expect("a valid time")
}

/// What a handler saw of one delivery.
#[derive(Debug, Clone)]
pub struct Handled {
    pub id: i64,
    pub attempt: u32,
    pub shipment: String,
    pub status: ShipmentStatus,
}

/// Every delivery a [`recording`] worker handled, in order.
#[derive(Debug, Clone, Default)]
pub struct Record(Arc<Mutex<Vec<Handled>>>);

impl Record {
    pub fn push(&self, delivery: &Delivery) {
        self.0.lock().expect("the record").push(Handled {
            id: delivery.id(),
            attempt: delivery.attempt(),
            shipment: delivery.event().id.clone(),
            status: delivery.event().status.clone(),
        });
    }

    pub fn handled(&self) -> Vec<Handled> {
        self.0.lock().expect("the record").clone()
    }
}

/// A worker that records each delivery and succeeds, polling often.
pub fn recording(inbox: &Inbox) -> (Worker, Record) {
    let record = Record::default();
    let seen = record.clone();
    let worker = inbox
        .worker(move |delivery: Delivery| {
            seen.push(&delivery);
            async { Ok(()) }
        })
        .poll_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(10), Duration::from_millis(40));
    (worker, record)
}

/// Waits up to 10 s for the inbox's counts to satisfy `done`; its last counts.
pub async fn wait_for(inbox: &Inbox, done: impl Fn(&InboxStats) -> bool) -> InboxStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        // A read that fails (a pooled connection a dropped runtime made) is read again.
        let stats = inbox.stats().await;
        if tokio::time::Instant::now() > deadline {
            return stats.expect("the inbox's counts");
        }
        if let Ok(stats) = stats
            && done(&stats)
        {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Nothing left for a worker to do.
pub fn settled(stats: &InboxStats) -> bool {
    stats.pending == 0 && stats.processing == 0
}
