//! Labelled secrets and the checks every provider's proof shares.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use http::header::CONTENT_ENCODING;
use http::request::Parts;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchedSecret(Arc<str>);

impl MatchedSecret {
    /// The label given with the secret.
    pub fn label(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MatchedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    pub(crate) fn new(key: K) -> Self {
        Self {
            entries: vec![(MatchedSecret(PRIMARY.into()), key)],
        }
    }

    pub(crate) fn push(&mut self, label: impl Into<Arc<str>>, key: K) {
        self.entries.push((MatchedSecret(label.into()), key));
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

/// The keyed HMAC state for `secret`, computed once so requests only clone it.
///
/// # Panics
///
/// If `secret` is empty: anyone could sign with it.
pub(crate) fn hmac_key(secret: &[u8]) -> HmacSha256 {
    assert!(
        !secret.is_empty(),
        "a webhook secret must not be empty: anyone could sign with it"
    );
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

impl Secrets<HmacSha256> {
    /// The secret whose HMAC-SHA256 over the concatenated `message` equals `tag`,
    /// compared in constant time.
    pub(crate) fn verify_hmac(&self, message: &[&[u8]], tag: &[u8]) -> Option<&MatchedSecret> {
        self.find(|key| {
            let mut mac = key.clone();
            for part in message {
                mac.update(part);
            }
            mac.verify_slice(tag).is_ok()
        })
    }
}

/// The length of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

/// An HMAC tag read from the headers before the body, kept in the request's
/// extensions until the body is read and the tag can be checked.
#[derive(Clone, Copy)]
pub(crate) struct HeaderTag(pub(crate) [u8; TAG_LEN]);

impl HeaderTag {
    /// The tag `check_headers` recorded; a request without one was refused there.
    pub(crate) fn take(parts: &mut Parts) -> Result<[u8; TAG_LEN], WebhookRejection> {
        let tag = parts.extensions.remove::<Self>();
        tag.map(|Self(tag)| tag)
            .ok_or_else(|| WebhookRejection::unauthorized("the signature header was not read"))
    }
}

/// A decoded tag, refused if it cannot be an HMAC-SHA256.
pub(crate) fn tag_from(
    what: fmt::Arguments<'_>,
    tag: &[u8],
) -> Result<HeaderTag, WebhookRejection> {
    tag.try_into().map(HeaderTag).map_err(|_| {
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
    let mut values = headers.get_all(name).iter();
    let value = values
        .next()
        .ok_or_else(|| WebhookRejection::unauthorized(format!("the {name} header is missing")))?;
    if values.next().is_some() {
        return Err(WebhookRejection::unauthorized(format!(
            "the {name} header appears more than once"
        )));
    }
    value.to_str().map_err(|_| {
        WebhookRejection::unauthorized(format!("the {name} header is not visible ASCII"))
    })
}

/// A 401 for a well-formed proof that no configured secret produced, with a
/// `debug` trace of what most often causes that.
pub(crate) fn no_secret_matched(
    provider: Provider,
    parts: &Parts,
    body: &[u8],
    details: &'static str,
) -> WebhookRejection {
    let content_encoding = parts
        .headers
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
