//! [ShipEngine](https://www.shipengine.com) and the ShipStation API (v2): an
//! RSA-SHA256 signature over `"<timestamp>.<body>"`, checked with the public
//! key its id names in ShipEngine's JWKS.
//!
//! # What is signed, by which key
//!
//! ShipStation's "Webhooks validation" guide
//! (<https://docs.shipstation.com/apis/docs/guides/webhooks-validation>, and
//! its ShipEngine twin under `/apis/shipengine/`) says every webhook carries
//! "a digital signature (RSA-SHA256)" and three headers:
//!
//! | header | what |
//! |---|---|
//! | `x-shipengine-rsa-sha256-signature` ([`SIGNATURE_HEADER`]) | the signature, standard base64 (RFC 4648 §4, padded) |
//! | `x-shipengine-rsa-sha256-key-id` ([`KEY_ID_HEADER`]) | the `kid` of the key in ShipEngine's JWKS |
//! | `x-shipengine-timestamp` ([`TIMESTAMP_HEADER`]) | when it was sent |
//!
//! It tells receivers to use "the raw, unparsed request body exactly as
//! received", and to refuse a timestamp "more than 5 minutes" from their
//! clock, allowing for future ones. The keys are published as a JWKS at
//! <https://api.shipengine.com/jwks> ([`JWKS_URL`]; EU accounts:
//! <https://api.eu.shipengine.com/jwks>, [`EU_JWKS_URL`]).
//!
//! **Inferred, not read in ShipEngine's own pages:** the signed bytes are the
//! `x-shipengine-timestamp` header's value exactly as sent, a `.`, then the
//! body (`` `${timestamp}.${rawBody}` ``), signed with RSASSA-PKCS1-v1_5 and
//! SHA-256. The guide's step that builds the signed string could not be read;
//! this is what every public integration does, some saying they ported it
//! from that guide (Node `crypto.verify('sha256', …)` and WebCrypto
//! `RSASSA-PKCS1-v1_5` receivers; see `docs/platforms-research.md` §5 in this
//! repository for the files). Also inferred: the timestamp's format. The
//! integrations parse it with JavaScript's `Date.parse`, so an ISO 8601 text;
//! this crate reads RFC 3339, ISO 8601 with or without an offset (UTC if
//! none), and epoch seconds or milliseconds, and always signs over the header's
//! bytes as sent. If ShipEngine's bytes ever differ, signatures stop matching
//! (401 `signature_mismatch`) rather than anything being accepted.
//!
//! The signature is standard base64, as every integration decodes it
//! (Node's `Buffer.from(signature, "base64")`); base64url, unpadded or
//! non-canonical text is refused (401 `malformed_proof`): no integration
//! reports ShipEngine sending it.
//!
//! This module covers ShipEngine and ShipStation API **v2**, which sign
//! their webhooks. ShipStation's legacy **V1** webhooks (`ORDER_NOTIFY`,
//! `SHIP_NOTIFY`) are not signed at all: nothing here can verify them.
//!
//! # Keys
//!
//! The layer verifies with the RSA keys of a JWKS, kept by `kid`:
//!
//! - [`ShipEngineSignature::from_jwks`] takes the JWKS text (fetch
//!   <https://api.shipengine.com/jwks> once and ship it, or read it from
//!   your configuration); [`from_jwks_file`](ShipEngineSignature::from_jwks_file)
//!   reads a file;
//! - [`ShipEngineSignature::from_lookup`] (or
//!   [`refresh_with`](ShipEngineSignature::refresh_with) on a layer built
//!   from a JWKS) takes an async function you write that returns the current
//!   JWKS text. This crate has no HTTP client; with `reqwest`:
//!
//! ```ignore
//! let layer = ShipEngineSignature::from_lookup(|| async {
//!     let response = reqwest::get(shipment_webhooks::shipengine::JWKS_URL).await?;
//!     response.error_for_status()?.text().await
//! });
//! // At start-up, so that the first webhooks need not wait for it.
//! layer.refresh_keys().await?;
//! ```
//!
//! Keys other than RSA signing keys for RS256 (ShipEngine's JWKS has been
//! reported to hold an EC key too), keys without a `kid`, and RSA keys under
//! 2048 bits ([`MIN_RSA_BITS`]) are skipped; a JWKS with no usable key is
//! refused with [`ConfigError::InvalidKeySet`].
//!
//! A request naming a `kid` the set lacks makes the layer call the lookup,
//! at most once per [`refresh_interval`](ShipEngineSignature::refresh_interval)
//! (default [`DEFAULT_REFRESH_INTERVAL`], 60 s, as the integration with the
//! most complete key handling does: its `DEFAULT_UNKNOWN_KEY_REFRESH_INTERVAL_MS`,
//! file 55369956689 of `docs/platforms-research.md` §5), and wait for it: ShipEngine publishes a
//! new key before it signs with it. Within the interval, or if the key is
//! still unknown, the request is refused with 401 `signature_mismatch`,
//! before its body is read. So forged key ids cost at most one lookup a
//! minute. If the lookup fails (or returns no usable key), the old keys stay
//! and the request that waited gets 503 `lookup_failed`, so ShipEngine
//! retries it later. Two requests arriving together with a new key: one
//! waits for the lookup, the other is refused (401) and retried by ShipEngine
//! (every two hours); so call [`refresh_keys`](ShipEngineSignature::refresh_keys)
//! once at start-up rather than leave the first webhooks to look the keys up.
//!
//! Behind [`PerTenant`](crate::PerTenant), each tenant's layer verifies with
//! the keys it was built with: the tenant's lookup is not called per key id
//! (build each with [`from_jwks`](ShipEngineSignature::from_jwks); the
//! tenant cache's time-to-live renews them).
//!
//! # What the signature does not cover
//!
//! The other headers, and the URL. The time is signed and checked: a webhook
//! whose `x-shipengine-timestamp` is more than five minutes old or ahead
//! ([`DEFAULT_TOLERANCE`]) is refused with 401 `stale`, once its signature
//! holds ([`max_age`](ShipEngineSignature::max_age),
//! [`max_future_skew`](ShipEngineSignature::max_future_skew) to change
//! either bound). Within the window a captured request can be replayed: the
//! [dedup key](crate::VerifiedWebhook::dedup_key) makes a replay a duplicate
//! (see [Retries](#retries)).
//!
//! ShipStation's guide suggests 404 for missing headers and 400 for a stale
//! timestamp. This crate answers every refusal of the proof with 401, like
//! every other layer (`missing_proof`, `stale`): a 4xx either way, and one
//! status for "this is not a genuine webhook" is simpler to monitor.
//!
//! # Retries
//!
//! "Webhook delivery will be attempted 3 times with a 2 hour delay between
//! each attempt after which it will be discarded"
//! (<https://www.shipengine.com/docs/tracking/webhooks/>). Each attempt is
//! signed anew, so the window does not refuse retries, and a retry's
//! `x-shipengine-timestamp` is not the first attempt's. So a tracking
//! webhook's [dedup key](crate::VerifiedWebhook::dedup_key) is the SHA-256
//! of its body alone, which holds the whole tracking record: a retry is a
//! duplicate. Any other webhook's body names only a resource
//! (`resource_url`), which two different events may share: its key is over
//! the signed timestamp and body, so two events are never merged, and a
//! retry reaches the handler again (as a new notice about that resource).
//!
//! # Fields of [`ShipmentEvent`]
//!
//! The body is `{"resource_url", "resource_type", "data"}`
//! (<https://docs.shipstation.com/apis/docs/guides/webhooks-schemas>).
//! Tracking webhooks have `resource_type` `API_TRACK` (ShipEngine) or
//! `TRACK_EVENT_V2` (ShipStation v2) and a tracking record in `data`
//! (`ShipEngine/shipengine-dotnet` @ `e844ad7`, `generation/swagger.json`:
//! `tracking_information`, `track_event` and `status_code`):
//!
//! - `id` is `data.tracking_number`: what a shop has and what every event of
//!   the shipment carries (the label id is only inside `resource_url`). It is
//!   unique per carrier; `data.carrier_code` is in [`ShipEngineEvent`];
//! - `status` maps `data.status_code`, `raw_status` is the code;
//! - `timestamp` is the newest `data.events[].occurred_at` (the carrier's
//!   event time, "Timestamp for carrier event", ISO 8601 UTC); with no
//!   readable event time, the signed `x-shipengine-timestamp`. The carrier's
//!   time orders events as they happened; the send time would let a retry
//!   sent two hours late supersede a newer event;
//! - `event_id` is `None`: ShipEngine sends none. Deduplicate on
//!   [`dedup_key`](crate::VerifiedWebhook::dedup_key) (see [Retries](#retries)).
//!
//! Any other `resource_type` (`batch`, `rate`, `carrier_connected`,
//! `report_complete`, `sales_orders_imported`,
//! `order_source_refresh_complete` events, swagger.json `webhook_event`) is
//! verified and passed on: `id` is its `resource_url` (the resource it is
//! about; the `resource_type` if there is none), `status` is `other` with
//! the `resource_type` as `raw_status`, and `timestamp` is the signed
//! header time. ShipEngine sends no test or ping event.
//!
//! A tracking webhook without `data.tracking_number` or `data.status_code`
//! is refused with 400 once its signature holds.
//!
//! # Statuses
//!
//! | ShipEngine `status_code` | meaning (swagger.json `status_code`, `ShipEngineSDK/Model/StatusCode.cs`, both @ `e844ad7`) | [`ShipmentStatus`] |
//! |---|---|---|
//! | `NY` | Not Yet In System | `created` |
//! | `AC` | Accepted | `picked_up` |
//! | `IT` | In Transit | `in_transit` |
//! | `DE` | Delivered | `delivered` |
//! | `SP` | Delivered To Collection Location | `at_pickup_point` |
//! | `AT` | Delivery Attempt | `failed` |
//! | `EX` | Exception | `failed` |
//! | `UN` | Unknown | `other` |
//! | any other word of the vocabulary | that status |
//! | any other | `other` |
//!
//! `EX` covers returns and customs holds too; `data.status_detail_code`
//! (in [`ShipEngineEvent`]'s `data`) says which. Codes are read in any case:
//! an older SDK (`StatusCode.cs` @ `0427f85`) spells them in lower case, and
//! lists no `SP`.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{ShipEngineSignature, ShipmentEvent};
//!
//! async fn on_shipengine(event: ShipmentEvent) {
//!     println!("{} is {}", event.id, event.status);
//! }
//!
//! # let jwks = shipment_webhooks::testing::shipengine_demo_jwks();
//! // The JWKS text, as fetched from https://api.shipengine.com/jwks.
//! let layer = ShipEngineSignature::from_jwks(jwks).expect("a JWKS with an RSA key");
//! let app: Router = Router::new().route("/webhooks/shipengine", post(on_shipengine).route_layer(layer));
//! ```

mod keys;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use rsa::Pkcs1v15Sign;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::extract::typed_payload;
use crate::json::{optional_str, parse_object, quote};
use crate::proof::{no_secret_matched, proof_text, proof_value};
use crate::verify::{
    BoxError, DEFAULT_BODY_LIMIT, Resolve, Resolving, Verified, Verifier, Verifiers, sealed,
};
use crate::window::TimeWindow;
use crate::{
    ConfigError, MatchedSecret, Provider, RejectionKind, ShipmentEvent, ShipmentStatus,
    TypedPayload, VerifiedWebhook, VerifyWebhook, WebhookRejection,
};

use keys::{Key, KeySet, Keys, MAX_KID_LEN};
pub use keys::{MAX_RSA_BITS, MIN_RSA_BITS};

/// The header ShipEngine sends its base64 RSA-SHA256 signature in.
pub const SIGNATURE_HEADER: HeaderName =
    HeaderName::from_static("x-shipengine-rsa-sha256-signature");

/// The header naming the `kid` of the key that signed.
pub const KEY_ID_HEADER: HeaderName = HeaderName::from_static("x-shipengine-rsa-sha256-key-id");

/// The header with the signed send time.
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("x-shipengine-timestamp");

/// ShipEngine's JWKS.
pub const JWKS_URL: &str = "https://api.shipengine.com/jwks";

/// ShipEngine's JWKS for EU accounts.
pub const EU_JWKS_URL: &str = "https://api.eu.shipengine.com/jwks";

/// How far from this server's clock the signed time may be, either way, by
/// default: ShipStation's guide's "more than 5 minutes difference".
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// How often, at most, a request naming an unknown key makes the layer look
/// the JWKS up again, unless told otherwise.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The longest signature header read: base64 of an 8192-bit signature.
const MAX_SIGNATURE_LEN: usize = MAX_RSA_BITS / 8 * 4 / 3 + 4;

/// Layer that verifies ShipEngine's RSA-SHA256 signature.
///
/// See the [module docs](self) for what is signed, where the keys come from,
/// and how statuses map. Clones share the keys and their cache.
#[derive(Clone)]
pub struct ShipEngineSignature {
    keys: Arc<Keys>,
    body_limit: usize,
    window: TimeWindow,
}

impl fmt::Debug for ShipEngineSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipEngineSignature")
            .field("keys", &self.keys)
            .field("body_limit", &self.body_limit)
            .field("window", &self.window)
            .finish()
    }
}

impl ShipEngineSignature {
    fn with_keys(keys: Keys) -> Self {
        Self {
            keys: Arc::new(keys),
            body_limit: DEFAULT_BODY_LIMIT,
            window: TimeWindow::both_ways(DEFAULT_TOLERANCE),
        }
    }

    /// Verifies with the RSA keys of the JWKS `jwks` (`{"keys": [...]}`, as
    /// served at [`JWKS_URL`]); other keys in it are skipped.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKeySet`] if it is not a JWKS or has no RSA
    /// signing key of at least [`MIN_RSA_BITS`] bits with a `kid`.
    pub fn from_jwks(jwks: &str) -> Result<Self, ConfigError> {
        let set = KeySet::from_jwks(jwks)?;
        Ok(Self::with_keys(Keys::new(
            set,
            None,
            DEFAULT_REFRESH_INTERVAL,
        )))
    }

    /// Like [`from_jwks`](Self::from_jwks), reading the JWKS from the file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKeySet`] if the file cannot be read, or as
    /// [`from_jwks`](Self::from_jwks).
    pub fn from_jwks_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::InvalidKeySet {
            details: format!("{} cannot be read: {error}", path.display()),
        })?;
        Self::from_jwks(&text)
    }

    /// Verifies with the keys `lookup` returns, as JWKS text: called on the
    /// first request, then whenever a request names a key id the set lacks,
    /// at most once per [`refresh_interval`](Self::refresh_interval). See
    /// the [module docs](self#keys).
    ///
    /// Layers only: a framework-free check awaits it with
    /// [`verify_async`](Self::verify_async).
    #[must_use]
    pub fn from_lookup<F, Fut, E>(lookup: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::with_keys(Keys::new(
            KeySet::default(),
            Some(boxed(lookup)),
            DEFAULT_REFRESH_INTERVAL,
        ))
    }

    /// Keeps this layer's keys and refreshes them with `lookup` when a
    /// request names an unknown key id, as [`from_lookup`](Self::from_lookup).
    #[must_use]
    pub fn refresh_with<F, Fut, E>(self, lookup: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let set = Arc::unwrap_or_clone(self.keys.current());
        let interval = self.keys.refresh_interval();
        Self {
            keys: Arc::new(Keys::new(set, Some(boxed(lookup)), interval)),
            ..self
        }
    }

    /// Calls the lookup now and keeps the keys it returns: at start-up, so
    /// that the first webhooks need not wait for it (while one request
    /// waits for a lookup, others naming an unknown key are refused with 401,
    /// and ShipEngine retries them later). Does nothing without a lookup.
    ///
    /// # Errors
    ///
    /// The lookup's error, or the [`ConfigError`] of a JWKS with no usable
    /// key; the keys the layer had are kept.
    pub async fn refresh_keys(&self) -> Result<(), BoxError> {
        self.keys.mark_refreshed();
        self.keys.refresh().await.map_err(|error| match error {
            keys::RefreshError::Lookup(error) => error,
            keys::RefreshError::Keys(error) => Box::new(error) as BoxError,
        })
    }

    /// Looks the JWKS up at most once per `interval` for unknown key ids
    /// (default [`DEFAULT_REFRESH_INTERVAL`], 60 s).
    #[must_use]
    pub fn refresh_interval(self, interval: Duration) -> Self {
        // Keys are shared by clones: a new interval makes a new cache.
        let set = Arc::unwrap_or_clone(self.keys.current());
        let keys = Keys::new(set, self.keys.lookup(), interval);
        Self {
            keys: Arc::new(keys),
            ..self
        }
    }

    /// Refuses bodies larger than `bytes` with 413 (default 1 MiB).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Refuses with 401 webhooks whose signed timestamp is older than `age`
    /// (default five minutes, [`DEFAULT_TOLERANCE`]). Every webhook spends
    /// some time in transit, so an `age` of zero refuses them all.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.window.max_age = Some(age);
        self
    }

    /// Refuses with 401 webhooks whose signed timestamp is further than
    /// `skew` ahead of this server's clock (default five minutes).
    #[must_use]
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.window.max_future_skew = Some(skew);
        self
    }

    /// Verifies a request without a framework, from its headers and its whole
    /// body as received, with the keys the layer has: the checks the layer
    /// makes, in the same order, with the same refusals. It never calls a
    /// lookup; [`verify_async`](Self::verify_async) does.
    ///
    /// # Errors
    ///
    /// The [`WebhookRejection`] the layer would answer with.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) -> Result<Verified, WebhookRejection> {
        crate::verify::verify_request(self, headers, body.into())
    }

    /// Like [`verify`](Self::verify), first looking the JWKS up if the
    /// request names a key id the set lacks, as the layer does.
    ///
    /// # Errors
    ///
    /// The [`WebhookRejection`] the layer would answer with.
    pub async fn verify_async(
        &self,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) -> Result<Verified, WebhookRejection> {
        if let Some(refresh) = self.refresh_for(headers) {
            refresh.await?;
        }
        self.verify(headers, body)
    }

    /// The refresh a request waits for, if it names a key id the set lacks
    /// and one may begin now.
    fn refresh_for(
        &self,
        headers: &HeaderMap,
    ) -> Option<impl Future<Output = Result<(), WebhookRejection>> + Send + 'static> {
        let kid = single_text(headers, &KEY_ID_HEADER)?;
        if kid.is_empty() || kid.len() > MAX_KID_LEN || !self.keys.claim_refresh(kid) {
            return None;
        }
        let refresh = self.keys.refresh();
        Some(async move {
            refresh.await.map_err(|error| {
                tracing::error!(%error, "refreshing ShipEngine's keys failed");
                WebhookRejection::new(
                    RejectionKind::LookupFailed,
                    "the key the request names is unknown and the JWKS could not be looked up; \
                     try again later",
                )
            })
        })
    }

    /// The key the request's key id names.
    fn key(&self, kid: &str) -> Result<Key, WebhookRejection> {
        self.keys.current().get(kid).cloned().ok_or_else(|| {
            WebhookRejection::new(
                RejectionKind::SignatureMismatch,
                format!(
                    "the {KEY_ID_HEADER} header names key {}, which is not in the JWKS",
                    quote(kid)
                ),
            )
        })
    }
}

fn boxed<F, Fut, E>(lookup: F) -> Arc<keys::Lookup>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: Into<BoxError>,
{
    Arc::new(move || {
        let future = lookup();
        Box::pin(async move { future.await.map_err(Into::into) })
    })
}

/// The one value of header `name` as text, or `None` (the checks of the
/// headers say why).
fn single_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// What the headers prove: the key, the signature's bytes, and the signed
/// time as sent and as read.
#[doc(hidden)]
#[derive(Debug)]
pub struct HeaderProof {
    key: Key,
    signature: Vec<u8>,
    timestamp: HeaderValue,
    time: OffsetDateTime,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Key").field(&self.kid).finish()
    }
}

impl sealed::Sealed for ShipEngineSignature {}

impl Verifier for ShipEngineSignature {
    const PROVIDER: Provider = Provider::ShipEngine;
    type HeaderProof = HeaderProof;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<HeaderProof, WebhookRejection> {
        let signature = proof_value(headers, &SIGNATURE_HEADER)?;
        let kid = proof_value(headers, &KEY_ID_HEADER)?;
        let timestamp = proof_value(headers, &TIMESTAMP_HEADER)?;
        let signature = proof_text(signature, &SIGNATURE_HEADER)?;
        let kid = proof_text(kid, &KEY_ID_HEADER)?;
        let time_text = proof_text(timestamp, &TIMESTAMP_HEADER)?;
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(WebhookRejection::malformed_proof(format!(
                "the {KEY_ID_HEADER} header is empty or over {MAX_KID_LEN} bytes"
            )));
        }
        if signature.len() > MAX_SIGNATURE_LEN {
            return Err(WebhookRejection::malformed_proof(format!(
                "the {SIGNATURE_HEADER} header is {} characters long; an RSA signature of \
                 at most {MAX_RSA_BITS} bits is at most {MAX_SIGNATURE_LEN}",
                signature.len()
            )));
        }
        let signature = STANDARD.decode(signature).map_err(|_| {
            WebhookRejection::malformed_proof(format!(
                "the {SIGNATURE_HEADER} header is not standard, padded base64"
            ))
        })?;
        let time = parse_time(time_text).ok_or_else(|| {
            WebhookRejection::malformed_proof(format!(
                "the {TIMESTAMP_HEADER} header {} is not an ISO 8601 date-time or an epoch time",
                quote(time_text)
            ))
        })?;
        let key = self.key(kid)?;
        if signature.len() != key.signature_len() {
            return Err(WebhookRejection::malformed_proof(format!(
                "the {SIGNATURE_HEADER} header decodes to {} bytes; key {}'s signatures are {}",
                signature.len(),
                quote(kid),
                key.signature_len()
            )));
        }
        Ok(HeaderProof {
            key,
            signature,
            timestamp: timestamp.clone(),
            time,
        })
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        proof: HeaderProof,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let digest = Sha256::new()
            .chain_update(proof.timestamp.as_bytes())
            .chain_update(b".")
            .chain_update(body)
            .finalize();
        proof
            .key
            .public
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &proof.signature)
            .map_err(|_| {
                no_secret_matched(
                    Provider::ShipEngine,
                    headers,
                    body,
                    "the signature does not verify with the key its key id names",
                )
            })?;
        self.window
            .check(&format!("the {TIMESTAMP_HEADER} header"), proof.time)?;
        let fields: ShipEngineFields<'_> = parse_object("the body", body)?;
        let event = fields.to_event(body, proof.time)?;
        let secret = MatchedSecret::new(Arc::clone(&proof.key.kid));
        let webhook = VerifiedWebhook::new(event, secret, body.clone());
        if is_track(&fields.resource_type) {
            // The body, not the attempt's time: each retry is signed anew.
            return Ok(Verified::Webhook(webhook));
        }
        Ok(Verified::Webhook(webhook.signed_over([
            Bytes::copy_from_slice(proof.timestamp.as_bytes()),
            Bytes::from_static(b"."),
            body.clone(),
        ])))
    }
}

impl<S> tower_layer::Layer<S> for ShipEngineSignature {
    type Service = VerifyWebhook<S, Self>;

    fn layer(&self, inner: S) -> Self::Service {
        if self.keys.has_lookup() {
            let refreshing = Arc::new(Refreshing(Arc::new(self.clone())));
            VerifyWebhook::new(inner, Verifiers::PerTenant(refreshing))
        } else {
            VerifyWebhook::fixed(inner, self)
        }
    }
}

/// The layer's verifier, once a request naming an unknown key has waited
/// for the JWKS to be looked up again.
#[derive(Debug)]
struct Refreshing(Arc<ShipEngineSignature>);

impl Resolve<ShipEngineSignature> for Refreshing {
    fn resolve(
        self: Arc<Self>,
        parts: &mut Parts,
    ) -> Result<Resolving<ShipEngineSignature>, WebhookRejection> {
        let verifier = Arc::clone(&self.0);
        match verifier.refresh_for(&parts.headers) {
            None => Ok(Resolving::Ready(None, verifier)),
            Some(refresh) => Ok(Resolving::Pending(
                None,
                Box::pin(async move {
                    refresh.await?;
                    Ok(verifier)
                }),
            )),
        }
    }
}

/// The send time as ShipEngine may write it: RFC 3339, ISO 8601 with or
/// without an offset (then UTC), or an epoch time in seconds (up to 11
/// digits) or milliseconds (12 or 13).
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    if !text.is_empty() && text.len() <= 13 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        let number: i64 = text.parse().ok()?;
        let nanos = if text.len() <= 11 {
            i128::from(number) * 1_000_000_000
        } else {
            i128::from(number) * 1_000_000
        };
        return OffsetDateTime::from_unix_timestamp_nanos(nanos).ok();
    }
    if text.len() > 64 {
        return None;
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .or_else(|_| PrimitiveDateTime::parse(text, &Iso8601::DEFAULT).map(|t| t.assume_utc()))
        .ok()
}

/// The fields a [`ShipmentEvent`] is made of; `data` is read apart
/// ([`TrackBody`]), and only for tracking webhooks: other resource types
/// carry other shapes.
#[derive(Deserialize)]
struct ShipEngineFields<'a> {
    #[serde(borrow, default, deserialize_with = "optional_str")]
    resource_url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_type: Cow<'a, str>,
}

/// A tracking webhook's body, for its `data`.
#[derive(Deserialize)]
struct TrackBody<'a> {
    #[serde(borrow, default)]
    data: Option<TrackFields<'a>>,
}

/// A tracking webhook's `data`: what the event needs.
#[derive(Deserialize)]
struct TrackFields<'a> {
    #[serde(borrow, default, deserialize_with = "optional_str")]
    tracking_number: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    status_code: Option<Cow<'a, str>>,
    #[serde(default)]
    events: Option<Vec<EventTime<'a>>>,
}

#[derive(Deserialize)]
struct EventTime<'a> {
    #[serde(borrow, default, deserialize_with = "optional_str")]
    occurred_at: Option<Cow<'a, str>>,
}

/// Whether `resource_type` names a tracking webhook.
fn is_track(resource_type: &str) -> bool {
    ["API_TRACK", "TRACK_EVENT_V2"]
        .iter()
        .any(|track| resource_type.eq_ignore_ascii_case(track))
}

impl ShipEngineFields<'_> {
    fn to_event(
        &self,
        body: &[u8],
        sent: OffsetDateTime,
    ) -> Result<ShipmentEvent, WebhookRejection> {
        if !is_track(&self.resource_type) {
            let id = self
                .resource_url
                .as_deref()
                .filter(|url| !url.is_empty())
                .unwrap_or(&self.resource_type);
            return Ok(ShipmentEvent {
                provider: Provider::ShipEngine,
                id: id.to_owned(),
                status: ShipmentStatus::Other(self.resource_type.clone().into_owned()),
                raw_status: self.resource_type.clone().into_owned(),
                timestamp: Some(sent),
                event_id: None,
            });
        }
        let track: TrackBody<'_> = parse_object("the body", body)?;
        let track = track.data.ok_or_else(|| {
            WebhookRejection::invalid_payload("the body: a tracking webhook without `data`")
        })?;
        let missing = |field: &str| {
            WebhookRejection::invalid_payload(format!("the body, at data: missing field `{field}`"))
        };
        let id = match track.tracking_number.as_deref() {
            Some("") => {
                return Err(WebhookRejection::invalid_payload(
                    "the body, at data: `tracking_number` is empty",
                ));
            }
            Some(number) => number,
            None => return Err(missing("tracking_number")),
        };
        let code = track
            .status_code
            .as_deref()
            .ok_or_else(|| missing("status_code"))?;
        let newest = track
            .events
            .iter()
            .flatten()
            .filter_map(|event| parse_time(event.occurred_at.as_deref()?))
            .max();
        Ok(ShipmentEvent {
            provider: Provider::ShipEngine,
            id: id.to_owned(),
            status: status(code),
            raw_status: code.to_owned(),
            timestamp: Some(newest.unwrap_or(sent)),
            event_id: None,
        })
    }
}

/// A ShipEngine (or ShipStation API v2) webhook's body, as sent (all signed).
///
/// Take it as a handler argument behind [`ShipEngineSignature`]: it is
/// decoded from the verified body then, and refused with 400 if the body is
/// not this shape. For tracking webhooks `data` holds the tracking record
/// (`tracking_number`, `status_code`, `status_description`, `carrier_code`,
/// `events`...); see the [module docs](self#fields-of-shipmentevent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShipEngineEvent {
    /// The URL of the resource the webhook is about, in ShipEngine's API.
    #[serde(default)]
    pub resource_url: String,
    /// What happened: `API_TRACK`, `TRACK_EVENT_V2`, `API_BATCH`...
    pub resource_type: String,
    /// The resource: for tracking webhooks, the tracking record.
    #[serde(default, deserialize_with = "object_or_null")]
    pub data: Map<String, Value>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn object_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Map<String, Value>, D::Error> {
    Option::<Map<String, Value>>::deserialize(deserializer).map(Option::unwrap_or_default)
}

impl ShipEngineEvent {
    /// `data.tracking_number`, for tracking webhooks.
    pub fn tracking_number(&self) -> Option<&str> {
        self.data.get("tracking_number").and_then(Value::as_str)
    }

    /// `data.carrier_code` (`ups`, `fedex`...), for tracking webhooks.
    pub fn carrier_code(&self) -> Option<&str> {
        self.data.get("carrier_code").and_then(Value::as_str)
    }

    /// `data.status_code` (`IT`, `DE`...), for tracking webhooks.
    pub fn status_code(&self) -> Option<&str> {
        self.data.get("status_code").and_then(Value::as_str)
    }

    /// `data.status_description` (`In Transit`...), for tracking webhooks.
    pub fn status_description(&self) -> Option<&str> {
        self.data.get("status_description").and_then(Value::as_str)
    }
}

impl TypedPayload for ShipEngineEvent {
    const PROVIDER: Provider = Provider::ShipEngine;
    const NAME: &'static str = "ShipEngineEvent";
    const LAYER: &'static str = "ShipEngineSignature";
}

typed_payload!(ShipEngineEvent);

fn status(raw: &str) -> ShipmentStatus {
    ShipmentStatus::normalize(raw, |key| match key {
        "ny" => Some(ShipmentStatus::Created),
        "ac" => Some(ShipmentStatus::PickedUp),
        "it" => Some(ShipmentStatus::InTransit),
        "de" => Some(ShipmentStatus::Delivered),
        "sp" => Some(ShipmentStatus::AtPickupPoint),
        "at" | "ex" => Some(ShipmentStatus::Failed),
        _ => None,
    })
}

/// The demo key pair's JWKS text and private key, for the testing kit.
#[cfg(feature = "testing")]
pub(crate) mod demo {
    pub(crate) const JWKS: &str = include_str!("demo-jwks.json");
    pub(crate) const PRIVATE_KEY: &str = include_str!("demo-private-key.pem");
    pub(crate) const KID: &str = "shipment-webhooks-demo";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_status() {
        for (raw, expected) in [
            ("NY", ShipmentStatus::Created),
            ("AC", ShipmentStatus::PickedUp),
            ("IT", ShipmentStatus::InTransit),
            ("DE", ShipmentStatus::Delivered),
            ("SP", ShipmentStatus::AtPickupPoint),
            ("AT", ShipmentStatus::Failed),
            ("EX", ShipmentStatus::Failed),
            ("de", ShipmentStatus::Delivered),
            ("cancelled", ShipmentStatus::Cancelled),
        ] {
            assert_eq!(status(raw), expected, "{raw}");
        }
        assert_eq!(status("UN"), ShipmentStatus::Other("UN".into()));
        assert_eq!(status("ZZ"), ShipmentStatus::Other("ZZ".into()));
    }

    #[test]
    fn reads_the_send_time_in_every_format_integrations_accept() {
        let at = OffsetDateTime::from_unix_timestamp(1_765_000_000).unwrap();
        for text in [
            "2025-12-06T05:46:40Z",
            "2025-12-06T05:46:40.000Z",
            "2025-12-06T05:46:40+00:00",
            "2025-12-06T06:46:40+01:00",
            "2025-12-06T05:46:40",
            "2025-12-06T05:46:40.0000000",
            "1765000000",
            "1765000000000",
        ] {
            assert_eq!(parse_time(text), Some(at), "{text}");
        }
        for not in [
            "",
            "yesterday",
            "17650000000000",
            "2025-13-06T05:46:40Z",
            "-1",
        ] {
            assert_eq!(parse_time(not), None, "{not}");
        }
    }
}
