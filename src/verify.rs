//! The check every provider's layer and `verify` method share, and the Tower
//! service the layers build: resolve the secrets (per tenant, if so
//! configured), check what the headers prove, read the body up to a limit,
//! check the provider's proof over the exact bytes, record the verified
//! webhook in the request's extensions, and pass the same bytes on.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum_core::body::Body;
use axum_core::extract::DefaultBodyLimit;
use bytes::{Buf, BufMut, Bytes};
use http::header::{CONNECTION, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, Version};
use http_body::Body as HttpBody;
use pin_project_lite::pin_project;
use tower_service::Service;
use tracing::subscriber::NoSubscriber;

use crate::shipmondo::ShipmondoConnectionTest;
use crate::tenant::{Resolving, TenantSecrets};
use crate::{Provider, VerifiedWebhook, WebhookRejection};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body limit every layer starts with: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// One provider's check, as its layer configured it: implemented by
/// [`KosmoSignature`](crate::KosmoSignature), [`KourierBearer`](crate::KourierBearer),
/// [`ShipmondoJwt`](crate::ShipmondoJwt) and [`GoShiipSignature`](crate::GoShiipSignature),
/// so that code generic over the provider can name them (`PerTenant<V: Verify>`).
///
/// Sealed: only this crate implements it; its methods are its own.
pub trait Verify: sealed::Sealed + fmt::Debug + Clone + Send + Sync + 'static {
    #[doc(hidden)]
    /// Who sends what this checks.
    const PROVIDER: Provider;
    #[doc(hidden)]
    /// What the headers alone prove, carried to the check of the body.
    type HeaderProof: Send + 'static;
    #[doc(hidden)]
    /// What a request whose proof holds is.
    type Outcome: Into<Verified>;

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
    ) -> Result<Self::Outcome, WebhookRejection>;

    /// Hands a connection test the layer answered to the user's callback.
    #[doc(hidden)]
    fn connection_tested(&self, _test: &ShipmondoConnectionTest) {}
}

pub(crate) mod sealed {
    pub trait Sealed {}

    impl Sealed for crate::KosmoSignature {}
    impl Sealed for crate::KourierBearer {}
    impl Sealed for crate::ShipmondoJwt {}
    impl Sealed for crate::GoShiipSignature {}
}

/// What a request whose proof holds is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Verified {
    /// A webhook: the layer passes it on to the service behind it.
    Webhook(VerifiedWebhook),
    /// Shipmondo checking that a new webhook's endpoint answers: the layer
    /// answers it with 200 itself, since there is no event to handle.
    ConnectionTest(ShipmondoConnectionTest),
}

impl From<VerifiedWebhook> for Verified {
    fn from(webhook: VerifiedWebhook) -> Self {
        Self::Webhook(webhook)
    }
}

/// The one path from headers and a whole body to a verified webhook, which
/// each provider's `verify` method takes; the layers take the same steps,
/// reading the body between the two checks.
pub(crate) fn verify_whole<V: Verify>(
    verifier: &V,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<V::Outcome, WebhookRejection> {
    let proof = verifier.check_headers(headers)?;
    if body.len() > verifier.body_limit() {
        return Err(WebhookRejection::too_large(verifier.body_limit()));
    }
    verifier.check_body(headers, proof, &body)
}

/// Where a layer's secrets come from.
#[derive(Debug)]
pub(crate) enum SecretSource<V> {
    /// Configured once, for every request.
    Fixed(Arc<V>),
    /// Looked up per request, by tenant.
    PerTenant(Arc<TenantSecrets<V>>),
}

impl<V> Clone for SecretSource<V> {
    fn clone(&self) -> Self {
        match self {
            Self::Fixed(verifier) => Self::Fixed(Arc::clone(verifier)),
            Self::PerTenant(tenants) => Self::PerTenant(Arc::clone(tenants)),
        }
    }
}

/// The service the provider layers ([`KosmoSignature`](crate::KosmoSignature),
/// [`KourierBearer`](crate::KourierBearer), [`ShipmondoJwt`](crate::ShipmondoJwt),
/// [`GoShiipSignature`](crate::GoShiipSignature), and
/// [`PerTenant`](crate::PerTenant) of any of them) wrap a service in.
///
/// It calls the inner service only with requests whose proof holds, with the
/// body it verified and a [`VerifiedWebhook`] in their extensions; it answers
/// every other request itself with a [`WebhookRejection`], which it also puts
/// in the response's extensions for middleware outside it.
///
/// The inner service receives `Request<`[`Body`](crate::Body)`>` holding the
/// bytes that were verified; its responses may have any body type that is
/// `From<Bytes>` (`Full<Bytes>`, axum's `Body`...), since the layer makes its
/// refusals of the same type.
#[derive(Debug)]
pub struct VerifyWebhook<S, V> {
    inner: S,
    secrets: SecretSource<V>,
}

impl<S: Clone, V> Clone for VerifyWebhook<S, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            secrets: self.secrets.clone(),
        }
    }
}

impl<S, V> VerifyWebhook<S, V> {
    pub(crate) fn new(inner: S, secrets: SecretSource<V>) -> Self {
        Self { inner, secrets }
    }

    /// The service of a layer whose secrets are `verifier`'s own.
    pub(crate) fn fixed(inner: S, verifier: &V) -> Self
    where
        V: Clone,
    {
        Self::new(inner, SecretSource::Fixed(Arc::new(verifier.clone())))
    }
}

impl<S, V, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyWebhook<S, V>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone,
    V: Verify,
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
        let (parts, body) = request.into_parts();
        let span = if nothing_listens() {
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
            match &self.secrets {
                SecretSource::Fixed(verifier) => {
                    State::check_headers(Arc::clone(verifier), None, parts, body, inner)
                }
                SecretSource::PerTenant(tenants) => match tenants.resolve(&parts) {
                    Ok(Resolving::Ready(tenant, verifier)) => {
                        span.record("tenant", &*tenant);
                        State::check_headers(verifier, Some(tenant), parts, body, inner)
                    }
                    Ok(Resolving::Pending(tenant, future)) => {
                        span.record("tenant", &*tenant);
                        State::Resolving {
                            future,
                            tenant: Some(tenant),
                            pending: Some((parts, body, inner)),
                        }
                    }
                    Err(rejection) => State::rejected(
                        V::PROVIDER,
                        rejection,
                        parts.version,
                        !body.is_end_stream(),
                    ),
                },
            }
        };
        ResponseFuture { state, span }
    }
}

pin_project! {
    /// The response future of [`VerifyWebhook`].
    pub struct ResponseFuture<S, V, ReqBody>
    where
        S: Service<Request<Body>>,
        V: Verify,
        ReqBody: HttpBody,
        ReqBody::Error: Into<BoxError>,
    {
        #[pin]
        state: State<S, V, ReqBody>,
        span: tracing::Span,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, V, ReqBody>
    where
        S: Service<Request<Body>>,
        V: Verify,
        ReqBody: HttpBody,
        ReqBody::Error: Into<BoxError>,
    {
        Resolving {
            future: crate::tenant::ResolveFuture<V>,
            tenant: Option<Arc<str>>,
            pending: Option<(Parts, ReqBody, S)>,
        },
        Reading {
            #[pin]
            body: ReadBody<ReqBody>,
            pending: Option<(Parts, V::HeaderProof, S)>,
            verifier: Arc<V>,
            tenant: Option<Arc<str>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Answering {
            answer: Option<Answer>,
            close_connection: bool,
        },
    }
}

impl<S, V, ReqBody> State<S, V, ReqBody>
where
    S: Service<Request<Body>>,
    V: Verify,
    ReqBody: HttpBody,
    ReqBody::Error: Into<BoxError>,
{
    /// Checks what the headers prove and, if they hold, starts reading the body.
    fn check_headers(
        verifier: Arc<V>,
        tenant: Option<Arc<str>>,
        parts: Parts,
        body: ReqBody,
        inner: S,
    ) -> Self {
        let limit = verifier.body_limit();
        match verifier.check_headers(&parts.headers) {
            Err(rejection) => {
                Self::rejected(V::PROVIDER, rejection, parts.version, !body.is_end_stream())
            }
            // A declared Content-Length over the limit is refused before reading anything.
            Ok(_) if body.size_hint().lower() > limit as u64 => Self::rejected(
                V::PROVIDER,
                WebhookRejection::too_large(limit),
                parts.version,
                true,
            ),
            Ok(proof) => Self::Reading {
                body: ReadBody::new(body, limit),
                pending: Some((parts, proof, inner)),
                verifier,
                tenant,
            },
        }
    }

    /// Checks the proof over the body read; passes a webhook on, with its
    /// record in the request's extensions.
    fn check_body(
        verifier: &V,
        tenant: Option<Arc<str>>,
        (mut parts, proof, mut inner): (Parts, V::HeaderProof, S),
        bytes: Bytes,
        span: &tracing::Span,
    ) -> Self {
        let outcome = verifier.check_body(&parts.headers, proof, &bytes);
        match outcome.map(Into::into) {
            Ok(Verified::Webhook(mut webhook)) => {
                webhook.secret_mut().tenant = tenant;
                accepted(&webhook, span);
                parts.extensions.insert(webhook);
                let mut request = Request::from_parts(parts, Body::from(bytes));
                // The body is read and within this layer's limit: axum's own
                // default limit must not refuse it again.
                DefaultBodyLimit::max(verifier.body_limit()).apply(&mut request);
                Self::Calling {
                    future: inner.call(request),
                }
            }
            Ok(Verified::ConnectionTest(mut test)) => {
                test.secret.tenant = tenant;
                tracing::info!(
                    webhook = test.webhook,
                    url = test.url,
                    secret = test.secret.label(),
                    tenant = test.secret.tenant(),
                    "Shipmondo connection test answered with 200"
                );
                verifier.connection_tested(&test);
                Self::Answering {
                    answer: Some(Answer::ConnectionTest),
                    close_connection: false,
                }
            }
            // The body was read to its end: the connection can go on.
            Err(rejection) => Self::rejected(V::PROVIDER, rejection, parts.version, false),
        }
    }

    /// A refusal, traced and counted. If some of the body is left unread, the
    /// server will not read it, so an HTTP/1 connection cannot carry another
    /// request: say so, or a client reusing it loses its next request.
    fn rejected(
        provider: Provider,
        rejection: WebhookRejection,
        version: Version,
        body_left: bool,
    ) -> Self {
        tracing::debug!(
            status = rejection.status().as_u16(),
            error = rejection.error(),
            details = rejection.details(),
            "webhook rejected"
        );
        #[cfg(feature = "metrics")]
        metrics::counter!(
            "shipment_webhooks_refused_total",
            "provider" => provider.as_str(),
            "reason" => rejection.error(),
        )
        .increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = provider;
        Self::Answering {
            answer: Some(Answer::Refused(rejection)),
            close_connection: body_left && version < Version::HTTP_2,
        }
    }
}

impl<S, V, ReqBody, ResBody> Future for ResponseFuture<S, V, ReqBody>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    V: Verify,
    ReqBody: HttpBody,
    ReqBody::Error: Into<BoxError>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Resolving {
                    future,
                    tenant,
                    pending,
                } => {
                    let resolved = ready!(future.as_mut().poll(cx));
                    let (parts, body, inner) = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    match resolved {
                        Ok(verifier) => {
                            State::check_headers(verifier, tenant.take(), parts, body, inner)
                        }
                        Err(rejection) => State::rejected(
                            V::PROVIDER,
                            rejection,
                            parts.version,
                            !body.is_end_stream(),
                        ),
                    }
                }
                StateProj::Reading {
                    body,
                    pending,
                    verifier,
                    tenant,
                } => {
                    let read = ready!(body.poll(cx));
                    let (parts, proof, inner) = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    match read {
                        Ok(bytes) => State::check_body(
                            &**verifier,
                            tenant.take(),
                            (parts, proof, inner),
                            bytes,
                            this.span,
                        ),
                        Err(rejection) => {
                            State::rejected(V::PROVIDER, rejection, parts.version, true)
                        }
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Answering {
                    answer,
                    close_connection,
                } => {
                    let answer = answer
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let mut response = match answer {
                        Answer::ConnectionTest => connection_test_acknowledged(),
                        Answer::Refused(rejection) => {
                            let mut response = rejection.to_response::<ResBody>();
                            response.extensions_mut().insert(rejection);
                            response
                        }
                    };
                    if *close_connection {
                        response
                            .headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    return Poll::Ready(Ok(response));
                }
            };
            this.state.set(next);
        }
    }
}

/// Whether no tracing subscriber and no `log` logger would see the span:
/// then the layer makes none. A span nobody sees still costs about 430
/// instructions a request to make, enter and record, when tracing's `log`
/// bridge is on (axum's default `tower-log` turns it on); a `log` logger
/// sees the span through that bridge.
fn nothing_listens() -> bool {
    log::max_level() == log::LevelFilter::Off
        && tracing::dispatcher::get_default(|dispatch| dispatch.is::<NoSubscriber>())
}

/// What the layer answers itself, without calling the service behind it.
enum Answer {
    Refused(WebhookRejection),
    ConnectionTest,
}

/// Traces and counts a verified webhook.
fn accepted(webhook: &VerifiedWebhook, span: &tracing::Span) {
    let event = webhook.event();
    let secret = webhook.secret();
    span.record("secret", secret.label());
    tracing::debug!(
        provider = %event.provider,
        id = %event.id,
        status = %event.status,
        secret = secret.label(),
        "webhook verified"
    );
    // A literal name and labels make a static key: nothing built per request.
    #[cfg(feature = "metrics")]
    match event.provider {
        Provider::Kosmo => {
            metrics::counter!("shipment_webhooks_accepted_total", "provider" => "kosmo")
        }
        Provider::Kourier => {
            metrics::counter!("shipment_webhooks_accepted_total", "provider" => "kourier")
        }
        Provider::Shipmondo => {
            metrics::counter!("shipment_webhooks_accepted_total", "provider" => "shipmondo")
        }
        Provider::GoShiip => {
            metrics::counter!("shipment_webhooks_accepted_total", "provider" => "goshiip")
        }
    }
    .increment(1);
}

/// The 200 a connection test gets, as JSON like every other answer of the layer.
fn connection_test_acknowledged<B: From<Bytes>>() -> Response<B> {
    let mut response = Response::new(B::from(Bytes::from_static(
        br#"{"status":"connection test received"}"#,
    )));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pin_project! {
    /// Reads a body to its end into one buffer, and refuses it as soon as it
    /// is over the limit.
    ///
    /// Each frame is copied and dropped at once: a frame from hyper shares
    /// hyper's read buffer, so keeping every frame, as `http_body_util`'s
    /// `Collect` does, held about 40 times a body sent one byte per chunk.
    /// A body that comes in one frame is kept as it is, not copied.
    struct ReadBody<B> {
        #[pin]
        body: B,
        limit: usize,
        // The length the body declared (its size hint's lower bound), at
        // most the limit.
        declared: usize,
        // The first data frame, until a second one comes.
        first: Bytes,
        // Every byte read, once a second data frame has come.
        buffer: Vec<u8>,
    }
}

impl<B: HttpBody> ReadBody<B> {
    fn new(body: B, limit: usize) -> Self {
        let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
        Self {
            body,
            limit,
            declared: declared.min(limit),
            first: Bytes::new(),
            buffer: Vec::new(),
        }
    }
}

impl<B> Future for ReadBody<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    type Output = Result<Bytes, WebhookRejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let frame = match ready!(this.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => {
                    let error: BoxError = error.into();
                    return Poll::Ready(Err(WebhookRejection::unreadable_body(format!(
                        "reading the body failed: {error}"
                    ))));
                }
                None if this.buffer.is_empty() => return Poll::Ready(Ok(mem::take(this.first))),
                None => return Poll::Ready(Ok(Bytes::from(mem::take(this.buffer)))),
            };
            // Trailers are not part of what was signed; an empty frame (an
            // HTTP/2 END_STREAM) must not cost the one-frame body a copy.
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            if !data.has_remaining() {
                continue;
            }
            let read = this.first.len() + this.buffer.len();
            if data.remaining() > *this.limit - read {
                return Poll::Ready(Err(WebhookRejection::too_large(*this.limit)));
            }
            if read == 0 {
                // Perhaps the whole body: kept as it is (no copy for `Bytes`).
                *this.first = data.copy_to_bytes(data.remaining());
                continue;
            }
            let needed = read + data.remaining();
            if needed > this.buffer.capacity() {
                // Double, for amortized copies, but not past the declared
                // length (else the limit): capacity stays under twice what
                // was read and within the limit, whatever a header claims.
                let ceiling = if needed <= *this.declared {
                    *this.declared
                } else {
                    *this.limit
                };
                let capacity = this
                    .buffer
                    .capacity()
                    .saturating_mul(2)
                    .clamp(needed, ceiling);
                this.buffer.reserve_exact(capacity - this.buffer.len());
            }
            this.buffer.put(mem::take(this.first));
            this.buffer.put(data);
        }
    }
}
