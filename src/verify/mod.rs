//! What every provider's check shares: the [`Verifier`] trait a provider's
//! layer implements, what a check proves ([`Verified`]), the Tower service
//! the layers build ([`VerifyWebhook`]) and the path a framework-free
//! `verify` takes, so that both make the same checks in the same order.

mod body;
mod future;
mod service;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use http::request::Parts;

use crate::{MatchedSecret, Provider, VerifiedWebhook, WebhookRejection};

pub use future::ResponseFuture;
#[cfg(all(feature = "metrics", feature = "inbox"))]
pub(crate) use future::route;
pub(crate) use service::Verifiers;
pub use service::VerifyWebhook;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body limit every layer starts with: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// One provider's check, as its layer configured it: implemented by each
/// provider's layer ([`KosmoSignature`](crate::KosmoSignature)...), so that
/// code generic over the provider can name them (`PerTenant<V: Verifier>`).
///
/// Sealed: only this crate implements it; its methods are its own.
pub trait Verifier: sealed::Sealed + fmt::Debug + Clone + Send + Sync + 'static {
    #[doc(hidden)]
    /// Who sends what this checks.
    const PROVIDER: Provider;
    #[doc(hidden)]
    /// What the headers alone prove, carried to the check of the body.
    type HeaderProof: Send + 'static;

    #[doc(hidden)]
    /// The largest body this endpoint reads, in bytes.
    fn body_limit(&self) -> usize;

    #[doc(hidden)]
    /// Checks what the headers alone prove, before any of the body is read,
    /// so a sender without a valid header proof cannot make us buffer a body.
    fn check_headers(&self, headers: &HeaderMap) -> Result<Self::HeaderProof, WebhookRejection>;

    /// Checks the proof over `body`; if it holds, decodes the fields of the
    /// [`ShipmentEvent`](crate::ShipmentEvent).
    #[doc(hidden)]
    fn check_body(
        &self,
        headers: &HeaderMap,
        proof: Self::HeaderProof,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection>;

    /// Hands a connection test the layer answered to the user's callback.
    #[doc(hidden)]
    fn connection_tested(&self, _test: &ConnectionTest) {}
}

pub(crate) mod sealed {
    /// Implemented by each provider's layer, in its own module.
    pub trait Sealed {}
}

/// What a request whose proof holds is.
#[derive(Debug, Clone)]
#[non_exhaustive]
// Nearly every request is a webhook: boxing it would cost each an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Verified {
    /// A webhook: the layer passes it on to the service behind it.
    Webhook(VerifiedWebhook),
    /// A provider checking that an endpoint answers, not an event: the
    /// layer answers it with 200 itself.
    ConnectionTest(ConnectionTest),
}

impl Verified {
    /// The webhook, or `None` for a connection test.
    pub fn into_webhook(self) -> Option<VerifiedWebhook> {
        match self {
            Self::Webhook(webhook) => Some(webhook),
            Self::ConnectionTest(_) => None,
        }
    }
}

impl From<VerifiedWebhook> for Verified {
    fn from(webhook: VerifiedWebhook) -> Self {
        Self::Webhook(webhook)
    }
}

/// A verified request that tests the endpoint rather than reporting an
/// event, such as the one a provider sends when a webhook is created (see
/// each provider's module for whether it sends one).
///
/// A layer answers it with 200 and `{"status":"connection test received"}`,
/// traces it at `info`, and never passes it on: it is no shipment's event.
/// The layer's `on_connection_test` callback sees each one; a
/// framework-free `verify` returns it as [`Verified::ConnectionTest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionTest {
    /// Who sent it.
    pub provider: Provider,
    /// The name or id of the webhook being tested, as signed, where the
    /// provider sends one.
    pub webhook: Option<String>,
    /// The URL the provider sent it to, as signed, where it says.
    pub url: Option<String>,
    /// The secret that proved it.
    pub secret: MatchedSecret,
}

/// A layer's callback for the connection tests it answers; `Debug` shows
/// only that there is one.
#[derive(Clone)]
pub(crate) struct OnConnectionTest(Arc<dyn Fn(&ConnectionTest) + Send + Sync>);

impl OnConnectionTest {
    pub(crate) fn new(callback: impl Fn(&ConnectionTest) + Send + Sync + 'static) -> Self {
        Self(Arc::new(callback))
    }

    pub(crate) fn call(&self, test: &ConnectionTest) {
        (self.0)(test);
    }
}

impl fmt::Debug for OnConnectionTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnConnectionTest(..)")
    }
}

/// Finds, per request, the verifier to check it with: a tenant's, which
/// [`PerTenant`](crate::PerTenant) looks up, or a layer's own once it has
/// awaited something the request needs (public keys a lookup refreshes).
pub(crate) trait Resolve<V>: fmt::Debug + Send + Sync {
    /// The verifier for `parts`, cached or being looked up; it may add to
    /// the request's extensions.
    fn resolve(self: Arc<Self>, parts: &mut Parts) -> Result<Resolving<V>, WebhookRejection>;
}

/// A request's verifier: ready, or being looked up; with the tenant it is
/// for, where it is a tenant's (`None`: the layer's own).
pub(crate) enum Resolving<V> {
    Ready(Option<Arc<str>>, Arc<V>),
    Pending(Option<Arc<str>>, ResolveFuture<V>),
}

/// The future of a request's verifier being looked up.
pub(crate) type ResolveFuture<V> =
    Pin<Box<dyn Future<Output = Result<Arc<V>, WebhookRejection>> + Send>>;

/// The one path from headers and a whole body to what they prove, which
/// each layer's `verify` method takes; the layers take the same steps,
/// reading the body between the two checks.
pub(crate) fn verify_request<V: Verifier>(
    verifier: &V,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Verified, WebhookRejection> {
    let proof = verifier.check_headers(headers)?;
    if body.len() > verifier.body_limit() {
        return Err(WebhookRejection::too_large(verifier.body_limit()));
    }
    verifier.check_body(headers, proof, &body)
}

/// The builders every provider's layer has, written once: `new`/`try_new`,
/// `with_secret`/`try_with_secret`, `body_limit`, `verify` and `Layer`.
///
/// The layer has fields `secrets: Secrets<K>` and `body_limit: usize` and a
/// `fn from_secrets(Secrets<K>) -> Self` giving every other field its
/// default; `prepare` turns a secret's bytes into a `K` once, and `min_len`
/// is the shortest secret `new` accepts (0 where the provider asks for none).
macro_rules! layer_builders {
    ($layer:ident, $secret:literal, prepare: $prepare:expr, min_len: $min_len:expr $(,)?) => {
        impl $layer {
            #[doc = concat!("Verifies with `secret`, ", $secret, ".")]
            ///
            /// # Panics
            ///
            /// If the secret is refused (empty, or shorter than the provider
            /// asks for); [`try_new`](Self::try_new) returns the
            /// [`ConfigError`](crate::ConfigError) instead.
            #[track_caller]
            #[must_use]
            pub fn new(secret: impl $crate::WebhookSecret) -> Self {
                $crate::secret::or_panic(Self::try_new(secret))
            }

            /// Like [`new`](Self::new), for a secret read at run time: an
            /// error instead of a panic.
            pub fn try_new(
                secret: impl $crate::WebhookSecret,
            ) -> Result<Self, $crate::ConfigError> {
                let secrets =
                    $crate::secret::Secrets::new(secret.secret_bytes(), $prepare, $min_len)?;
                Ok(Self::from_secrets(secrets))
            }

            /// Also accepts requests proved with `secret`, reported as
            /// `label` in [`MatchedSecret`](crate::MatchedSecret): configure
            /// the old and the new secret while rotating.
            ///
            /// # Panics
            ///
            /// If the secret is refused as [`new`](Self::new) refuses one, or
            /// `label` is taken; [`try_with_secret`](Self::try_with_secret)
            /// returns the error.
            #[track_caller]
            #[must_use]
            pub fn with_secret(
                self,
                label: impl Into<std::sync::Arc<str>>,
                secret: impl $crate::WebhookSecret,
            ) -> Self {
                $crate::secret::or_panic(self.try_with_secret(label, secret))
            }

            /// Like [`with_secret`](Self::with_secret): an error instead of a panic.
            pub fn try_with_secret(
                mut self,
                label: impl Into<std::sync::Arc<str>>,
                secret: impl $crate::WebhookSecret,
            ) -> Result<Self, $crate::ConfigError> {
                self.secrets.push(label.into(), secret.secret_bytes())?;
                Ok(self)
            }

            /// Refuses bodies larger than `bytes` with 413 (default 1 MiB).
            #[must_use]
            pub fn body_limit(mut self, bytes: usize) -> Self {
                self.body_limit = bytes;
                self
            }

            /// Verifies a request without a framework, from its headers and
            /// its whole body as received: the checks the layer makes, in
            /// the same order, with the same refusals
            /// ([`WebhookRejection::to_response`](crate::WebhookRejection::to_response)
            /// answers with one). A [`Verified::ConnectionTest`](crate::Verified::ConnectionTest)
            /// is to be answered 200; the layer's callback for them is not called here.
            pub fn verify(
                &self,
                headers: &http::HeaderMap,
                body: impl Into<bytes::Bytes>,
            ) -> Result<$crate::Verified, $crate::WebhookRejection> {
                $crate::verify::verify_request(self, headers, body.into())
            }
        }

        impl $crate::verify::sealed::Sealed for $layer {}

        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $crate::VerifyWebhook<S, Self>;

            fn layer(&self, inner: S) -> Self::Service {
                $crate::VerifyWebhook::fixed(inner, self)
            }
        }
    };
}

pub(crate) use layer_builders;

/// A layer's `signature_header`/`try_signature_header` builders, for a
/// proof in one header whose name a user may override: the layer has a
/// field `header: HeaderName`, `$default` its default name as documented.
macro_rules! signature_header_builders {
    ($layer:ident, $default:literal) => {
        impl $layer {
            #[doc = concat!("Reads the signature from header `name` instead of `", $default, "`.")]
            #[must_use]
            pub fn signature_header(mut self, name: http::HeaderName) -> Self {
                self.header = name;
                self
            }

            /// Like [`signature_header`](Self::signature_header), for a name read
            /// at run time: an error if it is not a valid header name.
            pub fn try_signature_header(self, name: &str) -> Result<Self, $crate::ConfigError> {
                Ok(self.signature_header($crate::proof::header_name(name)?))
            }
        }
    };
}

pub(crate) use signature_header_builders;
