//! [Sendcloud](https://sendcloud.dev/api/v2/webhooks): `Sendcloud-Signature`,
//! a hex HMAC-SHA256 of the raw body.
//!
//! Sendcloud signs each request's body with the integration's `Secret Key`
//! or `Webhook Signature Key` (which one depends on the integration type)
//! and sends the lowercase hex digest in `Sendcloud-Signature`
//! ([v2 webhooks](https://sendcloud.dev/api/v2/webhooks),
//! [v3 webhooks](https://sendcloud.dev/api/v3/webhooks/index), and their
//! OpenAPI, `https://sendcloud.dev/.openapi/v3/webhooks/openapi.yaml`, which
//! declares the header required). The key is the secret as given, and may be
//! short (Sendcloud's example is `secretkey`): any non-empty one is accepted.
//! The docs' known answer, body `{"key": "value"}` (a space after the colon)
//! with `secretkey`, is checked in this crate's tests. A missing or
//! malformed header is refused before any of the body is read; the body is
//! checked as received (the docs' PHP sample hashes `$_POST`, a parsed array:
//! hash the raw body, as this layer does).
//!
//! **What the signature does not cover:** freshness. The body's `timestamp`
//! is signed but is the event's time, and Sendcloud publishes no delivery
//! window or retry policy: no window applies. Sendcloud sends no event id:
//! the dedup key is the SHA-256 of the body.
//!
//! # Events
//!
//! The body's `action` says what happened; `Webador/sendcloud`
//! `src/Model/WebhookEvent.php` knows six:
//!
//! - `parcel_status_changed`
//!   ([docs](https://sendcloud.dev/api/v2/webhooks/parcel-status-changed)):
//!   a parcel's new status, below. Any other action with a `parcel` object
//!   is read the same way.
//! - `test_webhook`: what the integration settings' test button sends
//!   ([v2 webhooks](https://sendcloud.dev/api/v2/webhooks)). It is a
//!   connection test, as Shipmondo's: verified like any webhook, answered 200
//!   with `{"status":"connection test received"}`, never passed to the
//!   handler ([`SendcloudSignature::on_connection_test`] sees them). Its
//!   exact body is not documented; only its `action` is read.
//! - `integration_connected`, `integration_credentials`,
//!   `integration_deleted`, `integration_updated`
//!   ([docs](https://sendcloud.dev/api/v2/webhooks/integration-connected)):
//!   an integration changed, no parcel. They are passed to the handler, so
//!   none is dropped unseen: `id` is `integration.id` (or the `action` if the
//!   body has none), scoped apart from parcels (an integration and a parcel
//!   with one id are two shipments in the inbox), `status` is `other` and
//!   `raw_status` the `action`. So is any other action without a parcel.
//!
//! # Fields of [`ShipmentEvent`]
//!
//! For a parcel: `id` is `parcel.id`, Sendcloud's parcel id (a number, given
//! as its digits; `parcel.tracking_number` may be empty before announcement);
//! `timestamp` is `timestamp`, epoch **milliseconds**
//! (`WebhookEvent::fromData` in `Webador/sendcloud` divides it by 1000),
//! `None` if absent; `event_id` is `None`.
//!
//! # Statuses
//!
//! `parcel.status.id` maps, not its `message` (one message is longer than
//! any word this crate maps); `raw_status` is `parcel.status.message`, or the
//! id if there is none. Ids and messages from `Webador/sendcloud`
//! `src/Model/Parcel.php`, `white-nl/commerce-sendcloud`
//! `src/enums/ParcelStatus.php` and [tracking
//! statuses](https://sendcloud.dev/docs/archive/tracking/tracking-statuses)
//! (the docs' own sample pairs id 1 with "Ready to send": a placeholder).
//!
//! | Sendcloud id (message) | [`ShipmentStatus`] |
//! |---|---|
//! | 999 (No label), 1000 (Ready to send) | `created` |
//! | 1001 (Being announced), 2001 (Submitting cancellation request) | `processing` |
//! | 1 (Announced), 13 (Announced: not collected) | `ready_for_pickup` |
//! | 22 (Shipment picked up by driver) | `picked_up` |
//! | 3 (En route to sorting center), 4 (Delivery delayed), 5 (Sorted), 6 (Not sorted), 7 (Being sorted), 91 (Parcel en route), 62989 (At Customs), 62990 (At sorting centre), 62993 (Delivery method changed), 62994 (Delivery date changed), 62995 (Delivery address changed) | `in_transit` |
//! | 92 (Driver en route) | `out_for_delivery` |
//! | 12 (Awaiting customer pickup) | `at_pickup_point` |
//! | 11 (Delivered), 93 (Shipment collected by customer) | `delivered` |
//! | 8 (Delivery attempt failed), 80 (Unable to deliver), 1002 (Announcement failed), 62996 (Exception) | `failed` |
//! | 15 (Error collecting), 62997 (Address invalid) | `on_hold` |
//! | 62991 (Refused by recipient), 62992 (Returned to sender) | `returned` |
//! | 2000 (Cancelled), 1998 (Cancelled upstream), 1999 (Cancellation requested) | `cancelled` |
//! | 94 (Parcel cancellation failed.), 1337 (Unknown status) | `other` |
//! | any other | `other` |
//!
//! 1999 is a request Sendcloud may still refuse (94 follows then); it maps
//! to `cancelled` because the shop should stop acting on the parcel.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{SendcloudEvent, SendcloudSignature, ShipmentEvent};
//!
//! async fn on_sendcloud(event: ShipmentEvent, payload: SendcloudEvent) {
//!     println!("{} ({}) is {}", event.id, payload.action, event.status);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/sendcloud",
//!     post(on_sendcloud).route_layer(SendcloudSignature::new("secretkey")),
//! );
//! ```

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::extract::typed_payload;
use crate::json::{object, optional_id, optional_str, parse_object};
use crate::proof::{HmacSha256, Tag, hex_proof, hmac_key, no_secret_matched};
use crate::secret::Secrets;
use crate::verify::{
    DEFAULT_BODY_LIMIT, OnConnectionTest, Verified, Verifier, layer_builders,
    signature_header_builders,
};
use crate::{
    ConnectionTest, Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook,
    WebhookRejection,
};

/// The header Sendcloud sends its signature in.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("sendcloud-signature");

/// The `action` of the request Sendcloud's test button sends.
pub const TEST_WEBHOOK: &str = "test_webhook";

/// The scope of ids that are Sendcloud integrations, not parcels. Part of the
/// inbox's stored keys: never renamed.
const INTEGRATION_SCOPE: &str = "integration";

/// Layer that verifies Sendcloud's signature.
///
/// See the [module docs](self) for what is signed and how statuses map.
#[derive(Debug, Clone)]
pub struct SendcloudSignature {
    secrets: Secrets<HmacSha256>,
    header: HeaderName,
    body_limit: usize,
    on_connection_test: Option<OnConnectionTest>,
}

layer_builders!(
    SendcloudSignature,
    "the integration's Secret Key or Webhook Signature Key, as shown",
    prepare: hmac_key,
    min_len: 0,
);
signature_header_builders!(SendcloudSignature, "Sendcloud-Signature");

impl SendcloudSignature {
    fn from_secrets(secrets: Secrets<HmacSha256>) -> Self {
        Self {
            secrets,
            header: SIGNATURE_HEADER,
            body_limit: DEFAULT_BODY_LIMIT,
            on_connection_test: None,
        }
    }

    /// Calls `callback` with every verified `test_webhook`, after tracing it
    /// at `info` and before answering it with 200. A test never reaches the
    /// route's handler: it is not a parcel's event. Keep the callback quick.
    #[must_use]
    pub fn on_connection_test(
        mut self,
        callback: impl Fn(&ConnectionTest) + Send + Sync + 'static,
    ) -> Self {
        self.on_connection_test = Some(OnConnectionTest::new(callback));
        self
    }
}

impl Verifier for SendcloudSignature {
    const PROVIDER: Provider = Provider::Sendcloud;
    type HeaderProof = Tag;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<Tag, WebhookRejection> {
        hex_proof(headers, &self.header)
    }

    fn connection_tested(&self, test: &ConnectionTest) {
        if let Some(callback) = &self.on_connection_test {
            callback.call(test);
        }
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        tag: Tag,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let secret = self.secrets.verify_hmac(&[body], &tag).ok_or_else(|| {
            no_secret_matched(
                Provider::Sendcloud,
                headers,
                body,
                "the signature matches no configured secret",
            )
        })?;
        let fields: SendcloudFields<'_> = parse_object("the body", body)?;
        if fields.action == TEST_WEBHOOK {
            return Ok(Verified::ConnectionTest(ConnectionTest {
                provider: Provider::Sendcloud,
                webhook: None,
                url: None,
                secret: secret.clone(),
            }));
        }
        let (event, scope) = fields.to_event()?;
        Ok(Verified::Webhook(
            VerifiedWebhook::new(event, secret.clone(), body.clone()).with_shipment_scope(scope),
        ))
    }
}

/// A Sendcloud webhook's body, as sent.
///
/// Take it as a handler argument behind [`SendcloudSignature`]: it is decoded
/// from the verified body then, and refused with 400 if the body is not this
/// shape.
///
/// At each level, fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendcloudEvent {
    /// What happened (`parcel_status_changed`, `integration_updated`…).
    pub action: String,
    /// When, in epoch milliseconds.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// The parcel, for parcel events.
    #[serde(default)]
    pub parcel: Option<SendcloudParcel>,
    /// Every other field (`carrier_status_change_timestamp`, `integration`…).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `parcel` in a [`SendcloudEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendcloudParcel {
    /// Sendcloud's parcel id, sent as a number.
    #[serde(default, deserialize_with = "optional_id")]
    pub id: Option<String>,
    /// The carrier's tracking number (may be empty before announcement).
    #[serde(default)]
    pub tracking_number: Option<String>,
    /// The shop's order number.
    #[serde(default)]
    pub order_number: Option<String>,
    /// The status.
    #[serde(default)]
    pub status: Option<SendcloudStatus>,
    /// Every other field (`name`, `address`, `shipment`…).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `parcel.status` in a [`SendcloudEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendcloudStatus {
    /// The status id (`11` is delivered: see the [module docs](self)).
    pub id: i64,
    /// The status in words.
    #[serde(default)]
    pub message: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypedPayload for SendcloudEvent {
    const PROVIDER: Provider = Provider::Sendcloud;
    const NAME: &'static str = "SendcloudEvent";
    const LAYER: &'static str = "SendcloudSignature";
}

typed_payload!(SendcloudEvent);

/// The fields a [`ShipmentEvent`] is made of.
#[derive(Deserialize)]
struct SendcloudFields<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(borrow, default)]
    parcel: Option<ParcelFields<'a>>,
    #[serde(default)]
    integration: Option<IntegrationFields>,
}

#[derive(Deserialize)]
struct ParcelFields<'a> {
    #[serde(default, deserialize_with = "optional_id")]
    id: Option<String>,
    #[serde(borrow, deserialize_with = "object")]
    status: StatusFields<'a>,
}

#[derive(Deserialize)]
struct StatusFields<'a> {
    id: i64,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct IntegrationFields {
    #[serde(default, deserialize_with = "optional_id")]
    id: Option<String>,
}

impl SendcloudFields<'_> {
    fn to_event(&self) -> Result<(ShipmentEvent, Option<&'static str>), WebhookRejection> {
        let timestamp = self
            .timestamp
            .map(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(
                    |_| {
                        WebhookRejection::invalid_payload(format!(
                            "the body's timestamp: {ms} is not a time in epoch milliseconds"
                        ))
                    },
                )
            })
            .transpose()?;
        let Some(parcel) = &self.parcel else {
            if self.action == "parcel_status_changed" {
                return Err(WebhookRejection::invalid_payload(
                    "the body: missing field `parcel`",
                ));
            }
            let id = self.integration.as_ref().and_then(|it| it.id.clone());
            let event = ShipmentEvent {
                provider: Provider::Sendcloud,
                id: id.unwrap_or_else(|| self.action.clone().into_owned()),
                status: ShipmentStatus::Other(self.action.clone().into_owned()),
                raw_status: self.action.clone().into_owned(),
                timestamp,
                event_id: None,
            };
            return Ok((event, Some(INTEGRATION_SCOPE)));
        };
        let id = parcel.id.clone().ok_or_else(|| {
            WebhookRejection::invalid_payload("the body, at parcel: missing field `id`")
        })?;
        let raw_status = match &parcel.status.message {
            Some(message) => message.clone().into_owned(),
            None => parcel.status.id.to_string(),
        };
        let status = match status(parcel.status.id) {
            ShipmentStatus::Other(_) => ShipmentStatus::Other(raw_status.clone()),
            known => known,
        };
        let event = ShipmentEvent {
            provider: Provider::Sendcloud,
            id,
            status,
            raw_status,
            timestamp,
            event_id: None,
        };
        Ok((event, None))
    }
}

/// A parcel status id's status; `Other` (its text set by the caller) for any other.
fn status(id: i64) -> ShipmentStatus {
    match id {
        999 | 1000 => ShipmentStatus::Created,
        1001 | 2001 => ShipmentStatus::Processing,
        1 | 13 => ShipmentStatus::ReadyForPickup,
        22 => ShipmentStatus::PickedUp,
        3..=7 | 91 | 62989 | 62990 | 62993..=62995 => ShipmentStatus::InTransit,
        92 => ShipmentStatus::OutForDelivery,
        12 => ShipmentStatus::AtPickupPoint,
        11 | 93 => ShipmentStatus::Delivered,
        8 | 80 | 1002 | 62996 => ShipmentStatus::Failed,
        15 | 62997 => ShipmentStatus::OnHold,
        62991 | 62992 => ShipmentStatus::Returned,
        1998..=2000 => ShipmentStatus::Cancelled,
        _ => ShipmentStatus::Other(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_status() {
        use ShipmentStatus::*;
        for (ids, expected) in [
            (&[999, 1000][..], Created),
            (&[1001, 2001], Processing),
            (&[1, 13], ReadyForPickup),
            (&[22], PickedUp),
            (
                &[3, 4, 5, 6, 7, 91, 62989, 62990, 62993, 62994, 62995],
                InTransit,
            ),
            (&[92], OutForDelivery),
            (&[12], AtPickupPoint),
            (&[11, 93], Delivered),
            (&[8, 80, 1002, 62996], Failed),
            (&[15, 62997], OnHold),
            (&[62991, 62992], Returned),
            (&[2000, 1998, 1999], Cancelled),
            (&[94, 1337, 0, -1, 42], Other(String::new())),
        ] {
            for &id in ids {
                assert_eq!(status(id), expected, "{id}");
            }
        }
    }
}
