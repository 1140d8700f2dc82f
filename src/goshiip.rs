//! [GoShiip](https://goshiip.com): `X-Signature`, a hex HMAC-SHA256 of the raw body.
//!
//! GoShiip signs the body's exact bytes with the secret key from its API
//! settings and sends the lowercase hex digest in `X-Signature`. This crate
//! checks the bytes as received, so nothing in front of this layer may parse,
//! re-encode or decompress the body. A missing or malformed `X-Signature` is
//! refused with 401 before any of the body is read.
//!
//! **What the signature does not cover:** freshness. The body has no time or
//! event id, so a captured webhook can be replayed as is; treat a status as
//! news only if it moves the shipment forward. GoShiip waits 30 seconds for an
//! answer and resends every 30 minutes in production (5 in its sandbox).
//!
//! # Fields of [`ShipmentEvent`]
//!
//! `id` is `shipment.data.reference`, the handle GoShiip's API uses;
//! `timestamp` and `event_id` are `None`: GoShiip sends neither.
//!
//! # Statuses
//!
//! | GoShiip | [`ShipmentStatus`] |
//! |---|---|
//! | `Pending` | `created` |
//! | `In Progress` | `processing` |
//! | `Picked Up` | `picked_up` |
//! | `Delivered` | `delivered` |
//! | any other word of the vocabulary (`Cancelled`...) | that status |
//! | any other | `other` |
//!
//! Any case, and spaces, hyphens or underscores alike.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{GoShiipEvent, GoShiipSignature, ShipmentEvent};
//!
//! async fn on_goshiip(event: ShipmentEvent, payload: GoShiipEvent) {
//!     println!("{} via {:?} is {}", event.id, payload.shipment.carrier, event.status);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/goshiip",
//!     post(on_goshiip).route_layer(GoShiipSignature::new("your_secret_key")),
//! );
//! ```

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::extract::typed_payload;
use crate::json::{object, optional_id, parse_object};
use crate::proof::{HmacSha256, Tag, hex_proof, hmac_key, no_secret_matched};
use crate::secret::Secrets;
use crate::verify::{
    DEFAULT_BODY_LIMIT, Verified, Verifier, layer_builders, signature_header_builders,
};
use crate::{
    Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook, WebhookRejection,
};

/// The header GoShiip sends its signature in.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-signature");

/// Layer that verifies GoShiip's signature.
///
/// See the [module docs](self) for what is signed and how statuses map.
#[derive(Debug, Clone)]
pub struct GoShiipSignature {
    secrets: Secrets<HmacSha256>,
    header: HeaderName,
    body_limit: usize,
}

layer_builders!(
    GoShiipSignature,
    "GoShiip's secret key",
    prepare: hmac_key,
    min_len: 0,
);
signature_header_builders!(GoShiipSignature, "X-Signature");

impl GoShiipSignature {
    fn from_secrets(secrets: Secrets<HmacSha256>) -> Self {
        Self {
            secrets,
            header: SIGNATURE_HEADER,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl Verifier for GoShiipSignature {
    const PROVIDER: Provider = Provider::GoShiip;
    type HeaderProof = Tag;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<Tag, WebhookRejection> {
        hex_proof(headers, &self.header)
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        tag: Tag,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let secret = self.secrets.verify_hmac(&[body], &tag).ok_or_else(|| {
            no_secret_matched(
                Provider::GoShiip,
                headers,
                body,
                "the signature matches no configured secret",
            )
        })?;
        let fields: GoShiipFields<'_> = parse_object("the body", body)?;
        Ok(Verified::Webhook(VerifiedWebhook::new(
            fields.to_event(),
            secret.clone(),
            body.clone(),
        )))
    }
}

/// A GoShiip webhook's body, as sent.
///
/// Take it as a handler argument behind [`GoShiipSignature`]: it is decoded from
/// the verified body then, and refused with 400 if the body is not this shape.
///
/// At each level, fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GoShiipEvent {
    /// The shipment.
    pub shipment: GoShiipShipment,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `shipment` in a [`GoShiipEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GoShiipShipment {
    /// The shipment's details.
    pub data: GoShiipShipmentData,
    /// The carrier (`DHL`...).
    #[serde(default)]
    pub carrier: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `shipment.data` in a [`GoShiipEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GoShiipShipmentData {
    /// GoShiip's internal id, sent as a string or a number.
    #[serde(default, deserialize_with = "optional_id")]
    pub id: Option<String>,
    /// The shipment's reference, the handle GoShiip's API uses.
    pub reference: String,
    /// The status (`Pending`, `In Progress`, `Picked Up`, `Delivered`).
    pub status: String,
    /// Where it is picked up.
    #[serde(default)]
    pub origin: Option<String>,
    /// Where it is delivered.
    #[serde(default)]
    pub destination: Option<String>,
    /// GoShiip's `extra` field (for example the status history).
    #[serde(default)]
    pub extra: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypedPayload for GoShiipEvent {
    const PROVIDER: Provider = Provider::GoShiip;
    const NAME: &'static str = "GoShiipEvent";
    const LAYER: &'static str = "GoShiipSignature";
}

typed_payload!(GoShiipEvent);

/// The fields a [`ShipmentEvent`] is made of: `shipment.data.reference` and `.status`.
#[derive(Deserialize)]
struct GoShiipFields<'a> {
    #[serde(borrow, deserialize_with = "object")]
    shipment: ShipmentFields<'a>,
}

#[derive(Deserialize)]
struct ShipmentFields<'a> {
    #[serde(borrow, deserialize_with = "object")]
    data: DataFields<'a>,
}

#[derive(Deserialize)]
struct DataFields<'a> {
    #[serde(borrow)]
    reference: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

impl GoShiipFields<'_> {
    fn to_event(&self) -> ShipmentEvent {
        let data = &self.shipment.data;
        ShipmentEvent {
            provider: Provider::GoShiip,
            id: data.reference.clone().into_owned(),
            status: status(&data.status),
            raw_status: data.status.clone().into_owned(),
            timestamp: None,
            event_id: None,
        }
    }
}

fn status(raw: &str) -> ShipmentStatus {
    ShipmentStatus::normalize(raw, |key| match key {
        "pending" => Some(ShipmentStatus::Created),
        "in_progress" => Some(ShipmentStatus::Processing),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_status() {
        for (raw, expected) in [
            ("Pending", ShipmentStatus::Created),
            ("In Progress", ShipmentStatus::Processing),
            ("in progress", ShipmentStatus::Processing),
            ("Picked Up", ShipmentStatus::PickedUp),
            ("picked up", ShipmentStatus::PickedUp),
            ("Delivered", ShipmentStatus::Delivered),
            ("DELIVERED", ShipmentStatus::Delivered),
            ("Cancelled", ShipmentStatus::Cancelled),
        ] {
            assert_eq!(status(raw), expected, "{raw}");
        }
        assert_eq!(status("Lost"), ShipmentStatus::Other("Lost".into()));
    }
}
