//! What a layer, or a provider's `verify`, proved: the record every extractor
//! reads.

use axum_core::extract::FromRequestParts;
use bytes::Bytes;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::payload::parse_json;
use crate::shipmondo::ShipmondoHeaders;
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
    smd_headers: Option<ShipmondoHeaders>,
}

impl VerifiedWebhook {
    pub(crate) fn new(event: ShipmentEvent, secret: MatchedSecret, json: Bytes) -> Self {
        Self {
            event,
            secret,
            json,
            smd_headers: None,
        }
    }

    /// Keeps Shipmondo's `SMD-*` headers for [`ShipmondoEvent`].
    pub(crate) fn with_smd_headers(mut self, headers: ShipmondoHeaders) -> Self {
        self.smd_headers = Some(headers);
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
        payload.headers = verified.smd_headers.clone().unwrap_or_default();
        Ok(payload)
    }
}

const ANY_LAYER: &str = "KosmoSignature, KourierBearer, ShipmondoJwt or GoShiipSignature";

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
