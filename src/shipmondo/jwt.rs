//! Shipmondo's JWT: checked with HS256 alone, its payload decoded from a
//! JSON string that holds JSON.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;

use super::ShipmondoJwt;
use crate::json::{from_object_slice, parse_json, unescape_in_place};
use crate::proof::{no_secret_matched, tag_from};
use crate::{MatchedSecret, Provider, WebhookRejection};

/// The only JWT algorithm Shipmondo uses, and so the only one accepted.
const ALGORITHM: &str = "HS256";

/// The longest JWT header accepted, in base64url characters, checked before
/// decoding it: Shipmondo's is `{"alg":"HS256"}` (20 characters).
const MAX_HEADER_LEN: usize = 256;

/// An HS256 signature's length in unpadded base64url: 32 bytes.
const SIGNATURE_LEN: usize = 43;

impl ShipmondoJwt {
    /// Checks `token` and returns its payload segment, verified but still
    /// base64url, and the key that signed it.
    pub(super) fn verify_token<'t>(
        &self,
        token: &'t str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(&'t str, &MatchedSecret), WebhookRejection> {
        let malformed = || {
            WebhookRejection::malformed_proof(
                "`data` is not a JWT: it needs three dot-separated parts",
            )
        };
        let (signed, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = signed.split_once('.').ok_or_else(malformed)?;
        if payload.contains('.') {
            return Err(malformed());
        }
        // The header and signature are decoded only within their lengths; the
        // payload, only once the signature over it holds.
        if header.len() > MAX_HEADER_LEN {
            return Err(WebhookRejection::malformed_proof(format!(
                "the JWT header is {} characters long; at most {MAX_HEADER_LEN} are accepted",
                header.len()
            )));
        }
        // Both bounded, so both decode on the stack; base64's decoder wants
        // room for a whole last group of three.
        let mut header_bytes = [0; MAX_HEADER_LEN / 4 * 3 + 3];
        let header = decode_segment_into("header", header, &mut header_bytes)?;
        let header: JwsHeader<'_> = from_object_slice(header).map_err(|error| {
            WebhookRejection::malformed_proof(format!("the JWT header is not valid: {error}"))
        })?;
        if header.alg != ALGORITHM {
            return Err(WebhookRejection::malformed_proof(format!(
                "the JWT is signed with {:?}; only {ALGORITHM} is accepted",
                header.alg
            )));
        }
        if !header.crit.is_empty() {
            return Err(WebhookRejection::malformed_proof(
                "the JWT header lists `crit` extensions, which are not supported",
            ));
        }
        if signature.len() != SIGNATURE_LEN {
            return Err(WebhookRejection::malformed_proof(format!(
                "the JWT signature is {} characters long; an HS256 signature is {SIGNATURE_LEN}",
                signature.len()
            )));
        }
        let mut tag = [0; SIGNATURE_LEN / 4 * 3 + 3];
        let tag = decode_segment_into("signature", signature, &mut tag)?;
        let tag = tag_from(format_args!("the JWT signature"), tag)?;
        let key = self
            .secrets
            .verify_hmac(&[signed.as_bytes()], &tag)
            .ok_or_else(|| {
                no_secret_matched(
                    Provider::Shipmondo,
                    headers,
                    body,
                    "the JWT signature matches no configured key",
                )
            })?;
        Ok((payload, key))
    }
}

fn decode_segment(name: &str, segment: &str) -> Result<Vec<u8>, WebhookRejection> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| not_base64url(name))
}

/// [`decode_segment`] into `buffer`, which the caller sized for the segment.
fn decode_segment_into<'b>(
    name: &str,
    segment: &str,
    buffer: &'b mut [u8],
) -> Result<&'b [u8], WebhookRejection> {
    match URL_SAFE_NO_PAD.decode_slice(segment, buffer) {
        Ok(len) => Ok(&buffer[..len]),
        Err(_) => Err(not_base64url(name)),
    }
}

fn not_base64url(name: &str) -> WebhookRejection {
    WebhookRejection::malformed_proof(format!("the JWT {name} is not unpadded base64url"))
}

/// The body. Only `data` is signed, so nothing else may come with it: a
/// handler taking the body's bytes sees only what was signed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    pub(super) data: Cow<'a, str>,
}

#[derive(Deserialize)]
struct JwsHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default)]
    crit: Vec<String>,
}

/// The JSON of the JWT's payload, from its verified base64url `segment`:
/// Shipmondo sends a JSON string holding JSON; a payload that is a JSON
/// object is accepted too.
pub(super) fn claims_json(segment: &str) -> Result<Bytes, WebhookRejection> {
    let mut claims = decode_segment("payload", segment)?;
    let start = claims.len() - claims.trim_ascii_start().len();
    if claims.get(start) != Some(&b'"') {
        return Ok(Bytes::from(claims));
    }
    // The common case, unescaped in the buffer it was decoded into.
    if let Some(len) = unescape_in_place(&mut claims) {
        claims.truncate(len);
        return Ok(Bytes::from(claims));
    }
    // Anything else (a lone surrogate, a control character, no closing
    // quote...): serde_json decides, with its own error, over the payload as
    // sent, which the unescape may have partly overwritten.
    let claims = decode_segment("payload", segment)?;
    let inner: String = parse_json("the JWT payload", &claims)?;
    Ok(Bytes::from(inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The whole path from the verified payload segment: whatever the
        /// fast path leaves, serde_json reads the payload as sent.
        #[test]
        fn a_string_payload_reads_as_serde_json_reads_it(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "\\", "\\\"", "\\\\", "\\u", "\\n", "\\x", "d83d", "de00", "00e9", "a",
                    "abcdefghij", " ", "\t", "\u{1}", "é", "\\ud83d\\ude00", "\\ude00",
                ]),
                0..16,
            ),
            closed: bool,
            after in proptest::sample::select(vec!["", " ", " \t\n", "    \t", "x", "\u{1}", "\""]),
            invalid_utf8: bool,
        ) {
            let mut payload = b"\"".to_vec();
            payload.extend(pieces.concat().into_bytes());
            if invalid_utf8 {
                payload.push(0xff);
            }
            if closed {
                payload.push(b'"');
            }
            payload.extend(after.as_bytes());
            let got = claims_json(&URL_SAFE_NO_PAD.encode(&payload));
            match (got, serde_json::from_slice::<String>(&payload)) {
                (Ok(json), Ok(text)) => proptest::prop_assert_eq!(json, text.into_bytes()),
                (Err(rejection), Err(error)) => proptest::prop_assert_eq!(
                    rejection.details(),
                    format!("the JWT payload: {error}")
                ),
                (got, expected) => proptest::prop_assert!(
                    false,
                    "{:?}: got {got:?}, serde_json {expected:?}",
                    String::from_utf8_lossy(&payload)
                ),
            }
        }
    }

    #[test]
    fn a_payload_without_its_closing_quote_is_refused_as_serde_json_refuses_it() {
        // The unescape has copied the string's tail over its start by then.
        let payload = format!("\"{{\\\"data\\\":{{\\\"id\\\":1}}}}{}", " ".repeat(40));
        let rejection =
            claims_json(&URL_SAFE_NO_PAD.encode(&payload)).expect_err("no closing quote");
        let error = serde_json::from_str::<String>(&payload).expect_err("no closing quote");
        assert_eq!(rejection.details(), format!("the JWT payload: {error}"));
    }
}
