//! [Kosmo](https://kosmo.delivery): a base64 HMAC-SHA256 over `eventId + orderId + timestamp`.
//!
//! Kosmo signs the concatenation of the body's `eventId`, `orderId` and
//! `timestamp` (nothing between them) with the secret token from its develop
//! page, used as the key byte for byte, `whk_` prefix included, and sends the
//! base64 result. Kosmo's page does not name the header that carries it: this
//! crate reads `X-Kosmo-Signature` unless told otherwise with
//! [`KosmoSignature::signature_header`].
//!
//! **What the signature does not cover:** the `status`, the `stops` and every
//! other field. A request whose signed fields were captured can be replayed
//! with another status; the `timestamp` is signed, so record the newest one per
//! order and ignore older ones, as Kosmo's page advises.
//!
//! # Replay window
//!
//! [`KosmoSignature::max_age`] refuses, with 401, an event whose signed
//! `timestamp` is older than the given age or more than a minute ahead of
//! this server's clock (tune that with [`KosmoSignature::max_future_skew`]).
//! It bounds how long a captured request can be replayed. It is opt-in
//! because Kosmo retries failed deliveries later with the same timestamp, and
//! a retry refused as stale is lost: set an age longer than Kosmo's retries
//! last, and keep this server's clock synchronized. It does not make the
//! status or the stops signed: within the window a replay can still carry
//! another status.
//!
//! # Where the signed fields meet
//!
//! The signed fields are joined with nothing between them, so the signature
//! alone does not fix where `eventId` ends and `orderId` begins: characters
//! moved from one to the other keep it valid, and each such move gives a new
//! `eventId`. So this crate refuses (400) an empty `eventId` or `orderId`,
//! and an `eventId` that is not a UUID (`8-4-4-4-12` hex digits, as on
//! Kosmo's page): with its length fixed, nothing can move. If Kosmo ever
//! sends other ids, [`KosmoSignature::any_event_id`] accepts any non-empty
//! one. Either way, deduplicate on the three signed fields joined, never on
//! `eventId` alone.
//!
//! A missing or malformed signature header is refused with 401 before any of
//! the body is read. A body whose signed fields cannot be read, or whose
//! `status` is not a string or appears twice, is refused with 400 before the
//! signature is checked (the body is parsed once, and a repeated key makes it
//! ambiguous); anything else about the body, such as empty ids or a missing
//! `status`, is reported only once the signature holds.
//!
//! # Fields of [`ShipmentEvent`]
//!
//! `id` is `orderId`, `event_id` is `eventId`, `timestamp` is `timestamp`.
//!
//! # Statuses
//!
//! Case, spaces, hyphens and underscores don't matter (`PICKED UP`, `picked_up`).
//!
//! | Kosmo | [`ShipmentStatus`] |
//! |---|---|
//! | `SUBMITTED`, `CREATED` | `created` |
//! | `ASSIGNED`, `TO PICK UP` | `assigned` |
//! | `PICKED UP` | `picked_up` |
//! | `DELIVERED`, `COMPLETED` | `delivered` |
//! | `FAILED` | `failed` |
//! | `CANCELLED`, `CANCELED` | `cancelled` |
//! | any other word of the vocabulary (`RETURNED`, `IN TRANSIT`...) | that status |
//! | any other | `other` |
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{KosmoSignature, ShipmentEvent};
//!
//! async fn on_kosmo(event: ShipmentEvent) {
//!     println!("order {} is {}", event.id, event.status);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/kosmo",
//!     post(on_kosmo).route_layer(KosmoSignature::new("whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm")),
//! );
//! ```

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::extract::typed_payload;
use crate::json::{optional_str, parse_object, parse_timestamp, quote};
use crate::proof::{HmacSha256, Tag, all_hex, base64_proof, hmac_key, no_secret_matched};
use crate::secret::Secrets;
use crate::verify::{
    DEFAULT_BODY_LIMIT, Verified, Verifier, layer_builders, signature_header_builders,
};
use crate::window::TimeWindow;
use crate::{
    MatchedSecret, Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook,
    WebhookRejection,
};

/// The header this crate reads Kosmo's signature from unless told otherwise.
pub const DEFAULT_SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-kosmo-signature");

/// How far ahead of this server's clock a timestamp may be, once a replay
/// window is set, unless [`KosmoSignature::max_future_skew`] says otherwise.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(60);

/// Layer that verifies Kosmo's signature.
///
/// See the [module docs](self) for what is signed and how statuses map.
#[derive(Debug, Clone)]
pub struct KosmoSignature {
    secrets: Secrets<HmacSha256>,
    header: HeaderName,
    body_limit: usize,
    window: TimeWindow,
    uuid_event_ids: bool,
}

layer_builders!(
    KosmoSignature,
    "Kosmo's secret token as shown (`whk_...`)",
    prepare: hmac_key,
    min_len: 0,
);
signature_header_builders!(KosmoSignature, "X-Kosmo-Signature");

impl KosmoSignature {
    fn from_secrets(secrets: Secrets<HmacSha256>) -> Self {
        Self {
            secrets,
            header: DEFAULT_SIGNATURE_HEADER,
            body_limit: DEFAULT_BODY_LIMIT,
            window: TimeWindow::OPEN,
            uuid_event_ids: true,
        }
    }

    /// Refuses with 401 events whose signed `timestamp` is older than `age`,
    /// or further ahead of this server's clock than
    /// [`DEFAULT_MAX_FUTURE_SKEW`] (one minute). Off by default: see the
    /// [module docs](self#replay-window) before choosing `age`. Every event
    /// spends some time in transit, so an `age` of zero refuses them all.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.window.max_age = Some(age);
        self.window.max_future_skew = self
            .window
            .max_future_skew
            .or(Some(DEFAULT_MAX_FUTURE_SKEW));
        self
    }

    /// Accepts any non-empty `eventId`, not only a UUID.
    ///
    /// By default an `eventId` must be a UUID (`8-4-4-4-12` hex digits, as
    /// on Kosmo's page), which fixes where the signed `eventId` ends and
    /// `orderId` begins; see the [module docs](self#where-the-signed-fields-meet)
    /// before turning this on.
    #[must_use]
    pub fn any_event_id(mut self) -> Self {
        self.uuid_event_ids = false;
        self
    }

    /// Refuses with 401 events whose signed `timestamp` is further than
    /// `skew` ahead of this server's clock, with or without
    /// [`max_age`](Self::max_age).
    #[must_use]
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.window.max_future_skew = Some(skew);
        self
    }
}

impl KosmoSignature {
    /// The secret whose signature over the signed fields is `tag`.
    fn match_secret(
        &self,
        signed: [&str; 3],
        tag: &Tag,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<&MatchedSecret, WebhookRejection> {
        let message = signed.map(str::as_bytes);
        self.secrets.verify_hmac(&message, tag).ok_or_else(|| {
            no_secret_matched(
                Provider::Kosmo,
                headers,
                body,
                "the signature matches no configured secret",
            )
        })
    }

    /// Refuses empty ids, and an `eventId` that is not a UUID unless told
    /// otherwise: the signature does not fix where one ends and the next begins.
    fn check_ids(&self, fields: &KosmoFields<'_>) -> Result<(), WebhookRejection> {
        for (name, value) in [("eventId", &fields.event_id), ("orderId", &fields.order_id)] {
            if value.is_empty() {
                return Err(WebhookRejection::invalid_payload(format!(
                    "the body: {name} is empty"
                )));
            }
        }
        if self.uuid_event_ids && !is_uuid(&fields.event_id) {
            return Err(WebhookRejection::invalid_payload(format!(
                "the body: eventId {} is not a UUID, as Kosmo sends it \
                 (KosmoSignature::any_event_id accepts other ids)",
                quote(&fields.event_id)
            )));
        }
        Ok(())
    }
}

/// The fields a [`ShipmentEvent`] is made of; all but `status` are signed.
/// A missing `status` is reported only once the signature holds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KosmoFields<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    status: Option<Cow<'a, str>>,
}

impl KosmoFields<'_> {
    fn to_event(&self, timestamp: OffsetDateTime) -> Result<ShipmentEvent, WebhookRejection> {
        let raw_status = self
            .status
            .as_deref()
            .ok_or_else(|| WebhookRejection::invalid_payload("the body: missing field `status`"))?;
        Ok(ShipmentEvent {
            provider: Provider::Kosmo,
            id: self.order_id.clone().into_owned(),
            status: status(raw_status),
            raw_status: raw_status.to_owned(),
            timestamp: Some(timestamp),
            event_id: Some(self.event_id.clone().into_owned()),
        })
    }
}

impl Verifier for KosmoSignature {
    const PROVIDER: Provider = Provider::Kosmo;
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
        let fields: KosmoFields<'_> = parse_object("the body", body)?;
        let signed = [&*fields.event_id, &*fields.order_id, &*fields.timestamp];
        let secret = self.match_secret(signed, &tag, headers, body)?;
        self.check_ids(&fields)?;
        let timestamp = parse_timestamp("timestamp", &fields.timestamp)?;
        self.window.check("the event's timestamp", timestamp)?;
        let event = fields.to_event(timestamp)?;
        // What was signed, as sent: slices of the body unless escaped.
        let signed =
            [fields.event_id, fields.order_id, fields.timestamp].map(|field| match field {
                Cow::Borrowed(sent) => body.slice_ref(sent.as_bytes()),
                Cow::Owned(unescaped) => Bytes::from(unescaped),
            });
        let webhook = VerifiedWebhook::new(event, secret.clone(), body.clone()).signed_over(signed);
        Ok(Verified::Webhook(webhook))
    }
}

/// A Kosmo webhook's body, as sent.
///
/// Take it as a handler argument behind [`KosmoSignature`]: it is decoded from
/// the verified body then, and refused with 400 if the body is not this shape.
///
/// Fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KosmoEvent {
    /// Kosmo's id of this event (signed).
    pub event_id: String,
    /// Kosmo's id of the order (signed).
    pub order_id: String,
    /// When it happened, RFC 3339, as sent (signed).
    pub timestamp: String,
    /// The order's status, as sent (not signed).
    pub status: String,
    /// The order's stops (not signed).
    #[serde(default)]
    pub stops: Vec<Value>,
    /// Every other field (not signed).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypedPayload for KosmoEvent {
    const PROVIDER: Provider = Provider::Kosmo;
    const NAME: &'static str = "KosmoEvent";
    const LAYER: &'static str = "KosmoSignature";
}

typed_payload!(KosmoEvent);

/// A UUID in its 36-character text form, in either case.
fn is_uuid(id: &str) -> bool {
    let Ok(id) = <&[u8; 36]>::try_from(id.as_bytes()) else {
        return false;
    };
    let groups = [&id[..8], &id[9..13], &id[14..18], &id[19..23], &id[24..]];
    [8, 13, 18, 23].iter().all(|&at| id[at] == b'-') && groups.into_iter().all(all_hex)
}

fn status(raw: &str) -> ShipmentStatus {
    ShipmentStatus::normalize(raw, |key| match key {
        "submitted" => Some(ShipmentStatus::Created),
        "to_pick_up" => Some(ShipmentStatus::Assigned),
        "completed" => Some(ShipmentStatus::Delivered),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn knows_a_uuid_as_a_digit_by_digit_check_does(id in "[0-9a-fA-Fg]{8}[-_][0-9a-fA-F]{4}-[0-9a-fA-Fg]{4}-[0-9a-fA-F]{4}-[0-9a-fA-Fé]{11,13}|[0-9a-f-]{34,38}") {
            let expected = id.len() == 36
                && id.bytes().enumerate().all(|(i, byte)| match i {
                    8 | 13 | 18 | 23 => byte == b'-',
                    _ => byte.is_ascii_hexdigit(),
                });
            proptest::prop_assert_eq!(is_uuid(&id), expected, "{}", id);
        }
    }

    #[test]
    fn knows_a_uuid() {
        assert!(is_uuid("9ddafe4f-010b-43e9-a0b4-baad0c46d9de"));
        assert!(is_uuid("9DDAFE4F-010B-43E9-A0B4-BAAD0C46D9DE"));
        for not in [
            "",
            "9ddafe4f-010b-43e9-a0b4-baad0c46d9d",
            "9ddafe4f-010b-43e9-a0b4-baad0c46d9deS",
            "9ddafe4f010b-43e9-a0b4-baad0c46d9de-",
            "9ddafe4g-010b-43e9-a0b4-baad0c46d9de",
            "9ddafe4f-010b-43e9-a0b4-baad0c46d9dé",
        ] {
            assert!(!is_uuid(not), "{not}");
        }
    }

    #[test]
    fn maps_every_documented_status() {
        for (raw, expected) in [
            ("SUBMITTED", ShipmentStatus::Created),
            ("CREATED", ShipmentStatus::Created),
            ("ASSIGNED", ShipmentStatus::Assigned),
            ("TO PICK UP", ShipmentStatus::Assigned),
            ("to_pick_up", ShipmentStatus::Assigned),
            ("Picked Up", ShipmentStatus::PickedUp),
            ("PICKED_UP", ShipmentStatus::PickedUp),
            ("DELIVERED", ShipmentStatus::Delivered),
            ("COMPLETED", ShipmentStatus::Delivered),
            ("FAILED", ShipmentStatus::Failed),
            ("CANCELLED", ShipmentStatus::Cancelled),
            ("canceled", ShipmentStatus::Cancelled),
            ("RETURNED", ShipmentStatus::Returned),
        ] {
            assert_eq!(status(raw), expected, "{raw}");
        }
        assert_eq!(
            status("DRIVER LOST"),
            ShipmentStatus::Other("DRIVER LOST".into())
        );
    }
}
