//! What a layer, or a provider's `verify`, proved: the record every extractor
//! reads.

use std::fmt;

use axum_core::extract::FromRequestParts;
use bytes::Bytes;
use http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::payload::parse_json;
use crate::shipmondo::{ShipmondoHeaders, SmdHeaders};
use crate::{
    GoShiipEvent, KosmoEvent, KourierEvent, MatchedSecret, Provider, ShipmentEvent, ShipmondoEvent,
    WebhookRejection,
};

/// A webhook whose proof held: its [`ShipmentEvent`], the secret that proved
/// it, and the verified JSON its typed payload is decoded from.
///
/// A layer puts one in the request's extensions before it calls the service
/// behind it, where a plain Tower service reads it with
/// `request.extensions().get::<VerifiedWebhook>()` and an axum handler takes
/// it (or just the [`ShipmentEvent`], the [`MatchedSecret`], or the typed
/// payload) as an argument. Each layer's `verify` method returns one, for
/// servers that are not Tower at all.
///
/// Only a layer or `verify` makes one: there is no public constructor.
#[derive(Debug, Clone)]
pub struct VerifiedWebhook {
    event: ShipmentEvent,
    secret: MatchedSecret,
    json: Bytes,
    signed: Signed,
    // Boxed: a webhook is moved several times on its way to the handler,
    // and only Shipmondo's carry these five headers.
    smd_headers: Option<Box<SmdHeaders>>,
}

impl VerifiedWebhook {
    pub(crate) fn new(event: ShipmentEvent, secret: MatchedSecret, json: Bytes) -> Self {
        Self {
            event,
            secret,
            json,
            signed: Signed::Json,
            smd_headers: None,
        }
    }

    /// One read back from an inbox, with the dedup key it was stored under.
    #[cfg(feature = "inbox")]
    pub(crate) fn stored(
        event: ShipmentEvent,
        secret: MatchedSecret,
        json: Bytes,
        smd_headers: Option<ShipmondoHeaders>,
        key: DedupKey,
    ) -> Self {
        Self {
            event,
            secret,
            json,
            signed: Signed::Key(key),
            smd_headers: smd_headers.map(|headers| Box::new(SmdHeaders::Stored(headers))),
        }
    }

    /// Records Shipmondo's JWT, what it signed.
    pub(crate) fn with_jwt(mut self, jwt: Bytes) -> Self {
        self.signed = Signed::Jwt(jwt);
        self
    }

    /// Records Kosmo's signed `timestamp` as sent; the event holds the other
    /// two signed fields.
    pub(crate) fn with_kosmo_timestamp(mut self, timestamp: Bytes) -> Self {
        self.signed = Signed::KosmoTimestamp(timestamp);
        self
    }

    /// Shipmondo's `SMD-*` headers, as text.
    pub(crate) fn smd_headers(&self) -> Option<ShipmondoHeaders> {
        self.smd_headers.as_deref().map(SmdHeaders::to_headers)
    }

    /// Keeps Shipmondo's `SMD-*` headers for [`ShipmondoEvent`].
    pub(crate) fn with_smd_headers(mut self, headers: SmdHeaders) -> Self {
        self.smd_headers = Some(Box::new(headers));
        self
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

    /// The verified JSON: the body as received (Kosmo, Kourier, GoShiip), or
    /// the JWT's decoded payload (Shipmondo).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// SHA-256 of exactly what the provider signed: Kosmo's `eventId`,
    /// `orderId` and `timestamp` joined, Shipmondo's JWT (not the envelope
    /// around it), GoShiip's body, and Kourier's body (Kourier signs
    /// nothing). A retried delivery has the same key; a webhook whose signed
    /// part differs cannot, without the secret. Scope it by provider and
    /// endpoint or tenant before comparing, as the [`inbox`](crate::inbox)
    /// does.
    ///
    /// For Kosmo this is dedup by `eventId` for honest deliveries, which
    /// moving characters between `eventId` and `orderId` cannot dodge.
    pub fn dedup_key(&self) -> DedupKey {
        match &self.signed {
            Signed::Json => DedupKey(Sha256::digest(&self.json).into()),
            Signed::Jwt(jwt) => DedupKey(Sha256::digest(jwt).into()),
            Signed::KosmoTimestamp(timestamp) => {
                let event_id = self.event.event_id.as_deref().unwrap_or_default();
                let digest = Sha256::new()
                    .chain_update(event_id)
                    .chain_update(&self.event.id)
                    .chain_update(timestamp)
                    .finalize();
                DedupKey(digest.into())
            }
            #[cfg(feature = "inbox")]
            Signed::Key(key) => *key,
        }
    }

    /// The provider's typed payload ([`KosmoEvent`], [`KourierEvent`],
    /// [`ShipmondoEvent`], [`GoShiipEvent`]), decoded now from the verified
    /// JSON: 400 if it is not that shape, 500 if it is another provider's
    /// (a route layered for one provider asking for another's payload).
    pub fn payload<P: TypedPayload>(&self) -> Result<P, WebhookRejection> {
        if self.event.provider != P::PROVIDER {
            return Err(missing_layer(P::NAME, P::LAYER));
        }
        P::decode(self).inspect_err(|rejection| {
            tracing::debug!(%rejection, "verified payload is not a {}", P::NAME);
        })
    }
}

/// What the provider signed, kept so a dedup key is hashed only when asked for.
#[derive(Debug, Clone)]
enum Signed {
    /// The verified JSON itself (Kourier, GoShiip).
    Json,
    /// Shipmondo's JWT.
    Jwt(Bytes),
    /// Kosmo's `timestamp` as sent: the key hashes `eventId`, `orderId` (the
    /// event's `event_id` and `id`) and it, without joining them in a copy.
    KosmoTimestamp(Bytes),
    /// Read back from an inbox, which keeps the key and not what was signed.
    #[cfg(feature = "inbox")]
    Key(DedupKey),
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

/// A provider's own payload, which [`VerifiedWebhook::payload`] decodes:
/// [`KosmoEvent`], [`KourierEvent`], [`ShipmondoEvent`] or [`GoShiipEvent`].
///
/// Sealed: this crate implements it for those four only.
pub trait TypedPayload: DeserializeOwned + sealed::Sealed {
    #[doc(hidden)]
    const PROVIDER: Provider;
    #[doc(hidden)]
    const NAME: &'static str;
    #[doc(hidden)]
    const LAYER: &'static str;

    #[doc(hidden)]
    fn decode(verified: &VerifiedWebhook) -> Result<Self, WebhookRejection> {
        parse_json("the body", &verified.json)
    }
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! typed_payload {
    ($($ty:ident),+) => {$(
        impl sealed::Sealed for $ty {}

        /// Decoded when a handler takes it: 400 if the verified JSON is not
        /// this shape, 500 naming the missing layer where the route has none.
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = WebhookRejection;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
                verified(parts, Self::NAME, Self::LAYER)?.payload()
            }
        }
    )+};
}

typed_payload!(KosmoEvent, KourierEvent, ShipmondoEvent, GoShiipEvent);

impl TypedPayload for KosmoEvent {
    const PROVIDER: Provider = Provider::Kosmo;
    const NAME: &'static str = "KosmoEvent";
    const LAYER: &'static str = "KosmoSignature";
}

impl TypedPayload for KourierEvent {
    const PROVIDER: Provider = Provider::Kourier;
    const NAME: &'static str = "KourierEvent";
    const LAYER: &'static str = "KourierBearer";
}

impl TypedPayload for GoShiipEvent {
    const PROVIDER: Provider = Provider::GoShiip;
    const NAME: &'static str = "GoShiipEvent";
    const LAYER: &'static str = "GoShiipSignature";
}

impl TypedPayload for ShipmondoEvent {
    const PROVIDER: Provider = Provider::Shipmondo;
    const NAME: &'static str = "ShipmondoEvent";
    const LAYER: &'static str = "ShipmondoJwt";

    fn decode(verified: &VerifiedWebhook) -> Result<Self, WebhookRejection> {
        let mut payload: Self = parse_json("the JWT payload", &verified.json)?;
        payload.headers = verified.smd_headers().unwrap_or_default();
        Ok(payload)
    }
}

pub(crate) const ANY_LAYER: &str =
    "KosmoSignature, KourierBearer, ShipmondoJwt or GoShiipSignature";

/// What the route's layer recorded, or a 500 naming the layer it lacks.
fn verified<'a>(
    parts: &'a Parts,
    extractor: &str,
    layer: &str,
) -> Result<&'a VerifiedWebhook, WebhookRejection> {
    parts
        .extensions
        .get::<VerifiedWebhook>()
        .ok_or_else(|| missing_layer(extractor, layer))
}

fn missing_layer(extractor: &str, layer: &str) -> WebhookRejection {
    let rejection = WebhookRejection::missing_layer(extractor, layer);
    tracing::error!(%rejection, "webhook extractor used without its layer");
    rejection
}

/// The whole record; 500 naming the missing layer where the route has none.
impl<S: Send + Sync> FromRequestParts<S> for VerifiedWebhook {
    type Rejection = WebhookRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        verified(parts, "VerifiedWebhook", ANY_LAYER).cloned()
    }
}

/// The event the route's layer verified; 500 naming the missing layer where
/// the route has none.
impl<S: Send + Sync> FromRequestParts<S> for ShipmentEvent {
    type Rejection = WebhookRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(verified(parts, "ShipmentEvent", ANY_LAYER)?.event.clone())
    }
}

/// The secret that proved the request; 500 naming the missing layer where
/// the route has none.
impl<S: Send + Sync> FromRequestParts<S> for MatchedSecret {
    type Rejection = WebhookRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(verified(parts, "MatchedSecret", ANY_LAYER)?.secret.clone())
    }
}
