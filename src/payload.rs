//! Reading providers' JSON with refusals that name the field at fault.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, MapAccess, Visitor};
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
                // A deeply nested path would push the cause out of the capped details.
                let path = error.path().to_string();
                format!("{what}, at {}: {}", shorten(&path), error.inner())
            }
            _ => format!("{what}: {error}"),
        };
        WebhookRejection::invalid_payload(details)
    })
}

/// Parses `bytes` as [`parse_json`] does, as a JSON object: serde would
/// also read a derived struct from an array, field by field.
pub(crate) fn parse_object<'de, T: Deserialize<'de>>(
    what: &str,
    bytes: &'de [u8],
) -> Result<T, WebhookRejection> {
    parse_json(what, bytes).map(|Object(value)| value)
}

/// `bytes` as a `T` that must be a JSON object, with serde_json's own error.
pub(crate) fn from_object_slice<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
) -> serde_json::Result<T> {
    serde_json::from_slice(bytes).map(|Object(value)| value)
}

/// `deserialize_with` for a nested struct, which must be a JSON object.
pub(crate) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object(deserializer).map(Object)
    }
}

struct ObjectVisitor<T>(PhantomData<fn() -> T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// `deserialize_with` for a nested object that a provider may also send as a
/// JSON string holding the object (Shipmondo's `data`).
pub(crate) fn object_or_json_string<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer
        .deserialize_any(ObjectOrJsonString(PhantomData))
        .map(|Object(value)| value)
}

struct ObjectOrJsonString<T>(PhantomData<fn() -> T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for ObjectOrJsonString<T> {
    type Value = Object<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object, or a string holding one")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }

    fn visit_str<E: serde::de::Error>(self, json: &str) -> Result<Self::Value, E> {
        serde_json::from_str(json)
            .map_err(|error| E::custom(format_args!("a string that is not a JSON object: {error}")))
    }
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
pub(crate) fn quote(value: &str) -> String {
    format!("{:?}", shorten(value))
}

/// `text` cut after 64 characters, marked with `…` where cut.
fn shorten(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
}

/// `deserialize_with` for an optional string, borrowed from the JSON where it
/// has no escapes. serde's own `Option<Cow<str>>` always copies it
/// (serde-rs/serde#1497): an allocation per field and request.
pub(crate) fn optional_str<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    deserializer.deserialize_option(OptionalStr)
}

struct OptionalStr;

impl<'de> Visitor<'de> for OptionalStr {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(text)))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text)))
    }
}

/// `deserialize_with` for an optional id sent as a string or a number. A
/// number that is not an integer of at most 64 bits is refused: serde_json
/// would round it, and two ids could become one.
///
/// A visitor, not an untagged enum: that buffers the value and builds an
/// error for each variant it tries.
pub(crate) fn optional_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_option(OptionalId)
}

struct OptionalId;

/// What the untagged enum this replaces said of any other value.
const NOT_AN_ID: &str = "data did not match any variant of untagged enum StringOrNumber";

impl<'de> Visitor<'de> for OptionalId {
    type Value = Option<String>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an id: a string or an integer")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<Self::Value, E> {
        Ok(Some(id.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, id: String) -> Result<Self::Value, E> {
        Ok(Some(id))
    }

    fn visit_u64<E: serde::de::Error>(self, id: u64) -> Result<Self::Value, E> {
        Ok(Some(id.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, id: i64) -> Result<Self::Value, E> {
        Ok(Some(id.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, id: f64) -> Result<Self::Value, E> {
        match serde_json::Number::from_f64(id) {
            Some(number) => Err(E::custom(format_args!(
                "the id {number} is not an integer of at most 64 bits, so it cannot be read exactly"
            ))),
            None => Err(E::custom(NOT_AN_ID)),
        }
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_ID))
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_ID))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(A::Error::custom(NOT_AN_ID))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(A::Error::custom(NOT_AN_ID))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Fields<'a> {
        #[serde(borrow, default, deserialize_with = "optional_str")]
        status: Option<Cow<'a, str>>,
    }

    fn status(json: &str) -> Result<Option<Cow<'_, str>>, String> {
        serde_json::from_str::<Fields<'_>>(json)
            .map(|fields| fields.status)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn an_optional_string_is_borrowed_unless_escaped() {
        assert!(matches!(
            status(r#"{"status":"sent"}"#),
            Ok(Some(Cow::Borrowed("sent")))
        ));
        let escaped = status(r#"{"status":"s\u0065nt"}"#);
        assert!(
            matches!(&escaped, Ok(Some(Cow::Owned(text))) if text == "sent"),
            "{escaped:?}"
        );
        assert_eq!(status(r#"{"status":null}"#), Ok(None));
        assert_eq!(status("{}"), Ok(None));
        assert_eq!(
            status(r#"{"status":5}"#),
            Err("invalid type: integer `5`, expected a string at line 1 column 11".to_owned())
        );
        assert_eq!(
            status(r#"{"status":"a","status":"b"}"#),
            Err("duplicate field `status` at line 1 column 22".to_owned())
        );
    }
}
