//! The axum extractors: a [`VerifiedWebhook`], its [`ShipmentEvent`], its
//! [`MatchedSecret`] and each provider's typed payload, all read from what
//! the route's layer recorded, never from the request itself.

use axum_core::extract::FromRequestParts;
use http::request::Parts;

use crate::event::ANY_LAYER;
use crate::{MatchedSecret, ShipmentEvent, VerifiedWebhook, WebhookRejection};

/// Seals a provider's [`TypedPayload`](crate::TypedPayload) and makes it an extractor, decoded
/// when a handler takes it: 400 if the verified JSON is not its shape, 500
/// naming the missing layer where the route has none.
macro_rules! typed_payload {
    ($payload:ty) => {
        impl $crate::webhook::sealed::Sealed for $payload {}

        /// Decoded when a handler takes it: 400 if the verified JSON is not
        /// this shape, 500 naming the missing layer where the route has none.
        impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for $payload {
            type Rejection = $crate::WebhookRejection;

            async fn from_request_parts(
                parts: &mut http::request::Parts,
                _state: &S,
            ) -> Result<Self, Self::Rejection> {
                use $crate::TypedPayload as _;
                $crate::extract::verified(parts, Self::NAME, Self::LAYER)?.payload()
            }
        }
    };
}

pub(crate) use typed_payload;

/// What the route's layer recorded, or a 500 naming the layer it lacks.
pub(crate) fn verified<'a>(
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
        Ok(verified(parts, "ShipmentEvent", ANY_LAYER)?.event().clone())
    }
}

/// The secret that proved the request; 500 naming the missing layer where
/// the route has none.
impl<S: Send + Sync> FromRequestParts<S> for MatchedSecret {
    type Rejection = WebhookRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(verified(parts, "MatchedSecret", ANY_LAYER)?
            .secret()
            .clone())
    }
}
