//! The `SMD-*` headers Shipmondo sends beside its JWT, which it does not sign.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::WebhookRejection;
use crate::webhook::ProviderHeaders;

/// `SMD-Resource-Type`: which resource the webhook watches (`Orders`, `Shipments`...).
pub const RESOURCE_TYPE_HEADER: HeaderName = HeaderName::from_static("smd-resource-type");
/// `SMD-Resource-Id`: the id of the object in the message.
pub const RESOURCE_ID_HEADER: HeaderName = HeaderName::from_static("smd-resource-id");
/// `SMD-Webhook-Id`: the id of the webhook that sent the message.
pub const WEBHOOK_ID_HEADER: HeaderName = HeaderName::from_static("smd-webhook-id");
/// `SMD-Action`: the action that triggered the message (`create`, `cancel`...).
pub const ACTION_HEADER: HeaderName = HeaderName::from_static("smd-action");
/// `SMD-User`: the user who performed the action.
pub const USER_HEADER: HeaderName = HeaderName::from_static("smd-user");

/// The five, in the order of [`ShipmondoHeaders`]' fields.
const NAMES: [HeaderName; 5] = [
    RESOURCE_TYPE_HEADER,
    RESOURCE_ID_HEADER,
    WEBHOOK_ID_HEADER,
    ACTION_HEADER,
    USER_HEADER,
];

/// The `SMD-*` headers of a Shipmondo webhook, each `None` where absent.
///
/// The JWT does not cover them; see the [module docs](super).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShipmondoHeaders {
    /// `SMD-Resource-Type` (`Orders`, `Shipments`, `Shipment Monitor`...).
    pub resource_type: Option<String>,
    /// `SMD-Resource-Id`.
    pub resource_id: Option<String>,
    /// `SMD-Webhook-Id`.
    pub webhook_id: Option<String>,
    /// `SMD-Action` (`create`, `cancel`...).
    pub action: Option<String>,
    /// `SMD-User`.
    pub user: Option<String>,
}

impl ShipmondoHeaders {
    /// The headers a verified webhook kept.
    pub(super) fn from_kept(kept: Option<&ProviderHeaders>) -> Self {
        let Some(kept) = kept else {
            return Self::default();
        };
        let [resource_type, resource_id, webhook_id, action, user] = NAMES
            .each_ref()
            .map(|name| kept.get(name).map(Cow::into_owned));
        Self {
            resource_type,
            resource_id,
            webhook_id,
            action,
            user,
        }
    }
}

/// The five `SMD-*` headers, in the order of [`ShipmondoHeaders`]' fields,
/// each refused if repeated. One pass over the headers, rather than a
/// lookup by name for each, which hashes the name.
pub(super) fn read(headers: &HeaderMap) -> Result<[Option<HeaderValue>; 5], WebhookRejection> {
    let names = NAMES;
    let mut values = [const { None }; 5];
    let mut repeated = [false; 5];
    for (name, value) in headers {
        if let Some(at) = names.iter().position(|smd| smd == name) {
            repeated[at] |= values[at].replace(value.clone()).is_some();
        }
    }
    match repeated.iter().position(|&repeated| repeated) {
        Some(at) => Err(WebhookRejection::invalid_payload(format!(
            "the {} header appears more than once",
            names[at]
        ))),
        None => Ok(values),
    }
}

/// The headers read, kept for [`ShipmondoHeaders`].
pub(super) fn keep(values: [Option<HeaderValue>; 5]) -> ProviderHeaders {
    let mut kept = ProviderHeaders::with_capacity(values.len());
    for (name, value) in NAMES.into_iter().zip(values) {
        if let Some(value) = value {
            kept.push(name, value);
        }
    }
    kept
}

/// An `SMD-*` header as text: a user's name may not be ASCII.
pub(super) fn text(value: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
}

/// The headers an inbox of schema 1 stored, as [`ShipmondoHeaders`]' JSON,
/// as every provider's are kept now; `None` for anything else (schema 2's
/// JSON names the headers, so it is not read as this).
#[cfg(feature = "inbox")]
pub(crate) fn from_schema_1(json: &str) -> Option<ProviderHeaders> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Schema1 {
        resource_type: Option<String>,
        resource_id: Option<String>,
        webhook_id: Option<String>,
        action: Option<String>,
        user: Option<String>,
    }
    let headers: Schema1 = serde_json::from_str(json).ok()?;
    let fields = [
        headers.resource_type,
        headers.resource_id,
        headers.webhook_id,
        headers.action,
        headers.user,
    ];
    let mut kept = ProviderHeaders::with_capacity(fields.len());
    for (name, text) in NAMES.into_iter().zip(fields) {
        if let Some(text) = text {
            kept.push(name, HeaderValue::from_bytes(text.as_bytes()).ok()?);
        }
    }
    Some(kept)
}
