//! Receive delivery providers' webhooks in axum or any Tower server, verified
//! and normalized.
//!
//! Each provider gets a Tower layer that reads the body (up to a limit),
//! checks the provider's proof over the exact bytes received and refuses
//! anything else with a JSON error. Behind it, the handler takes a
//! [`ShipmentEvent`] — provider, id, status, timestamp — the same whatever the
//! provider, or the provider's own typed payload.
//!
//! ```
//! use axum::{Router, http::StatusCode, routing::post};
//! use shipment_webhooks::{
//!     AfterShipSignature, EasyPostSignature, GoShiipSignature, KosmoSignature, KourierBearer,
//!     SendcloudSignature, ShipBobSignature, ShipmentEvent,
//!     ShipmondoJwt, ShippoSignature,
//! };
//!
//! async fn on_event(event: ShipmentEvent) -> StatusCode {
//!     println!("{} {} is now {}", event.provider, event.id, event.status);
//!     StatusCode::OK
//! }
//!
//! let app: Router = Router::new()
//!     .route("/webhooks/kosmo", post(on_event).route_layer(KosmoSignature::new("whk_...")))
//!     .route("/webhooks/kourier", post(on_event).route_layer(KourierBearer::new("token")))
//!     .route("/webhooks/shipmondo", post(on_event).route_layer(ShipmondoJwt::new("a long random key from Shipmondo")))
//!     .route("/webhooks/goshiip", post(on_event).route_layer(GoShiipSignature::new("secret")))
//!     .route("/webhooks/easypost", post(on_event).route_layer(EasyPostSignature::new("A1B2C3")))
//!     .route("/webhooks/aftership", post(on_event).route_layer(AfterShipSignature::new("secret")))
//!     .route("/webhooks/sendcloud", post(on_event).route_layer(SendcloudSignature::new("secretkey")))
//!     .route("/webhooks/shippo", post(on_event).route_layer(ShippoSignature::new("secret")))
//!     .route("/webhooks/shipbob", post(on_event).route_layer(ShipBobSignature::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")));
//! ```
//!
//! # Providers
//!
//! | provider | layer | proof | typed payload |
//! |---|---|---|---|
//! | [Kosmo](kosmo) | [`KosmoSignature`] | base64 HMAC-SHA256 of `eventId + orderId + timestamp` in `X-Kosmo-Signature` | [`KosmoEvent`] |
//! | [Kourier](kourier) | [`KourierBearer`] | `Authorization: Bearer <token>` | [`KourierEvent`] |
//! | [Shipmondo](shipmondo) | [`ShipmondoJwt`] | HS256 JWT in the body's `data` | [`ShipmondoEvent`] |
//! | [GoShiip](goshiip) | [`GoShiipSignature`] | hex HMAC-SHA256 of the body in `X-Signature` | [`GoShiipEvent`] |
//! | [EasyPost](easypost) | [`EasyPostSignature`] | `hmac-sha256-hex=` and the hex HMAC-SHA256 of the body (key: the secret in NFKD) in `X-Hmac-Signature` | [`EasyPostEvent`] |
//! | [AfterShip](aftership) | [`AfterShipSignature`] | base64 HMAC-SHA256 of the body in `aftership-hmac-sha256` | [`AfterShipEvent`] |
//! | [Sendcloud](sendcloud) | [`SendcloudSignature`] | hex HMAC-SHA256 of the body in `Sendcloud-Signature` | [`SendcloudEvent`] |
//! | [Shippo](shippo) | [`ShippoSignature`] | `Shippo-Auth-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of `"<t>.<body>"` (format inferred from integrations) | [`ShippoEvent`] |
//! | [ShipBob](shipbob) | [`ShipBobSignature`] | [Standard Webhooks](standard_webhooks): `webhook-signature: v1,<base64>` over `"<webhook-id>.<webhook-timestamp>.<body>"` | [`ShipBobEvent`] |
//!
//! Any other Standard Webhooks sender is verified, without a framework, by
//! [`StandardWebhooks`].
//! | [ShipEngine / ShipStation API](shipengine) | [`ShipEngineSignature`] | base64 RSA-SHA256 of `<timestamp>.<body>` in `x-shipengine-rsa-sha256-signature`, key from a JWKS by `kid` | [`ShipEngineEvent`] |
//!
//! Each provider module says what its proof does and does not protect, and
//! maps its statuses to [`ShipmentStatus`] in a table.
//!
//! # Every layer
//!
//! - reads at most 1 MiB (`.body_limit(bytes)`), refusing more with 413 before
//!   reading past the limit, whether the body declares its length or is chunked;
//! - holds the body once, in one buffer, however it is framed: a body sent one
//!   byte per chunk costs its size, not the ~40 times its size that keeping
//!   every frame costs. A handler that reads a body without a layer in front
//!   (axum's own `Bytes`, `String` or `Json` extractors) keeps every frame, so
//!   give such routes a small `DefaultBodyLimit`;
//! - takes more secrets with `.with_secret(label, secret)` so one can be
//!   rotated without downtime, and tells which one matched ([`MatchedSecret`]);
//! - compares in constant time, keys each HMAC once at construction, and never
//!   shows a secret in `Debug`, logs or responses;
//! - passes the request on with the very bytes it verified, so the handler can
//!   still take `Bytes` or `Json<T>` (whatever the body limit: it lifts axum's
//!   2 MB default for them), and a [`VerifiedWebhook`] in its extensions for
//!   services that are not axum handlers;
//! - refuses everything else with a [`WebhookRejection`]: 401 for a missing,
//!   malformed or wrong proof, 400 for a body that is not the provider's shape,
//!   413 for one too large, each with `{"error": "...", "reason": "...",
//!   "details": "..."}`, `reason` being its [`RejectionKind`].
//!   Refusals are traced at `debug` level, with hints for a signature
//!   mismatch, and put in the response's extensions for middleware outside;
//! - runs each webhook in an `info` span `webhook` (provider, route, matched
//!   secret, tenant).
//!
//! Put it on with `route_layer`, so that other methods get axum's 405. Each
//! layer's `verify` method makes the same checks for servers that are not
//! Tower ([`KosmoSignature::verify`]...) and returns [`Verified`]: a webhook,
//! or a provider's [`ConnectionTest`] to answer with 200. [`PerTenant`]
//! looks a layer up per request, for one secret per tenant.
//!
//! Every provider is one module on one provider-agnostic core (the service,
//! the verified record, the extractors, secrets, refusals, tenants, the
//! inbox); `docs/adding-a-provider.md` in the repository is the contract for
//! adding one.
//!
//! The extractors ([`ShipmentEvent`], [`MatchedSecret`] and the typed payloads)
//! only work behind a layer: without one they answer 500 naming the missing
//! layer, so a route cannot silently accept unverified webhooks.
//!
//! The layer decodes only the few fields a [`ShipmentEvent`] is made of. A
//! typed payload ([`KosmoEvent`]...) is decoded from the verified bytes when a
//! handler takes it, and refused there with 400 if it is not that shape, so
//! handlers that need only the `ShipmentEvent` never pay for the rest.
//!
//! # Feature flags
//!
//! | feature | what it adds |
//! |---|---|
//! | `testing` | [`testing`]: build requests signed exactly as each provider signs them |
//! | `secrecy` | [`WebhookSecret`] for `secrecy`'s `SecretString` and `SecretSlice<u8>` |
//! | `metrics` | counters `shipment_webhooks_accepted_total{provider}` and `shipment_webhooks_refused_total{provider, reason}` through the `metrics` facade, and the inbox's `shipment_webhooks_duplicates_total{provider}` |
//! | `inbox` | the durable [`inbox`] and its worker, with the in-memory store |
//! | `sqlite` | the inbox's SQLite store (SQLite compiled in) |
//! | `postgres` | the inbox's PostgreSQL store |
//! | `cli` | the `shipment-webhooks` command line (a binary; `clap`) |
//! | `admin` | `Inbox::admin`: the inbox's admin page, an axum `Router` of server-rendered HTML |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

// Every Rust block of the README compiles, as users paste them (some need
// the SQLite store: `cargo test --all-features`).
#[cfg(all(doctest, feature = "sqlite"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod event;
mod extract;
mod json;
mod proof;
#[cfg(feature = "inbox")]
mod providers;
mod rejection;
mod secret;
pub mod tenant;
mod verify;
mod webhook;
mod window;

pub mod aftership;
pub mod easypost;
pub mod goshiip;
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub mod inbox;
pub mod kosmo;
pub mod kourier;
pub mod sendcloud;
pub mod shipbob;
pub mod shipengine;
pub mod shipmondo;
pub mod shippo;
pub mod standard_webhooks;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use aftership::{AfterShipEvent, AfterShipSignature};
pub use easypost::{EasyPostEvent, EasyPostSignature};
pub use event::{Provider, ShipmentEvent, ShipmentStatus, UnknownProvider};
pub use goshiip::{GoShiipEvent, GoShiipSignature};
pub use kosmo::{KosmoEvent, KosmoSignature};
pub use kourier::{KourierBearer, KourierEvent};
pub use rejection::{RejectionKind, WebhookRejection};
pub use secret::{ConfigError, MatchedSecret, WebhookSecret};
pub use sendcloud::{SendcloudEvent, SendcloudSignature};
pub use shipbob::{ShipBobEvent, ShipBobSignature};
pub use shipengine::{ShipEngineEvent, ShipEngineSignature};
pub use shipmondo::{ShipmondoEvent, ShipmondoJwt};
pub use shippo::{ShippoEvent, ShippoSignature};
pub use standard_webhooks::{StandardWebhookProof, StandardWebhooks};
pub use tenant::{PerTenant, TenantSource};
pub use verify::{
    ConnectionTest, DEFAULT_BODY_LIMIT, ResponseFuture, Verified, Verifier, VerifyWebhook,
};
pub use webhook::{DedupKey, TypedPayload, VerifiedWebhook};

/// The body the service behind a layer receives, holding the verified bytes
/// (axum's own body type, which any `http_body::Body` of `Bytes` converts into).
pub use axum_core::body::Body;
/// The crates whose types this crate's API takes and returns, re-exported so
/// that their versions always match: `bytes::Bytes`, `http::HeaderMap`,
/// `time::OffsetDateTime`.
pub use {bytes, http, time};
