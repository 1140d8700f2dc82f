//! [Shippo](https://goshippo.com): `Shippo-Auth-Signature: t=<unix>,v1=<hex>`,
//! an HMAC-SHA256 of `"<t>.<body>"`.
//!
//! Shippo's webhook security page
//! (<https://docs.goshippo.com/docs/tracking/webhooksecurity>) offers three
//! protections: an IP allow-list, a self-generated token in the URL's query
//! string (`?token=...`), and HMAC, which is not self-serve ("email your
//! account manager … or contact our sales team"). **Shippo's public pages
//! stop before the HMAC's header and format**, and its official SDK checks no
//! signature (`goshippo/shippo-javascript-sdk` `src/funcs/validateWebhook.ts`
//! only parses the body). What this layer reads is **inferred** from
//! integrations that agree with each other (files of the team's code-search
//! index, listed in `docs/platforms-research.md` §2: the Saleor Shippo app,
//! "per Shippo webhook security docs", id 56698218212; a Laravel integration
//! citing docs.goshippo.com, id 52882724400; a Next.js validator and a
//! Node middleware with its tests, both reading `shippo-auth-signature` as
//! `t=<unix_ts>,v1=<hex_hmac_sha256>` over `` `${timestamp}.${body}` ``; a
//! Rust receiver, id 71599203221):
//!
//! - the header `Shippo-Auth-Signature` (change it with
//!   [`ShippoSignature::signature_header`]), a comma-separated list of
//!   `key=value`: exactly one `t`, unix seconds; one or more `v1`, the
//!   lowercase hex HMAC-SHA256 (several are accepted, as Stripe-shaped
//!   schemes send while rotating: any one matching is enough); other keys
//!   are ignored;
//! - the signed bytes `"<t>.<body>"`, the body exactly as received;
//! - the key: the secret Shippo gives, byte for byte (no minimum length:
//!   Shippo states none).
//!
//! A missing, repeated or malformed header is refused with 401 before any
//! of the body is read.
//!
//! # Replay window
//!
//! Shippo publishes none; the integrations use 300 or 900 seconds. This
//! layer refuses, with 401 `stale` and only once the signature holds, a `t`
//! more than 5 minutes old or ahead of this server's clock:
//! [`ShippoSignature::max_age`] and [`ShippoSignature::max_future_skew`]
//! change it. Shippo's older docs say a failed delivery is retried 5 times
//! 10 seconds apart (<https://goshippo.com/docs/webhooks>, archived), well
//! within it.
//!
//! # What the signature does not cover
//!
//! The other headers (`Shippo-API-Version`). The URL token Shippo also
//! offers (`?token=...`) is **not provided** by this crate: its layers check
//! a request's headers and body, never its URL, so a route protected only by
//! that token must compare the `token` query parameter itself, in constant
//! time (as digests, so the length does not show), and say so to whoever
//! sees its logs: the token travels in every URL Shippo requests.
//!
//! # Fields of [`ShipmentEvent`]
//!
//! The body is `{event, test, data}` (`shippo-javascript-sdk`
//! `docs/models/components/webhookpayloadtrack.md`, `webhookpayload.md`):
//! `track_updated` carries a Track in `data` (`track.md`: `tracking_number`,
//! `carrier`, `tracking_status {status, status_date, object_id, substatus}`),
//! `transaction_created` and `transaction_updated` a Transaction
//! (`transaction.md`: `object_id`, `tracking_number`, and `tracking_status`
//! as a bare status word).
//!
//! - `id`: `data.tracking_number`, the number a shop tracks by, the same in
//!   a Track and in the Transaction that bought its label. Not scoped by
//!   carrier (the carrier is in the typed payload): a scope is a fixed name
//!   in the inbox's keys. A Transaction without a tracking number (a label
//!   that failed) is named by its `object_id`, scoped as a transaction.
//! - `timestamp`: a Track's `tracking_status.status_date`, the carrier
//!   event's time, or a Transaction's `object_updated`: the event's own
//!   signed time, in the body. Not `t`, the time of the delivery attempt.
//! - `event_id`: `None`; Shippo sends no event id.
//! - the dedup key: the body, signed. Not `t`: a retry signed again at
//!   another time is still a duplicate.
//!
//! `batch_created` and `batch_purchased` carry no object: their `data` is
//! text, "batch {batchId} (created|processing complete)"
//! (`webhookpayloadbatch.md`). They are passed on, so none is refused:
//! `id` is the batch id read from that text (the whole text if it is not
//! that form), scoped apart from shipments (a batch and a shipment with one
//! id are two shipments in the inbox), `status` is `other` and
//! `raw_status` the `event`; `timestamp` is `None`. The typed payload keeps
//! the text in [`ShippoData::text`].
//!
//! `test: true` marks an event of Shippo's test mode; it is not a ping and
//! reaches the handler like any other ([`ShippoEvent::test`]). Shippo sends
//! no connection test.
//!
//! # Statuses
//!
//! `tracking_status.status`, a `TrackingStatusEnum` (`trackingstatusenum.md`):
//!
//! | Shippo | [`ShipmentStatus`] |
//! |---|---|
//! | `PRE_TRANSIT` | `created` |
//! | `TRANSIT` | `in_transit` |
//! | `DELIVERED` | `delivered` |
//! | `RETURNED` | `returned` |
//! | `FAILURE` | `failed` |
//! | `UNKNOWN` | `other` |
//! | any other word of the vocabulary | that status |
//! | any other | `other` |
//!
//! `tracking_status.substatus.code` is kept in the typed payload but not
//! mapped: Shippo's list of codes (its tracking page's event definitions)
//! could not be read, so no pickup-point substatus is relied on.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{ShipmentEvent, ShippoEvent, ShippoSignature};
//!
//! async fn on_shippo(event: ShipmentEvent, payload: ShippoEvent) {
//!     println!("{} is {} (test mode: {})", event.id, event.status, payload.test);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/shippo",
//!     post(on_shippo).route_layer(ShippoSignature::new("the HMAC secret Shippo gave you")),
//! );
//! ```

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::extract::typed_payload;
use crate::json::{optional_str, parse_object, parse_timestamp};
use crate::proof::{
    HmacSha256, TAG_LEN, Tag, hex_tag, hmac_key, no_secret_matched, proof_header, tags_equal,
};
use crate::secret::Secrets;
use crate::verify::{
    DEFAULT_BODY_LIMIT, Verified, Verifier, layer_builders, signature_header_builders,
};
use crate::window::TimeWindow;
use crate::{
    Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook, WebhookRejection,
};
use hmac::Mac;

/// The header this crate reads Shippo's signature from unless told otherwise.
pub const DEFAULT_SIGNATURE_HEADER: HeaderName = HeaderName::from_static("shippo-auth-signature");

/// How far from this server's clock `t` may be, either way, unless told otherwise.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The most `v1` signatures one header may hold.
const MAX_SIGNATURES: usize = 8;

/// Layer that verifies Shippo's HMAC signature.
///
/// See the [module docs](self) for what is signed, what is inferred and how
/// statuses map.
#[derive(Debug, Clone)]
pub struct ShippoSignature {
    secrets: Secrets<HmacSha256>,
    header: HeaderName,
    body_limit: usize,
    window: TimeWindow,
}

layer_builders!(
    ShippoSignature,
    "the HMAC secret Shippo provisions",
    prepare: hmac_key,
    min_len: 0,
);
signature_header_builders!(ShippoSignature, "Shippo-Auth-Signature");

impl ShippoSignature {
    fn from_secrets(secrets: Secrets<HmacSha256>) -> Self {
        Self {
            secrets,
            header: DEFAULT_SIGNATURE_HEADER,
            body_limit: DEFAULT_BODY_LIMIT,
            window: TimeWindow::both_ways(DEFAULT_TOLERANCE),
        }
    }

    /// Refuses with 401 (`stale`) a signed `t` older than `age` (default 5 minutes).
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.window.max_age = Some(age);
        self
    }

    /// Refuses with 401 (`stale`) a signed `t` further than `skew` ahead of
    /// this server's clock (default 5 minutes).
    #[must_use]
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.window.max_future_skew = Some(skew);
        self
    }
}

/// What a request's `Shippo-Auth-Signature` holds, read before its body:
/// what [`ShippoSignature`] carries from the headers to the body's check.
#[derive(Debug)]
pub struct ShippoHeader {
    t: Bytes,
    time: OffsetDateTime,
    tags: Vec<Tag>,
}

impl ShippoSignature {
    fn parse_header(&self, text: &str) -> Result<ShippoHeader, WebhookRejection> {
        let name = &self.header;
        let malformed =
            |what: &str| WebhookRejection::malformed_proof(format!("the {name} header {what}"));
        let mut t = None;
        let mut tags = Vec::new();
        for item in text.split(',') {
            let Some((key, value)) = item.trim().split_once('=') else {
                return Err(malformed("is not t=<unix seconds>,v1=<hex>"));
            };
            match key {
                "t" if t.is_some() => return Err(malformed("holds t more than once")),
                "t" => t = Some(value),
                "v1" if tags.len() == MAX_SIGNATURES => {
                    return Err(malformed("holds too many v1 signatures"));
                }
                "v1" => tags.push(hex_tag(value.as_bytes()).ok_or_else(|| {
                    malformed(&format!(
                        "holds a v1 that is not a hex HMAC-SHA256 ({} characters; {} hex digits expected)",
                        value.len(),
                        2 * TAG_LEN
                    ))
                })?),
                _ => {}
            }
        }
        let t = t.ok_or_else(|| malformed("has no t=<unix seconds>"))?;
        if tags.is_empty() {
            return Err(malformed("has no v1=<hex> signature"));
        }
        if t.is_empty() || t.len() > 12 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(
                "has a t that is not unix seconds (1 to 12 digits)",
            ));
        }
        let seconds: i64 = t.parse().map_err(|_| malformed("has a t out of range"))?;
        let time = OffsetDateTime::from_unix_timestamp(seconds)
            .map_err(|_| malformed("has a t out of range"))?;
        Ok(ShippoHeader {
            t: Bytes::copy_from_slice(t.as_bytes()),
            time,
            tags,
        })
    }
}

impl Verifier for ShippoSignature {
    const PROVIDER: Provider = Provider::Shippo;
    type HeaderProof = ShippoHeader;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<ShippoHeader, WebhookRejection> {
        self.parse_header(proof_header(headers, &self.header)?)
    }

    fn check_body(
        &self,
        headers: &HeaderMap,
        proof: ShippoHeader,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let secret = self
            .secrets
            .find(|key| {
                let mut mac = key.clone();
                for piece in [&proof.t[..], b".", body] {
                    mac.update(piece);
                }
                let computed: Tag = mac.finalize().into_bytes().into();
                proof
                    .tags
                    .iter()
                    .fold(false, |any, tag| any | tags_equal(&computed, tag))
            })
            .ok_or_else(|| {
                no_secret_matched(
                    Provider::Shippo,
                    headers,
                    body,
                    "no v1 signature matches a configured secret",
                )
            })?;
        self.window.check("the signature's t", proof.time)?;
        let fields: ShippoFields<'_> = parse_object("the body", body)?;
        let (event, scope) = fields.to_event()?;
        let webhook =
            VerifiedWebhook::new(event, secret.clone(), body.clone()).with_shipment_scope(scope);
        Ok(Verified::Webhook(webhook))
    }
}

/// The fields a [`ShipmentEvent`] is made of.
#[derive(Deserialize)]
struct ShippoFields<'a> {
    #[serde(borrow, default, deserialize_with = "optional_str")]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Data<'a>,
}

/// `data`: a Track or a Transaction, or a batch event's text.
enum Data<'a> {
    Object(DataFields<'a>),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DataVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for DataVisitor<'a> {
            type Value = Data<'a>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object (a Track or a Transaction) or a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Data::Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Data::Text(Cow::Owned(text.to_owned())))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                DataFields::deserialize(MapAccessDeserializer::new(map)).map(Data::Object)
            }
        }

        deserializer.deserialize_any(DataVisitor(PhantomData))
    }
}

/// The scope of ids that are Shippo batches. Part of the inbox's stored
/// keys: never renamed.
const BATCH_SCOPE: &str = "batch";

impl ShippoFields<'_> {
    fn to_event(&self) -> Result<(ShipmentEvent, Option<&'static str>), WebhookRejection> {
        let text = match &self.data {
            Data::Object(data) => return data.to_event(),
            Data::Text(text) => text,
        };
        // "batch {batchId} (created|processing complete)"
        let id = match text.split_whitespace().collect::<Vec<_>>()[..] {
            ["batch", id, ..] => id,
            [] => {
                return Err(WebhookRejection::invalid_payload(
                    "the body, at data: an empty string",
                ));
            }
            _ => text.trim(),
        };
        let raw_status = self.event.as_deref().unwrap_or(text).to_owned();
        let event = ShipmentEvent {
            provider: Provider::Shippo,
            id: id.to_owned(),
            status: ShipmentStatus::Other(raw_status.clone()),
            raw_status,
            timestamp: None,
            event_id: None,
        };
        Ok((event, Some(BATCH_SCOPE)))
    }
}

#[derive(Deserialize)]
struct DataFields<'a> {
    #[serde(borrow, default, deserialize_with = "optional_str")]
    tracking_number: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    object_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    object_updated: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tracking_status: Option<StatusFields<'a>>,
}

/// A Track's status object, or a Transaction's bare status word.
#[derive(Deserialize)]
#[serde(untagged)]
enum StatusFields<'a> {
    Word(#[serde(borrow)] Cow<'a, str>),
    Object {
        #[serde(borrow)]
        status: Cow<'a, str>,
        #[serde(borrow, default, deserialize_with = "optional_str")]
        status_date: Option<Cow<'a, str>>,
    },
}

impl DataFields<'_> {
    fn to_event(&self) -> Result<(ShipmentEvent, Option<&'static str>), WebhookRejection> {
        let (id, scope) = match (&self.tracking_number, &self.object_id) {
            (Some(number), _) if !number.is_empty() => (number.clone().into_owned(), None),
            (_, Some(object)) if !object.is_empty() => {
                (object.clone().into_owned(), Some("transaction"))
            }
            _ => {
                return Err(WebhookRejection::invalid_payload(
                    "the body, at data: no tracking_number nor object_id",
                ));
            }
        };
        let (raw_status, time) = match &self.tracking_status {
            Some(StatusFields::Object {
                status,
                status_date,
            }) => (status, status_date.as_ref().map(|d| ("status_date", d))),
            Some(StatusFields::Word(status)) => (
                status,
                self.object_updated.as_ref().map(|d| ("object_updated", d)),
            ),
            None => {
                return Err(WebhookRejection::invalid_payload(
                    "the body, at data: missing field `tracking_status`",
                ));
            }
        };
        let timestamp = time
            .map(|(field, text)| parse_timestamp(&format!("the body, at data: {field}"), text))
            .transpose()?;
        Ok((
            ShipmentEvent {
                provider: Provider::Shippo,
                id,
                status: status(raw_status),
                raw_status: raw_status.clone().into_owned(),
                timestamp,
                event_id: None,
            },
            scope,
        ))
    }
}

/// A Shippo webhook's body, as sent (all of it signed).
///
/// Take it as a handler argument behind [`ShippoSignature`]: it is decoded
/// from the verified body then, and refused with 400 if the body is not
/// this shape. Fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShippoEvent {
    /// `track_updated`, `transaction_created`, `transaction_updated`...
    pub event: String,
    /// Whether this is an event of Shippo's test mode (not a ping).
    #[serde(default)]
    pub test: bool,
    /// The Track or Transaction; a batch event's text in [`ShippoData::text`].
    #[serde(deserialize_with = "data_or_text", serialize_with = "data_as_sent")]
    pub data: ShippoData,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `data` in a [`ShippoEvent`]: a Track or a Transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShippoData {
    /// The carrier's tracking number.
    #[serde(default)]
    pub tracking_number: Option<String>,
    /// The carrier's token (`usps`...), in a Track.
    #[serde(default)]
    pub carrier: Option<String>,
    /// The Transaction's id, in a Transaction.
    #[serde(default)]
    pub object_id: Option<String>,
    /// The status: an object in a Track, a bare word in a Transaction.
    #[serde(default)]
    pub tracking_status: Option<Value>,
    /// A batch event's `data`, which is text, not an object
    /// (`batch <id> created`, `batch <id> processing complete`); `None`
    /// for a Track or a Transaction.
    #[serde(skip)]
    pub text: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `data` as an object, or a batch event's text kept in [`ShippoData::text`].
fn data_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ShippoData, D::Error> {
    struct DataVisitor;

    impl<'de> Visitor<'de> for DataVisitor {
        type Value = ShippoData;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a JSON object (a Track or a Transaction) or a string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(ShippoData {
                tracking_number: None,
                carrier: None,
                object_id: None,
                tracking_status: None,
                text: Some(text.to_owned()),
                other: Map::new(),
            })
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            ShippoData::deserialize(MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_any(DataVisitor)
}

/// `data` as Shippo sent it: a batch event's text as text.
fn data_as_sent<S: Serializer>(data: &ShippoData, serializer: S) -> Result<S::Ok, S::Error> {
    match &data.text {
        Some(text) => serializer.serialize_str(text),
        None => data.serialize(serializer),
    }
}

impl TypedPayload for ShippoEvent {
    const PROVIDER: Provider = Provider::Shippo;
    const NAME: &'static str = "ShippoEvent";
    const LAYER: &'static str = "ShippoSignature";
}

typed_payload!(ShippoEvent);

fn status(raw: &str) -> ShipmentStatus {
    ShipmentStatus::normalize(raw, |key| match key {
        "pre_transit" => Some(ShipmentStatus::Created),
        "transit" => Some(ShipmentStatus::InTransit),
        "failure" => Some(ShipmentStatus::Failed),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_status() {
        for (raw, expected) in [
            ("PRE_TRANSIT", ShipmentStatus::Created),
            ("TRANSIT", ShipmentStatus::InTransit),
            ("DELIVERED", ShipmentStatus::Delivered),
            ("RETURNED", ShipmentStatus::Returned),
            ("FAILURE", ShipmentStatus::Failed),
        ] {
            assert_eq!(status(raw), expected, "{raw}");
        }
        assert_eq!(status("UNKNOWN"), ShipmentStatus::Other("UNKNOWN".into()));
    }
}
