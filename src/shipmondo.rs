//! [Shipmondo](https://shipmondo.com): a body `{"data": "<JWT>"}` signed with HS256.
//!
//! Shipmondo signs a JWT with the key entered when the webhook was created
//! and sends it as the body's `data`. This crate accepts HS256 only, pinned
//! here and never taken from the token's header; refuses any token whose
//! header lists `crit` extensions; and checks the signature in constant time
//! with the key's HMAC state computed once. All three parts of the token
//! must be unpadded base64url with no unused bits set (else 401). JWT claims
//! such as `exp` are not checked: Shipmondo sends none.
//!
//! Shipmondo also sends five headers, kept in [`ShipmondoHeaders`]:
//! `SMD-Resource-Type`, `SMD-Resource-Id`, `SMD-Webhook-Id`, `SMD-Action` and
//! `SMD-User`.
//!
//! # As Shipmondo really sends
//!
//! Shipmondo's pages leave much out; this crate follows what its API objects
//! say and what public receivers of its webhooks have met:
//!
//! - **The payload is a JSON string holding JSON**, as in the example on
//!   Shipmondo's [message structure page] (`IntcIndlYmhv...` decodes to
//!   `"{\"webhook\":...`), which `jsonwebtoken::decode` refuses; a payload
//!   that is a plain JSON object is accepted too.
//! - **`data` may itself be a string holding the object**: the Craft Commerce
//!   receiver `quantity-digital/commerce-shipmondo` decodes it again
//!   (`is_string($payload['data']) ? Json::decode(...)`). An object or a
//!   string holding one is accepted, in [`ShipmentEvent`] and in
//!   [`ShipmondoEvent::data`].
//! - **The connection test.** When a webhook is created, Shipmondo posts to
//!   its endpoint at once and expects a 200, or the webhook is not created
//!   (`Setono/shipmondo-php-sdk`'s live test; Shipmondo's [requirements
//!   page]). Its payload's `action` is `connection_test`
//!   (`commerce-shipmondo` returns early on it) and it has no `data` (or a `null` one). A
//!   verified test is answered 200 with `{"status":"connection test
//!   received"}`, traced at `info`, and never reaches the handler; a forged
//!   one is a 401. [`ShipmondoJwt::on_connection_test`] lets you see them.
//! - **Shipment Monitor** resources have no `id`: they carry the shipment's
//!   `shipment_id`, `current_state` (`PROGRESSING`, `DANGER`...),
//!   `current_status`, `current_status_text`, `current_status_registered_at`,
//!   `carrier_code` and `carrier_track_id` (Shipmondo's Swagger spec,
//!   `shipmondo/api_documentation`, "Shipment Monitor Status"). Statuses
//!   seen from receivers: `EN_ROUTE`, `AVAILABLE_FOR_DELIVERY`, `DELIVERED`,
//!   `FAILED`, `UNKNOWN`. Their actions are `latest` and `delivered`.
//! - **Orders** carry `id` (Shipmondo's number, which `SMD-Resource-Id`
//!   repeats) and `order_id` (the shop's own number, a string such as
//!   `"000000011"`), and `created_at`/`updated_at` with milliseconds and an
//!   offset (`2024-07-08T10:08:58.541+02:00`, Shipmondo's
//!   [resources and actions page]). Their actions are `create`,
//!   `status_update`, `create_fulfillment`, `create_shipment`,
//!   `payment_captured`, `payment_voided` and `delete`; shipments' are
//!   `create` and `cancel` (Shipmondo's OpenAPI `Webhook.action`).
//! - **No retries** are documented: a message not answered 200 within
//!   3 seconds "will not be delivered" ([requirements page]). Answer first,
//!   work later.
//!
//! [message structure page]: https://help.shipmondo.com/en/articles/4956598-webhook-message-structure
//! [requirements page]: https://shipmondo.dev/docs/webhooks/requirements-and-structure
//! [resources and actions page]: https://shipmondo.dev/docs/webhooks/resources-and-actions
//!
//! # What the signature does not cover
//!
//! The `SMD-*` headers, and freshness. So the event is built from the signed
//! payload only: its `id` is always signed, and a payload with no id is
//! refused (400) rather than given the unsigned `SMD-Resource-Id`, with
//! which a replayed `{"data":{"order_status":"cancelled"}}` could cancel any
//! order its sender names (a `debug` trace notes when the header and the
//! signed id differ). The status comes from the signed `data.order_status`
//! or `data.current_status`; only a payload with neither falls back to the
//! unsigned `SMD-Action`, of which only `create` and `cancel` mean
//! anything: someone holding a captured token could replay a `create` as a
//! `cancel`.
//!
//! The body must be `{"data": "<string>"}` and nothing else (else 400): a
//! handler that takes the body's bytes sees only what was signed. A token
//! that is malformed or signed with another key or algorithm gets 401.
//!
//! # Fields of [`ShipmentEvent`]
//!
//! - `id`: a Shipment Monitor's `data.shipment_id`; any other resource's
//!   `data.id` (Shipmondo's number). The shop's own order number is
//!   [`ShipmondoEvent::order_id`].
//! - `timestamp`: the signed time of the status, to order events by: a
//!   monitor's `data.current_status_registered_at`, else the resource's
//!   `data.updated_at`, else its `data.created_at`, with its sub-second
//!   precision and offset. A time that is not RFC 3339 leaves it `None`,
//!   traced at `debug`, rather than refusing a message Shipmondo will not
//!   send again; a time that is not a string is refused (400).
//! - `event_id`: `None` (Shipmondo sends none).
//!
//! # Statuses
//!
//! | status from | Shipmondo | [`ShipmentStatus`] |
//! |---|---|---|
//! | `data.order_status` (`Orders`) | `open` | `created` |
//! | | `processing`, `released` | `processing` |
//! | | `packed`, `ready_for_pickup` | `ready_for_pickup` |
//! | | `sent` | `in_transit` |
//! | | `picked_up` | `picked_up` |
//! | | `on_hold` | `on_hold` |
//! | | `cancelled` | `cancelled` |
//! | | any other word of the vocabulary | that status |
//! | | `archived`, any other | `other` |
//! | `data.current_status` (`Shipment Monitor`) | `EN_ROUTE` | `in_transit` |
//! | | `AVAILABLE_FOR_DELIVERY` (the last leg: at the door or the pickup point) | `out_for_delivery` |
//! | | `DELIVERED` | `delivered` |
//! | | `FAILED` | `failed` |
//! | | any other word of the vocabulary | that status |
//! | | `UNKNOWN`, any other | `other` |
//! | `SMD-Action`, where the payload has neither (`Shipments`) | `create` | `created` |
//! | | `cancel` | `cancelled` |
//! | | any other | `other` |
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{ShipmentEvent, ShipmondoEvent, ShipmondoJwt};
//!
//! async fn on_shipmondo(event: ShipmentEvent, payload: ShipmondoEvent) {
//!     println!("{:?} {} is {}", payload.headers.resource_type, event.id, event.status);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/shipmondo",
//!     post(on_shipmondo).route_layer(ShipmondoJwt::new("the key you entered in Shipmondo")),
//! );
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tower_layer::Layer;

use crate::event::{STATUS_KEY_LEN, status_key};
use crate::payload::{
    from_object_slice, object_or_json_string, optional_id, optional_str, parse_json, parse_object,
};
use crate::secrets::{HmacSha256, Secrets, hmac_key, no_secret_matched, or_panic, tag_from};
use crate::verify::{DEFAULT_BODY_LIMIT, Verified, Verify, VerifyWebhook, verify_whole};
use crate::{
    ConfigError, MatchedSecret, Provider, ShipmentEvent, ShipmentStatus, VerifiedWebhook,
    WebhookRejection, WebhookSecret,
};

/// `SMD-Resource-Type`: which resource the webhook watches (`Orders`, `Shipments`...).
pub const RESOURCE_TYPE_HEADER: HeaderName = HeaderName::from_static("smd-resource-type");
/// `SMD-Resource-Id`: the id of the object in the message.
pub const RESOURCE_ID_HEADER: HeaderName = HeaderName::from_static("smd-resource-id");
/// `SMD-Webhook-Id`: the id of the webhook that sent the message.
pub const WEBHOOK_ID_HEADER: HeaderName = HeaderName::from_static("smd-webhook-id");
/// `SMD-Action`: the action that triggered the message (`create`, `cancel`...).
pub const ACTION_HEADER: HeaderName = HeaderName::from_static("smd-action");
/// `SMD-User`: the user who performed the action.
pub const USER_HEADER: HeaderName = HeaderName::from_static("smd-user");

/// The `action` of the payload Shipmondo sends to test a new webhook's endpoint.
const CONNECTION_TEST: &str = "connection_test";

/// The only JWT algorithm Shipmondo uses, and so the only one accepted.
const ALGORITHM: &str = "HS256";

/// The shortest key [`ShipmondoJwt::new`] accepts, in bytes: RFC 7518 §3.2
/// asks HS256 keys to be at least as long as the hash.
pub const MIN_KEY_LEN: usize = 32;

/// The longest JWT header accepted, in base64url characters, checked before
/// decoding it: Shipmondo's is `{"alg":"HS256"}` (20 characters).
const MAX_HEADER_LEN: usize = 256;

/// An HS256 signature's length in unpadded base64url: 32 bytes.
const SIGNATURE_LEN: usize = 43;

/// Layer that verifies Shipmondo's JWT.
///
/// See the [module docs](self) for what is signed and how statuses map.
#[derive(Debug, Clone)]
pub struct ShipmondoJwt {
    keys: Secrets<HmacSha256>,
    allow_short_keys: bool,
    body_limit: usize,
    on_connection_test: Option<OnConnectionTest>,
}

/// The user's callback for connection tests; `Debug` shows only that there is one.
#[derive(Clone)]
struct OnConnectionTest(Arc<dyn Fn(&ShipmondoConnectionTest) + Send + Sync>);

impl fmt::Debug for OnConnectionTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnConnectionTest(..)")
    }
}

/// A verified connection test: Shipmondo checking, when a webhook is
/// created, that its endpoint answers.
///
/// [`ShipmondoJwt`] answers it with 200 itself and never passes it on as a
/// webhook; see [`ShipmondoJwt::on_connection_test`] to see them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShipmondoConnectionTest {
    /// The name of the webhook being created, as signed.
    pub webhook: Option<String>,
    /// The URL Shipmondo sent the test to, as signed.
    pub url: Option<String>,
    /// The key that signed it.
    pub secret: MatchedSecret,
}

impl ShipmondoJwt {
    /// Verifies with `key`, the key entered when creating the webhook in Shipmondo.
    ///
    /// # Panics
    ///
    /// If `key` is shorter than [`MIN_KEY_LEN`] (32) bytes: a short key can
    /// be guessed offline from a single captured token. Keys are
    /// configuration, so this fails at start-up, not on the first webhook;
    /// [`try_new`](Self::try_new) returns the error instead. Enter a long
    /// random key in Shipmondo; where an existing webhook's key cannot be
    /// changed yet, use [`allowing_short_keys`](Self::allowing_short_keys).
    #[track_caller]
    pub fn new(key: impl WebhookSecret) -> Self {
        or_panic(Self::try_new(key))
    }

    /// Like [`new`](Self::new), for a key read at run time: an error
    /// instead of a panic.
    pub fn try_new(key: impl WebhookSecret) -> Result<Self, ConfigError> {
        Self::with_first_key(key.secret_bytes(), false)
    }

    /// Like [`new`](Self::new), but accepts keys shorter than
    /// [`MIN_KEY_LEN`], here and in [`with_secret`](Self::with_secret).
    ///
    /// Shipmondo lets users enter any key, so a webhook may already have a
    /// short one. Use this only until it is replaced: anyone holding one of
    /// its tokens can try to guess such a key offline.
    ///
    /// # Panics
    ///
    /// If `key` is empty; [`try_allowing_short_keys`](Self::try_allowing_short_keys)
    /// returns the error.
    #[track_caller]
    pub fn allowing_short_keys(key: impl WebhookSecret) -> Self {
        or_panic(Self::try_allowing_short_keys(key))
    }

    /// Like [`allowing_short_keys`](Self::allowing_short_keys): an error
    /// instead of a panic.
    pub fn try_allowing_short_keys(key: impl WebhookSecret) -> Result<Self, ConfigError> {
        Self::with_first_key(key.secret_bytes(), true)
    }

    fn with_first_key(key: &[u8], allow_short_keys: bool) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: Secrets::new(key, |label, key| checked_key(label, key, allow_short_keys))?,
            allow_short_keys,
            body_limit: DEFAULT_BODY_LIMIT,
            on_connection_test: None,
        })
    }

    /// Also accepts tokens signed with `key`, reported as `label` in
    /// [`MatchedSecret`]: configure the old and the new key while rotating.
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new) does (after
    /// [`allowing_short_keys`](Self::allowing_short_keys), only if `key` is
    /// empty), or if `label` is taken; [`try_with_secret`](Self::try_with_secret)
    /// returns the error.
    #[track_caller]
    pub fn with_secret(self, label: impl Into<Arc<str>>, key: impl WebhookSecret) -> Self {
        or_panic(self.try_with_secret(label, key))
    }

    /// Like [`with_secret`](Self::with_secret): an error instead of a panic.
    pub fn try_with_secret(
        mut self,
        label: impl Into<Arc<str>>,
        key: impl WebhookSecret,
    ) -> Result<Self, ConfigError> {
        let allow_short_keys = self.allow_short_keys;
        (self.keys).push(label.into(), key.secret_bytes(), |label, key| {
            checked_key(label, key, allow_short_keys)
        })?;
        Ok(self)
    }

    /// Verifies a webhook without a framework, from its headers and its whole
    /// body as received: the checks the layer makes, in the same order, with
    /// the same refusals ([`WebhookRejection::to_response`] answers with one).
    /// A connection test is [`Verified::ConnectionTest`]: answer it with 200
    /// (the [`on_connection_test`](Self::on_connection_test) callback is the
    /// layer's, and is not called here).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) -> Result<Verified, WebhookRejection> {
        verify_whole(self, headers, body.into())
    }

    /// Refuses bodies larger than `bytes` with 413 (default 1 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Calls `callback` with every verified connection test, after tracing it
    /// at `info` and before answering it with 200. A connection test never
    /// reaches the route's handler: it is not a shipment's event. Keep the
    /// callback quick; it runs within Shipmondo's 3 seconds.
    pub fn on_connection_test(
        mut self,
        callback: impl Fn(&ShipmondoConnectionTest) + Send + Sync + 'static,
    ) -> Self {
        self.on_connection_test = Some(OnConnectionTest(Arc::new(callback)));
        self
    }

    /// Checks `token` and returns its payload segment, verified but still
    /// base64url, and the key that signed it.
    fn verify_token<'t>(
        &self,
        token: &'t str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(&'t str, &MatchedSecret), WebhookRejection> {
        let malformed = || {
            WebhookRejection::unauthorized(
                "`data` is not a JWT: it needs three dot-separated parts",
            )
        };
        let (signed, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = signed.split_once('.').ok_or_else(malformed)?;
        if payload.contains('.') {
            return Err(malformed());
        }
        // The header and signature are decoded only within their lengths; the
        // payload, only once the signature over it holds.
        if header.len() > MAX_HEADER_LEN {
            return Err(WebhookRejection::unauthorized(format!(
                "the JWT header is {} characters long; at most {MAX_HEADER_LEN} are accepted",
                header.len()
            )));
        }
        // Both bounded, so both decode on the stack; base64's decoder wants
        // room for a whole last group of three.
        let mut header_bytes = [0; MAX_HEADER_LEN / 4 * 3 + 3];
        let header = decode_segment_into("header", header, &mut header_bytes)?;
        let header: JwsHeader<'_> = from_object_slice(header).map_err(|error| {
            WebhookRejection::unauthorized(format!("the JWT header is not valid: {error}"))
        })?;
        if header.alg != ALGORITHM {
            return Err(WebhookRejection::unauthorized(format!(
                "the JWT is signed with {:?}; only {ALGORITHM} is accepted",
                header.alg
            )));
        }
        if !header.crit.is_empty() {
            return Err(WebhookRejection::unauthorized(
                "the JWT header lists `crit` extensions, which are not supported",
            ));
        }
        if signature.len() != SIGNATURE_LEN {
            return Err(WebhookRejection::unauthorized(format!(
                "the JWT signature is {} characters long; an HS256 signature is {SIGNATURE_LEN}",
                signature.len()
            )));
        }
        let mut tag = [0; SIGNATURE_LEN / 4 * 3 + 3];
        let tag = decode_segment_into("signature", signature, &mut tag)?;
        let tag = tag_from(format_args!("the JWT signature"), tag)?;
        let key = self
            .keys
            .verify_hmac(&[signed.as_bytes()], &tag)
            .ok_or_else(|| {
                no_secret_matched(
                    Provider::Shipmondo,
                    headers,
                    body,
                    "the JWT signature matches no configured key",
                )
            })?;
        Ok((payload, key))
    }
}

/// The HMAC state for `key`, refused if it is too short to be safe.
fn checked_key(
    label: &Arc<str>,
    key: &[u8],
    allow_short_keys: bool,
) -> Result<HmacSha256, ConfigError> {
    if !allow_short_keys && !key.is_empty() && key.len() < MIN_KEY_LEN {
        return Err(ConfigError::ShortKey {
            label: label.clone(),
        });
    }
    hmac_key(label, key)
}

fn decode_segment(name: &str, segment: &str) -> Result<Vec<u8>, WebhookRejection> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| not_base64url(name))
}

/// [`decode_segment`] into `buffer`, which the caller sized for the segment.
fn decode_segment_into<'b>(
    name: &str,
    segment: &str,
    buffer: &'b mut [u8],
) -> Result<&'b [u8], WebhookRejection> {
    match URL_SAFE_NO_PAD.decode_slice(segment, buffer) {
        Ok(len) => Ok(&buffer[..len]),
        Err(_) => Err(not_base64url(name)),
    }
}

fn not_base64url(name: &str) -> WebhookRejection {
    WebhookRejection::unauthorized(format!("the JWT {name} is not unpadded base64url"))
}

/// The body. Only `data` is signed, so nothing else may come with it: a
/// handler taking the body's bytes sees only what was signed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

#[derive(Deserialize)]
struct JwsHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default)]
    crit: Vec<String>,
}

impl<S> Layer<S> for ShipmondoJwt {
    type Service = VerifyWebhook<S, Self>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyWebhook::fixed(inner, self)
    }
}

impl Verify for ShipmondoJwt {
    const PROVIDER: Provider = Provider::Shipmondo;
    // The proof is in the body.
    type HeaderProof = ();
    type Outcome = Verified;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, _headers: &HeaderMap) -> Result<(), WebhookRejection> {
        Ok(())
    }

    fn connection_tested(&self, test: &ShipmondoConnectionTest) {
        if let Some(OnConnectionTest(callback)) = &self.on_connection_test {
            callback(test);
        }
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        (): (),
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let envelope: Envelope<'_> = parse_object("the body", body)?;
        let (payload, key) = self.verify_token(&envelope.data, headers, body)?;
        let json = claims_json(payload)?;
        let fields: ShipmondoFields<'_> = parse_object("the JWT payload", &json)?;
        let Some(data) = fields.data else {
            if fields.action.as_deref() == Some(CONNECTION_TEST) {
                return Ok(Verified::ConnectionTest(ShipmondoConnectionTest {
                    webhook: fields.webhook.map(Cow::into_owned),
                    url: fields.url.map(Cow::into_owned),
                    secret: key.clone(),
                }));
            }
            return Err(WebhookRejection::invalid_payload(
                "the JWT payload: missing field `data`",
            ));
        };
        // All five are checked here, so a route's answer does not depend on its extractors.
        let smd = read_smd_headers(headers)?;
        let [_, resource_id, _, action, _] = &smd;
        let (resource_id, action) = (resource_id.as_ref().map(text), action.as_ref().map(text));
        let event = data.into_event(resource_id.as_deref(), action.as_deref())?;
        let jwt = match envelope.data {
            Cow::Borrowed(jwt) => body.slice_ref(jwt.as_bytes()),
            Cow::Owned(jwt) => Bytes::from(jwt),
        };
        let webhook = VerifiedWebhook::new(event, key.clone(), json)
            .with_jwt(jwt)
            .with_smd_headers(SmdHeaders::Received(smd));
        Ok(Verified::Webhook(webhook))
    }
}

/// The JSON of the JWT's payload, from its verified base64url `segment`:
/// Shipmondo sends a JSON string holding JSON; a payload that is a JSON
/// object is accepted too.
fn claims_json(segment: &str) -> Result<Bytes, WebhookRejection> {
    let mut claims = decode_segment("payload", segment)?;
    let start = claims.len() - claims.trim_ascii_start().len();
    if claims.get(start) != Some(&b'"') {
        return Ok(Bytes::from(claims));
    }
    // The common case, unescaped in the buffer it was decoded into.
    if let Some(len) = unescape_in_place(&mut claims) {
        claims.truncate(len);
        return Ok(Bytes::from(claims));
    }
    // Anything else (a lone surrogate, a control character, no closing
    // quote...): serde_json decides, with its own error, over the payload as
    // sent, which the unescape may have partly overwritten.
    let claims = decode_segment("payload", segment)?;
    let inner: String = parse_json("the JWT payload", &claims)?;
    Ok(Bytes::from(inner))
}

/// Unescapes `buffer`, a JSON string with nothing but JSON whitespace around
/// it, into its own start; returns the unescaped length. `None` for anything
/// it does not accept as serde_json would, which then decides.
/// Writing never overtakes reading: no escape is shorter than what it stands for.
fn unescape_in_place(buffer: &mut [u8]) -> Option<usize> {
    let is_blank = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
    let quote = buffer.iter().position(|byte| !is_blank(byte))?;
    if buffer[quote] != b'"' {
        return None;
    }
    let mut read = quote + 1;
    let mut write = 0;
    loop {
        // Plain bytes eight at a time, up to the first that is not.
        while let Some(chunk) = buffer.get(read..read + 8) {
            let bytes: [u8; 8] = chunk.try_into().ok()?;
            let special = special_bytes(u64::from_le_bytes(bytes));
            if special == 0 {
                buffer[write..write + 8].copy_from_slice(&bytes);
                write += 8;
                read += 8;
                continue;
            }
            // Only the bytes before the special one: writing more could
            // overwrite bytes not read yet.
            let run = special.trailing_zeros() as usize / 8;
            buffer[write..write + run].copy_from_slice(&bytes[..run]);
            write += run;
            read += run;
            break;
        }
        match *buffer.get(read)? {
            b'"' => break,
            b'\\' => {}
            // A control character, which JSON refuses unescaped.
            0..0x20 => return None,
            // One of the last seven bytes.
            byte => {
                buffer[write] = byte;
                write += 1;
                read += 1;
                continue;
            }
        }
        let byte = match *buffer.get(read + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let (c, escape_len) = unicode_escape(&buffer[read..])?;
                let mut utf8 = [0; 4];
                let utf8 = c.encode_utf8(&mut utf8).as_bytes();
                buffer
                    .get_mut(write..write + utf8.len())?
                    .copy_from_slice(utf8);
                write += utf8.len();
                read += escape_len;
                continue;
            }
            _ => return None,
        };
        buffer[write] = byte;
        write += 1;
        read += 2;
    }
    if !buffer[read + 1..].iter().all(is_blank) {
        return None;
    }
    // Raw bytes between escapes must be UTF-8, as serde_json requires.
    std::str::from_utf8(&buffer[..write]).ok()?;
    Some(write)
}

/// The high bit of each byte of `word` that is a quote, a backslash or a
/// control character, and maybe of bytes after the first such: only the
/// lowest bit set is exact (a byte's borrow reaches the byte above).
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES * 0x80;
    let below = |word: u64, bound: u8| word.wrapping_sub(ONES * u64::from(bound)) & !word & HIGHS;
    below(word ^ (ONES * u64::from(b'"')), 1)
        | below(word ^ (ONES * u64::from(b'\\')), 1)
        | below(word, 0x20)
}

/// The character a `\uXXXX` escape (or a surrogate pair of two) at the
/// start of `escape` stands for, and the escape's length.
fn unicode_escape(escape: &[u8]) -> Option<(char, usize)> {
    let hex = |at: usize| {
        let digits = std::str::from_utf8(escape.get(at..at + 4)?).ok()?;
        if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    };
    let first = hex(2)?;
    if !(0xD800..0xDC00).contains(&first) {
        return Some((char::from_u32(first)?, 6));
    }
    if escape.get(6..8)? != b"\\u" {
        return None;
    }
    let second = hex(8)?;
    if !(0xDC00..0xE000).contains(&second) {
        return None;
    }
    let c = char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))?;
    Some((c, 12))
}

/// A verified Shipmondo webhook: its headers and the JWT's decoded payload.
///
/// Take it as a handler argument behind [`ShipmondoJwt`]: it is decoded from
/// the verified payload then, and refused with 400 if it is not this shape.
///
/// Payload fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShipmondoEvent {
    /// The five `SMD-*` headers (not signed).
    #[serde(skip_deserializing)]
    pub headers: ShipmondoHeaders,
    /// The name of the webhook that sent the message.
    #[serde(default)]
    pub webhook: Option<String>,
    /// The resource as Shipmondo's API returns it (an order, a shipment...),
    /// sent as an object or as a string holding one.
    #[serde(deserialize_with = "object_or_json_string")]
    pub data: Map<String, Value>,
    /// The URL the message was sent to.
    #[serde(default)]
    pub url: Option<String>,
    /// Every other payload field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The `SMD-*` headers of a Shipmondo webhook, each `None` where absent.
///
/// The JWT does not cover them; see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShipmondoHeaders {
    /// `SMD-Resource-Type` (`Orders`, `Shipments`, `Shipment Monitor`...).
    pub resource_type: Option<String>,
    /// `SMD-Resource-Id`.
    pub resource_id: Option<String>,
    /// `SMD-Webhook-Id`.
    pub webhook_id: Option<String>,
    /// `SMD-Action` (`create`, `cancel`...).
    pub action: Option<String>,
    /// `SMD-User`.
    pub user: Option<String>,
}

/// The `SMD-*` headers a verified webhook came with: as received (checked,
/// made text only when asked for: five strings a request that no handler
/// may read), or as an inbox stored them.
#[derive(Debug, Clone)]
pub(crate) enum SmdHeaders {
    Received([Option<HeaderValue>; 5]),
    #[cfg(feature = "inbox")]
    Stored(ShipmondoHeaders),
}

/// The five `SMD-*` headers, in the order of [`ShipmondoHeaders`]' fields,
/// each refused if repeated. One pass over the headers: five lookups by name
/// would hash each name, about 180 instructions apiece.
fn read_smd_headers(headers: &HeaderMap) -> Result<[Option<HeaderValue>; 5], WebhookRejection> {
    let names = [
        RESOURCE_TYPE_HEADER,
        RESOURCE_ID_HEADER,
        WEBHOOK_ID_HEADER,
        ACTION_HEADER,
        USER_HEADER,
    ];
    let mut values = [const { None }; 5];
    let mut repeated = [false; 5];
    for (name, value) in headers {
        if let Some(at) = names.iter().position(|smd| smd == name) {
            repeated[at] |= values[at].replace(value.clone()).is_some();
        }
    }
    match repeated.iter().position(|&repeated| repeated) {
        Some(at) => Err(WebhookRejection::invalid_payload(format!(
            "the {} header appears more than once",
            names[at]
        ))),
        None => Ok(values),
    }
}

impl SmdHeaders {
    pub(crate) fn to_headers(&self) -> ShipmondoHeaders {
        match self {
            Self::Received(values) => {
                let [resource_type, resource_id, webhook_id, action, user] = values
                    .each_ref()
                    .map(|value| value.as_ref().map(|value| text(value).into_owned()));
                ShipmondoHeaders {
                    resource_type,
                    resource_id,
                    webhook_id,
                    action,
                    user,
                }
            }
            #[cfg(feature = "inbox")]
            Self::Stored(headers) => headers.clone(),
        }
    }
}

/// An `SMD-*` header as text: a user's name may not be ASCII.
fn text(value: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
}

impl ShipmondoEvent {
    /// The shop's own order number (`data.order_id`, such as `"000000011"`)
    /// of an `Orders` webhook: the number a shop looks its order up by.
    /// The event's `id` is Shipmondo's number for the order.
    pub fn order_id(&self) -> Option<&str> {
        self.data.get("order_id").and_then(Value::as_str)
    }
}

/// The fields a [`ShipmentEvent`] is made of, from the JWT's payload, and
/// those of a connection test.
#[derive(Deserialize)]
struct ShipmondoFields<'a> {
    #[serde(default, deserialize_with = "optional_data")]
    data: Option<DataFields>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    webhook: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    url: Option<Cow<'a, str>>,
}

/// `data`, an object or a string holding one; absent or `null` is `None`.
fn optional_data<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DataFields>, D::Error> {
    #[derive(Deserialize)]
    struct Data(#[serde(deserialize_with = "object_or_json_string")] DataFields);
    Option::<Data>::deserialize(deserializer).map(|data| data.map(|Data(fields)| fields))
}

/// The resource's fields the event is made of. Owned, since `data` may be
/// a string holding the object.
#[derive(Deserialize)]
struct DataFields {
    #[serde(default, deserialize_with = "optional_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    shipment_id: Option<String>,
    // Shipmondo's own example pads this key with a space.
    #[serde(default, alias = "order_status ")]
    order_status: Option<String>,
    #[serde(default)]
    current_status: Option<String>,
    #[serde(default)]
    current_status_registered_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

impl DataFields {
    /// The event, from the signed payload; the unsigned `SMD-Action` gives
    /// the status only where the payload has none.
    fn into_event(
        self,
        resource_id: Option<&str>,
        action: Option<&str>,
    ) -> Result<ShipmentEvent, WebhookRejection> {
        let id = self.id()?;
        if let Some(header) = resource_id
            && header != id
        {
            tracing::debug!(
                header,
                signed = id,
                "SMD-Resource-Id differs from the signed id; using the signed one"
            );
        }
        let timestamp = self.timestamp();
        let (status, raw_status) = self.status(action.unwrap_or_default());
        Ok(ShipmentEvent {
            provider: Provider::Shipmondo,
            id,
            status,
            raw_status,
            timestamp,
            event_id: None,
        })
    }

    /// Whether the resource is a Shipment Monitor: its status is
    /// `current_status`. The id, the status and the time follow this one answer.
    fn is_monitor(&self) -> bool {
        self.order_status.is_none() && self.current_status.is_some()
    }

    /// A Shipment Monitor's `shipment_id`, any other resource's `id` (the
    /// other where it has none, or an empty one); the unsigned
    /// `SMD-Resource-Id` never.
    fn id(&self) -> Result<String, WebhookRejection> {
        let (first, second) = if self.is_monitor() {
            (&self.shipment_id, &self.id)
        } else {
            (&self.id, &self.shipment_id)
        };
        let present = |id: &&String| !id.trim().is_empty();
        let id = first
            .as_ref()
            .filter(present)
            .or(second.as_ref().filter(present));
        id.cloned().ok_or_else(|| {
            WebhookRejection::invalid_payload(
                "the JWT payload has neither data.id nor data.shipment_id; \
                 the unsigned smd-resource-id header is not taken as the event's id",
            )
        })
    }

    /// The signed time of the status: a monitor's
    /// `current_status_registered_at`, else the resource's `updated_at`, else
    /// its `created_at`. One that is not RFC 3339 is traced and left out,
    /// since Shipmondo does not send a refused message again.
    fn timestamp(&self) -> Option<OffsetDateTime> {
        let registered = (
            "data.current_status_registered_at",
            &self.current_status_registered_at,
        );
        let (field, value) = [
            self.is_monitor().then_some(registered),
            Some(("data.updated_at", &self.updated_at)),
            Some(("data.created_at", &self.created_at)),
        ]
        .into_iter()
        .flatten()
        .find_map(|(field, value)| Some((field, value.as_deref()?)))?;
        OffsetDateTime::parse(value, &Rfc3339)
            .inspect_err(|error| {
                tracing::debug!(field, value, %error, "Shipmondo time is not RFC 3339; the event has no timestamp");
            })
            .ok()
    }

    /// The signed payload's status where it has one; the unsigned `SMD-Action`
    /// only where it has none, and then only `create` and `cancel` mean anything.
    fn status(self, action: &str) -> (ShipmentStatus, String) {
        if let Some(raw) = self.order_status {
            return (ShipmentStatus::normalize(&raw, order_status), raw);
        }
        if let Some(raw) = self.current_status {
            return (ShipmentStatus::normalize(&raw, monitor_status), raw);
        }
        let mut buffer = [0; STATUS_KEY_LEN];
        let status = match status_key(action, &mut buffer) {
            Some("create") => ShipmentStatus::Created,
            Some("cancel") => ShipmentStatus::Cancelled,
            _ => ShipmentStatus::Other(action.to_owned()),
        };
        (status, action.to_owned())
    }
}

fn order_status(key: &str) -> Option<ShipmentStatus> {
    match key {
        "open" => Some(ShipmentStatus::Created),
        "released" => Some(ShipmentStatus::Processing),
        "packed" => Some(ShipmentStatus::ReadyForPickup),
        "sent" => Some(ShipmentStatus::InTransit),
        _ => None,
    }
}

fn monitor_status(key: &str) -> Option<ShipmentStatus> {
    match key {
        "en_route" => Some(ShipmentStatus::InTransit),
        "available_for_delivery" => Some(ShipmentStatus::OutForDelivery),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: Value, action: Option<&str>) -> ShipmentEvent {
        let data: DataFields = serde_json::from_value(data).expect("a resource");
        data.into_event(None, action)
            .expect("the payload has an id")
    }

    #[test]
    fn maps_every_documented_order_status() {
        for (raw, expected) in [
            ("open", ShipmentStatus::Created),
            ("processing", ShipmentStatus::Processing),
            ("released", ShipmentStatus::Processing),
            ("packed", ShipmentStatus::ReadyForPickup),
            ("ready_for_pickup", ShipmentStatus::ReadyForPickup),
            ("sent", ShipmentStatus::InTransit),
            ("picked_up", ShipmentStatus::PickedUp),
            ("on_hold", ShipmentStatus::OnHold),
            ("cancelled", ShipmentStatus::Cancelled),
            ("archived", ShipmentStatus::Other("archived".into())),
        ] {
            let data = serde_json::json!({"id": 1, "order_status": raw});
            assert_eq!(event(data, Some("update")).status, expected, "{raw}");
        }
    }

    #[test]
    fn maps_the_monitor_and_only_create_or_cancel_actions() {
        let monitor = |raw| {
            let data = serde_json::json!({"shipment_id": 1, "current_status": raw});
            event(data, Some("latest")).status
        };
        assert_eq!(monitor("EN_ROUTE"), ShipmentStatus::InTransit);
        assert_eq!(
            monitor("AVAILABLE_FOR_DELIVERY"),
            ShipmentStatus::OutForDelivery
        );
        assert_eq!(monitor("DELIVERED"), ShipmentStatus::Delivered);
        assert_eq!(monitor("FAILED"), ShipmentStatus::Failed);
        assert_eq!(monitor("UNKNOWN"), ShipmentStatus::Other("UNKNOWN".into()));
        let action = |action| event(serde_json::json!({"id": 1}), Some(action)).status;
        assert_eq!(action("create"), ShipmentStatus::Created);
        assert_eq!(action("cancel"), ShipmentStatus::Cancelled);
        assert_eq!(
            action("delivered"),
            ShipmentStatus::Other("delivered".into())
        );
    }

    /// What the fast path gives, checked against serde_json.
    fn unescaped(json: &[u8]) -> Option<Vec<u8>> {
        let mut buffer = json.to_vec();
        let len = unescape_in_place(&mut buffer)?;
        buffer.truncate(len);
        Some(buffer)
    }

    proptest::proptest! {
        #[test]
        fn special_bytes_finds_the_first_quote_backslash_or_control(
            bytes in proptest::array::uniform8(proptest::prop_oneof![
                proptest::strategy::Just(b'"'),
                proptest::strategy::Just(b'\\'),
                0..0x20u8,
                proptest::num::u8::ANY,
            ])
        ) {
            let first = bytes.iter().position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20);
            let found = special_bytes(u64::from_le_bytes(bytes)).trailing_zeros() as usize / 8;
            proptest::prop_assert_eq!(found, first.unwrap_or(8));
        }

        #[test]
        fn unescapes_any_string_as_serde_json_does(text in "\\PC*") {
            let json = serde_json::to_vec(&text).expect("a string");
            proptest::prop_assert_eq!(unescaped(&json), Some(text.into_bytes()));
        }

        #[test]
        fn accepts_only_what_serde_json_accepts(pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "\"", "\\", "\\u", "\\n", "\\/", "\\x", "d83d", "de00", "DC00", "00e9",
                "0000", "a", " ", "\n", "\u{1}", "é", "\u{7f}", "\\ud83d\\ude00", "\\ude00",
            ]),
            0..12,
        ), invalid_utf8: bool) {
            let mut json = b"\"".to_vec();
            json.extend(pieces.concat().into_bytes());
            if invalid_utf8 {
                json.push(0xff);
            }
            json.extend(b"\" ");
            let expected = serde_json::from_slice::<String>(&json).ok().map(String::into_bytes);
            let fast = unescaped(&json);
            // The fast path may leave a case to serde_json, never disagree with it.
            proptest::prop_assert!(fast.is_none() || fast == expected, "{:?}", String::from_utf8_lossy(&json));
        }
    }

    proptest::proptest! {
        /// The whole path from the verified payload segment: whatever the
        /// fast path leaves, serde_json reads the payload as sent.
        #[test]
        fn a_string_payload_reads_as_serde_json_reads_it(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "\\", "\\\"", "\\\\", "\\u", "\\n", "\\x", "d83d", "de00", "00e9", "a",
                    "abcdefghij", " ", "\t", "\u{1}", "é", "\\ud83d\\ude00", "\\ude00",
                ]),
                0..16,
            ),
            closed: bool,
            after in proptest::sample::select(vec!["", " ", " \t\n", "    \t", "x", "\u{1}", "\""]),
            invalid_utf8: bool,
        ) {
            let mut payload = b"\"".to_vec();
            payload.extend(pieces.concat().into_bytes());
            if invalid_utf8 {
                payload.push(0xff);
            }
            if closed {
                payload.push(b'"');
            }
            payload.extend(after.as_bytes());
            let got = claims_json(&URL_SAFE_NO_PAD.encode(&payload));
            match (got, serde_json::from_slice::<String>(&payload)) {
                (Ok(json), Ok(text)) => proptest::prop_assert_eq!(json, text.into_bytes()),
                (Err(rejection), Err(error)) => proptest::prop_assert_eq!(
                    rejection.details(),
                    format!("the JWT payload: {error}")
                ),
                (got, expected) => proptest::prop_assert!(
                    false,
                    "{:?}: got {got:?}, serde_json {expected:?}",
                    String::from_utf8_lossy(&payload)
                ),
            }
        }
    }

    #[test]
    fn a_payload_without_its_closing_quote_is_refused_as_serde_json_refuses_it() {
        // The unescape has copied the string's tail over its start by then.
        let payload = format!("\"{{\\\"data\\\":{{\\\"id\\\":1}}}}{}", " ".repeat(40));
        let rejection =
            claims_json(&URL_SAFE_NO_PAD.encode(&payload)).expect_err("no closing quote");
        let error = serde_json::from_str::<String>(&payload).expect_err("no closing quote");
        assert_eq!(rejection.details(), format!("the JWT payload: {error}"));
    }

    #[test]
    fn unescapes_escapes_and_surrogate_pairs() {
        let json = br#" "{\"a\":\"\u00e9\ud83d\ude00\/\n\\\"}" "#;
        let expected = serde_json::from_slice::<String>(json).expect("a JSON string");
        assert_eq!(unescaped(json), Some(expected.into_bytes()));
        for refused in [
            &br#""\ud83d""#[..],
            br#""\ude00""#,
            b"\"\x01\"",
            br#""a" x"#,
            br#""a"#,
        ] {
            assert_eq!(
                unescaped(refused),
                None,
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
    }

    #[test]
    fn the_signed_status_wins_over_an_action_header() {
        let data = serde_json::json!({"id": 1, "order_status": "open"});
        assert_eq!(event(data, Some("cancel")).status, ShipmentStatus::Created);
    }
}
