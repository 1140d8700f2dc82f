//! The Tower service every provider's layer builds: buffer the body up to a
//! limit, check the provider's proof over the exact bytes, record the verified
//! event in the request's extensions, and pass the same bytes on.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum_core::body::Body;
use bytes::{Buf, BufMut, Bytes};
use http::header::CONNECTION;
use http::request::Parts;
use http::{HeaderValue, Request, Response, Version};
use http_body::Body as HttpBody;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::WebhookRejection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body limit every layer starts with: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// One provider's check, as its layer configured it.
pub(crate) trait Verify: fmt::Debug + Send + Sync + 'static {
    /// The largest body this endpoint reads, in bytes.
    fn body_limit(&self) -> usize;

    /// Checks what the headers alone prove, before any of the body is read,
    /// so a sender without a valid header proof cannot make us buffer a body.
    fn check_headers(&self, _parts: &mut Parts) -> Result<(), WebhookRejection> {
        Ok(())
    }

    /// Checks the proof over `body`; if it holds, decodes the fields of the
    /// [`ShipmentEvent`](crate::ShipmentEvent) and records it, with the
    /// verified JSON, in `parts.extensions` for the extractors.
    fn verify(&self, parts: &mut Parts, body: &Bytes) -> Result<Verified, WebhookRejection>;
}

/// What a request whose proof holds is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verified {
    /// A webhook, recorded for the extractors: pass it on.
    Webhook,
    /// The provider checking that the endpoint answers (Shipmondo's
    /// connection test): answer 200 here, since there is no event to handle.
    ConnectionTest,
}

/// The service the provider layers ([`KosmoSignature`](crate::KosmoSignature),
/// [`KourierBearer`](crate::KourierBearer), [`ShipmondoJwt`](crate::ShipmondoJwt),
/// [`GoShiipSignature`](crate::GoShiipSignature)) wrap a service in.
///
/// It calls the inner service only with requests whose proof holds, with the
/// body it verified; it answers every other request itself with a
/// [`WebhookRejection`].
///
/// The inner service receives `Request<axum_core::body::Body>` (axum's `Body`),
/// holding the bytes that were verified; any body type that is `From<Bytes>`
/// works for its responses.
#[derive(Debug, Clone)]
pub struct VerifyWebhook<S> {
    inner: S,
    verifier: Arc<dyn Verify>,
}

impl<S> VerifyWebhook<S> {
    pub(crate) fn new(inner: S, verifier: Arc<dyn Verify>) -> Self {
        Self { inner, verifier }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyWebhook<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone,
    ReqBody: HttpBody,
    ReqBody::Error: Into<BoxError>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let limit = self.verifier.body_limit();
        let state = if let Err(rejection) = self.verifier.check_headers(&mut parts) {
            State::rejected(rejection, parts.version, !body.is_end_stream())
        } else if body.size_hint().lower() > limit as u64 {
            // A declared Content-Length over the limit is refused before reading anything.
            State::rejected(WebhookRejection::too_large(limit), parts.version, true)
        } else {
            // The service that was polled ready goes with the request; a clone stays.
            let clone = self.inner.clone();
            State::Reading {
                body: ReadBody::new(body, limit),
                parts: Some(parts),
                inner: std::mem::replace(&mut self.inner, clone),
                verifier: Arc::clone(&self.verifier),
            }
        };
        ResponseFuture { state }
    }
}

pin_project! {
    /// The response future of [`VerifyWebhook`].
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<Body>>,
        ReqBody: HttpBody,
        ReqBody::Error: Into<BoxError>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<Body>>,
        ReqBody: HttpBody,
        ReqBody::Error: Into<BoxError>,
    {
        Reading {
            #[pin]
            body: ReadBody<ReqBody>,
            parts: Option<Parts>,
            inner: S,
            verifier: Arc<dyn Verify>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Rejected {
            rejection: Option<WebhookRejection>,
            close_connection: bool,
        },
    }
}

impl<S, ReqBody> State<S, ReqBody>
where
    S: Service<Request<Body>>,
    ReqBody: HttpBody,
    ReqBody::Error: Into<BoxError>,
{
    /// A refusal sent before the body was read. If some of it is left
    /// unread, the server will not read it, so an HTTP/1 connection cannot
    /// carry another request: say so, or a client reusing it loses its next
    /// request.
    fn rejected(rejection: WebhookRejection, version: Version, body_left: bool) -> Self {
        State::Rejected {
            rejection: Some(rejection),
            close_connection: body_left && version < Version::HTTP_2,
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    ReqBody: HttpBody,
    ReqBody::Error: Into<BoxError>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let (rejection, close_connection) = match this.state.as_mut().project() {
                StateProj::Reading {
                    body,
                    parts,
                    inner,
                    verifier,
                } => {
                    let read = ready!(body.poll(cx));
                    let mut parts = parts
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let bytes = match read {
                        Ok(bytes) => bytes,
                        Err(rejection) => {
                            let state = State::rejected(rejection, parts.version, true);
                            this.state.set(state);
                            continue;
                        }
                    };
                    match verifier.verify(&mut parts, &bytes) {
                        Ok(Verified::Webhook) => {
                            let future = inner.call(Request::from_parts(parts, Body::from(bytes)));
                            this.state.set(State::Calling { future });
                            continue;
                        }
                        Ok(Verified::ConnectionTest) => {
                            return Poll::Ready(Ok(connection_test_acknowledged()));
                        }
                        Err(rejection) => (rejection, false),
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Rejected {
                    rejection,
                    close_connection,
                } => (
                    rejection
                        .take()
                        .expect("ResponseFuture polled after completion"),
                    *close_connection,
                ),
            };
            tracing::debug!(
                status = rejection.status().as_u16(),
                error = rejection.error(),
                details = rejection.details(),
                "webhook rejected"
            );
            let mut response = rejection.to_response::<ResBody>();
            if close_connection {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            return Poll::Ready(Ok(response));
        }
    }
}

/// The 200 a connection test gets, as JSON like every other answer of the layer.
fn connection_test_acknowledged<B: From<Bytes>>() -> Response<B> {
    let mut response = Response::new(B::from(Bytes::from_static(
        br#"{"status":"connection test received"}"#,
    )));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
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
