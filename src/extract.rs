//! Extractors for what a layer verified.
//!
//! Only a layer can record a verified request: the extensions it writes are
//! wrapped in a type private to this crate, so nothing else can forge one.

use axum_core::extract::FromRequestParts;
use http::Extensions;
use http::request::Parts;

use crate::{
    GoShiipEvent, KosmoEvent, KourierEvent, MatchedSecret, ShipmentEvent, ShipmondoEvent,
    WebhookRejection,
};

#[derive(Clone)]
struct Proof<T>(T);

/// Records which secret proved the request.
pub(crate) fn record_secret(extensions: &mut Extensions, secret: &MatchedSecret) {
    extensions.insert(Proof(secret.clone()));
}

/// Records a verified request's event and payload for the extractors; the
/// secret that proved it must be recorded already.
pub(crate) fn record<P: Clone + Send + Sync + 'static>(
    extensions: &mut Extensions,
    event: ShipmentEvent,
    payload: P,
) {
    let secret = extensions.get::<Proof<MatchedSecret>>();
    tracing::debug!(
        provider = %event.provider,
        id = %event.id,
        status = %event.status,
        secret = secret.map(|Proof(secret)| secret.label()),
        "webhook verified"
    );
    extensions.insert(Proof(event));
    extensions.insert(Proof(payload));
}

macro_rules! extract_verified {
    ($($ty:ident => $layer:expr),+ $(,)?) => {$(
        /// Extracts what the route's layer verified; refuses with a 500 naming
        /// the missing layer where the route has none.
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = WebhookRejection;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
                match parts.extensions.get::<Proof<$ty>>() {
                    Some(Proof(value)) => Ok(value.clone()),
                    None => {
                        let rejection = WebhookRejection::missing_layer(stringify!($ty), $layer);
                        tracing::error!(%rejection, "webhook extractor used without its layer");
                        Err(rejection)
                    }
                }
            }
        }
    )+};
}

const ANY_LAYER: &str = "KosmoSignature, KourierBearer, ShipmondoJwt or GoShiipSignature";

extract_verified! {
    ShipmentEvent => ANY_LAYER,
    MatchedSecret => ANY_LAYER,
    KosmoEvent => "KosmoSignature",
    KourierEvent => "KourierBearer",
    ShipmondoEvent => "ShipmondoJwt",
    GoShiipEvent => "GoShiipSignature",
}
