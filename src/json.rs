//! Reading providers' JSON: refusals that name the field at fault, the
//! field readers the providers share, and an in-place unescaper for JSON
//! strings that hold JSON.

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

/// Unescapes `buffer`, a JSON string with nothing but JSON whitespace around
/// it, into its own start; returns the unescaped length. `None` for anything
/// it does not accept as serde_json would, which then decides.
/// Writing never overtakes reading: no escape is shorter than what it stands for.
pub(crate) fn unescape_in_place(buffer: &mut [u8]) -> Option<usize> {
    let is_blank = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
    let quote = buffer.iter().position(|byte| !is_blank(byte))?;
    if buffer[quote] != b'"' {
        return None;
    }
    let mut read = quote + 1;
    let mut write = 0;
    loop {
        // Plain bytes eight at a time, up to the first that is not.
        while let Some(chunk) = buffer.get(read..read + 8) {
            let bytes: [u8; 8] = chunk.try_into().ok()?;
            let special = special_bytes(u64::from_le_bytes(bytes));
            if special == 0 {
                buffer[write..write + 8].copy_from_slice(&bytes);
                write += 8;
                read += 8;
                continue;
            }
            // Only the bytes before the special one: writing more could
            // overwrite bytes not read yet.
            let run = special.trailing_zeros() as usize / 8;
            buffer[write..write + run].copy_from_slice(&bytes[..run]);
            write += run;
            read += run;
            break;
        }
        match *buffer.get(read)? {
            b'"' => break,
            b'\\' => {}
            // A control character, which JSON refuses unescaped.
            0..0x20 => return None,
            // One of the last seven bytes.
            byte => {
                buffer[write] = byte;
                write += 1;
                read += 1;
                continue;
            }
        }
        let byte = match *buffer.get(read + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let (c, escape_len) = unicode_escape(&buffer[read..])?;
                let mut utf8 = [0; 4];
                let utf8 = c.encode_utf8(&mut utf8).as_bytes();
                buffer
                    .get_mut(write..write + utf8.len())?
                    .copy_from_slice(utf8);
                write += utf8.len();
                read += escape_len;
                continue;
            }
            _ => return None,
        };
        buffer[write] = byte;
        write += 1;
        read += 2;
    }
    if !buffer[read + 1..].iter().all(is_blank) {
        return None;
    }
    // Raw bytes between escapes must be UTF-8, as serde_json requires.
    std::str::from_utf8(&buffer[..write]).ok()?;
    Some(write)
}

/// The high bit of each byte of `word` that is a quote, a backslash or a
/// control character, and maybe of bytes after the first such: only the
/// lowest bit set is exact (a byte's borrow reaches the byte above).
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES * 0x80;
    let below = |word: u64, bound: u8| word.wrapping_sub(ONES * u64::from(bound)) & !word & HIGHS;
    below(word ^ (ONES * u64::from(b'"')), 1)
        | below(word ^ (ONES * u64::from(b'\\')), 1)
        | below(word, 0x20)
}

/// The character a `\uXXXX` escape (or a surrogate pair of two) at the
/// start of `escape` stands for, and the escape's length.
fn unicode_escape(escape: &[u8]) -> Option<(char, usize)> {
    let hex = |at: usize| {
        let digits = std::str::from_utf8(escape.get(at..at + 4)?).ok()?;
        if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    };
    let first = hex(2)?;
    if !(0xD800..0xDC00).contains(&first) {
        return Some((char::from_u32(first)?, 6));
    }
    if escape.get(6..8)? != b"\\u" {
        return None;
    }
    let second = hex(8)?;
    if !(0xDC00..0xE000).contains(&second) {
        return None;
    }
    let c = char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))?;
    Some((c, 12))
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

    /// What the fast path gives, checked against serde_json.
    fn unescaped(json: &[u8]) -> Option<Vec<u8>> {
        let mut buffer = json.to_vec();
        let len = unescape_in_place(&mut buffer)?;
        buffer.truncate(len);
        Some(buffer)
    }

    proptest::proptest! {
        #[test]
        fn special_bytes_finds_the_first_quote_backslash_or_control(
            bytes in proptest::array::uniform8(proptest::prop_oneof![
                proptest::strategy::Just(b'"'),
                proptest::strategy::Just(b'\\'),
                0..0x20u8,
                proptest::num::u8::ANY,
            ])
        ) {
            let first = bytes.iter().position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20);
            let found = special_bytes(u64::from_le_bytes(bytes)).trailing_zeros() as usize / 8;
            proptest::prop_assert_eq!(found, first.unwrap_or(8));
        }

        #[test]
        fn unescapes_any_string_as_serde_json_does(text in "\\PC*") {
            let json = serde_json::to_vec(&text).expect("a string");
            proptest::prop_assert_eq!(unescaped(&json), Some(text.into_bytes()));
        }

        #[test]
        fn accepts_only_what_serde_json_accepts(pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "\"", "\\", "\\u", "\\n", "\\/", "\\x", "d83d", "de00", "DC00", "00e9",
                "0000", "a", " ", "\n", "\u{1}", "é", "\u{7f}", "\\ud83d\\ude00", "\\ude00",
            ]),
            0..12,
        ), invalid_utf8: bool) {
            let mut json = b"\"".to_vec();
            json.extend(pieces.concat().into_bytes());
            if invalid_utf8 {
                json.push(0xff);
            }
            json.extend(b"\" ");
            let expected = serde_json::from_slice::<String>(&json).ok().map(String::into_bytes);
            let fast = unescaped(&json);
            // The fast path may leave a case to serde_json, never disagree with it.
            proptest::prop_assert!(fast.is_none() || fast == expected, "{:?}", String::from_utf8_lossy(&json));
        }
    }

    #[test]
    fn unescapes_escapes_and_surrogate_pairs() {
        let json = br#" "{\"a\":\"\u00e9\ud83d\ude00\/\n\\\"}" "#;
        let expected = serde_json::from_slice::<String>(json).expect("a JSON string");
        assert_eq!(unescaped(json), Some(expected.into_bytes()));
        for refused in [
            &br#""\ud83d""#[..],
            br#""\ude00""#,
            b"\"\x01\"",
            br#""a" x"#,
            br#""a"#,
        ] {
            assert_eq!(
                unescaped(refused),
                None,
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
    }
}
