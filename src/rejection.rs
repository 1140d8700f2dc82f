//! Why a webhook was refused: a kind, a status code and a JSON body.

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// Why a webhook was refused, finer than its status: the `reason` of the
/// JSON error, of the traces and of the `metrics` counter of refusals.
///
/// | kind | `reason` | status | when |
/// |---|---|---|---|
/// | [`MissingProof`](Self::MissingProof) | `missing_proof` | 401 | the header or field carrying the proof is absent |
/// | [`MalformedProof`](Self::MalformedProof) | `malformed_proof` | 401 | the proof is there but not of its format (not base64, not a JWT, repeated...) |
/// | [`SignatureMismatch`](Self::SignatureMismatch) | `signature_mismatch` | 401 | the proof is well formed but no configured secret made it |
/// | [`Stale`](Self::Stale) | `stale` | 401 | the signed time is outside the endpoint's window |
/// | [`UnknownTenant`](Self::UnknownTenant) | `unknown_tenant` | 401 | a [`PerTenant`](crate::PerTenant) layer found no tenant, or no usable secret for it |
/// | [`InvalidPayload`](Self::InvalidPayload) | `invalid_payload` | 400 | the body is not the provider's shape |
/// | [`UnreadableBody`](Self::UnreadableBody) | `unreadable_body` | 400 | the body could not be read to its end |
/// | [`TooLarge`](Self::TooLarge) | `too_large` | 413 | the body is over the layer's limit |
/// | [`LookupFailed`](Self::LookupFailed) | `lookup_failed` | 503 | a tenant's secrets, or a key set, could not be looked up |
/// | [`NotStored`](Self::NotStored) | `not_stored` | 503 | the inbox could not store the webhook in time |
/// | [`MissingLayer`](Self::MissingLayer) | `missing_layer` | 500 | an extractor or the inbox's receiver is on a route without a verifying layer |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The header or field carrying the proof is absent.
    MissingProof,
    /// The proof is there but not of its format.
    MalformedProof,
    /// The proof is well formed but no configured secret made it.
    SignatureMismatch,
    /// The signed time is older, or further ahead, than the endpoint accepts.
    Stale,
    /// No tenant named, an unknown one, or one without a usable secret.
    UnknownTenant,
    /// The body is not the provider's shape.
    InvalidPayload,
    /// The body could not be read to its end.
    UnreadableBody,
    /// The body is larger than the layer's limit.
    TooLarge,
    /// A tenant's secrets, or the public keys a proof names, could not be
    /// looked up: this server's trouble.
    LookupFailed,
    /// The inbox could not store the webhook: this server's trouble.
    NotStored,
    /// A route without a verifying layer: the application's mistake.
    MissingLayer,
}

impl RejectionKind {
    /// The `reason` in JSON, traces and metrics (`signature_mismatch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingProof => "missing_proof",
            Self::MalformedProof => "malformed_proof",
            Self::SignatureMismatch => "signature_mismatch",
            Self::Stale => "stale",
            Self::UnknownTenant => "unknown_tenant",
            Self::InvalidPayload => "invalid_payload",
            Self::UnreadableBody => "unreadable_body",
            Self::TooLarge => "too_large",
            Self::LookupFailed => "lookup_failed",
            Self::NotStored => "not_stored",
            Self::MissingLayer => "missing_layer",
        }
    }

    /// The status a refusal of this kind is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingProof
            | Self::MalformedProof
            | Self::SignatureMismatch
            | Self::Stale
            | Self::UnknownTenant => StatusCode::UNAUTHORIZED,
            Self::InvalidPayload | Self::UnreadableBody => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::LookupFailed | Self::NotStored => StatusCode::SERVICE_UNAVAILABLE,
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short, stable `error` of the JSON body, one per status class.
    fn error(self) -> &'static str {
        match self {
            Self::MissingProof
            | Self::MalformedProof
            | Self::SignatureMismatch
            | Self::Stale
            | Self::UnknownTenant => "unauthorized",
            Self::InvalidPayload => "invalid payload",
            Self::UnreadableBody => "unreadable body",
            Self::TooLarge => "payload too large",
            Self::LookupFailed | Self::NotStored => "service unavailable",
            Self::MissingLayer => "missing webhook layer",
        }
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused webhook, answered as
/// `{"error": "...", "reason": "...", "details": "..."}`.
///
/// `error` is one of `unauthorized` (401), `invalid payload` and `unreadable
/// body` (400), `payload too large` (413), `service unavailable` (503) and
/// `missing webhook layer` (500); `reason` is the finer [`RejectionKind`];
/// `details` names the precise cause, never contains a secret, and is cut
/// after 300 bytes, since it may quote what the sender sent. Every status
/// but 500 and 503 is the sender's doing; providers retry on any of them.
///
/// A layer also puts its refusal in the response's extensions, so
/// middleware outside it can count refusals by [`kind`](Self::kind) or
/// write another body (`application/problem+json`, say) with the same status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRejection {
    kind: RejectionKind,
    details: String,
    bearer_challenge: bool,
}

/// The longest `details`, in bytes: they may quote what the sender sent.
const MAX_DETAILS: usize = 300;

impl WebhookRejection {
    pub(crate) fn new(kind: RejectionKind, details: impl Into<String>) -> Self {
        let mut details = details.into();
        if details.len() > MAX_DETAILS {
            let mut end = MAX_DETAILS;
            while !details.is_char_boundary(end) {
                end -= 1;
            }
            details.truncate(end);
            details.push('…');
        }
        Self {
            kind,
            details,
            bearer_challenge: false,
        }
    }

    pub(crate) fn malformed_proof(details: impl Into<String>) -> Self {
        Self::new(RejectionKind::MalformedProof, details)
    }

    pub(crate) fn invalid_payload(details: impl Into<String>) -> Self {
        Self::new(RejectionKind::InvalidPayload, details)
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            RejectionKind::TooLarge,
            format!("the body is larger than this endpoint's limit of {limit} bytes"),
        )
    }

    /// An extractor (or the inbox's receiver) on a route without `layer`.
    pub(crate) fn missing_layer(extractor: &str, layer: &str) -> Self {
        Self::new(
            RejectionKind::MissingLayer,
            format!("{extractor} can only be extracted on a route layered with {layer}"),
        )
    }

    /// Adds `WWW-Authenticate: Bearer` to a 401, as RFC 6750 asks of bearer-token endpoints.
    pub(crate) fn with_bearer_challenge(mut self) -> Self {
        self.bearer_challenge = true;
        self
    }

    /// Why it was refused.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The short, stable class of refusal (the `error` field); see
    /// [`kind`](Self::kind) for the reason.
    pub fn error(&self) -> &'static str {
        self.kind.error()
    }

    /// The precise cause (the `details` field).
    pub fn details(&self) -> &str {
        &self.details
    }

    /// The response the layers send: the status, `Content-Type:
    /// application/json`, the JSON body, and `WWW-Authenticate: Bearer` on
    /// a bearer token's 401s; with any body type that can be made from bytes
    /// (`Full<Bytes>`, axum's `Body`...), for servers that call a layer's
    /// `verify` themselves.
    pub fn to_response<B: From<Bytes>>(&self) -> http::Response<B> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            reason: &'a str,
            details: &'a str,
        }
        let json = serde_json::to_vec(&Body {
            error: self.error(),
            reason: self.kind.as_str(),
            details: &self.details,
        })
        .expect("three strings always serialize");
        let mut response = http::Response::new(B::from(Bytes::from(json)));
        *response.status_mut() = self.status();
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

    /// [`to_response`](Self::to_response) with the rejection in its
    /// extensions: what every refusal of this crate answers with.
    pub(crate) fn into_http_response<B: From<Bytes>>(self) -> http::Response<B> {
        let mut response = self.to_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.error(), self.kind, self.details)
    }
}

impl std::error::Error for WebhookRejection {}

/// The response [`to_response`](Self::to_response) makes, with the
/// rejection itself in its extensions, as the layers' refusals have it.
impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        self.into_http_response()
    }
}
