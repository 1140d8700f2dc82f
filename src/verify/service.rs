//! The Tower service every provider's layer wraps a service in.

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as HttpBody;
use tower_service::Service;

use super::future::{ResponseFuture, State};
use super::{BoxError, Resolve, Resolving, Verifier};

/// Where a layer's verifier comes from.
#[derive(Debug)]
pub(crate) enum Verifiers<V> {
    /// Configured once, for every request.
    Fixed(Arc<V>),
    /// Looked up per request: by tenant, or once what the request needs is
    /// awaited.
    PerTenant(Arc<dyn Resolve<V>>),
}

impl<V> Clone for Verifiers<V> {
    fn clone(&self) -> Self {
        match self {
            Self::Fixed(verifier) => Self::Fixed(Arc::clone(verifier)),
            Self::PerTenant(tenants) => Self::PerTenant(Arc::clone(tenants)),
        }
    }
}

/// The service the provider layers ([`KosmoSignature`](crate::KosmoSignature)...,
/// and [`PerTenant`](crate::PerTenant) of any of them) wrap a service in.
///
/// It calls the inner service only with requests whose proof holds, with the
/// body it verified and a [`VerifiedWebhook`](crate::VerifiedWebhook) in
/// their extensions; it answers every other request itself with a
/// [`WebhookRejection`](crate::WebhookRejection), which it also puts in the
/// response's extensions for middleware outside it.
///
/// The inner service receives `Request<`[`Body`](crate::Body)`>` holding the
/// bytes that were verified; its responses may have any body type that is
/// `From<Bytes>` (`Full<Bytes>`, axum's `Body`...), since the layer makes its
/// refusals of the same type.
#[derive(Debug)]
pub struct VerifyWebhook<S, V> {
    inner: S,
    verifiers: Verifiers<V>,
}

impl<S: Clone, V> Clone for VerifyWebhook<S, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            verifiers: self.verifiers.clone(),
        }
    }
}

impl<S, V> VerifyWebhook<S, V> {
    pub(crate) fn new(inner: S, verifiers: Verifiers<V>) -> Self {
        Self { inner, verifiers }
    }

    /// The service of a layer that is its own verifier.
    pub(crate) fn fixed(inner: S, verifier: &V) -> Self
    where
        V: Clone,
    {
        Self::new(inner, Verifiers::Fixed(Arc::new(verifier.clone())))
    }
}

impl<S, V, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyWebhook<S, V>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone,
    V: Verifier,
    ReqBody: HttpBody,
    ReqBody::Error: Into<BoxError>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, V, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let span = if super::future::nothing_listens() {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                "webhook",
                provider = %V::PROVIDER,
                route = parts.uri.path(),
                tenant = tracing::field::Empty,
                secret = tracing::field::Empty,
            )
        };
        // The service that was polled ready goes with the request; a clone stays.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        let state = {
            let _entered = span.enter();
            match &self.verifiers {
                Verifiers::Fixed(verifier) => {
                    State::check_headers(Arc::clone(verifier), None, parts, body, inner)
                }
                Verifiers::PerTenant(tenants) => match Arc::clone(tenants).resolve(&mut parts) {
                    Ok(Resolving::Ready(tenant, verifier)) => {
                        if let Some(tenant) = &tenant {
                            span.record("tenant", &**tenant);
                        }
                        State::check_headers(verifier, tenant, parts, body, inner)
                    }
                    Ok(Resolving::Pending(tenant, future)) => {
                        if let Some(tenant) = &tenant {
                            span.record("tenant", &**tenant);
                        }
                        State::resolving(future, tenant, parts, body, inner)
                    }
                    Err(rejection) => State::rejected(rejection, &parts, !body.is_end_stream()),
                },
            }
        };
        ResponseFuture::new(state, span)
    }
}
