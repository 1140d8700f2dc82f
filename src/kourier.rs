//! [Kourier](https://developer.kourier.com.ng/lastest/webhooks): `Authorization: Bearer <token>`.
//!
//! Kourier's [webhook page](https://developer.kourier.com.ng/lastest/webhooks)
//! shows the events and the payload but no authentication header: the only
//! `Authorization: Bearer` in its [developer
//! documentation](https://developer.kourier.com.ng/v1/authentication) is for
//! calls to Kourier's API. This crate checks the token the way this
//! project's provider notes describe Kourier's webhooks, `Authorization:
//! Bearer <token>`, with the token configured in Kourier's dashboard. If your
//! Kourier account sends it elsewhere, [`KourierBearer::token_header`] reads
//! it from another header, with another scheme or none.
//!
//! The token is compared in constant time (over SHA-256 digests, so not even
//! its length leaks). The scheme name is case-insensitive and may be followed
//! by one or more spaces, as RFC 7235 says; nothing else is lenient. Every
//! 401 for `Authorization: Bearer` carries `WWW-Authenticate: Bearer`. The
//! token is checked before any of the body is read.
//!
//! **What the token does not cover:** anything. It proves the sender knows
//! the token, not that the body is Kourier's or fresh; anyone who sees one
//! request (a logging proxy, say) can send any body. Serve the endpoint over
//! HTTPS only and keep the token's header out of logs.
//!
//! Kourier retries any webhook not answered with a 2xx.
//!
//! # Fields of [`ShipmentEvent`]
//!
//! `id` is `delivery_id`, `timestamp` is `timestamp` (`None` if absent),
//! `event_id` is `None` (Kourier sends no event id).
//!
//! # Statuses
//!
//! The `event` decides first: `delivery.cancelled` is `cancelled` whatever the
//! `status`. Otherwise the `status` maps (any case):
//!
//! | Kourier | [`ShipmentStatus`] |
//! |---|---|
//! | `created` | `created` |
//! | `in_transit` | `in_transit` |
//! | `delivered` | `delivered` |
//! | `cancelled`, `canceled` | `cancelled` |
//! | any other word of the vocabulary (`picked_up`...) | that status |
//! | any other | `other` |
//! | no `status`, event `delivery.created` | `created` |
//! | no `status`, any other event | `other` (`raw_status` is the event) |
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use shipment_webhooks::{KourierBearer, ShipmentEvent};
//!
//! async fn on_kourier(event: ShipmentEvent) {
//!     println!("delivery {} is {}", event.id, event.status);
//! }
//!
//! let app: Router = Router::new().route(
//!     "/webhooks/kourier",
//!     post(on_kourier).route_layer(KourierBearer::new("WEBHOOK_SECRET_TOKEN")),
//! );
//! ```

use std::borrow::Cow;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::extract::typed_payload;
use crate::json::{optional_str, parse_object, parse_timestamp};
use crate::proof::{Tag, header_name, proof_header, tags_equal};
use crate::secret::{Secrets, or_panic};
use crate::verify::{DEFAULT_BODY_LIMIT, Verified, Verifier, layer_builders};
use crate::{
    ConfigError, MatchedSecret, Provider, RejectionKind, ShipmentEvent, ShipmentStatus,
    TypedPayload, VerifiedWebhook, WebhookRejection,
};

type TokenDigest = Tag;

/// Layer that checks Kourier's bearer token.
///
/// See the [module docs](self) for what the token proves and how statuses map.
#[derive(Debug, Clone)]
pub struct KourierBearer {
    secrets: Secrets<TokenDigest>,
    header: HeaderName,
    scheme: Option<Box<str>>,
    body_limit: usize,
}

/// The scheme [`KourierBearer`] expects before the token unless told otherwise.
pub const DEFAULT_SCHEME: &str = "Bearer";

layer_builders!(
    KourierBearer,
    "the token set in Kourier's dashboard",
    prepare: digest,
    min_len: 0,
);

impl KourierBearer {
    fn from_secrets(secrets: Secrets<TokenDigest>) -> Self {
        Self {
            secrets,
            header: AUTHORIZATION,
            scheme: Some(DEFAULT_SCHEME.into()),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Reads the token from header `name` instead of `Authorization`, after
    /// `scheme` and a space (`Some("Token")`) or as the header's whole value
    /// (`None`). Default: `Authorization`, [`DEFAULT_SCHEME`].
    ///
    /// # Panics
    ///
    /// If `scheme` is not an HTTP token (letters, digits and
    /// ``!#$%&'*+-.^_`|~``, no blanks): no request could carry it;
    /// [`try_token_header`](Self::try_token_header) returns the error.
    #[track_caller]
    #[must_use]
    pub fn token_header(self, name: HeaderName, scheme: Option<&str>) -> Self {
        or_panic(self.with_token_header(name, scheme))
    }

    /// Like [`token_header`](Self::token_header), for a name and scheme
    /// read at run time: an error if either is invalid.
    pub fn try_token_header(self, name: &str, scheme: Option<&str>) -> Result<Self, ConfigError> {
        self.with_token_header(header_name(name)?, scheme)
    }

    fn with_token_header(
        mut self,
        name: HeaderName,
        scheme: Option<&str>,
    ) -> Result<Self, ConfigError> {
        if let Some(scheme) = scheme
            && !is_token(scheme)
        {
            return Err(ConfigError::InvalidScheme {
                scheme: scheme.to_owned(),
            });
        }
        self.header = name;
        self.scheme = scheme.map(Into::into);
        Ok(self)
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<&MatchedSecret, WebhookRejection> {
        let name = &self.header;
        let value = proof_header(headers, name)?;
        let token = match &self.scheme {
            None => value,
            Some(expected) => {
                let (scheme, credentials) = value.split_once(' ').ok_or_else(|| {
                    WebhookRejection::malformed_proof(format!(
                        "the {name} header is not `{expected} <token>`"
                    ))
                })?;
                if !scheme.eq_ignore_ascii_case(expected) {
                    return Err(WebhookRejection::malformed_proof(format!(
                        "the {name} scheme is not {expected}"
                    )));
                }
                credentials.trim_start_matches(' ')
            }
        };
        if token.is_empty() {
            return Err(WebhookRejection::malformed_proof(format!(
                "the {name} header has an empty token"
            )));
        }
        let received = Sha256::digest(token.as_bytes()).into();
        self.secrets
            .find(|known| tags_equal(known, &received))
            .ok_or_else(|| {
                tracing::debug!(
                    token_len = token.len(),
                    "bearer token matches no configured token"
                );
                WebhookRejection::new(
                    RejectionKind::SignatureMismatch,
                    "the bearer token matches no configured token",
                )
            })
    }
}

/// Whether `text` is an HTTP token (RFC 9110, 5.6.2), as a scheme must be.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// The digest tokens are compared by.
fn digest(token: &[u8]) -> TokenDigest {
    Sha256::digest(token).into()
}

impl Verifier for KourierBearer {
    const PROVIDER: Provider = Provider::Kourier;
    type HeaderProof = MatchedSecret;

    fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn check_headers(&self, headers: &HeaderMap) -> Result<MatchedSecret, WebhookRejection> {
        let bearer = self.header == AUTHORIZATION
            && self
                .scheme
                .as_deref()
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case(DEFAULT_SCHEME));
        match self.check_token(headers) {
            Ok(secret) => Ok(secret.clone()),
            Err(rejection) if bearer => Err(rejection.with_bearer_challenge()),
            Err(rejection) => Err(rejection),
        }
    }

    fn check_body(
        &self,
        _headers: &HeaderMap,
        secret: MatchedSecret,
        body: &Bytes,
    ) -> Result<Verified, WebhookRejection> {
        let fields: KourierFields<'_> = parse_object("the body", body)?;
        Ok(Verified::Webhook(VerifiedWebhook::new(
            fields.to_event()?,
            secret,
            body.clone(),
        )))
    }
}

/// A Kourier webhook's body, as sent.
///
/// Take it as a handler argument behind [`KourierBearer`]: it is decoded from
/// the verified body then, and refused with 400 if the body is not this shape.
///
/// Fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KourierEvent {
    /// `delivery.created`, `delivery.updated` or `delivery.cancelled`.
    pub event: String,
    /// Kourier's id of the delivery.
    pub delivery_id: String,
    /// The delivery's status (`in_transit`, `delivered`...).
    #[serde(default)]
    pub status: Option<String>,
    /// When it happened, RFC 3339, as sent.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypedPayload for KourierEvent {
    const PROVIDER: Provider = Provider::Kourier;
    const NAME: &'static str = "KourierEvent";
    const LAYER: &'static str = "KourierBearer";
}

typed_payload!(KourierEvent);

/// The fields a [`ShipmentEvent`] is made of.
#[derive(Deserialize)]
struct KourierFields<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    delivery_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    timestamp: Option<Cow<'a, str>>,
}

impl KourierFields<'_> {
    fn to_event(&self) -> Result<ShipmentEvent, WebhookRejection> {
        let status = match (&*self.event, self.status.as_deref()) {
            ("delivery.cancelled", _) => ShipmentStatus::Cancelled,
            (_, Some(raw)) => ShipmentStatus::normalize(raw, |_| None),
            ("delivery.created", None) => ShipmentStatus::Created,
            (event, None) => ShipmentStatus::Other(event.to_owned()),
        };
        Ok(ShipmentEvent {
            provider: Provider::Kourier,
            id: self.delivery_id.clone().into_owned(),
            status,
            raw_status: self
                .status
                .as_ref()
                .unwrap_or(&self.event)
                .clone()
                .into_owned(),
            timestamp: self
                .timestamp
                .as_deref()
                .map(|timestamp| parse_timestamp("timestamp", timestamp))
                .transpose()?,
            event_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, status: Option<&str>) -> ShipmentEvent {
        KourierFields {
            event: name.into(),
            delivery_id: "abc123".into(),
            status: status.map(Into::into),
            timestamp: None,
        }
        .to_event()
        .expect("no timestamp to refuse")
    }

    #[test]
    fn maps_every_documented_status() {
        for (name, raw, expected) in [
            ("delivery.created", Some("created"), ShipmentStatus::Created),
            (
                "delivery.updated",
                Some("in_transit"),
                ShipmentStatus::InTransit,
            ),
            (
                "delivery.updated",
                Some("DELIVERED"),
                ShipmentStatus::Delivered,
            ),
            (
                "delivery.updated",
                Some("cancelled"),
                ShipmentStatus::Cancelled,
            ),
            (
                "delivery.updated",
                Some("picked_up"),
                ShipmentStatus::PickedUp,
            ),
            (
                "delivery.cancelled",
                Some("in_transit"),
                ShipmentStatus::Cancelled,
            ),
            ("delivery.cancelled", None, ShipmentStatus::Cancelled),
            ("delivery.created", None, ShipmentStatus::Created),
        ] {
            assert_eq!(event(name, raw).status, expected, "{name} {raw:?}");
        }
        let unknown = event("delivery.updated", Some("lost_in_space"));
        assert_eq!(
            unknown.status,
            ShipmentStatus::Other("lost_in_space".into())
        );
        let bare = event("delivery.updated", None);
        assert_eq!(
            bare.status,
            ShipmentStatus::Other("delivery.updated".into())
        );
        assert_eq!(bare.raw_status, "delivery.updated");
    }
}
