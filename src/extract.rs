//! Extractors for what a layer verified.
//!
//! Only a layer can record a verified request: the extensions it writes are
//! wrapped in types private to this crate, so nothing else can forge one.

use std::marker::PhantomData;

use axum_core::extract::FromRequestParts;
use bytes::Bytes;
use http::Extensions;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::payload::parse_json;
use crate::{
    GoShiipEvent, KosmoEvent, KourierEvent, MatchedSecret, ShipmentEvent, ShipmondoEvent,
    WebhookRejection,
};

#[derive(Clone)]
struct Proof<T>(T);

/// Verified JSON for a typed payload `T`, decoded only when a handler asks
/// for `T`: most handlers need only the [`ShipmentEvent`].
struct Unparsed<T> {
    json: Bytes,
    payload: PhantomData<fn() -> T>,
}

impl<T> Clone for Unparsed<T> {
    fn clone(&self) -> Self {
        Self {
            json: self.json.clone(),
            payload: PhantomData,
        }
    }
}

/// Records which secret proved the request.
pub(crate) fn record_secret(extensions: &mut Extensions, secret: &MatchedSecret) {
    extensions.insert(Proof(secret.clone()));
}

/// Records a verified request's event, and the JSON its typed payload `T` is
/// decoded from; the secret that proved it must be recorded already.
pub(crate) fn record<T: 'static>(extensions: &mut Extensions, event: ShipmentEvent, json: Bytes) {
    let secret = extensions.get::<Proof<MatchedSecret>>();
    tracing::debug!(
        provider = %event.provider,
        id = %event.id,
        status = %event.status,
        secret = secret.map(|Proof(secret)| secret.label()),
        "webhook verified"
    );
    extensions.insert(Proof(event));
    extensions.insert(Unparsed::<T> {
        json,
        payload: PhantomData,
    });
}

/// A provider's typed payload, decoded from the JSON its layer verified.
pub(crate) trait VerifiedPayload: DeserializeOwned {
    /// Decodes the payload; `parts` holds the request's headers.
    fn decode(json: &[u8], _parts: &Parts) -> Result<Self, WebhookRejection> {
        parse_json("the body", json)
    }
}

fn missing_layer(extractor: &str, layer: &str) -> WebhookRejection {
    let rejection = WebhookRejection::missing_layer(extractor, layer);
    tracing::error!(%rejection, "webhook extractor used without its layer");
    rejection
}

macro_rules! extract_recorded {
    ($($ty:ident => $layer:expr),+ $(,)?) => {$(
        /// Extracts what the route's layer verified; refuses with a 500 naming
        /// the missing layer where the route has none.
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = WebhookRejection;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
                match parts.extensions.get::<Proof<$ty>>() {
                    Some(Proof(value)) => Ok(value.clone()),
                    None => Err(missing_layer(stringify!($ty), $layer)),
                }
            }
        }
    )+};
}

macro_rules! extract_payload {
    ($($ty:ident => $layer:expr),+ $(,)?) => {$(
        /// Decodes the payload the route's layer verified: 400 if it is not
        /// this shape, 500 naming the missing layer where the route has none.
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = WebhookRejection;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
                match parts.extensions.get::<Unparsed<$ty>>() {
                    Some(unparsed) => <$ty as VerifiedPayload>::decode(&unparsed.json, parts)
                        .inspect_err(|rejection| {
                            tracing::debug!(%rejection, "verified payload is not a {}", stringify!($ty));
                        }),
                    None => Err(missing_layer(stringify!($ty), $layer)),
                }
            }
        }
    )+};
}

const ANY_LAYER: &str = "KosmoSignature, KourierBearer, ShipmondoJwt or GoShiipSignature";

extract_recorded! {
    ShipmentEvent => ANY_LAYER,
    MatchedSecret => ANY_LAYER,
}

extract_payload! {
    KosmoEvent => "KosmoSignature",
    KourierEvent => "KourierBearer",
    ShipmondoEvent => "ShipmondoJwt",
    GoShiipEvent => "GoShiipSignature",
}
