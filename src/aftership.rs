//! [AfterShip](https://www.aftership.com/docs/tracking/webhook/webhook-signature)
//! Tracking: `aftership-hmac-sha256`, a base64 HMAC-SHA256 of the raw body.
//!
//! "The signature is a base64-encoded HMAC generated using sha256 algorithm
//! with webhook request body and webhook secret of your account"
//! ([webhook signature](https://www.aftership.com/docs/tracking/webhook/webhook-signature)),
//! sent in `aftership-hmac-sha256` (the page writes `Aftership-Hmac-Sha256`).
//! The key is the secret from Settings → Webhooks as UTF-8 bytes, not
//! base64-decoded, as AfterShip's Node sample
//! `crypto.createHmac('sha256', WEBHOOK_SECRET)` shows
//! ([returns signature](https://www.aftership.com/docs/returns/2025-04/webhook/signature)).
//! The signature is standard base64 with padding: 44 characters. A missing or
//! malformed header is refused before any of the body is read; the body is
//! checked as received, so nothing in front of this layer may re-encode it.
//!
//! Only AfterShip **Tracking** signs this way. Its Returns and Warranty
//! products send `as-signature-hmac-sha256`, and Shipping (Postmen)
//! `am-webhook-signature: hmac-sha256=<b64>`: this layer is not for them
//! (`signature_header` can read another header with the same bare base64
//! value, such as Returns').
//!
//! **What the signature does not cover:** freshness, and the headers
//! (`as-webhook-version`, which changes field names between versions). The
//! body's `ts` is signed but is the event's time, not the delivery's:
//! AfterShip retries up to 14 times over about 68 hours with the same body
//! ([webhook overview](https://www.aftership.com/docs/tracking/webhook/webhook-overview)),
//! so no window applies. The dedup key is the SHA-256 of the body, which
//! holds `event_id`.
//!
//! AfterShip's docs give no signature example: the tests check this layer
//! against a vector computed for this crate (a documented-shape body and the
//! secret `secretkey`), and against an HMAC computed independently.
//!
//! # Fields of [`ShipmentEvent`]
//!
//! The body is `{event, event_id, is_tracking_first_tag, msg, ts}`, `msg`
//! being the Tracking ([webhook
//! specifications](https://www.aftership.com/docs/tracking/2025-01/webhook/webhook-specifications)).
//!
//! - `id` is `msg.tracking_number`: the number the shop gave AfterShip and
//!   prints on the label, the same in every update. AfterShip's own tracking
//!   id, `msg.id`, and the carrier, `msg.slug`, are in the typed payload. A
//!   tracking number is unique per carrier, not across carriers: two
//!   carriers' shipments with one number would share an id (and, in the
//!   inbox, latest-wins).
//! - `timestamp` is `msg.updated_at` (RFC 3339) when the body has it, else
//!   `ts` ("UTC unix timestamp that the event occurred"), both signed.
//! - `event_id` is `event_id` (a UUID, "to uniquely identify the webhook event").
//!
//! Every event code carries the Tracking and is passed on with its status:
//! `tracking_update` (a new status), `edd_revise` (a new estimated delivery
//! date) and `tracking_pending_time` (pending past the user's threshold).
//! The typed payload's `event` tells them apart. AfterShip's "Send test
//! webhook" button sends an ordinary delivery (reported by
//! `hookdeck/webhook-skills`, not in AfterShip's pages): it reaches the handler.
//!
//! # Statuses
//!
//! `msg.tag`, one of the nine [delivery
//! statuses](https://www.aftership.com/docs/tracking/2025-01/enum/delivery-statuses);
//! an `Exception` is refined by `msg.subtag`, from the [delivery
//! sub-statuses](https://www.aftership.com/docs/tracking/enum/delivery-sub-statuses).
//!
//! | AfterShip | [`ShipmentStatus`] |
//! |---|---|
//! | `Pending` | `created` |
//! | `InfoReceived` | `ready_for_pickup` (the carrier is about to collect it) |
//! | `InTransit` | `in_transit` |
//! | `OutForDelivery` | `out_for_delivery` |
//! | `AvailableForPickup` | `at_pickup_point` |
//! | `Delivered` | `delivered` |
//! | `AttemptFail` | `failed` |
//! | `Exception`, subtag `Exception_010` (returning to sender) or `Exception_011` (returned to sender) | `returned` |
//! | `Exception`, subtag `Exception_006` (held for payment) | `on_hold` |
//! | `Exception`, any other subtag | `failed` |
//! | `Expired` | `other` (no news for 30 days) |
//! | any other word of the vocabulary | that status |
//! | any other | `other` |
//!
//! `raw_status` is the tag as sent.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{AfterShipEvent, AfterShipSignature, ShipmentEvent};
//!
//! async fn on_aftership(event: ShipmentEvent, payload: AfterShipEvent) {
//!     println!("{} ({:?}) is {}", event.id, payload.msg.slug, event.status);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/aftership",
//!     post(on_aftership).route_layer(AfterShipSignature::new("your webhook secret")),
//! );
//! ```

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::extract::typed_payload;
use crate::json::{object, optional_str, parse_object, parse_timestamp};
use crate::proof::{HmacSha256, Tag, base64_proof, hmac_key, no_secret_matched};
use crate::secret::Secrets;
use crate::verify::{
    DEFAULT_BODY_LIMIT, Verified, Verifier, layer_builders, signature_header_builders,
};
use crate::{
    Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook, WebhookRejection,
};

/// The header AfterShip Tracking sends its signature in.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("aftership-hmac-sha256");

/// Layer that verifies AfterShip's signature.
///
/// See the [module docs](self) for what is signed and how statuses map.
#[derive(Debug, Clone)]
pub struct AfterShipSignature {
    secrets: Secrets<HmacSha256>,
    header: HeaderName,
    body_limit: usize,
}

layer_builders!(
    AfterShipSignature,
    "the webhook secret from AfterShip's Settings → Webhooks, as shown",
    prepare: hmac_key,
    min_len: 0,
);
signature_header_builders!(AfterShipSignature, "aftership-hmac-sha256");

impl AfterShipSignature {
    fn from_secrets(secrets: Secrets<HmacSha256>) -> Self {
        Self {
            secrets,
            header: SIGNATURE_HEADER,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl Verifier for AfterShipSignature {
    const PROVIDER: Provider = Provider::AfterShip;
    type HeaderProof = Tag;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<Tag, WebhookRejection> {
        base64_proof(headers, &self.header)
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        tag: Tag,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let secret = self.secrets.verify_hmac(&[body], &tag).ok_or_else(|| {
            no_secret_matched(
                Provider::AfterShip,
                headers,
                body,
                "the signature matches no configured secret",
            )
        })?;
        let fields: AfterShipFields<'_> = parse_object("the body", body)?;
        Ok(Verified::Webhook(VerifiedWebhook::new(
            fields.to_event()?,
            secret.clone(),
            body.clone(),
        )))
    }
}

/// An AfterShip Tracking webhook's body, as sent.
///
/// Take it as a handler argument behind [`AfterShipSignature`]: it is decoded
/// from the verified body then, and refused with 400 if the body is not this
/// shape.
///
/// At each level, fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AfterShipEvent {
    /// The event code (`tracking_update`, `edd_revise`, `tracking_pending_time`).
    #[serde(default)]
    pub event: Option<String>,
    /// The event's id, a UUID.
    #[serde(default)]
    pub event_id: Option<String>,
    /// When the event occurred, in unix seconds.
    #[serde(default)]
    pub ts: Option<i64>,
    /// The tracking.
    pub msg: AfterShipTracking,
    /// Every other field (`is_tracking_first_tag`…).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `msg` in an [`AfterShipEvent`]: the Tracking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AfterShipTracking {
    /// AfterShip's id of the tracking.
    #[serde(default)]
    pub id: Option<String>,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// The carrier (`usps`, `dhl`…).
    #[serde(default)]
    pub slug: Option<String>,
    /// The delivery status (`InTransit`, `Delivered`…).
    pub tag: String,
    /// The sub-status (`InTransit_001`, `Exception_011`…).
    #[serde(default)]
    pub subtag: Option<String>,
    /// The sub-status in words.
    #[serde(default)]
    pub subtag_message: Option<String>,
    /// The shop's order number, if given to AfterShip.
    #[serde(default)]
    pub order_number: Option<String>,
    /// When the tracking last changed.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Every other field (`checkpoints`, `title`…).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypedPayload for AfterShipEvent {
    const PROVIDER: Provider = Provider::AfterShip;
    const NAME: &'static str = "AfterShipEvent";
    const LAYER: &'static str = "AfterShipSignature";
}

typed_payload!(AfterShipEvent);

/// The fields a [`ShipmentEvent`] is made of.
#[derive(Deserialize)]
struct AfterShipFields<'a> {
    #[serde(borrow, default, deserialize_with = "optional_str")]
    event_id: Option<Cow<'a, str>>,
    #[serde(default)]
    ts: Option<i64>,
    #[serde(borrow, deserialize_with = "object")]
    msg: MsgFields<'a>,
}

#[derive(Deserialize)]
struct MsgFields<'a> {
    #[serde(borrow)]
    tracking_number: Cow<'a, str>,
    #[serde(borrow)]
    tag: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    subtag: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    updated_at: Option<Cow<'a, str>>,
}

impl AfterShipFields<'_> {
    fn to_event(&self) -> Result<ShipmentEvent, WebhookRejection> {
        let msg = &self.msg;
        let timestamp = match (&msg.updated_at, self.ts) {
            (Some(updated_at), _) => {
                Some(parse_timestamp("the body's msg.updated_at", updated_at)?)
            }
            (None, Some(ts)) => Some(OffsetDateTime::from_unix_timestamp(ts).map_err(|_| {
                WebhookRejection::invalid_payload(format!(
                    "the body's ts: {ts} is not a time in unix seconds"
                ))
            })?),
            (None, None) => None,
        };
        Ok(ShipmentEvent {
            provider: Provider::AfterShip,
            id: msg.tracking_number.clone().into_owned(),
            status: status(&msg.tag, msg.subtag.as_deref()),
            raw_status: msg.tag.clone().into_owned(),
            timestamp,
            event_id: self.event_id.clone().map(Cow::into_owned),
        })
    }
}

fn status(tag: &str, subtag: Option<&str>) -> ShipmentStatus {
    ShipmentStatus::normalize(tag, |key| match key {
        "pending" => Some(ShipmentStatus::Created),
        "inforeceived" => Some(ShipmentStatus::ReadyForPickup),
        "intransit" => Some(ShipmentStatus::InTransit),
        "outfordelivery" => Some(ShipmentStatus::OutForDelivery),
        "availableforpickup" => Some(ShipmentStatus::AtPickupPoint),
        "attemptfail" => Some(ShipmentStatus::Failed),
        "exception" => Some(match subtag {
            Some("Exception_010" | "Exception_011") => ShipmentStatus::Returned,
            Some("Exception_006") => ShipmentStatus::OnHold,
            _ => ShipmentStatus::Failed,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_status() {
        for (tag, subtag, expected) in [
            ("Pending", None, ShipmentStatus::Created),
            ("InfoReceived", None, ShipmentStatus::ReadyForPickup),
            (
                "InTransit",
                Some("InTransit_001"),
                ShipmentStatus::InTransit,
            ),
            ("OutForDelivery", None, ShipmentStatus::OutForDelivery),
            ("AvailableForPickup", None, ShipmentStatus::AtPickupPoint),
            (
                "Delivered",
                Some("Delivered_001"),
                ShipmentStatus::Delivered,
            ),
            ("AttemptFail", None, ShipmentStatus::Failed),
            ("Exception", Some("Exception_001"), ShipmentStatus::Failed),
            ("Exception", None, ShipmentStatus::Failed),
            ("Exception", Some("Exception_006"), ShipmentStatus::OnHold),
            ("Exception", Some("Exception_010"), ShipmentStatus::Returned),
            ("Exception", Some("Exception_011"), ShipmentStatus::Returned),
            ("Expired", None, ShipmentStatus::Other("Expired".into())),
        ] {
            assert_eq!(status(tag, subtag), expected, "{tag} {subtag:?}");
        }
        assert_eq!(status("Lost", None), ShipmentStatus::Other("Lost".into()));
    }
}
