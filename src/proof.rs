//! The pieces providers' proofs are made of: the header that carries one,
//! HMAC-SHA256 tags in hex or base64 and their constant-time comparison,
//! and the refusal of a proof no secret made.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::{DecodeSliceError, Engine};
use hmac::{Hmac, KeyInit, Mac};
use http::header::CONTENT_ENCODING;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secrets;
use crate::{ConfigError, Provider, RejectionKind, WebhookRejection};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The keyed HMAC state for `secret`, computed once so requests only clone it.
pub(crate) fn hmac_key(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: longer ones are hashed, shorter padded.
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

impl Secrets<HmacSha256> {
    /// The secret whose HMAC-SHA256 over the concatenated `message` equals `tag`,
    /// compared in constant time.
    pub(crate) fn verify_hmac(
        &self,
        message: &[&[u8]],
        tag: &Tag,
    ) -> Option<&crate::MatchedSecret> {
        self.find(|key| {
            let mut mac = key.clone();
            for part in message {
                mac.update(part);
            }
            tags_equal(&mac.finalize().into_bytes().into(), tag)
        })
    }
}

/// Whether two 32-byte tags or digests are equal, in constant time.
pub(crate) fn tags_equal(a: &Tag, b: &Tag) -> bool {
    a.ct_eq(b).into()
}

/// The length of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

/// An HMAC-SHA256 tag read from the headers, checked once the body is read.
pub(crate) type Tag = [u8; TAG_LEN];

/// What [`digit_table`] gives a byte that is no digit.
const NOT_A_DIGIT: u8 = 0xff;

/// A table from each byte to its value as a digit, the `i`th byte of each of
/// `alphabets` being worth `i`; [`NOT_A_DIGIT`] for any other byte. Tags
/// decode through it, without a branch a digit.
const fn digit_table(alphabets: &[&[u8]]) -> [u8; 256] {
    let mut table = [NOT_A_DIGIT; 256];
    let mut a = 0;
    while a < alphabets.len() {
        let alphabet = alphabets[a];
        let mut i = 0;
        while i < alphabet.len() {
            table[alphabet[i] as usize] = i as u8;
            i += 1;
        }
        a += 1;
    }
    table
}

/// Hex digits, in either case, through [`digit_table`].
static HEX_DIGITS: [u8; 256] = digit_table(&[b"0123456789abcdef", b"0123456789ABCDEF"]);

/// Whether every byte of `text` is a hex digit, in either case.
pub(crate) fn all_hex(text: &[u8]) -> bool {
    let digits = text
        .iter()
        .fold(0, |digits, &byte| digits | HEX_DIGITS[usize::from(byte)]);
    // A digit is under 16, `NOT_A_DIGIT` is not.
    digits & 0xf0 == 0
}

/// `hex`, 64 hex digits in either case, as a tag; `None` for anything else.
pub(crate) fn hex_tag(hex: &[u8]) -> Option<Tag> {
    let mut tag = [0; TAG_LEN];
    if hex.len() != 2 * TAG_LEN {
        return None;
    }
    let mut digits = 0;
    for (byte, pair) in tag.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (
            HEX_DIGITS[usize::from(pair[0])],
            HEX_DIGITS[usize::from(pair[1])],
        );
        digits |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    (digits & 0xf0 == 0).then_some(tag)
}

/// The tag in header `name`, 64 hex digits in either case, refused with a
/// message saying what is wrong with it otherwise.
pub(crate) fn hex_proof(headers: &HeaderMap, name: &HeaderName) -> Result<Tag, WebhookRejection> {
    let value = proof_value(headers, name)?;
    // A tag that decodes is visible ASCII: the text is checked only to say what is wrong.
    if let Some(tag) = hex_tag(value.as_bytes()) {
        return Ok(tag);
    }
    let signature = proof_text(value, name)?;
    if signature.len() != 2 * TAG_LEN {
        return Err(WebhookRejection::malformed_proof(format!(
            "the {name} header is {} characters long; a hex HMAC-SHA256 is {}",
            signature.len(),
            2 * TAG_LEN
        )));
    }
    Err(WebhookRejection::malformed_proof(format!(
        "the {name} header is not hex"
    )))
}

/// The tag in header `name`, standard base64, refused with a message
/// saying what is wrong with it otherwise.
pub(crate) fn base64_proof(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Result<Tag, WebhookRejection> {
    let value = proof_value(headers, name)?;
    // A tag that decodes is visible ASCII: the text is checked only to say what is wrong.
    if let Some(tag) = base64_tag(value.as_bytes()) {
        return Ok(tag);
    }
    let signature = proof_text(value, name)?;
    let not_base64 =
        || WebhookRejection::malformed_proof(format!("the {name} header is not base64"));
    // Anything else, as the base64 crate decides: on the stack for 44
    // characters (the decoder wants room for 33 bytes), to say how long
    // any other length is.
    let mut stack = [0; TAG_LEN + 1];
    let tag = match STANDARD.decode_slice(signature, &mut stack) {
        Ok(len) => &stack[..len],
        Err(DecodeSliceError::OutputSliceTooSmall) => {
            &*STANDARD.decode(signature).map_err(|_| not_base64())?
        }
        Err(DecodeSliceError::DecodeError(_)) => return Err(not_base64()),
    };
    tag_from(format_args!("the {name} header"), tag)
}

/// A tag in its canonical 44-character standard base64 (43 digits and
/// `=`); `None` for anything else, which the base64 crate then decides.
pub(crate) fn base64_tag(text: &[u8]) -> Option<Tag> {
    static DIGITS: [u8; 256] =
        digit_table(&[b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"]);
    let (digits, b"=") = text.split_last_chunk::<1>()? else {
        return None;
    };
    let digits: &[u8; 43] = digits.try_into().ok()?;
    let mut sextets = [0u8; 44];
    let mut invalid = 0;
    for (sextet, &digit) in sextets.iter_mut().zip(digits) {
        *sextet = DIGITS[usize::from(digit)];
        invalid |= *sextet;
    }
    // A digit is under 64, `NOT_A_DIGIT` is not. 43 digits carry 258 bits:
    // the last two must be zero, as canonical base64 (and the crate) requires.
    if invalid & 0xc0 != 0 || sextets[42] & 0b11 != 0 {
        return None;
    }
    let mut tag = [0; TAG_LEN];
    for (bytes, quad) in tag.chunks_mut(3).zip(sextets.chunks_exact(4)) {
        let word = u32::from(quad[0]) << 18
            | u32::from(quad[1]) << 12
            | u32::from(quad[2]) << 6
            | u32::from(quad[3]);
        let [_, high, middle, low] = word.to_be_bytes();
        for (byte, value) in bytes.iter_mut().zip([high, middle, low]) {
            *byte = value;
        }
    }
    Some(tag)
}

/// A decoded tag, refused if it cannot be an HMAC-SHA256.
pub(crate) fn tag_from(what: fmt::Arguments<'_>, tag: &[u8]) -> Result<Tag, WebhookRejection> {
    tag.try_into().map_err(|_| {
        WebhookRejection::malformed_proof(format!(
            "{what} decodes to {} bytes; an HMAC-SHA256 is {TAG_LEN}",
            tag.len()
        ))
    })
}

/// A header override's name read as text, refused if it is none.
pub(crate) fn header_name(name: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::try_from(name).map_err(|_| ConfigError::InvalidHeaderName {
        name: name.to_owned(),
    })
}

/// The one value of the header carrying the proof, as text.
pub(crate) fn proof_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<&'a str, WebhookRejection> {
    proof_text(proof_value(headers, name)?, name)
}

/// The one value of the header carrying the proof.
pub(crate) fn proof_value<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<&'a HeaderValue, WebhookRejection> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or_else(|| {
        WebhookRejection::new(
            RejectionKind::MissingProof,
            format!("the {name} header is missing"),
        )
    })?;
    if values.next().is_some() {
        return Err(WebhookRejection::malformed_proof(format!(
            "the {name} header appears more than once"
        )));
    }
    Ok(value)
}

/// The proof header's `value` as text, refused unless visible ASCII.
pub(crate) fn proof_text<'a>(
    value: &'a HeaderValue,
    name: &HeaderName,
) -> Result<&'a str, WebhookRejection> {
    value.to_str().map_err(|_| {
        WebhookRejection::malformed_proof(format!("the {name} header is not visible ASCII"))
    })
}

/// A 401 for a well-formed proof that no configured secret produced, with a
/// `debug` trace of what most often causes that.
pub(crate) fn no_secret_matched(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    details: &'static str,
) -> WebhookRejection {
    let content_encoding = headers
        .get(CONTENT_ENCODING)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let hint = if content_encoding.is_some() {
        "the body is content-encoded; the proof is checked over the bytes as received"
    } else if body.starts_with(b"\xEF\xBB\xBF") {
        "the body starts with a byte-order mark: something re-encoded it on its way"
    } else if body.contains(&b'\n') {
        "the body has line breaks: something may have re-serialized or pretty-printed it on its way"
    } else {
        "check that the configured secret is this endpoint's, and that nothing rewrites the body before this layer"
    };
    tracing::debug!(
        %provider,
        body_len = body.len(),
        content_encoding,
        hint,
        "webhook proof matches no configured secret"
    );
    WebhookRejection::new(RejectionKind::SignatureMismatch, details)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    #[test]
    fn tags_are_equal_only_when_every_bit_is() {
        let tag: Tag = std::array::from_fn(|i| (i * 37) as u8);
        let same = tag;
        assert!(tags_equal(&tag, &same));
        for at in 0..TAG_LEN {
            for bit in 0..8 {
                let mut other = tag;
                other[at] ^= 1 << bit;
                assert!(!tags_equal(&tag, &other), "byte {at}, bit {bit}");
            }
        }
    }

    #[test]
    fn reads_hex_tags_in_either_case() {
        let tag: Tag = std::array::from_fn(|i| (i * 37) as u8);
        for hex in [hex::encode(tag), hex::encode_upper(tag)] {
            assert_eq!(hex_tag(hex.as_bytes()), Some(tag), "{hex}");
        }
        for bad in [
            "g".repeat(64),
            "0".repeat(63),
            "0".repeat(65),
            format!("{}é", "0".repeat(62)),
        ] {
            assert_eq!(hex_tag(bad.as_bytes()), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decodes_every_tag_as_the_base64_crate_does(tag: [u8; TAG_LEN]) {
            let text = STANDARD.encode(tag);
            proptest::prop_assert_eq!(base64_tag(text.as_bytes()), Some(tag));
        }

        #[test]
        fn accepts_only_what_the_base64_crate_accepts(
            text in "[A-Za-z0-9+/_-]{43}[=A]|[A-Za-z0-9+/=]{42,46}",
        ) {
            let expected = STANDARD.decode(&text).ok();
            let fast = base64_tag(text.as_bytes());
            // The fast path may leave a case to the crate, never disagree with it.
            proptest::prop_assert!(fast.is_none() || fast.map(Vec::from) == expected, "{}", text);
        }
    }

    #[test]
    fn leaves_non_canonical_tags_to_the_base64_crate() {
        let canonical = STANDARD.encode([0xab; TAG_LEN]);
        assert_eq!(base64_tag(canonical.as_bytes()), Some([0xab; TAG_LEN]));
        // The same tag with one of the two unused low bits set: the crate refuses it.
        let mut loose = canonical.into_bytes();
        loose[42] = b'l'; // 37: its lowest bit is set
        assert!(STANDARD.decode(&loose).is_err());
        assert_eq!(base64_tag(&loose), None);
        for other in [&b""[..], b"=", &[b'A'; 44], &[b'A'; 43]] {
            assert_eq!(base64_tag(other), None);
        }
    }
}
