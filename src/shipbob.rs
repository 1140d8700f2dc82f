//! [ShipBob](https://www.shipbob.com): [Standard Webhooks](crate::standard_webhooks)
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`).
//!
//! ShipBob's webhooks page (<https://developer.shipbob.com/experimental/webhooks>)
//! says each call carries the three Standard Webhooks headers, that "the
//! content to sign is composed by concatenating the id, timestamp and
//! payload, separated by the full-stop character", that the `webhook-signature`
//! header "is composed of a list of space-delimited signatures", and that the
//! key is the base64-decoded part of the secret after `whsec_` (its example
//! secret, `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, is the specification's
//! test vector's). This layer is [`StandardWebhooks`] with ShipBob's fields:
//! see that module for what it decides about secrets, entries, padding and
//! the window (5 minutes either way by default, [`ShipBobSignature::max_age`]
//! and [`ShipBobSignature::max_future_skew`] change it). A missing or malformed
//! header is refused with 401 before any of the body is read; a stale or
//! future `webhook-timestamp` is refused with 401 (`stale`) only once the
//! signature holds.
//!
//! **Legacy subscriptions** (API 1.0/2.0, headers `shipbob-topic` and
//! `shipbob-subscription-id`, per the third-party `api-evangelist/shipbob`
//! `asyncapi/shipbob-webhooks-asyncapi.yml`) are not signed: this layer
//! refuses them with 401 `missing_proof`. Recreate such a subscription with
//! the 2025-07 API or later.
//!
//! # What the signature does not cover
//!
//! The topic, `x-webhook-topic`, is a header outside the signed string. A
//! status derived from it could be swapped by whoever replays a captured
//! request within the window (a `order.shipment.on_hold` body sent again as
//! `order.shipment.delivered`). So the status comes from the body's signed
//! `status` wherever the body has one, and from the topic only when it has
//! none; `raw_status` says which word was used. Treat a topic-derived
//! status as news only if it moves the shipment forward.
//!
//! # Retries
//!
//! ShipBob retries with exponential backoff for up to 24 hours and "cannot
//! guarantee events arrive in the original sequence"
//! (<https://developer.shipbob.com/2026-07/guides/tracking>; the third-party
//! AsyncAPI file says 15 seconds to answer, and 5 days before an endpoint is
//! disabled). Under Standard Webhooks each retry is signed again with a new
//! `webhook-timestamp` (the attempt's time, per the specification) and the
//! same `webhook-id`: a retry hours later passes the 5-minute window, and
//! is a duplicate (see the dedup key below).
//!
//! # Fields of [`ShipmentEvent`]
//!
//! ShipBob does not publish its payloads per topic; what follows is from its
//! one sample (the logistics topic `order.shipment.tracking_received`,
//! <https://developer.shipbob.com/logistics/webhooks>: `event_time`,
//! `order_id`, `status`, `tracking`) and from integrations that read
//! `shipment_id` (**inferred**, not documented):
//!
//! - `id`: the body's `shipment_id` (a string or an integer) where it has one;
//!   else its `order_id`, scoped as an order (an order and a shipment with the
//!   same number are two shipments in the inbox); an order's event (topic
//!   `order.*`, or none) with neither is refused with 400.
//! - `timestamp`: the body's `event_time` (RFC 3339) where it has one, else
//!   `None`. Not `webhook-timestamp`: that is the attempt's time, renewed on
//!   every retry, so a retried older event would pass for newer than the
//!   events sent since.
//! - `event_id`: `webhook-id`, the same on every retry.
//! - the dedup key: the signed `webhook-id`, `.` and body, without the
//!   attempt's timestamp, so a retry is a duplicate.
//!
//! # Statuses
//!
//! From the body's `status` (`brianzinn/shipbob-node-sdk`
//! `src/client/2025-07/types.gen.ts` `OrdersShipmentStatusFilter`,
//! `OrdersOrderStatusEnum`; `LabelCreated` from the logistics sample), else
//! from `x-webhook-topic` (`WebhooksTopics` there, and
//! <https://developer.shipbob.com/2026-07/webhooks>):
//!
//! | ShipBob | [`ShipmentStatus`] |
//! |---|---|
//! | `LabelCreated`, `LabeledCreated` | `created` |
//! | `Processing`, `Picked`, `Packed` | `processing` |
//! | `Shipped`, `InTransit`, topic `order.shipped` | `in_transit` |
//! | `Completed` (an order fulfilled and shipped; **inferred**) | `in_transit` |
//! | `OutForDelivery` | `out_for_delivery` |
//! | `Delivered`, topics `order.shipment.delivered`, `order.delivered` | `delivered` |
//! | `DeliveryException` | `failed` |
//! | `OnHold`, `Exception` (before the shipment leaves the warehouse), topics `order.shipment.on_hold`, `order.shipment.exception` | `on_hold` |
//! | `Cancelled`, topic `order.shipment.cancelled` | `cancelled` |
//! | any other word of the vocabulary | that status |
//! | any other (topic `order.shipment.tracking.updated` without a body status...) | `other` |
//!
//! **Other resources.** ShipBob's webhooks page also lists `return.*`
//! (returns), `wro.*` (warehouse receiving orders) and `billing.*` topics.
//! A webhook whose `x-webhook-topic` does not start with `order.` is passed
//! on, not refused (ShipBob retries a refusal for days, then disables the
//! endpoint), and not read as a shipment (a return's `Completed` is not its
//! order's): `id` and `event_id` are its `webhook-id` (scoped apart from
//! shipments, so it never supersedes one in the inbox), `status` is
//! `other` and `raw_status` the topic, `timestamp` is `None`; the body is
//! in the typed payload. The topic is not signed: rewriting it in a replay
//! can only turn a shipment's event into such an `other` one, whose dedup
//! key is the original's.
//!
//! ShipBob sends no ping: its dashboard's test tool sends sample payloads,
//! which are verified as any webhook.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{ShipBobSignature, ShipmentEvent};
//!
//! async fn on_shipbob(event: ShipmentEvent) {
//!     println!("{} is {} ({:?})", event.id, event.status, event.event_id);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/shipbob",
//!     post(on_shipbob).route_layer(ShipBobSignature::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
//! );
//! ```

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::extract::typed_payload;
use crate::json::{optional_id, optional_str, parse_object, parse_timestamp};
use crate::proof::no_secret_matched;
use crate::secret::or_panic;
use crate::standard_webhooks::{MISMATCH, SignedHeaders, StandardWebhooks};
use crate::verify::{DEFAULT_BODY_LIMIT, Verified, Verifier};
use crate::{
    ConfigError, Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook,
    WebhookRejection, WebhookSecret,
};

/// The header ShipBob names the topic in (not signed).
pub const TOPIC_HEADER: HeaderName = HeaderName::from_static("x-webhook-topic");

/// What the topics of orders and their shipments start with; others
/// (`return.*`, `wro.*`, `billing.*`) are about no shipment.
const ORDER_TOPICS: &str = "order.";

/// The scope of ids that are a webhook message's `webhook-id`, for events
/// about no shipment. Part of the inbox's stored keys: never renamed.
const MESSAGE_SCOPE: &str = "message";

/// Layer that verifies ShipBob's Standard Webhooks signature.
///
/// See the [module docs](self) for what is signed and how statuses map.
#[derive(Debug, Clone)]
pub struct ShipBobSignature {
    keys: StandardWebhooks,
    body_limit: usize,
}

impl ShipBobSignature {
    /// Verifies with `secret`, ShipBob's `whsec_...` signing secret.
    ///
    /// # Panics
    ///
    /// If the secret is not base64 after `whsec_`, or decodes to nothing;
    /// [`try_new`](Self::try_new) returns the [`ConfigError`] instead.
    #[track_caller]
    #[must_use]
    pub fn new(secret: impl WebhookSecret) -> Self {
        or_panic(Self::try_new(secret))
    }

    /// Like [`new`](Self::new), for a secret read at run time: an error
    /// instead of a panic.
    pub fn try_new(secret: impl WebhookSecret) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: StandardWebhooks::try_new(secret)?,
            body_limit: DEFAULT_BODY_LIMIT,
        })
    }

    /// Also accepts requests signed with `secret`, reported as `label` in
    /// [`MatchedSecret`](crate::MatchedSecret): configure the old and the
    /// new secret while rotating.
    ///
    /// # Panics
    ///
    /// If the secret is refused as [`new`](Self::new) refuses one, or
    /// `label` is taken; [`try_with_secret`](Self::try_with_secret) returns
    /// the error.
    #[track_caller]
    #[must_use]
    pub fn with_secret(self, label: impl Into<Arc<str>>, secret: impl WebhookSecret) -> Self {
        or_panic(self.try_with_secret(label, secret))
    }

    /// Like [`with_secret`](Self::with_secret): an error instead of a panic.
    pub fn try_with_secret(
        mut self,
        label: impl Into<Arc<str>>,
        secret: impl WebhookSecret,
    ) -> Result<Self, ConfigError> {
        self.keys = self.keys.try_with_secret(label, secret)?;
        Ok(self)
    }

    /// Refuses bodies larger than `bytes` with 413 (default 1 MiB).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Refuses with 401 (`stale`) a `webhook-timestamp` older than `age`
    /// (default 5 minutes, the Standard Webhooks libraries').
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.keys = self.keys.max_age(age);
        self
    }

    /// Refuses with 401 (`stale`) a `webhook-timestamp` further than `skew`
    /// ahead of this server's clock (default 5 minutes).
    #[must_use]
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.keys = self.keys.max_future_skew(skew);
        self
    }

    /// Verifies a request without a framework, from its headers and its
    /// whole body as received: the checks the layer makes, in the same
    /// order, with the same refusals
    /// ([`WebhookRejection::to_response`] answers with one).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) -> Result<Verified, WebhookRejection> {
        crate::verify::verify_request(self, headers, body.into())
    }
}

impl crate::verify::sealed::Sealed for ShipBobSignature {}

impl<S> tower_layer::Layer<S> for ShipBobSignature {
    type Service = crate::VerifyWebhook<S, Self>;

    fn layer(&self, inner: S) -> Self::Service {
        crate::VerifyWebhook::fixed(inner, self)
    }
}

impl Verifier for ShipBobSignature {
    const PROVIDER: Provider = Provider::ShipBob;
    type HeaderProof = SignedHeaders;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<SignedHeaders, WebhookRejection> {
        self.keys.check_headers(headers)
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        signed: SignedHeaders,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let secret = self.keys.check_signature(&signed, body, || {
            no_secret_matched(Provider::ShipBob, headers, body, MISMATCH)
        })?;
        // Not signed: used only where the body has no status, and to tell
        // an order's event from another resource's.
        let topic = headers
            .get(&TOPIC_HEADER)
            .and_then(|value| value.to_str().ok());
        let webhook_id = String::from_utf8_lossy(signed.id.as_bytes()).into_owned();
        // What was signed, but the attempt's timestamp: the same on every retry.
        let dedup = [
            Bytes::copy_from_slice(signed.id.as_bytes()),
            Bytes::from_static(b"."),
            body.clone(),
        ];
        if let Some(topic) = topic.filter(|topic| !topic.starts_with(ORDER_TOPICS)) {
            // A return, receiving order or billing event: no shipment's,
            // whatever its fields.
            let _: IgnoredAny = parse_object("the body", body)?;
            let event = ShipmentEvent {
                provider: Provider::ShipBob,
                id: webhook_id.clone(),
                status: ShipmentStatus::Other(topic.to_owned()),
                raw_status: topic.to_owned(),
                timestamp: None,
                event_id: Some(webhook_id),
            };
            let webhook = VerifiedWebhook::new(event, secret.clone(), body.clone())
                .signed_over(dedup)
                .with_shipment_scope(Some(MESSAGE_SCOPE));
            return Ok(Verified::Webhook(webhook));
        }
        let fields: ShipBobFields<'_> = parse_object("the body", body)?;
        let (id, scope) = match (&fields.shipment_id, &fields.order_id) {
            (Some(shipment), _) => (shipment.clone(), None),
            (None, Some(order)) => (order.clone(), Some("order")),
            (None, None) => {
                return Err(WebhookRejection::invalid_payload(
                    "the body has neither shipment_id nor order_id",
                ));
            }
        };
        let raw_status = match (&fields.status, topic) {
            (Some(status), _) => status.clone().into_owned(),
            (None, Some(topic)) => topic.to_owned(),
            (None, None) => {
                return Err(WebhookRejection::invalid_payload(
                    "the body has no status and the request no x-webhook-topic header",
                ));
            }
        };
        let timestamp = fields
            .event_time
            .as_deref()
            .map(|time| parse_timestamp("the body's event_time", time))
            .transpose()?;
        let event = ShipmentEvent {
            provider: Provider::ShipBob,
            id,
            status: status(&raw_status),
            raw_status,
            timestamp,
            event_id: Some(webhook_id),
        };
        let webhook = VerifiedWebhook::new(event, secret.clone(), body.clone())
            .signed_over(dedup)
            .with_shipment_scope(scope);
        Ok(Verified::Webhook(webhook))
    }
}

/// The fields a [`ShipmentEvent`] is made of, all in the signed body.
#[derive(Deserialize)]
struct ShipBobFields<'a> {
    #[serde(default, deserialize_with = "optional_id")]
    shipment_id: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    order_id: Option<String>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    event_time: Option<Cow<'a, str>>,
}

/// A ShipBob webhook's body, as sent (all of it signed).
///
/// Take it as a handler argument behind [`ShipBobSignature`]: it is decoded
/// from the verified body then, and refused with 400 if the body is not
/// this shape. ShipBob does not publish its payloads per topic: every field
/// is optional, and those this crate does not model are kept in `other`.
/// The topic is a header: take the request's `HeaderMap` to read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShipBobEvent {
    /// The shipment's id, sent as a string or a number.
    #[serde(default, deserialize_with = "optional_id")]
    pub shipment_id: Option<String>,
    /// The order's id, sent as a string or a number.
    #[serde(default, deserialize_with = "optional_id")]
    pub order_id: Option<String>,
    /// The status (`LabelCreated`, `InTransit`, `Delivered`...).
    #[serde(default)]
    pub status: Option<String>,
    /// When the event happened, RFC 3339.
    #[serde(default)]
    pub event_time: Option<String>,
    /// The tracking details, where sent (`carrier`, `tracking_id`, `tracking_url`...).
    #[serde(default)]
    pub tracking: Option<Map<String, Value>>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypedPayload for ShipBobEvent {
    const PROVIDER: Provider = Provider::ShipBob;
    const NAME: &'static str = "ShipBobEvent";
    const LAYER: &'static str = "ShipBobSignature";
}

typed_payload!(ShipBobEvent);

fn status(raw: &str) -> ShipmentStatus {
    ShipmentStatus::normalize(raw, |key| match key {
        "labelcreated" | "labeledcreated" => Some(ShipmentStatus::Created),
        "picked" | "packed" => Some(ShipmentStatus::Processing),
        "shipped" | "intransit" | "completed" | "order.shipped" => Some(ShipmentStatus::InTransit),
        "outfordelivery" => Some(ShipmentStatus::OutForDelivery),
        "order.shipment.delivered" | "order.delivered" => Some(ShipmentStatus::Delivered),
        "deliveryexception" => Some(ShipmentStatus::Failed),
        "onhold" | "exception" | "order.shipment.on_hold" | "order.shipment.exception" => {
            Some(ShipmentStatus::OnHold)
        }
        "order.shipment.cancelled" => Some(ShipmentStatus::Cancelled),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_status() {
        for (raw, expected) in [
            ("LabelCreated", ShipmentStatus::Created),
            ("LabeledCreated", ShipmentStatus::Created),
            ("Processing", ShipmentStatus::Processing),
            ("Picked", ShipmentStatus::Processing),
            ("Packed", ShipmentStatus::Processing),
            ("Shipped", ShipmentStatus::InTransit),
            ("InTransit", ShipmentStatus::InTransit),
            ("Completed", ShipmentStatus::InTransit),
            ("order.shipped", ShipmentStatus::InTransit),
            ("OutForDelivery", ShipmentStatus::OutForDelivery),
            ("Delivered", ShipmentStatus::Delivered),
            ("order.shipment.delivered", ShipmentStatus::Delivered),
            ("order.delivered", ShipmentStatus::Delivered),
            ("DeliveryException", ShipmentStatus::Failed),
            ("OnHold", ShipmentStatus::OnHold),
            ("Exception", ShipmentStatus::OnHold),
            ("order.shipment.on_hold", ShipmentStatus::OnHold),
            ("order.shipment.exception", ShipmentStatus::OnHold),
            ("Cancelled", ShipmentStatus::Cancelled),
            ("order.shipment.cancelled", ShipmentStatus::Cancelled),
        ] {
            assert_eq!(status(raw), expected, "{raw}");
        }
        for other in ["order.shipment.tracking.updated", "None", "ImportReview"] {
            assert_eq!(status(other), ShipmentStatus::Other(other.into()));
        }
    }
}
