//! Reading providers' JSON with refusals that name the field at fault.

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::WebhookRejection;

/// Parses `bytes`, described as `what`, as one JSON value of type `T`; a
/// refusal names the field at fault (`the body, at shipment.data: missing field ...`).
pub(crate) fn parse_json<'de, T: Deserialize<'de>>(
    what: &str,
    bytes: &'de [u8],
) -> Result<T, WebhookRejection> {
    // Tracking the path costs on every field, so it is done only to word a refusal.
    serde_json::from_slice(bytes).map_err(|error| {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let details = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Err(error) if error.path().to_string() != "." => {
                format!("{what}, at {}: {}", error.path(), error.inner())
            }
            _ => format!("{what}: {error}"),
        };
        WebhookRejection::invalid_payload(details)
    })
}

/// Parses a provider's event time, which must be RFC 3339.
pub(crate) fn parse_timestamp(
    field: &str,
    value: &str,
) -> Result<OffsetDateTime, WebhookRejection> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|error| {
        WebhookRejection::invalid_payload(format!(
            "{field}: {} is not an RFC 3339 date-time ({error})",
            quote(value)
        ))
    })
}

/// `value` quoted for a refusal, its first 64 characters at most.
fn quote(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((end, _)) => format!("{:?}…", &value[..end]),
        None => format!("{value:?}"),
    }
}

/// An id that a provider may send as a JSON string or number, kept as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

impl From<StringOrNumber> for String {
    fn from(id: StringOrNumber) -> Self {
        match id {
            StringOrNumber::String(text) => text,
            StringOrNumber::Number(number) => number.to_string(),
        }
    }
}

/// `deserialize_with` for an optional id sent as a string or a number.
pub(crate) fn optional_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<StringOrNumber>::deserialize(deserializer)?.map(String::from))
}
