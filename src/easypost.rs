//! [EasyPost](https://docs.easypost.com/docs/webhooks): `X-Hmac-Signature:
//! hmac-sha256-hex=<hex>`, an HMAC-SHA256 of the raw body keyed with the
//! NFKD-normalized webhook secret.
//!
//! EasyPost signs each event's exact body bytes with the webhook's secret
//! (set as `webhook_secret` when creating or updating the webhook) and sends
//! `hmac-sha256-hex=` followed by the 64 lowercase hex digits in
//! `X-Hmac-Signature` ([webhooks](https://docs.easypost.com/docs/webhooks),
//! [webhooks guide](https://docs.easypost.com/guides/webhooks-guide)). The
//! key is the secret **NFKD-normalized**, then UTF-8: all four official
//! SDKs do so before comparing the whole header, prefix included
//! (`EasyPost/easypost-python` `easypost/util.py` `validate_webhook`,
//! `EasyPost/easypost-go` `webhook.go` `ValidateWebhookWithContext`,
//! `EasyPost/easypost-node` `src/utils/util.js` `validateWebhook`,
//! `EasyPost/easypost-csharp` `EasyPost/Utilities/Cryptography.cs` with
//! `NormalizationForm.FormKD`). This layer normalizes each secret once, at
//! construction; a secret given as bytes that are not UTF-8 cannot be
//! normalized and is used as those bytes. EasyPost's secrets are chosen by
//! the user and may be short (its docs use `A1B2C3`): any non-empty one is
//! accepted.
//!
//! The prefix is required: a value without `hmac-sha256-hex=` is a malformed
//! proof (401), as the SDKs refuse it. The hex digits may be in either case.
//! A missing or malformed header is refused before any of the body is read.
//! The body is checked as received, so nothing in front of this layer may
//! parse, re-encode or decompress it (EasyPost writes floats as `614.0`, which
//! a re-serializer changes: `easypost-node` issue #467).
//!
//! **What the signature does not cover:** freshness. The body is signed whole
//! but EasyPost signs no time of its own, so a captured event can be replayed
//! as is; each event has a unique `id`, which the dedup key is.
//!
//! # Not supported: the "v2" signature
//!
//! EasyPost's support article "Webhook HMAC Validation"
//! (<https://support.easypost.com/hc/en-us/articles/39826034964237-Webhook-HMAC-Validation>)
//! announces a second signature in `x-hmac-signature-v2`, with an RFC 2822
//! `x-timestamp` and the path in `x-path`, checked "within an acceptable time
//! window". Its string to sign, window and key form are not published where
//! this crate could read them (integrations concatenate
//! `timestamp ‖ METHOD ‖ path ‖ body`), and no official SDK verifies it. This
//! layer checks `X-Hmac-Signature` (v1), which EasyPost keeps sending, and
//! ignores the v2 headers.
//!
//! # Retries and dedup
//!
//! EasyPost expects a 2xx, retries otherwise, and may disable an endpoint
//! that keeps failing ([webhooks](https://docs.easypost.com/docs/webhooks)):
//! so every genuine, signed event is passed on, whatever its `description`.
//! An Event's body describes its own delivery too (`status`: "pending",
//! "completed", "failed"…; `pending_urls`, `completed_urls`:
//! `EasyPost/easypost-csharp` `EasyPost/Models/API/Event.cs`), so a retry
//! may carry other bytes than the first attempt (inferred from those
//! fields' meaning, not observed). The dedup key is therefore the SHA-256 of
//! the event's signed `id` (`evt_…`), read from the verified body, rather
//! than of the whole body.
//!
//! # Fields of [`ShipmentEvent`]
//!
//! For tracking events (`description` `tracker.created` or `tracker.updated`,
//! whose `result` is a Tracker: [tracking
//! guide](https://docs.easypost.com/guides/tracking-guide)):
//!
//! - `id` is `result.id`, the tracker's id (`trk_…`), the same in every
//!   update; not `result.tracking_code`, which carriers recycle
//!   ([trackers](https://docs.easypost.com/docs/trackers));
//! - `status` maps `result.status` (table below), `raw_status` is it as sent;
//! - `timestamp` is `result.updated_at` (RFC 3339), the tracker's last
//!   change, signed as part of the body; it is required;
//! - `event_id` is the Event's `id` (`evt_…`).
//!
//! Any other `description` (`batch.updated`, `refund.successful`,
//! `scan_form.updated`, `shipment.invoice.created`…,
//! [events](https://docs.easypost.com/docs/events)) is not about a tracker,
//! and is passed on too: `id` is `result.id` (the object's own id, whose
//! prefix, `batch_`, `rfnd_`…, never matches a tracker's), or the Event's
//! `id` when `result` has none; `status` is `other` and `raw_status` the
//! `description`; `timestamp` is `None` (the object's times are not a
//! shipment's); `event_id` is the Event's `id`. A handler that wants them
//! reads the typed payload; one that does not can ignore `other` statuses.
//!
//! Events made with a test API key carry `"mode": "test"` and are ordinary,
//! signed events (EasyPost sends no ping): [`EasyPostEvent::mode`] tells them
//! apart.
//!
//! # Statuses
//!
//! `result.status` of a Tracker, with the values `EasyPost/easypost-csharp`
//! `EasyPost/Models/API/Tracker.cs` lists:
//!
//! | EasyPost | [`ShipmentStatus`] |
//! |---|---|
//! | `pre_transit` | `created` (label created, not yet scanned by the carrier) |
//! | `in_transit` | `in_transit` |
//! | `out_for_delivery` | `out_for_delivery` |
//! | `available_for_pickup` | `at_pickup_point` |
//! | `delivered` | `delivered` |
//! | `return_to_sender` | `returned` |
//! | `failure` | `failed` |
//! | `cancelled` | `cancelled` |
//! | `error`, `unknown` | `other` |
//! | any other word of the vocabulary | that status |
//! | any other | `other` |
//!
//! `result.status_detail` (`arrived_at_facility`, `weather_delay`…) is in the
//! typed payload, not mapped.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{EasyPostEvent, EasyPostSignature, ShipmentEvent};
//!
//! async fn on_easypost(event: ShipmentEvent, payload: EasyPostEvent) {
//!     println!("{} ({}) is {}", event.id, payload.description, event.status);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/easypost",
//!     post(on_easypost).route_layer(EasyPostSignature::new("A1B2C3")),
//! );
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use crate::extract::typed_payload;
use crate::json::{parse_object, parse_timestamp, quote};
use crate::proof::{
    HmacSha256, TAG_LEN, Tag, hex_tag, hmac_key, no_secret_matched, proof_text, proof_value,
};
use crate::secret::Secrets;
use crate::verify::{
    DEFAULT_BODY_LIMIT, Verified, Verifier, layer_builders, signature_header_builders,
};
use crate::{
    Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook, WebhookRejection,
};

/// The header EasyPost sends its signature in.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-hmac-signature");

/// What the signature header's value starts with, before the hex digits.
pub const SIGNATURE_PREFIX: &str = "hmac-sha256-hex=";

/// Layer that verifies EasyPost's signature.
///
/// See the [module docs](self) for what is signed and how statuses map.
#[derive(Debug, Clone)]
pub struct EasyPostSignature {
    secrets: Secrets<HmacSha256>,
    header: HeaderName,
    body_limit: usize,
}

layer_builders!(
    EasyPostSignature,
    "the webhook's secret as set in EasyPost (normalized to NFKD here, as \
     EasyPost's SDKs do)",
    prepare: nfkd_hmac_key,
    min_len: 0,
);
signature_header_builders!(EasyPostSignature, "X-Hmac-Signature");

/// The HMAC key EasyPost signs with: the secret NFKD-normalized, then UTF-8;
/// bytes that are not UTF-8 as they are.
fn nfkd_hmac_key(secret: &[u8]) -> HmacSha256 {
    match std::str::from_utf8(secret) {
        Ok(text) => hmac_key(text.nfkd().collect::<String>().as_bytes()),
        Err(_) => hmac_key(secret),
    }
}

impl EasyPostSignature {
    fn from_secrets(secrets: Secrets<HmacSha256>) -> Self {
        Self {
            secrets,
            header: SIGNATURE_HEADER,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl Verifier for EasyPostSignature {
    const PROVIDER: Provider = Provider::EasyPost;
    type HeaderProof = Tag;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<Tag, WebhookRejection> {
        let name = &self.header;
        let value = proof_value(headers, name)?;
        let digits = value.as_bytes().strip_prefix(SIGNATURE_PREFIX.as_bytes());
        // A tag that decodes is visible ASCII: the text is checked only to say what is wrong.
        if let Some(tag) = digits.and_then(hex_tag) {
            return Ok(tag);
        }
        let signature = proof_text(value, name)?;
        let Some(digits) = signature.strip_prefix(SIGNATURE_PREFIX) else {
            return Err(WebhookRejection::malformed_proof(format!(
                "the {name} header does not start with {SIGNATURE_PREFIX}"
            )));
        };
        if digits.len() != 2 * TAG_LEN {
            return Err(WebhookRejection::malformed_proof(format!(
                "the {name} header has {} characters after {SIGNATURE_PREFIX}; a hex HMAC-SHA256 is {}",
                digits.len(),
                2 * TAG_LEN
            )));
        }
        Err(WebhookRejection::malformed_proof(format!(
            "the {name} header is not hex after {SIGNATURE_PREFIX}"
        )))
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        tag: Tag,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let secret = self.secrets.verify_hmac(&[body], &tag).ok_or_else(|| {
            no_secret_matched(
                Provider::EasyPost,
                headers,
                body,
                "the signature matches no configured secret",
            )
        })?;
        let fields: EasyPostFields<'_> = parse_object("the body", body)?;
        let event = fields.to_event()?;
        // The signed event id, not the body: a retry may change its delivery fields.
        let id = match fields.id {
            Cow::Borrowed(id) => body.slice_ref(id.as_bytes()),
            Cow::Owned(id) => Bytes::from(id),
        };
        Ok(Verified::Webhook(
            VerifiedWebhook::new(event, secret.clone(), body.clone()).signed_over([id]),
        ))
    }
}

/// An EasyPost webhook's body, as sent: an
/// [Event](https://docs.easypost.com/docs/events).
///
/// Take it as a handler argument behind [`EasyPostSignature`]: it is decoded
/// from the verified body then, and refused with 400 if the body is not this
/// shape.
///
/// At each level, fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EasyPostEvent {
    /// The event's id (`evt_…`).
    pub id: String,
    /// What happened (`tracker.updated`, `tracker.created`, `batch.updated`…).
    pub description: String,
    /// `test` or `production`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The object the event is about: a Tracker for `tracker.*`.
    #[serde(default)]
    pub result: Option<EasyPostResult>,
    /// Every other field (`created_at`, `previous_attributes`, `status`…).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `result` in an [`EasyPostEvent`]: for `tracker.*` events, a Tracker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EasyPostResult {
    /// The object's id (`trk_…` for a tracker).
    #[serde(default)]
    pub id: Option<String>,
    /// The object's kind (`Tracker`…).
    #[serde(default)]
    pub object: Option<String>,
    /// A tracker's carrier tracking code (carriers recycle them).
    #[serde(default)]
    pub tracking_code: Option<String>,
    /// A tracker's carrier (`FedEx`, `USPS`…).
    #[serde(default)]
    pub carrier: Option<String>,
    /// A tracker's status detail (`arrived_at_facility`…).
    #[serde(default)]
    pub status_detail: Option<String>,
    /// Every other field (`status`, `tracking_details`, `updated_at`…).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypedPayload for EasyPostEvent {
    const PROVIDER: Provider = Provider::EasyPost;
    const NAME: &'static str = "EasyPostEvent";
    const LAYER: &'static str = "EasyPostSignature";
}

typed_payload!(EasyPostEvent);

/// The descriptions whose `result` is a Tracker.
const TRACKER_EVENTS: [&str; 2] = ["tracker.created", "tracker.updated"];

/// The fields a [`ShipmentEvent`] is made of.
#[derive(Deserialize)]
struct EasyPostFields<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    description: Cow<'a, str>,
    #[serde(borrow, default)]
    result: Option<ResultFields<'a>>,
}

/// A `result`'s fields, read as text only where they are strings: another
/// object's `status` may be anything (a Batch's is an object).
#[derive(Deserialize)]
struct ResultFields<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    status: Option<Text<'a>>,
    #[serde(borrow, default)]
    updated_at: Option<Text<'a>>,
}

impl EasyPostFields<'_> {
    fn to_event(&self) -> Result<ShipmentEvent, WebhookRejection> {
        let event_id = Some(self.id.clone().into_owned());
        if !TRACKER_EVENTS.contains(&&*self.description) {
            let id = self.result.as_ref().and_then(|result| result.id.as_ref());
            let id = match id {
                Some(Text::Str(id)) => id,
                _ => &self.id,
            };
            return Ok(ShipmentEvent {
                provider: Provider::EasyPost,
                id: id.clone().into_owned(),
                status: ShipmentStatus::Other(self.description.clone().into_owned()),
                raw_status: self.description.clone().into_owned(),
                timestamp: None,
                event_id,
            });
        }
        let Some(result) = &self.result else {
            return Err(WebhookRejection::invalid_payload(format!(
                "the body: a {} event without a `result`",
                quote(&self.description)
            )));
        };
        fn text<'a>(
            field: &Option<Text<'a>>,
            name: &str,
        ) -> Result<Cow<'a, str>, WebhookRejection> {
            match field {
                Some(Text::Str(text)) => Ok(text.clone()),
                Some(Text::NotText) => Err(WebhookRejection::invalid_payload(format!(
                    "the body, at result: `{name}` is not a string"
                ))),
                None => Err(WebhookRejection::invalid_payload(format!(
                    "the body, at result: missing field `{name}`"
                ))),
            }
        }
        let id = text(&result.id, "id")?;
        let raw_status = text(&result.status, "status")?;
        let updated_at = text(&result.updated_at, "updated_at")?;
        Ok(ShipmentEvent {
            provider: Provider::EasyPost,
            id: id.into_owned(),
            status: status(&raw_status),
            raw_status: raw_status.into_owned(),
            timestamp: Some(parse_timestamp(
                "the body's result.updated_at",
                &updated_at,
            )?),
            event_id,
        })
    }
}

/// A field's value: its text if a string, else only that it was something else.
enum Text<'a> {
    Str(Cow<'a, str>),
    NotText,
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Owned(text)))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Text::NotText)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Text::NotText)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Text::NotText)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Text::NotText)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text::NotText)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text::NotText)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::NotText)
    }
}

fn status(raw: &str) -> ShipmentStatus {
    ShipmentStatus::normalize(raw, |key| match key {
        "pre_transit" => Some(ShipmentStatus::Created),
        "available_for_pickup" => Some(ShipmentStatus::AtPickupPoint),
        "return_to_sender" => Some(ShipmentStatus::Returned),
        "failure" => Some(ShipmentStatus::Failed),
        "error" | "unknown" => Some(ShipmentStatus::Other(raw.to_owned())),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_status() {
        for (raw, expected) in [
            ("pre_transit", ShipmentStatus::Created),
            ("in_transit", ShipmentStatus::InTransit),
            ("out_for_delivery", ShipmentStatus::OutForDelivery),
            ("available_for_pickup", ShipmentStatus::AtPickupPoint),
            ("delivered", ShipmentStatus::Delivered),
            ("return_to_sender", ShipmentStatus::Returned),
            ("failure", ShipmentStatus::Failed),
            ("cancelled", ShipmentStatus::Cancelled),
            ("error", ShipmentStatus::Other("error".into())),
            ("unknown", ShipmentStatus::Other("unknown".into())),
        ] {
            assert_eq!(status(raw), expected, "{raw}");
        }
        assert_eq!(status("lost"), ShipmentStatus::Other("lost".into()));
    }

    #[test]
    fn the_key_is_the_secret_in_nfkd() {
        use hmac::Mac;
        let tag = |key: HmacSha256| key.chain_update(b"body").finalize().into_bytes();
        // "sécret" composed (NFC) and decomposed (NFKD) sign alike.
        assert_eq!(
            tag(nfkd_hmac_key("s\u{e9}cret".as_bytes())),
            tag(hmac_key(b"se\xcc\x81cret"))
        );
        // Compatibility forms fold too: the "fi" ligature is "fi".
        assert_eq!(
            tag(nfkd_hmac_key("\u{fb01}x".as_bytes())),
            tag(hmac_key(b"fix"))
        );
        // Bytes that are not UTF-8 are the key as they are.
        assert_eq!(tag(nfkd_hmac_key(b"\xff\xfe")), tag(hmac_key(b"\xff\xfe")));
    }
}
