//! The response future of [`VerifyWebhook`](super::VerifyWebhook): look the
//! tenant's verifier up, check the headers, read the body, check the proof,
//! then call the inner service or answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum_core::body::Body;
use axum_core::extract::DefaultBodyLimit;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Request, Response, Version};
use http_body::Body as HttpBody;
use pin_project_lite::pin_project;
use tower_service::Service;
use tracing::subscriber::NoSubscriber;

use super::body::ReadBody;
use super::{BoxError, ConnectionTest, ResolveFuture, Verified, Verifier};
use crate::{Provider, RejectionKind, VerifiedWebhook, WebhookRejection};

pin_project! {
    /// The response future of [`VerifyWebhook`](super::VerifyWebhook).
    pub struct ResponseFuture<S, V, ReqBody>
    where
        S: Service<Request<Body>>,
        V: Verifier,
        ReqBody: HttpBody,
        ReqBody::Error: Into<BoxError>,
    {
        #[pin]
        state: State<S, V, ReqBody>,
        span: tracing::Span,
    }
}

impl<S, V, ReqBody> ResponseFuture<S, V, ReqBody>
where
    S: Service<Request<Body>>,
    V: Verifier,
    ReqBody: HttpBody,
    ReqBody::Error: Into<BoxError>,
{
    pub(super) fn new(state: State<S, V, ReqBody>, span: tracing::Span) -> Self {
        Self { state, span }
    }
}

pin_project! {
    #[project = StateProj]
    pub(super) enum State<S, V, ReqBody>
    where
        S: Service<Request<Body>>,
        V: Verifier,
        ReqBody: HttpBody,
        ReqBody::Error: Into<BoxError>,
    {
        Resolving {
            future: ResolveFuture<V>,
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

/// What the layer answers itself, without calling the service behind it.
pub(super) enum Answer {
    Refused(WebhookRejection),
    ConnectionTest,
}

impl<S, V, ReqBody> State<S, V, ReqBody>
where
    S: Service<Request<Body>>,
    V: Verifier,
    ReqBody: HttpBody,
    ReqBody::Error: Into<BoxError>,
{
    /// Waits for the request's verifier (a tenant's) before checking anything.
    pub(super) fn resolving(
        future: ResolveFuture<V>,
        tenant: Option<Arc<str>>,
        parts: Parts,
        body: ReqBody,
        inner: S,
    ) -> Self {
        Self::Resolving {
            future,
            tenant,
            pending: Some((parts, body, inner)),
        }
    }

    /// Checks what the headers prove and, if they hold, starts reading the body.
    pub(super) fn check_headers(
        verifier: Arc<V>,
        tenant: Option<Arc<str>>,
        parts: Parts,
        body: ReqBody,
        inner: S,
    ) -> Self {
        let limit = verifier.body_limit();
        match verifier.check_headers(&parts.headers) {
            Err(rejection) => Self::rejected(rejection, &parts, !body.is_end_stream()),
            // A declared Content-Length over the limit is refused before reading anything.
            Ok(_) if body.size_hint().lower() > limit as u64 => {
                Self::rejected(WebhookRejection::too_large(limit), &parts, true)
            }
            Ok(proof) => Self::Reading {
                body: ReadBody::new(body, limit),
                pending: Some((parts, proof, inner)),
                verifier,
                tenant,
            },
        }
    }

    /// Checks the proof over the body read; passes a webhook on, with its
    /// record in the request's extensions, and answers a connection test.
    fn check_body(
        verifier: &V,
        tenant: Option<Arc<str>>,
        (mut parts, proof, mut inner): (Parts, V::HeaderProof, S),
        bytes: Bytes,
        span: &tracing::Span,
    ) -> Self {
        match verifier.check_body(&parts.headers, proof, &bytes) {
            Ok(Verified::Webhook(mut webhook)) => {
                webhook.secret_mut().tenant = tenant;
                accepted(&webhook, span, &parts);
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
                connection_tested(&test, verifier);
                Self::Answering {
                    answer: Some(Answer::ConnectionTest),
                    close_connection: false,
                }
            }
            // The body was read to its end: the connection can go on.
            Err(rejection) => Self::rejected(rejection, &parts, false),
        }
    }

    /// A refusal, traced and counted. If some of the body is left unread, the
    /// server will not read it, so an HTTP/1 connection cannot carry another
    /// request: say so, or a client reusing it loses its next request.
    ///
    /// A signature mismatch is logged at `warn` (a wrong secret, or a
    /// forger), at most once per provider every
    /// [`MISMATCH_WARN_EVERY`] with the count of those only logged at
    /// `debug` since; every other refusal at `debug`.
    pub(super) fn rejected(rejection: WebhookRejection, parts: &Parts, body_left: bool) -> Self {
        let warn = match rejection.kind() {
            RejectionKind::SignatureMismatch => mismatch_warning(V::PROVIDER),
            _ => None,
        };
        if let Some(suppressed) = warn {
            tracing::warn!(
                provider = V::PROVIDER.as_str(),
                status = rejection.status().as_u16(),
                reason = rejection.kind().as_str(),
                details = rejection.details(),
                suppressed,
                "webhook rejected: no configured secret made its signature"
            );
        } else {
            tracing::debug!(
                status = rejection.status().as_u16(),
                reason = rejection.kind().as_str(),
                details = rejection.details(),
                "webhook rejected"
            );
        }
        #[cfg(feature = "metrics")]
        metrics::counter!(
            "shipment_webhooks_refused_total",
            "provider" => V::PROVIDER.as_str(),
            "reason" => rejection.kind().as_str(),
            "route" => route(&parts.extensions),
        )
        .increment(1);
        Self::Answering {
            answer: Some(Answer::Refused(rejection)),
            close_connection: body_left && parts.version < Version::HTTP_2,
        }
    }
}

impl<S, V, ReqBody, ResBody> Future for ResponseFuture<S, V, ReqBody>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    V: Verifier,
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
                        Err(rejection) => State::rejected(rejection, &parts, !body.is_end_stream()),
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
                        Err(rejection) => State::rejected(rejection, &parts, true),
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
                        Answer::Refused(rejection) => rejection.into_http_response(),
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
/// then the layer makes none. A span nobody sees still costs its making,
/// entering and recording when tracing's `log` bridge is on (axum's default
/// `tower-log` turns it on); a `log` logger sees the span through that bridge.
pub(super) fn nothing_listens() -> bool {
    log::max_level() == log::LevelFilter::Off
        && tracing::dispatcher::get_default(|dispatch| dispatch.is::<NoSubscriber>())
}

/// Traces and counts a verified webhook.
fn accepted(
    webhook: &VerifiedWebhook,
    span: &tracing::Span,
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))] parts: &Parts,
) {
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
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "shipment_webhooks_accepted_total",
        "provider" => event.provider.as_str(),
        "route" => route(&parts.extensions),
    )
    .increment(1);
}

/// Traces a connection test and hands it to the layer's callback.
fn connection_tested<V: Verifier>(test: &ConnectionTest, verifier: &V) {
    tracing::info!(
        provider = %test.provider,
        webhook = test.webhook,
        url = test.url,
        secret = test.secret.label(),
        tenant = test.secret.tenant(),
        "connection test answered with 200"
    );
    verifier.connection_tested(test);
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

/// The `route` label of the metrics: the route axum matched (`MatchedPath`:
/// `/webhooks/{tenant}/kosmo`, whatever the tenant), else [`UNKNOWN_ROUTE`].
/// Never the request's path, whose values are unbounded (a label per tenant,
/// per id, per probe of a wildcard route), each a new time series.
#[cfg(feature = "metrics")]
pub(crate) fn route(extensions: &http::Extensions) -> String {
    extensions
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| UNKNOWN_ROUTE.to_owned(), |path| path.as_str().to_owned())
}

/// The `route` label outside an axum `Router` (plain Tower, hyper, a
/// layer wrapped around the whole router), where no route was matched.
#[cfg(feature = "metrics")]
pub(crate) const UNKNOWN_ROUTE: &str = "unknown";

/// The longest a provider's signature mismatches go without a `warn`
/// line while they keep coming: 10 s. The others of that time are logged at
/// `debug`, and counted in the next `warn` line's `suppressed`.
pub(crate) const MISMATCH_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// One provider's signature-mismatch warnings: when the last was logged
/// (milliseconds since the process's first, plus one; zero: never), and how
/// many were not logged at `warn` since.
struct MismatchWarnings {
    last: AtomicU64,
    suppressed: AtomicU64,
}

static MISMATCH_WARNINGS: [MismatchWarnings; Provider::ALL.len()] = [const {
    MismatchWarnings {
        last: AtomicU64::new(0),
        suppressed: AtomicU64::new(0),
    }
}; Provider::ALL.len()];

/// Whether this signature mismatch of `provider`'s is logged at `warn`:
/// `Some` with how many were not since the last, or `None` (counted) if one
/// was less than [`MISMATCH_WARN_EVERY`] ago. Lock-free: a flood of forged
/// requests contends on two atomics per provider.
fn mismatch_warning(provider: Provider) -> Option<u64> {
    static START: OnceLock<Instant> = OnceLock::new();
    let slot = &MISMATCH_WARNINGS[Provider::ALL.iter().position(|p| *p == provider)?];
    let now = u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis())
        .unwrap_or(u64::MAX - 1)
        + 1;
    slot.warn_at(now)
}

impl MismatchWarnings {
    /// [`mismatch_warning`] at `now` (milliseconds, at least 1).
    fn warn_at(&self, now: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let every = MISMATCH_WARN_EVERY.as_millis() as u64;
        let due = last == 0 || now >= last.saturating_add(every);
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first mismatch warns; the others within 10 s are counted, and
    /// told in the first warning after.
    #[test]
    fn mismatch_warnings_come_at_most_once_per_window_with_the_count_suppressed() {
        let warnings = MismatchWarnings {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        };
        let every = MISMATCH_WARN_EVERY.as_millis() as u64;
        assert_eq!(warnings.warn_at(1), Some(0));
        assert_eq!(warnings.warn_at(2), None);
        assert_eq!(warnings.warn_at(every), None);
        assert_eq!(warnings.warn_at(1 + every), Some(2));
        assert_eq!(warnings.warn_at(2 + every), None);
        assert_eq!(warnings.warn_at(1 + 2 * every), Some(1));
    }
}
