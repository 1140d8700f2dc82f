//! ShipEngine's public keys: a JWKS read into RSA keys by `kid`, and the
//! cache an async lookup refreshes when a request names a key it lacks.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PublicKey};
use serde::Deserialize;
use serde_json::Value;

use crate::ConfigError;

/// The smallest RSA modulus a key may have, in bits: shorter keys in a JWKS
/// are skipped (NIST SP 800-131A has disallowed RSA signatures under 2048
/// bits since 2014).
pub const MIN_RSA_BITS: usize = 2048;

/// The largest RSA modulus a key may have, in bits (the `rsa` crate's own bound).
pub const MAX_RSA_BITS: usize = 8192;

/// The longest key id a request may name, in bytes.
pub(crate) const MAX_KID_LEN: usize = 256;

/// One RSA public key of the set.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: Arc<str>,
    pub(crate) public: PublicKey,
}

impl Key {
    /// The length of this key's signatures, in bytes.
    pub(crate) fn signature_len(&self) -> usize {
        self.public.size()
    }
}

/// The usable keys of a JWKS, by `kid`.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    keys: HashMap<Arc<str>, Key>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&str> = self.keys.keys().map(|kid| &**kid).collect();
        kids.sort_unstable();
        f.debug_list().entries(kids).finish()
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Value>,
}

#[derive(Deserialize)]
struct RsaJwk<'a> {
    kty: &'a str,
    #[serde(default)]
    kid: Option<&'a str>,
    #[serde(default, rename = "use")]
    usage: Option<&'a str>,
    #[serde(default)]
    alg: Option<&'a str>,
    #[serde(default)]
    n: Option<&'a str>,
    #[serde(default)]
    e: Option<&'a str>,
}

impl KeySet {
    /// The RSA signing keys of the JWKS `text`; keys of another type, for
    /// another use or algorithm, without a `kid`, malformed, or under
    /// [`MIN_RSA_BITS`] are skipped (traced at `debug`), and a set left with
    /// none is refused.
    pub(crate) fn from_jwks(text: &str) -> Result<Self, ConfigError> {
        let invalid = |details: String| ConfigError::InvalidKeySet { details };
        let jwks: Jwks = serde_json::from_str(text)
            .map_err(|error| invalid(format!("not a JWKS ({{\"keys\": [...]}}): {error}")))?;
        let mut set = Self::default();
        let mut skipped = Vec::new();
        for jwk in &jwks.keys {
            match Self::key(jwk) {
                Ok(key) => {
                    if set.keys.contains_key(&key.kid) {
                        skipped.push(format!("a second key {:?}", &*key.kid));
                    } else {
                        set.keys.insert(Arc::clone(&key.kid), key);
                    }
                }
                Err(why) => skipped.push(why),
            }
        }
        for why in &skipped {
            tracing::debug!(skipped = why.as_str(), "JWKS key skipped");
        }
        if set.keys.is_empty() {
            let why = if skipped.is_empty() {
                "it holds no key".to_owned()
            } else {
                format!("it holds no usable RSA key ({})", skipped.join("; "))
            };
            return Err(invalid(why));
        }
        Ok(set)
    }

    /// One JWK as an RSA verification key, or why it is skipped.
    fn key(jwk: &Value) -> Result<Key, String> {
        let jwk = RsaJwk::deserialize(jwk).map_err(|error| format!("a key: {error}"))?;
        let kid = jwk.kid.unwrap_or_default();
        let name = format!("key {kid:?}");
        if jwk.kty != "RSA" {
            return Err(format!("{name} is of type {:?}, not RSA", jwk.kty));
        }
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(format!(
                "an RSA key with no kid, or one over {MAX_KID_LEN} bytes"
            ));
        }
        if let Some(usage) = jwk.usage.filter(|usage| *usage != "sig") {
            return Err(format!("{name} is for {usage:?}, not signatures"));
        }
        if let Some(alg) = jwk.alg.filter(|alg| *alg != "RS256") {
            return Err(format!("{name} is for {alg:?}, not RS256"));
        }
        let number = |field: &str, value: Option<&str>| {
            let value = value.ok_or_else(|| format!("{name} has no {field}"))?;
            // RFC 7518 §6.3.1 says unpadded base64url; padding is tolerated.
            let bytes = URL_SAFE_NO_PAD
                .decode(value.trim_end_matches('='))
                .map_err(|_| format!("{name}'s {field} is not base64url"))?;
            Ok::<_, String>(BoxedUint::from_be_slice_vartime(&bytes))
        };
        let (n, e) = (number("n", jwk.n)?, number("e", jwk.e)?);
        let bits = n.bit_width_vartime() as usize;
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "{name} is {bits} bits; at least {MIN_RSA_BITS} are required"
            ));
        }
        let public = PublicKey::new_with_size_limits(n, e, MIN_RSA_BITS..=MAX_RSA_BITS)
            .map_err(|error| format!("{name} is not a valid RSA public key: {error}"))?;
        Ok(Key {
            kid: Arc::from(kid),
            public,
        })
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid)
    }
}

/// An async lookup of the current JWKS text, as the user provides it.
pub(crate) type Lookup = dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, crate::verify::BoxError>> + Send>>
    + Send
    + Sync;

/// The keys a layer verifies with, shared by its clones and services: the
/// set, and the lookup that refreshes it at most once per interval.
pub(crate) struct Keys {
    set: RwLock<Arc<KeySet>>,
    lookup: Option<Arc<Lookup>>,
    refresh_interval: Duration,
    /// When a refresh last began; `None` before the first.
    last_refresh: Mutex<Option<Instant>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("kids", &*self.current())
            .field("lookup", &self.lookup.is_some())
            .field("refresh_interval", &self.refresh_interval)
            .finish()
    }
}

impl Keys {
    pub(crate) fn new(
        set: KeySet,
        lookup: Option<Arc<Lookup>>,
        refresh_interval: Duration,
    ) -> Self {
        Self {
            set: RwLock::new(Arc::new(set)),
            lookup,
            refresh_interval,
            last_refresh: Mutex::new(None),
        }
    }

    pub(crate) fn lookup(&self) -> Option<Arc<Lookup>> {
        self.lookup.clone()
    }

    pub(crate) fn has_lookup(&self) -> bool {
        self.lookup.is_some()
    }

    pub(crate) fn refresh_interval(&self) -> Duration {
        self.refresh_interval
    }

    /// The current set (a refresh replaces it whole).
    pub(crate) fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.set.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether a request naming `kid` should wait for a refresh: the key is
    /// unknown, a lookup is configured, and none began within the interval.
    /// Claims the refresh if so, so concurrent requests start at most one.
    pub(crate) fn claim_refresh(&self, kid: &str) -> bool {
        if self.lookup.is_none() || self.current().get(kid).is_some() {
            return false;
        }
        let mut last = self
            .last_refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(at) if at.elapsed() < self.refresh_interval => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    /// Marks a refresh as begun now, whatever the key: the next unknown key
    /// id waits out the interval.
    pub(crate) fn mark_refreshed(&self) {
        *self
            .last_refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// Looks the JWKS up and replaces the set with its usable keys; a
    /// failed lookup or a set with no usable key keeps the old set.
    pub(crate) fn refresh(
        self: &Arc<Self>,
    ) -> Pin<Box<dyn Future<Output = Result<(), RefreshError>> + Send>> {
        let Some(lookup) = &self.lookup else {
            return Box::pin(async { Ok(()) });
        };
        let looked_up = lookup();
        let keys = Arc::clone(self);
        Box::pin(async move {
            let text = looked_up.await.map_err(RefreshError::Lookup)?;
            let set = KeySet::from_jwks(&text).map_err(RefreshError::Keys)?;
            *keys.set.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
            Ok(())
        })
    }
}

/// Why a refresh kept the old keys.
#[derive(Debug)]
pub(crate) enum RefreshError {
    Lookup(crate::verify::BoxError),
    Keys(ConfigError),
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lookup(error) => write!(f, "the JWKS lookup failed: {error}"),
            Self::Keys(error) => write!(f, "the JWKS looked up is refused: {error}"),
        }
    }
}

impl std::error::Error for RefreshError {}
