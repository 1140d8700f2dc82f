//! Secrets as users hold them, as layers keep them (labelled, prepared
//! once), and why a layer refuses one.

use std::fmt;
use std::sync::Arc;

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
    /// The secret or key labelled `label`, for keys kept outside [`Secrets`]
    /// (public keys named by the request).
    pub(crate) fn new(label: Arc<str>) -> Self {
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
const PRIMARY: &str = "primary";

/// A layer's secrets in the order they were configured, each prepared as a
/// `K` once (an HMAC's keyed state, a token's digest), with the rule every
/// one of them must meet. `Debug` shows only the labels.
#[derive(Clone)]
pub(crate) struct Secrets<K> {
    entries: Vec<(MatchedSecret, K)>,
    prepare: fn(&[u8]) -> K,
    min_len: usize,
}

impl<K> Secrets<K> {
    /// The first secret, labelled `primary`, prepared by `prepare`; every
    /// secret must be at least `min_len` bytes long, and none may be empty.
    pub(crate) fn new(
        secret: &[u8],
        prepare: fn(&[u8]) -> K,
        min_len: usize,
    ) -> Result<Self, ConfigError> {
        let mut secrets = Self {
            entries: Vec::with_capacity(1),
            prepare,
            min_len,
        };
        secrets.push(Arc::from(PRIMARY), secret)?;
        Ok(secrets)
    }

    /// Adds a secret, refused if its label is taken: [`MatchedSecret`] could
    /// not tell the two apart.
    pub(crate) fn push(&mut self, label: Arc<str>, secret: &[u8]) -> Result<(), ConfigError> {
        if self.entries.iter().any(|(taken, _)| *taken.label == *label) {
            return Err(ConfigError::DuplicateLabel { label });
        }
        if secret.is_empty() {
            return Err(ConfigError::EmptySecret { label });
        }
        if secret.len() < self.min_len {
            return Err(ConfigError::ShortKey {
                label,
                min_len: self.min_len,
            });
        }
        self.entries
            .push((MatchedSecret::new(label), (self.prepare)(secret)));
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

/// A layer's configuration with `result`, or a panic saying why not: what
/// the panicking builders do with their `try_` twins.
#[track_caller]
pub(crate) fn or_panic<T>(result: Result<T, ConfigError>) -> T {
    result.unwrap_or_else(|error| panic!("{error}"))
}

/// Why a layer refused what it was configured with.
///
/// The panicking builders (`new`, `with_secret`, a header override) panic
/// with this message; their `try_` twins return it, for configuration read
/// at run time (a tenant table, say). It never shows a secret, nor its length.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The secret labelled `label` is empty: anyone could prove a webhook with it.
    EmptySecret {
        /// The secret's label (`primary` for the first).
        label: Arc<str>,
    },
    /// The key labelled `label` is shorter than the `min_len` bytes its
    /// layer asks for (see that provider's module).
    ShortKey {
        /// The key's label (`primary` for the first).
        label: Arc<str>,
        /// The shortest key the layer accepts, in bytes.
        min_len: usize,
    },
    /// A second secret was given the label `label`.
    DuplicateLabel {
        /// The label given twice.
        label: Arc<str>,
    },
    /// A header override named no valid header.
    InvalidHeaderName {
        /// The name given.
        name: String,
    },
    /// The secret labelled `label` is not in the form its provider issues
    /// secrets in (a Standard Webhooks `whsec_` secret that is not base64).
    MalformedSecret {
        /// The secret's label (`primary` for the first).
        label: Arc<str>,
        /// The form expected.
        expected: &'static str,
    },
    /// A token scheme that is not an HTTP token (letters, digits and
    /// ``!#$%&'*+-.^_`|~``): no request could carry it.
    InvalidScheme {
        /// The scheme given.
        scheme: String,
    },
    /// A set of public keys (a JWKS) that cannot be read, or holds no key
    /// the layer can verify with.
    InvalidKeySet {
        /// What is wrong with it.
        details: String,
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
            Self::ShortKey { label, min_len } => write!(
                f,
                "this provider's keys must be at least {min_len} bytes: enter a longer random \
                 key at the provider, or use the layer's allowing_short_keys until you can \
                 (the key labelled {label:?})"
            ),
            Self::DuplicateLabel { label } => write!(
                f,
                "two webhook secrets are labelled {label:?}: give each its own label, so \
                 MatchedSecret tells which one matched"
            ),
            Self::InvalidHeaderName { name } => {
                write!(f, "{name:?} is not a valid HTTP header name")
            }
            Self::MalformedSecret { label, expected } => write!(
                f,
                "the secret labelled {label:?} is not {expected}: copy it again from the provider"
            ),
            Self::InvalidScheme { scheme } => write!(
                f,
                "a token scheme must be an HTTP token, such as Bearer: {scheme:?} is not"
            ),
            Self::InvalidKeySet { details } => write!(f, "the key set cannot be used: {details}"),
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
