//! [Standard Webhooks](https://www.standardwebhooks.com): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature`, for any sender that follows
//! the specification.
//!
//! The specification (`standard-webhooks/standard-webhooks`,
//! `spec/standard-webhooks.md`) signs `"<webhook-id>.<webhook-timestamp>.<body>"`,
//! the body's exact bytes, with HMAC-SHA256 and sends the base64 result as
//! a `v1,<base64>` entry of `webhook-signature`, a space-separated list so
//! that a sender rotating its secret can sign with both. The secret is
//! issued as `whsec_<base64>`, and the key is the decoded bytes. The
//! timestamp is the attempt's, in unix seconds; the reference libraries
//! (`libraries/rust/src/lib.rs` `TOLERANCE_IN_SECONDS`, `libraries/go/webhook.go`,
//! `libraries/javascript/src/index.ts`) refuse one more than 5 minutes away
//! from their clock, either way.
//!
//! [`StandardWebhooks`] verifies those headers without a framework, for any
//! sender; [`ShipBobSignature`](crate::ShipBobSignature) is the layer built on it.
//!
//! # What this crate decides where the specification leaves room
//!
//! - **Secrets.** The `whsec_` prefix is optional and the rest must be base64
//!   (with or without padding), as the reference Rust library reads it; anything else is
//!   [`ConfigError::MalformedSecret`]. Like the reference libraries, any non-empty
//!   key is accepted, though the specification asks senders for 24 to 64 bytes.
//! - **`webhook-signature`.** Entries are separated by single spaces (extra
//!   spaces are ignored) and each is `<version>,<signature>`. Entries of
//!   other versions (`v1a`, ed25519, which this crate does not verify) are
//!   ignored. A `v1` entry must be base64 of 32 bytes: the canonical 44
//!   characters, or the same 43 without the final `=` (an example of
//!   ShipBob's headers, in the third-party `api-evangelist/shipbob` AsyncAPI
//!   file, shows one unpadded; the reference libraries, which compare the
//!   text, would refuse it). A `v1` entry that is not, an entry without a
//!   comma, more than [`MAX_SIGNATURES`] entries, or no `v1` entry at all, is
//!   refused as malformed (401) rather than skipped (the reference libraries
//!   skip them, and accept if another entry matches), so a sender's mistake
//!   is named. The request is accepted when **any** `v1` entry matches any
//!   configured secret.
//! - **`webhook-id`** must be non-empty visible ASCII without a `.`, and
//!   **`webhook-timestamp`** ASCII digits (at most 12), as the specification
//!   asks for them not to be ambiguous in the signed string.
//! - **The window** is checked only once a signature holds (so it tells a
//!   forger nothing): 5 minutes either way by default,
//!   [`max_age`](StandardWebhooks::max_age) and
//!   [`max_future_skew`](StandardWebhooks::max_future_skew) change it.
//!
//! **What the signature does not cover:** every other header (a topic
//! header such as ShipBob's `x-webhook-topic`). The timestamp is the
//! attempt's, not the event's: the specification says it changes on every
//! retry while `webhook-id` stays, so deduplicate on `webhook-id`.
//!
//! # Example
//!
//! ```
//! use shipment_webhooks::http::HeaderMap;
//! use shipment_webhooks::standard_webhooks::StandardWebhooks;
//!
//! fn on_request(headers: &HeaderMap, body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//!     let keys = StandardWebhooks::try_new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//!     let proof = keys.verify(headers, body)?;
//!     println!("message {} sent at {}", proof.id, proof.timestamp);
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::Mac;
use http::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;

use crate::proof::{HmacSha256, Tag, base64_tag, hmac_key, proof_text, proof_value, tags_equal};
use crate::secret::{Secrets, or_panic};
use crate::window::TimeWindow;
use crate::{ConfigError, MatchedSecret, RejectionKind, WebhookRejection, WebhookSecret};

/// The header carrying the message's id, the same on every retry.
pub const ID_HEADER: HeaderName = HeaderName::from_static("webhook-id");
/// The header carrying the attempt's time, in unix seconds.
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("webhook-timestamp");
/// The header carrying the space-separated `v1,<base64>` signatures.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("webhook-signature");
/// The prefix Standard Webhooks secrets are issued with.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far from this server's clock the signed timestamp may be, either
/// way, unless told otherwise: the reference libraries' 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The most entries a `webhook-signature` header may hold.
pub const MAX_SIGNATURES: usize = 8;

/// The key set of one Standard Webhooks endpoint: its secrets (more than one
/// while rotating) and the window the signed timestamp must fall in.
///
/// `Debug` shows only the secrets' labels.
#[derive(Debug, Clone)]
pub struct StandardWebhooks {
    secrets: Secrets<HmacSha256>,
    window: TimeWindow,
}

/// What a Standard Webhooks request proves once its signature holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StandardWebhookProof {
    /// `webhook-id`: the message's id, the same on every retry (signed).
    pub id: String,
    /// `webhook-timestamp`: when this attempt was signed (signed).
    pub timestamp: OffsetDateTime,
    /// The secret whose signature matched.
    pub secret: MatchedSecret,
}

/// What a request's three Standard Webhooks headers carry, read before its
/// body: what a layer built on [`StandardWebhooks`] carries from the
/// headers to the body's check.
#[derive(Clone)]
pub struct SignedHeaders {
    pub(crate) id: HeaderValue,
    pub(crate) timestamp: HeaderValue,
    pub(crate) time: OffsetDateTime,
    tags: Vec<Tag>,
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeaders")
            .field("id", &self.id)
            .field("timestamp", &self.timestamp)
            .field("signatures", &self.tags.len())
            .finish()
    }
}

/// Why a well-formed signature is refused.
pub(crate) const MISMATCH: &str =
    "no v1 signature of the webhook-signature header matches a configured secret";

/// The label of a key set's first secret, as [`Secrets`] names it.
const PRIMARY: &str = "primary";

/// A `whsec_` secret's key: the decoded bytes after the optional prefix.
pub(crate) fn decode_secret(label: &str, secret: &[u8]) -> Result<Vec<u8>, ConfigError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX.as_bytes())
        .unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| ConfigError::MalformedSecret {
            label: Arc::from(label),
            expected: "base64 after an optional whsec_ prefix, as Standard Webhooks secrets are",
        })
}

impl StandardWebhooks {
    /// Verifies with `secret`, `whsec_<base64>` as the sender shows it.
    ///
    /// # Panics
    ///
    /// If the secret is not base64 after its prefix, or decodes to nothing;
    /// [`try_new`](Self::try_new) returns the [`ConfigError`] instead.
    #[track_caller]
    #[must_use]
    pub fn new(secret: impl WebhookSecret) -> Self {
        or_panic(Self::try_new(secret))
    }

    /// Like [`new`](Self::new): an error instead of a panic.
    pub fn try_new(secret: impl WebhookSecret) -> Result<Self, ConfigError> {
        let key = decode_secret(PRIMARY, secret.secret_bytes())?;
        Ok(Self {
            secrets: Secrets::new(&key, hmac_key, 0)?,
            window: TimeWindow::both_ways(DEFAULT_TOLERANCE),
        })
    }

    /// Also accepts requests signed with `secret`, reported as `label` in
    /// [`MatchedSecret`]: configure the old and the new secret while rotating.
    ///
    /// # Panics
    ///
    /// If the secret is refused as [`new`](Self::new) refuses one, or `label`
    /// is taken; [`try_with_secret`](Self::try_with_secret) returns the error.
    #[track_caller]
    #[must_use]
    pub fn with_secret(self, label: impl Into<Arc<str>>, secret: impl WebhookSecret) -> Self {
        or_panic(self.try_with_secret(label, secret))
    }

    /// Like [`with_secret`](Self::with_secret): an error instead of a panic.
    pub fn try_with_secret(
        mut self,
        label: impl Into<Arc<str>>,
        secret: impl WebhookSecret,
    ) -> Result<Self, ConfigError> {
        let label = label.into();
        let key = decode_secret(&label, secret.secret_bytes())?;
        self.secrets.push(label, &key)?;
        Ok(self)
    }

    /// Refuses with 401 (`stale`) a signed timestamp older than `age`
    /// (default 5 minutes). Senders re-sign each retry with its own time,
    /// so this bounds replays, not retries.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.window.max_age = Some(age);
        self
    }

    /// Refuses with 401 (`stale`) a signed timestamp further than `skew`
    /// ahead of this server's clock (default 5 minutes).
    #[must_use]
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.window.max_future_skew = Some(skew);
        self
    }

    /// Verifies a request from its headers and its whole body as received:
    /// the headers' form first, then the signature, then the window. Each
    /// refusal is a [`WebhookRejection`] (401 for the proof, `stale` for the
    /// window) whose [`to_response`](WebhookRejection::to_response) answers.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<StandardWebhookProof, WebhookRejection> {
        let signed = self.check_headers(headers)?;
        let secret = self.check_signature(&signed, body, || {
            WebhookRejection::new(RejectionKind::SignatureMismatch, MISMATCH)
        })?;
        Ok(StandardWebhookProof {
            id: proof_text(&signed.id, &ID_HEADER)?.to_owned(),
            timestamp: signed.time,
            secret: secret.clone(),
        })
    }

    /// Reads the three headers, refusing any missing, repeated or malformed.
    pub(crate) fn check_headers(
        &self,
        headers: &HeaderMap,
    ) -> Result<SignedHeaders, WebhookRejection> {
        let id = proof_value(headers, &ID_HEADER)?;
        let id_text = proof_text(id, &ID_HEADER)?;
        if id_text.is_empty() || id_text.contains('.') {
            return Err(WebhookRejection::malformed_proof(format!(
                "the {ID_HEADER} header is empty or holds a `.`, which would make the signed \
                 string ambiguous"
            )));
        }
        let timestamp = proof_value(headers, &TIMESTAMP_HEADER)?;
        let time = unix_seconds(proof_text(timestamp, &TIMESTAMP_HEADER)?)?;
        let value = proof_value(headers, &SIGNATURE_HEADER)?;
        let tags = signatures(proof_text(value, &SIGNATURE_HEADER)?)?;
        Ok(SignedHeaders {
            id: id.clone(),
            timestamp: timestamp.clone(),
            time,
            tags,
        })
    }

    /// The secret one of the signatures was made with, over
    /// `id.timestamp.body`; then the window, once it holds.
    /// `mismatch` is the refusal when none holds.
    pub(crate) fn check_signature(
        &self,
        signed: &SignedHeaders,
        body: &[u8],
        mismatch: impl FnOnce() -> WebhookRejection,
    ) -> Result<&MatchedSecret, WebhookRejection> {
        let secret = self
            .secrets
            .find(|key| {
                let mut mac = key.clone();
                for piece in [
                    signed.id.as_bytes(),
                    b".",
                    signed.timestamp.as_bytes(),
                    b".",
                    body,
                ] {
                    mac.update(piece);
                }
                let computed: Tag = mac.finalize().into_bytes().into();
                // Every entry is compared, in constant time each.
                signed
                    .tags
                    .iter()
                    .fold(false, |any, tag| any | tags_equal(&computed, tag))
            })
            .ok_or_else(mismatch)?;
        self.window
            .check("the webhook-timestamp header", signed.time)?;
        Ok(secret)
    }
}

/// `webhook-timestamp`: unix seconds, ASCII digits only.
fn unix_seconds(text: &str) -> Result<OffsetDateTime, WebhookRejection> {
    let malformed = || {
        WebhookRejection::malformed_proof(format!(
            "the {TIMESTAMP_HEADER} header is not unix seconds (1 to 12 ASCII digits)"
        ))
    };
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let seconds: i64 = text.parse().map_err(|_| malformed())?;
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| malformed())
}

/// The `v1` signatures of a `webhook-signature` header.
fn signatures(text: &str) -> Result<Vec<Tag>, WebhookRejection> {
    let mut tags = Vec::new();
    let mut entries = 0;
    for entry in text.split(' ').filter(|entry| !entry.is_empty()) {
        entries += 1;
        if entries > MAX_SIGNATURES {
            return Err(WebhookRejection::malformed_proof(format!(
                "the {SIGNATURE_HEADER} header holds more than {MAX_SIGNATURES} signatures"
            )));
        }
        let Some((version, signature)) = entry.split_once(',') else {
            return Err(WebhookRejection::malformed_proof(format!(
                "an entry of the {SIGNATURE_HEADER} header is not <version>,<signature>"
            )));
        };
        if version == "v1" {
            tags.push(v1_tag(signature)?);
        }
    }
    if tags.is_empty() {
        return Err(WebhookRejection::malformed_proof(format!(
            "the {SIGNATURE_HEADER} header holds no v1 signature (HMAC-SHA256), the only \
             version this crate verifies"
        )));
    }
    Ok(tags)
}

/// A `v1` signature: base64 of 32 bytes, padded or not.
fn v1_tag(signature: &str) -> Result<Tag, WebhookRejection> {
    if let Some(tag) = base64_tag(signature.as_bytes()) {
        return Ok(tag);
    }
    if signature.len() == 43 {
        let mut padded = [b'='; 44];
        padded[..43].copy_from_slice(signature.as_bytes());
        if let Some(tag) = base64_tag(&padded) {
            return Ok(tag);
        }
    }
    Err(WebhookRejection::malformed_proof(format!(
        "a v1 signature of the {SIGNATURE_HEADER} header is not base64 of an HMAC-SHA256 \
         ({} characters; 44, or 43 without padding)",
        signature.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_padded_and_unpadded_v1_signatures_alike() {
        let padded = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let tag = v1_tag(padded).unwrap();
        assert_eq!(v1_tag(&padded[..43]).unwrap(), tag);
        for bad in [
            "dawfeoifkpqwoekfpqoekf",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",
            "g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "",
        ] {
            assert!(v1_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_only_v1_entries_and_refuses_malformed_ones() {
        let one = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(signatures(one).unwrap().len(), 1);
        let with_others = format!("v1a,anything  {one} v2,x");
        assert_eq!(signatures(&with_others).unwrap().len(), 1);
        for bad in ["", "v1a,abc", "v1", &format!("{one} nocomma")] {
            assert!(signatures(bad).is_err(), "{bad}");
        }
        let many = [one; MAX_SIGNATURES + 1].join(" ");
        assert!(signatures(&many).is_err());
    }

    #[test]
    fn reads_unix_seconds_only() {
        assert_eq!(
            unix_seconds("1614265330").unwrap().unix_timestamp(),
            1_614_265_330
        );
        for bad in [
            "",
            "-1",
            "+1614265330",
            "1614265330.5",
            "16142653300000",
            " 1",
        ] {
            assert!(unix_seconds(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decodes_secrets_with_or_without_prefix_and_padding() {
        let key = decode_secret("primary", b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(
            decode_secret("primary", b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            key
        );
        assert_eq!(decode_secret("p", b"whsec_YWJj").unwrap(), b"abc");
        assert_eq!(decode_secret("p", b"whsec_YWI").unwrap(), b"ab");
        assert!(matches!(
            decode_secret("p", b"whsec_not base64!"),
            Err(ConfigError::MalformedSecret { .. })
        ));
    }
}
