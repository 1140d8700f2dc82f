//! The receiver: the service behind a verifying layer that stores the
//! verified webhook and answers 200 only once it is committed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_core::body::Body;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use tower_service::Service;

use super::{Inbox, Receipt};
use crate::event::ANY_LAYER;
use crate::tenant::TenantRoute;
use crate::{RejectionKind, VerifiedWebhook, WebhookRejection};

/// The longest a receiver waits for the store by default: 2 s, well within
/// the 3 s Shipmondo waits for its 200.
pub const DEFAULT_RECEIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The future an [`InboxReceiver`] answers with.
pub type ReceiverFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// A Tower service, made by [`Inbox::receiver`], that stores the
/// [`VerifiedWebhook`] a verifying layer put in the request's extensions and
/// answers:
///
/// | status | body | when |
/// |---|---|---|
/// | 200 | `{"status":"stored","id":1}` | stored and committed |
/// | 200 | `{"status":"duplicate","id":1}` | the same delivery was stored before, under that id |
/// | 503 | `{"error":"service unavailable",...}` | the store failed or took longer than the [timeout](Self::timeout): the provider sends it again |
/// | 500 | `{"error":"missing webhook layer",...}` | the route has no verifying layer |
///
/// Put it behind one: `post(inbox.receiver()).route_layer(KosmoSignature::new(secret))`
/// (it is an axum handler too, so `post` and `post_service` both route it).
#[derive(Debug, Clone)]
pub struct InboxReceiver {
    inbox: Inbox,
    endpoint: Option<Arc<str>>,
    timeout: Duration,
}

impl InboxReceiver {
    pub(super) fn new(inbox: Inbox) -> Self {
        Self {
            inbox,
            endpoint: None,
            timeout: DEFAULT_RECEIVE_TIMEOUT,
        }
    }

    /// The name webhooks are stored under, which scopes their dedup keys and
    /// shipments. By default it is the request's path; behind a
    /// [`PerTenant`](crate::PerTenant) layer that reads the tenant from a
    /// [path segment](crate::TenantSource::path_segment), it is the path
    /// with that segment replaced by `{tenant}`
    /// (`/webhooks/kosmo/{tenant}`): the tenant is scoped by
    /// [`MatchedSecret::tenant`](crate::MatchedSecret::tenant) already, so
    /// that however a request spells it, only the tenant's name (see
    /// [`PerTenantBuilder::normalize`](crate::tenant::PerTenantBuilder::normalize))
    /// tells one tenant's webhooks from another's.
    ///
    /// Name it when one route serves several paths, and under axum's
    /// `Router::nest`, where the path a service sees is the one inside the
    /// nest, the same for every mount. A name given here is used as it is.
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<Arc<str>>) -> Self {
        self.endpoint = Some(name.into());
        self
    }

    /// How long it waits for the store before answering 503 (2 s by
    /// default). A store that commits after that keeps the webhook, and the
    /// provider's retry is answered as a duplicate.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<B> Service<Request<B>> for InboxReceiver {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ReceiverFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(webhook) = request.extensions().get::<VerifiedWebhook>().cloned() else {
            let rejection = WebhookRejection::missing_layer("InboxReceiver", ANY_LAYER);
            tracing::error!(%rejection, "inbox receiver used without a verifying layer");
            return Box::pin(async move { Ok(refuse(rejection)) });
        };
        let endpoint = match (&self.endpoint, request.extensions().get::<TenantRoute>()) {
            (Some(name), _) => name.to_string(),
            (None, Some(route)) => route.0.to_string(),
            (None, None) => request.uri().path().to_owned(),
        };
        let inbox = self.inbox.clone();
        let timeout = self.timeout;
        #[cfg(feature = "metrics")]
        let route = crate::verify::route(request.extensions());
        Box::pin(async move {
            let stored = tokio::time::timeout(timeout, inbox.receive(&webhook, &endpoint)).await;
            let event = webhook.event();
            let (provider, shipment) = (event.provider.as_str(), event.id.as_str());
            let not_stored = || {
                #[cfg(feature = "metrics")]
                metrics::counter!(
                    "shipment_webhooks_refused_total",
                    "provider" => provider,
                    "reason" => RejectionKind::NotStored.as_str(),
                    "route" => route.clone(),
                )
                .increment(1);
            };
            Ok(match stored {
                Ok(Ok(Receipt::Stored { id })) => answer("stored", id),
                Ok(Ok(Receipt::Duplicate { id })) => answer("duplicate", id),
                Ok(Err(error)) => {
                    tracing::error!(provider, shipment, %error, "webhook not stored: answered 503");
                    not_stored();
                    refuse(WebhookRejection::new(
                        RejectionKind::NotStored,
                        "the webhook could not be stored; send it again later",
                    ))
                }
                Err(_) => {
                    tracing::error!(
                        provider,
                        shipment,
                        ?timeout,
                        "webhook not stored in time: answered 503"
                    );
                    not_stored();
                    refuse(WebhookRejection::new(
                        RejectionKind::NotStored,
                        format!(
                            "the webhook was not stored within {} ms; send it again later",
                            timeout.as_millis()
                        ),
                    ))
                }
            })
        })
    }
}

/// So that `post(inbox.receiver())` routes it as `post_service` would.
impl<S> axum::handler::Handler<(), S> for InboxReceiver {
    type Future = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

    fn call(mut self, request: Request<Body>, _state: S) -> Self::Future {
        let answered = Service::call(&mut self, request);
        Box::pin(async move {
            match answered.await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    }
}

fn answer(status: &str, id: i64) -> Response<Body> {
    let json = format!(r#"{{"status":"{status}","id":{id}}}"#);
    let mut response = Response::new(Body::from(Bytes::from(json)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn refuse(rejection: WebhookRejection) -> Response<Body> {
    rejection.into_http_response()
}
