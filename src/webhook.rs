//! What a layer, or a provider's `verify`, proved: the record every
//! extractor and the inbox read.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::json::parse_json;
use crate::{MatchedSecret, Provider, ShipmentEvent, WebhookRejection};

/// Every shipment scope a provider gives an id numbered apart from
/// shipments ([`VerifiedWebhook::with_shipment_scope`]): the inbox's shipment
/// filter matches an id in each. A provider with a new scope adds it here.
pub(crate) const SHIPMENT_SCOPES: [&str; 5] =
    ["order", "transaction", "batch", "integration", "message"];

/// A webhook whose proof held: its [`ShipmentEvent`], the secret that proved
/// it, and the verified JSON its typed payload is decoded from.
///
/// A layer puts one in the request's extensions before it calls the service
/// behind it, where a plain Tower service reads it with
/// `request.extensions().get::<VerifiedWebhook>()` and an axum handler takes
/// it (or just the [`ShipmentEvent`], the [`MatchedSecret`], or the typed
/// payload) as an argument. Each layer's `verify` method returns one in
/// [`Verified::Webhook`](crate::Verified::Webhook), for servers that are not
/// Tower at all.
///
/// Only a layer or `verify` makes one: there is no public constructor.
#[derive(Debug, Clone)]
pub struct VerifiedWebhook {
    event: ShipmentEvent,
    secret: MatchedSecret,
    json: Bytes,
    signed: Signed,
    headers: Option<ProviderHeaders>,
    /// What the event's id numbers, where a provider numbers some resources
    /// apart from its shipments; `None` for a shipment.
    #[cfg_attr(not(feature = "inbox"), allow(dead_code))]
    shipment_scope: Option<&'static str>,
}

impl VerifiedWebhook {
    /// A webhook whose provider signed `json` itself, or nothing at all.
    pub(crate) fn new(event: ShipmentEvent, secret: MatchedSecret, json: Bytes) -> Self {
        Self {
            event,
            secret,
            json,
            signed: Signed::Json,
            headers: None,
            shipment_scope: None,
        }
    }

    /// One read back from an inbox, with the dedup key it was stored under.
    #[cfg(feature = "inbox")]
    pub(crate) fn stored(
        event: ShipmentEvent,
        secret: MatchedSecret,
        json: Bytes,
        headers: Option<ProviderHeaders>,
        key: DedupKey,
    ) -> Self {
        Self {
            event,
            secret,
            json,
            signed: Signed::Stored(key),
            headers,
            // The stored row keeps the shipment key it was hashed into.
            shipment_scope: None,
        }
    }

    /// Records what the provider signed, where it is not the verified JSON
    /// itself: up to [`MAX_SIGNED_PIECES`] pieces (fields, a time, separators,
    /// the body), joined in order.
    pub(crate) fn signed_over<const N: usize>(mut self, pieces: [Bytes; N]) -> Self {
        const { assert!(N <= MAX_SIGNED_PIECES) };
        let mut joined: [Bytes; MAX_SIGNED_PIECES] = Default::default();
        for (to, piece) in joined.iter_mut().zip(pieces) {
            *to = piece;
        }
        self.signed = Signed::Pieces(joined);
        self
    }

    /// Keeps headers the provider's typed payload reads.
    pub(crate) fn with_headers(mut self, headers: ProviderHeaders) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Records what the event's id numbers where it is not a shipment (an
    /// order, numbered apart from shipments), read from what the proof
    /// covers: the inbox keys latest wins by it, so an order and a shipment
    /// with the same id are two shipments. `None` is a shipment.
    ///
    /// The scope is one of [`SHIPMENT_SCOPES`], which the inbox's shipment
    /// filter tries.
    pub(crate) fn with_shipment_scope(mut self, scope: Option<&'static str>) -> Self {
        debug_assert!(
            scope.is_none_or(|scope| SHIPMENT_SCOPES.contains(&scope)),
            "shipment scope {scope:?} is not in SHIPMENT_SCOPES"
        );
        self.shipment_scope = scope;
        self
    }

    /// What the event's id numbers, if not a shipment.
    #[cfg(feature = "inbox")]
    pub(crate) fn shipment_scope(&self) -> Option<&'static str> {
        self.shipment_scope
    }

    /// The headers kept for the typed payload, if the provider keeps any.
    pub(crate) fn headers(&self) -> Option<&ProviderHeaders> {
        self.headers.as_ref()
    }

    /// The normalized event.
    pub fn event(&self) -> &ShipmentEvent {
        &self.event
    }

    /// The normalized event, taken out.
    pub fn into_event(self) -> ShipmentEvent {
        self.event
    }

    /// The secret that proved it.
    pub fn secret(&self) -> &MatchedSecret {
        &self.secret
    }

    pub(crate) fn secret_mut(&mut self) -> &mut MatchedSecret {
        &mut self.secret
    }

    /// The verified JSON: the body as received, or, where the provider signs
    /// a token in the body, the token's decoded payload (see each
    /// provider's module).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// SHA-256 of what the provider signed, or of the signed part that
    /// names one event: each provider module's docs say which (Kosmo's
    /// `eventId`, `orderId` and `timestamp` joined; Shipmondo's JWT, not the
    /// envelope around it; EasyPost's signed event id; a body without the
    /// time of the delivery attempt that Shippo, ShipBob and ShipEngine sign
    /// again on every retry; Kourier's body, though Kourier signs nothing).
    /// A retried delivery has the same key; a webhook whose signed part
    /// differs cannot, without the secret. Scope it by provider and endpoint
    /// or tenant before comparing, as the [`inbox`](crate::inbox) does.
    ///
    /// For Kosmo this is dedup by `eventId` for honest deliveries, which
    /// moving characters between `eventId` and `orderId` cannot dodge.
    pub fn dedup_key(&self) -> DedupKey {
        match &self.signed {
            Signed::Json => DedupKey(Sha256::digest(&self.json).into()),
            Signed::Pieces(pieces) => {
                let mut hash = Sha256::new();
                for piece in pieces {
                    hash.update(piece);
                }
                DedupKey(hash.finalize().into())
            }
            #[cfg(feature = "inbox")]
            Signed::Stored(key) => *key,
        }
    }

    /// The provider's typed payload (`KosmoEvent`...), decoded now from the
    /// verified JSON: 400 if it is not that shape, 500 if it is another
    /// provider's (a route layered for one provider asking for another's
    /// payload).
    pub fn payload<P: TypedPayload>(&self) -> Result<P, WebhookRejection> {
        if self.event.provider != P::PROVIDER {
            let rejection = WebhookRejection::missing_layer(P::NAME, P::LAYER);
            tracing::error!(%rejection, "webhook extractor used without its layer");
            return Err(rejection);
        }
        P::decode(self).inspect_err(|rejection| {
            tracing::debug!(%rejection, "verified payload is not a {}", P::NAME);
        })
    }
}

/// A provider's own payload, which [`VerifiedWebhook::payload`] decodes and
/// a handler can take as an argument (`KosmoEvent`...).
///
/// Sealed: this crate implements it for each provider's payload.
pub trait TypedPayload: DeserializeOwned + sealed::Sealed {
    #[doc(hidden)]
    const PROVIDER: Provider;
    #[doc(hidden)]
    /// The payload type's name, for a 500 on a route without its layer.
    const NAME: &'static str;
    #[doc(hidden)]
    /// The layer it needs.
    const LAYER: &'static str;

    #[doc(hidden)]
    fn decode(verified: &VerifiedWebhook) -> Result<Self, WebhookRejection> {
        parse_json("the body", verified.json())
    }
}

pub(crate) mod sealed {
    /// Implemented by `extract::typed_payload!` in each provider's module.
    pub trait Sealed {}
}

/// The most pieces [`VerifiedWebhook::signed_over`] joins: Standard Webhooks'
/// `id.timestamp.body` is five.
const MAX_SIGNED_PIECES: usize = 5;

/// What the provider signed, kept so a dedup key is hashed only when asked for.
#[derive(Debug, Clone)]
enum Signed {
    /// The verified JSON itself.
    Json,
    /// Pieces joined in order: a token, signed fields, a time and the body;
    /// empty ones add nothing.
    Pieces([Bytes; MAX_SIGNED_PIECES]),
    /// Read back from an inbox, which keeps the key and not what was signed.
    #[cfg(feature = "inbox")]
    Stored(DedupKey),
}

/// The SHA-256 a [`VerifiedWebhook::dedup_key`] is: equal for retried
/// deliveries of one webhook. Shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupKey(pub(crate) [u8; 32]);

impl DedupKey {
    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for DedupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DedupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DedupKey({self})")
    }
}

/// Headers a provider sends besides its proof that its typed payload
/// keeps, as received (made text only when read), or as an inbox stored them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProviderHeaders(Vec<(HeaderName, HeaderValue)>);

impl ProviderHeaders {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    pub(crate) fn push(&mut self, name: HeaderName, value: HeaderValue) {
        self.0.push((name, value));
    }

    /// The value of `name` as text (a value may not be ASCII: bytes that
    /// are not UTF-8 are replaced).
    pub(crate) fn get(&self, name: &HeaderName) -> Option<Cow<'_, str>> {
        self.0
            .iter()
            .find(|(kept, _)| kept == name)
            .map(|(_, value)| String::from_utf8_lossy(value.as_bytes()))
    }

    /// As an inbox stores them: a JSON object of names to text.
    #[cfg(feature = "inbox")]
    pub(crate) fn to_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(name, value)| {
                let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), serde_json::Value::String(text))
            })
            .collect();
        serde_json::Value::Object(object).to_string()
    }

    /// What [`to_json`](Self::to_json) wrote; `None` for anything else.
    #[cfg(feature = "inbox")]
    pub(crate) fn from_json(json: &str) -> Option<Self> {
        let object: std::collections::BTreeMap<String, String> = serde_json::from_str(json).ok()?;
        let headers = object
            .into_iter()
            .map(|(name, text)| {
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                Some((name, HeaderValue::from_bytes(text.as_bytes()).ok()?))
            })
            .collect::<Option<_>>()?;
        Some(Self(headers))
    }
}
