//! Labelled secrets and the checks every provider's proof shares.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use http::header::CONTENT_ENCODING;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{Provider, WebhookRejection};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The label the user gave the secret that verified this request.
///
/// While rotating a secret, configure the old and the new one and watch which
/// label requests arrive with: once no request has used the old label for
/// longer than the provider retries, remove it. The label is also in the
/// `debug` trace of every verified request. Take it as a handler argument on a
/// route with one of the verifying layers.
///
/// A layer's first secret (the one given to `new`) is labelled `primary`.
/// Behind a [`PerTenant`](crate::PerTenant) layer, it also names the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchedSecret {
    label: Arc<str>,
    pub(crate) tenant: Option<Arc<str>>,
}

impl MatchedSecret {
    fn new(label: Arc<str>) -> Self {
        Self {
            label,
            tenant: None,
        }
    }

    /// One read back from an inbox.
    #[cfg(feature = "inbox")]
    pub(crate) fn stored(label: Arc<str>, tenant: Option<Arc<str>>) -> Self {
        Self { label, tenant }
    }

    /// The label given with the secret.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The tenant whose secret it is, behind a [`PerTenant`](crate::PerTenant) layer.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

impl fmt::Display for MatchedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// The label of a layer's first secret.
pub(crate) const PRIMARY: &str = "primary";

/// Secrets in the order they were configured, each prepared as a `K` once.
/// `Debug` shows only the labels.
#[derive(Clone)]
pub(crate) struct Secrets<K> {
    entries: Vec<(MatchedSecret, K)>,
}

impl<K> Secrets<K> {
    /// The first secret, labelled [`PRIMARY`], prepared by `prepare`.
    pub(crate) fn new(
        secret: &[u8],
        prepare: impl FnOnce(&Arc<str>, &[u8]) -> Result<K, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let label = Arc::from(PRIMARY);
        let key = prepare(&label, secret)?;
        Ok(Self {
            entries: vec![(MatchedSecret::new(label), key)],
        })
    }

    /// Adds a secret, refused if its label is taken: [`MatchedSecret`] could
    /// not tell the two apart.
    pub(crate) fn push(
        &mut self,
        label: Arc<str>,
        secret: &[u8],
        prepare: impl FnOnce(&Arc<str>, &[u8]) -> Result<K, ConfigError>,
    ) -> Result<(), ConfigError> {
        if self.entries.iter().any(|(taken, _)| *taken.label == *label) {
            return Err(ConfigError::DuplicateLabel { label });
        }
        let key = prepare(&label, secret)?;
        self.entries.push((MatchedSecret::new(label), key));
        Ok(())
    }

    /// The first secret for which `matches` holds.
    pub(crate) fn find(&self, mut matches: impl FnMut(&K) -> bool) -> Option<&MatchedSecret> {
        self.entries
            .iter()
            .find(|(_, key)| matches(key))
            .map(|(label, _)| label)
    }
}

impl<K> fmt::Debug for Secrets<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(label, _)| label.label()))
            .finish()
    }
}

/// The keyed HMAC state for `secret`, computed once so requests only clone
/// it; refused if empty, since anyone could sign with it.
pub(crate) fn hmac_key(label: &Arc<str>, secret: &[u8]) -> Result<HmacSha256, ConfigError> {
    not_empty(label, secret)?;
    Ok(HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length"))
}

/// Refuses an empty secret, which anyone could prove a webhook with.
pub(crate) fn not_empty(label: &Arc<str>, secret: &[u8]) -> Result<(), ConfigError> {
    match secret.is_empty() {
        true => Err(ConfigError::EmptySecret {
            label: label.clone(),
        }),
        false => Ok(()),
    }
}

/// A layer's configuration with `result`, or a panic saying why not: what
/// the panicking constructors (`new`, `with_secret`) do with their `try_` twins.
#[track_caller]
pub(crate) fn or_panic<T>(result: Result<T, ConfigError>) -> T {
    result.unwrap_or_else(|error| panic!("{error}"))
}

/// Why a layer refused a secret it was given.
///
/// The panicking constructors (`new`, `with_secret`) panic with this
/// message; their `try_` twins return it, for secrets read at run time (a
/// tenant table, say). It never shows the secret, nor its length.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The secret labelled `label` is empty: anyone could prove a webhook with it.
    EmptySecret {
        /// The secret's label (`primary` for the first).
        label: Arc<str>,
    },
    /// The Shipmondo key labelled `label` is shorter than
    /// [`shipmondo::MIN_KEY_LEN`](crate::shipmondo::MIN_KEY_LEN) bytes.
    ShortKey {
        /// The key's label (`primary` for the first).
        label: Arc<str>,
    },
    /// A second secret was given the label `label`.
    DuplicateLabel {
        /// The label given twice.
        label: Arc<str>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptySecret { label } => write!(
                f,
                "a webhook secret must not be empty: anyone could prove a webhook with it \
                 (the secret labelled {label:?})"
            ),
            Self::ShortKey { label } => write!(
                f,
                "a Shipmondo key must be at least {} bytes: enter a longer random key in \
                 Shipmondo, or use ShipmondoJwt::allowing_short_keys until you can \
                 (the key labelled {label:?})",
                crate::shipmondo::MIN_KEY_LEN
            ),
            Self::DuplicateLabel { label } => write!(
                f,
                "two webhook secrets are labelled {label:?}: give each its own label, so \
                 MatchedSecret tells which one matched"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A secret as it is held: anything whose bytes are the secret.
///
/// Every layer's constructor and [`testing`](crate::testing) signer takes
/// one: `&str`, `String`, `&[u8]`, `Vec<u8>`, `Box<str>`, `Arc<str>`,
/// `Cow<str>`, and with the `secrecy` feature `secrecy`'s `SecretString`
/// and `SecretSlice<u8>`.
pub trait WebhookSecret {
    /// The secret's bytes, used as the key (or token) as they are.
    fn secret_bytes(&self) -> &[u8];
}

impl<T: WebhookSecret + ?Sized> WebhookSecret for &T {
    fn secret_bytes(&self) -> &[u8] {
        (**self).secret_bytes()
    }
}

macro_rules! secret_as_bytes {
    ($($ty:ty),+) => {$(
        impl WebhookSecret for $ty {
            fn secret_bytes(&self) -> &[u8] {
                <$ty as AsRef<[u8]>>::as_ref(self)
            }
        }
    )+};
}

secret_as_bytes!(str, String, [u8], Vec<u8>);

macro_rules! secret_as_str {
    ($($ty:ty),+) => {$(
        impl WebhookSecret for $ty {
            fn secret_bytes(&self) -> &[u8] {
                AsRef::<str>::as_ref(self).as_bytes()
            }
        }
    )+};
}

secret_as_str!(
    Box<str>,
    Arc<str>,
    std::rc::Rc<str>,
    std::borrow::Cow<'_, str>
);

#[cfg(feature = "secrecy")]
impl WebhookSecret for secrecy::SecretString {
    fn secret_bytes(&self) -> &[u8] {
        use secrecy::ExposeSecret;
        self.expose_secret().as_bytes()
    }
}

#[cfg(feature = "secrecy")]
impl WebhookSecret for secrecy::SecretSlice<u8> {
    fn secret_bytes(&self) -> &[u8] {
        use secrecy::ExposeSecret;
        self.expose_secret()
    }
}

impl Secrets<HmacSha256> {
    /// The secret whose HMAC-SHA256 over the concatenated `message` equals `tag`,
    /// compared in constant time.
    pub(crate) fn verify_hmac(&self, message: &[&[u8]], tag: &Tag) -> Option<&MatchedSecret> {
        self.find(|key| {
            let mut mac = key.clone();
            for part in message {
                mac.update(part);
            }
            tags_equal(&mac.finalize().into_bytes().into(), tag)
        })
    }
}

/// Whether two 32-byte tags or digests are equal, in constant time: the
/// difference of every 8-byte word is gathered without a branch and tested
/// once, where `subtle` compares byte by byte, about 300 instructions for 32 bytes.
pub(crate) fn tags_equal(a: &Tag, b: &Tag) -> bool {
    let (a, b) = (a.as_chunks::<8>().0, b.as_chunks::<8>().0);
    let difference = a.iter().zip(b).fold(0, |difference, (a, b)| {
        difference | (u64::from_ne_bytes(*a) ^ u64::from_ne_bytes(*b))
    });
    bool::from(difference.ct_eq(&0))
}

/// The length of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

/// An HMAC-SHA256 tag read from the headers, checked once the body is read.
pub(crate) type Tag = [u8; TAG_LEN];

/// What [`digit_table`] gives a byte that is no digit.
pub(crate) const NOT_A_DIGIT: u8 = 0xff;

/// A table from each byte to its value as a digit, the `i`th byte of each of
/// `alphabets` being worth `i`; [`NOT_A_DIGIT`] for any other byte. The
/// providers' tags decode through it, a few instructions a digit.
pub(crate) const fn digit_table(alphabets: &[&[u8]]) -> [u8; 256] {
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
pub(crate) static HEX_DIGITS: [u8; 256] = digit_table(&[b"0123456789abcdef", b"0123456789ABCDEF"]);

/// A decoded tag, refused if it cannot be an HMAC-SHA256.
pub(crate) fn tag_from(what: fmt::Arguments<'_>, tag: &[u8]) -> Result<Tag, WebhookRejection> {
    tag.try_into().map_err(|_| {
        WebhookRejection::unauthorized(format!(
            "{what} decodes to {} bytes; an HMAC-SHA256 is {TAG_LEN}",
            tag.len()
        ))
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
    let value = values
        .next()
        .ok_or_else(|| WebhookRejection::unauthorized(format!("the {name} header is missing")))?;
    if values.next().is_some() {
        return Err(WebhookRejection::unauthorized(format!(
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
        WebhookRejection::unauthorized(format!("the {name} header is not visible ASCII"))
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
    WebhookRejection::unauthorized(details)
}

#[cfg(test)]
mod tests {
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
}
