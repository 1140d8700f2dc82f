//! Why a webhook was refused: a status code and a JSON body.

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// A refused webhook, answered as `{"error": "...", "details": "..."}`.
///
/// | status | `error` | when |
/// |---|---|---|
/// | 401 | `unauthorized` | the proof (signature, token, JWT) is missing, malformed or matches no configured secret |
/// | 400 | `invalid payload` | the body is not the provider's shape (not JSON, a field missing or of the wrong type) |
/// | 400 | `unreadable body` | the body could not be read to its end |
/// | 413 | `payload too large` | the body is larger than the layer's limit |
/// | 503 | `service unavailable` | a [`PerTenant`](crate::PerTenant) layer could not look the tenant's secrets up |
/// | 500 | `missing webhook layer` | an extractor was used on a route without its verifying layer |
///
/// `details` names the precise cause, never contains a secret, and is cut
/// after 300 bytes, since it may quote what the sender sent. Every
/// status but 500 and 503 is the sender's doing; providers retry on any of
/// them.
///
/// A layer also puts its refusal in the response's extensions, so
/// middleware outside it can count refusals by [`error`](Self::error) or
/// write another body (`application/problem+json`, say) with the same status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRejection {
    status: StatusCode,
    error: &'static str,
    details: String,
    bearer_challenge: bool,
}

/// The longest `details`, in bytes: they may quote what the sender sent.
const MAX_DETAILS: usize = 300;

impl WebhookRejection {
    fn new(status: StatusCode, error: &'static str, mut details: String) -> Self {
        if details.len() > MAX_DETAILS {
            let mut end = MAX_DETAILS;
            while !details.is_char_boundary(end) {
                end -= 1;
            }
            details.truncate(end);
            details.push('…');
        }
        Self {
            status,
            error,
            details,
            bearer_challenge: false,
        }
    }

    pub(crate) fn unauthorized(details: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", details.into())
    }

    pub(crate) fn invalid_payload(details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid payload", details.into())
    }

    pub(crate) fn unreadable_body(details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unreadable body", details.into())
    }

    pub(crate) fn unavailable(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service unavailable",
            details.into(),
        )
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large",
            format!("the body is larger than this endpoint's limit of {limit} bytes"),
        )
    }

    pub(crate) fn missing_layer(extractor: &str, layer: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "missing webhook layer",
            format!("{extractor} can only be extracted on a route layered with {layer}"),
        )
    }

    /// Adds `WWW-Authenticate: Bearer` to a 401, as RFC 6750 asks of bearer-token endpoints.
    pub(crate) fn with_bearer_challenge(mut self) -> Self {
        self.bearer_challenge = true;
        self
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The short, stable kind of refusal (the `error` field).
    pub fn error(&self) -> &'static str {
        self.error
    }

    /// The precise cause (the `details` field).
    pub fn details(&self) -> &str {
        &self.details
    }

    /// The response the layers send: the status, `Content-Type:
    /// application/json`, the JSON body, and `WWW-Authenticate: Bearer` on
    /// Kourier's 401s; with any body type that can be made from bytes
    /// (`Full<Bytes>`, axum's `Body`...), for servers that call a layer's
    /// `verify` themselves.
    pub fn to_response<B: From<Bytes>>(&self) -> http::Response<B> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            details: &'a str,
        }
        let json = serde_json::to_vec(&Body {
            error: self.error,
            details: &self.details,
        })
        .expect("two strings always serialize");
        let mut response = http::Response::new(B::from(Bytes::from(json)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.bearer_challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.details)
    }
}

impl std::error::Error for WebhookRejection {}

/// The response [`to_response`](Self::to_response) makes, with the
/// rejection itself in its extensions, as the layers' refusals have it.
impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let mut response = self.to_response();
        response.extensions_mut().insert(self);
        response
    }
}
