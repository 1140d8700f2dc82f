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
//! Shipmondo also sends five headers, kept in [`ShipmondoHeaders`] for
//! [`ShipmondoEvent::headers`]:
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
//!   string holding one is accepted, in [`ShipmentEvent`](crate::ShipmentEvent) and in
//!   [`ShipmondoEvent::data`].
//! - **The connection test.** When a webhook is created, Shipmondo posts to
//!   its endpoint at once and expects a 200, or the webhook is not created
//!   (`Setono/shipmondo-php-sdk`'s live test; Shipmondo's [requirements
//!   page]). Its payload's `action` is `connection_test`
//!   (`commerce-shipmondo` returns early on it) and it has no `data` (or a `null` one). A
//!   verified test is answered 200 with `{"status":"connection test
//!   received"}`, traced at `info`, and never reaches the handler; a forged
//!   one is a 401. [`ShipmondoJwt::on_connection_test`] lets you see them
//!   (as a [`ConnectionTest`]).
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
//! # Fields of [`ShipmentEvent`](crate::ShipmentEvent)
//!
//! - `id`: a Shipment Monitor's `data.shipment_id`; any other resource's
//!   `data.id` (Shipmondo's number). The shop's own order number is
//!   [`ShipmondoEvent::order_id`]. Shipmondo numbers orders apart from
//!   shipments, so an order and a shipment can have the same `id`: the
//!   [inbox](crate::inbox) keeps them apart for latest wins (an order is
//!   told by its signed `data.order_status`, never by the unsigned
//!   `SMD-Resource-Type`), and a handler that keys its own records by `id`
//!   must tell them apart too ([`ShipmondoEvent::data`]). Shipmondo also
//!   lists shipment drafts among its webhook resources; their payload is
//!   not documented, so a draft's id is taken as a shipment's.
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
//! | status from | Shipmondo | [`ShipmentStatus`](crate::ShipmentStatus) |
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

mod event;
mod headers;
mod jwt;

use std::borrow::Cow;

use bytes::Bytes;
use http::HeaderMap;

use crate::json::parse_object;
use crate::proof::{HmacSha256, hmac_key};
use crate::secret::{Secrets, or_panic};
use crate::verify::{DEFAULT_BODY_LIMIT, OnConnectionTest, Verified, Verifier, layer_builders};
use crate::{
    ConfigError, ConnectionTest, Provider, VerifiedWebhook, WebhookRejection, WebhookSecret,
};

pub use event::ShipmondoEvent;
#[cfg(feature = "inbox")]
pub(crate) use headers::from_schema_1 as headers_from_schema_1;
pub use headers::{
    ACTION_HEADER, RESOURCE_ID_HEADER, RESOURCE_TYPE_HEADER, ShipmondoHeaders, USER_HEADER,
    WEBHOOK_ID_HEADER,
};

/// The `action` of the payload Shipmondo sends to test a new webhook's endpoint.
const CONNECTION_TEST: &str = "connection_test";

/// The shortest key [`ShipmondoJwt::new`] accepts, in bytes: RFC 7518 §3.2
/// asks HS256 keys to be at least as long as the hash.
pub const MIN_KEY_LEN: usize = 32;

/// Layer that verifies Shipmondo's JWT.
///
/// See the [module docs](self) for what is signed and how statuses map.
/// The proof is in the body, so there is no header to override.
#[derive(Debug, Clone)]
pub struct ShipmondoJwt {
    secrets: Secrets<HmacSha256>,
    body_limit: usize,
    on_connection_test: Option<OnConnectionTest>,
}

layer_builders!(
    ShipmondoJwt,
    "the key entered when creating the webhook in Shipmondo, at least \
     [`MIN_KEY_LEN`] (32) bytes: a short key can be guessed offline from a \
     single captured token (see [`allowing_short_keys`](Self::allowing_short_keys))",
    prepare: hmac_key,
    min_len: MIN_KEY_LEN,
);

impl ShipmondoJwt {
    fn from_secrets(secrets: Secrets<HmacSha256>) -> Self {
        Self {
            secrets,
            body_limit: DEFAULT_BODY_LIMIT,
            on_connection_test: None,
        }
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
    #[must_use]
    pub fn allowing_short_keys(key: impl WebhookSecret) -> Self {
        or_panic(Self::try_allowing_short_keys(key))
    }

    /// Like [`allowing_short_keys`](Self::allowing_short_keys): an error
    /// instead of a panic.
    pub fn try_allowing_short_keys(key: impl WebhookSecret) -> Result<Self, ConfigError> {
        Ok(Self::from_secrets(Secrets::new(
            key.secret_bytes(),
            hmac_key,
            0,
        )?))
    }

    /// Calls `callback` with every verified connection test, after tracing it
    /// at `info` and before answering it with 200. A connection test never
    /// reaches the route's handler: it is not a shipment's event. Keep the
    /// callback quick; it runs within Shipmondo's 3 seconds.
    #[must_use]
    pub fn on_connection_test(
        mut self,
        callback: impl Fn(&ConnectionTest) + Send + Sync + 'static,
    ) -> Self {
        self.on_connection_test = Some(OnConnectionTest::new(callback));
        self
    }
}

impl Verifier for ShipmondoJwt {
    const PROVIDER: Provider = Provider::Shipmondo;
    // The proof is in the body.
    type HeaderProof = ();

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, _headers: &HeaderMap) -> Result<(), WebhookRejection> {
        Ok(())
    }

    fn connection_tested(&self, test: &ConnectionTest) {
        if let Some(callback) = &self.on_connection_test {
            callback.call(test);
        }
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        (): (),
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let envelope: jwt::Envelope<'_> = parse_object("the body", body)?;
        let (payload, key) = self.verify_token(&envelope.data, headers, body)?;
        let json = jwt::claims_json(payload)?;
        let fields: event::ShipmondoFields<'_> = parse_object("the JWT payload", &json)?;
        let Some(data) = fields.data else {
            if fields.action.as_deref() == Some(CONNECTION_TEST) {
                return Ok(Verified::ConnectionTest(ConnectionTest {
                    provider: Provider::Shipmondo,
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
        let smd = headers::read(headers)?;
        let [_, resource_id, _, action, _] = &smd;
        let (resource_id, action) = (
            resource_id.as_ref().map(headers::text),
            action.as_ref().map(headers::text),
        );
        let scope = data.shipment_scope();
        let event = data.into_event(resource_id.as_deref(), action.as_deref())?;
        // The JWT, not the envelope around it, is what Shipmondo signed.
        let jwt = match envelope.data {
            Cow::Borrowed(jwt) => body.slice_ref(jwt.as_bytes()),
            Cow::Owned(jwt) => Bytes::from(jwt),
        };
        let webhook = VerifiedWebhook::new(event, key.clone(), json)
            .signed_over([jwt])
            .with_headers(headers::keep(smd))
            .with_shipment_scope(scope);
        Ok(Verified::Webhook(webhook))
    }
}
