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
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tower_layer::Layer;

use crate::payload::{object, optional_id, parse_object};
use crate::secrets::{
    HEX_DIGITS, HmacSha256, Secrets, TAG_LEN, Tag, hmac_key, no_secret_matched, or_panic,
    proof_text, proof_value,
};
use crate::verify::{DEFAULT_BODY_LIMIT, Verify, VerifyWebhook, verify_whole};
use crate::{
    ConfigError, Provider, ShipmentEvent, ShipmentStatus, VerifiedWebhook, WebhookRejection,
    WebhookSecret,
};

/// The header GoShiip sends its signature in.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-signature");

/// Layer that verifies GoShiip's signature.
///
/// See the [module docs](self) for what is signed and how statuses map.
#[derive(Debug, Clone)]
pub struct GoShiipSignature {
    secrets: Secrets<HmacSha256>,
    body_limit: usize,
}

impl GoShiipSignature {
    /// Verifies with `secret`, GoShiip's secret key.
    ///
    /// # Panics
    ///
    /// If `secret` is empty; [`try_new`](Self::try_new) returns the error.
    #[track_caller]
    pub fn new(secret: impl WebhookSecret) -> Self {
        or_panic(Self::try_new(secret))
    }

    /// Like [`new`](Self::new), for a secret read at run time: an error
    /// instead of a panic.
    pub fn try_new(secret: impl WebhookSecret) -> Result<Self, ConfigError> {
        Ok(Self {
            secrets: Secrets::new(secret.secret_bytes(), hmac_key)?,
            body_limit: DEFAULT_BODY_LIMIT,
        })
    }

    /// Also accepts requests signed with `secret`, reported as `label` in
    /// [`MatchedSecret`](crate::MatchedSecret): configure the old and the new
    /// key while rotating.
    ///
    /// # Panics
    ///
    /// If `secret` is empty or `label` is taken;
    /// [`try_with_secret`](Self::try_with_secret) returns the error.
    #[track_caller]
    pub fn with_secret(self, label: impl Into<Arc<str>>, secret: impl WebhookSecret) -> Self {
        or_panic(self.try_with_secret(label, secret))
    }

    /// Like [`with_secret`](Self::with_secret): an error instead of a panic.
    pub fn try_with_secret(
        mut self,
        label: impl Into<Arc<str>>,
        secret: impl WebhookSecret,
    ) -> Result<Self, ConfigError> {
        (self.secrets).push(label.into(), secret.secret_bytes(), hmac_key)?;
        Ok(self)
    }

    /// Verifies a webhook without a framework, from its headers and its whole
    /// body as received: the checks the layer makes, in the same order, with
    /// the same refusals ([`WebhookRejection::to_response`] answers with one).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) -> Result<VerifiedWebhook, WebhookRejection> {
        verify_whole(self, headers, body.into())
    }

    /// Refuses bodies larger than `bytes` with 413 (default 1 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

impl<S> Layer<S> for GoShiipSignature {
    type Service = VerifyWebhook<S, Self>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyWebhook::fixed(inner, self)
    }
}

impl Verify for GoShiipSignature {
    const PROVIDER: Provider = Provider::GoShiip;
    type HeaderProof = Tag;
    type Outcome = VerifiedWebhook;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<Tag, WebhookRejection> {
        let value = proof_value(headers, &SIGNATURE_HEADER)?;
        // A tag that decodes is visible ASCII: the text is checked only to say what is wrong.
        if let Some(tag) = hex_tag(value.as_bytes()) {
            return Ok(tag);
        }
        let signature = proof_text(value, &SIGNATURE_HEADER)?;
        if signature.len() != 2 * TAG_LEN {
            return Err(WebhookRejection::unauthorized(format!(
                "the x-signature header is {} characters long; a hex HMAC-SHA256 is {}",
                signature.len(),
                2 * TAG_LEN
            )));
        }
        Err(WebhookRejection::unauthorized(
            "the x-signature header is not hex",
        ))
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        tag: Tag,
        body: &Bytes,
    ) -> Result<VerifiedWebhook, WebhookRejection> {
        let secret = self.secrets.verify_hmac(&[body], &tag).ok_or_else(|| {
            no_secret_matched(
                Provider::GoShiip,
                headers,
                body,
                "the signature matches no configured secret",
            )
        })?;
        let fields: GoShiipFields<'_> = parse_object("the body", body)?;
        Ok(VerifiedWebhook::new(
            fields.to_event(),
            secret.clone(),
            body.clone(),
        ))
    }
}

/// `hex`, 64 hex digits in either case, as a tag; through a table, a
/// few instructions a digit where the `hex` crate takes a dozen.
fn hex_tag(hex: &[u8]) -> Option<Tag> {
    let mut tag = [0; TAG_LEN];
    if hex.len() != 2 * TAG_LEN {
        return None;
    }
    let mut digits = 0;
    for (byte, pair) in tag.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (
            HEX_DIGITS[usize::from(pair[0])],
            HEX_DIGITS[usize::from(pair[1])],
        );
        digits |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    // A digit is under 16, `NOT_A_DIGIT` is not.
    (digits & 0xf0 == 0).then_some(tag)
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
    fn reads_hex_tags_in_either_case() {
        let tag: Tag = std::array::from_fn(|i| (i * 37) as u8);
        for hex in [hex::encode(tag), hex::encode_upper(tag)] {
            assert_eq!(hex_tag(hex.as_bytes()), Some(tag), "{hex}");
        }
        for bad in [
            "g".repeat(64),
            "0".repeat(63),
            "0".repeat(65),
            format!("{}é", "0".repeat(62)),
        ] {
            assert_eq!(hex_tag(bad.as_bytes()), None, "{bad}");
        }
    }

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
