//! Secrets looked up per request, for apps that receive one provider's
//! webhooks for many merchants, each with its own secret: [`PerTenant`],
//! where a request names its tenant ([`TenantSource`]), and the cache's
//! defaults.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::HeaderName;
use http::header::HOST;
use http::request::Parts;
use tower_layer::Layer;

use crate::json::quote;
use crate::verify::{BoxError, Resolve, Resolving, Verifier, Verifiers, VerifyWebhook};
use crate::{ConfigError, RejectionKind, WebhookRejection};

/// The longest tenant name a [`PerTenant`] layer looks up, in bytes; a
/// longer one is refused (401) without a lookup.
pub const MAX_TENANT_LEN: usize = 128;

/// How many tenants' secrets a [`PerTenant`] layer keeps prepared unless told otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// How long a [`PerTenant`] layer keeps a tenant's secrets before looking
/// them up again, unless told otherwise.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// Where a request names its tenant: a header, the host, a path segment, or
/// anything a function reads from the request's head.
#[derive(Clone)]
pub struct TenantSource(Source);

#[derive(Clone)]
enum Source {
    Header(HeaderName),
    Host,
    PathSegment(usize),
    Function(Arc<ReadTenant>),
}

type ReadTenant = dyn Fn(&Parts) -> Option<String> + Send + Sync;

impl TenantSource {
    /// The value of header `name` (`X-Tenant`...); a request with two is refused.
    pub fn header(name: HeaderName) -> Self {
        Self(Source::Header(name))
    }

    /// The host the request was sent to (`acme.example.com`), in lower case
    /// and without its port: the `Host` header, or the URI's authority over
    /// HTTP/2.
    pub fn host() -> Self {
        Self(Source::Host)
    }

    /// The path's segment `index`, counting from 0 after the leading `/`:
    /// for a route `/webhooks/kosmo/{tenant}`, segment 2. Under a nested
    /// axum router, the path is the one the layer sees. The segment is taken
    /// as sent, not percent-decoded (`%61cme` is not `acme`), and may be any
    /// text: look it up as a key, never build a path or a query from it.
    ///
    /// An [`InboxReceiver`](crate::inbox::InboxReceiver) behind the layer
    /// stores webhooks under the path with this segment replaced by
    /// `{tenant}` (`/webhooks/kosmo/{tenant}`), whatever the tenant, and
    /// tells tenants apart by [`MatchedSecret::tenant`](crate::MatchedSecret::tenant).
    pub fn path_segment(index: usize) -> Self {
        Self(Source::PathSegment(index))
    }

    /// Whatever `read` finds in the request's head.
    pub fn from_fn(read: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Source::Function(Arc::new(read)))
    }

    /// The tenant `parts` names, as sent, refused if it names none, an empty
    /// one, one longer than [`MAX_TENANT_LEN`], or (in a header) two.
    fn read<'a>(&self, parts: &'a Parts) -> Result<Cow<'a, str>, WebhookRejection> {
        let tenant: Option<Cow<'a, str>> = match &self.0 {
            Source::Header(name) => {
                let mut values = parts.headers.get_all(name).iter();
                let value = values.next().and_then(|value| value.to_str().ok());
                if values.next().is_some() {
                    return Err(WebhookRejection::new(
                        RejectionKind::UnknownTenant,
                        format!("the {name} header appears more than once"),
                    ));
                }
                value.map(Cow::Borrowed)
            }
            Source::Host => host(parts).map(Cow::Owned),
            Source::PathSegment(index) => {
                let path = parts.uri.path();
                segment(path, *index).map(|range| Cow::Borrowed(&path[range]))
            }
            Source::Function(read) => read(parts).map(Cow::Owned),
        };
        let tenant = tenant.unwrap_or_default();
        self.check(&tenant, "")?;
        Ok(tenant)
    }

    /// Refuses an empty name or one over [`MAX_TENANT_LEN`]; `when` says
    /// at which step it became so.
    fn check(&self, tenant: &str, when: &str) -> Result<(), WebhookRejection> {
        if tenant.len() > MAX_TENANT_LEN {
            return Err(WebhookRejection::new(
                RejectionKind::UnknownTenant,
                format!("the tenant's name is over {MAX_TENANT_LEN} bytes{when}"),
            ));
        }
        if tenant.is_empty() {
            return Err(WebhookRejection::new(
                RejectionKind::UnknownTenant,
                format!("the request names no tenant in {}{when}", self.describe()),
            ));
        }
        Ok(())
    }

    /// The request's path with the tenant's segment replaced by
    /// [`TENANT_PLACEHOLDER`], for a tenant read from the path.
    #[cfg(feature = "inbox")]
    fn route(&self, parts: &Parts) -> Option<TenantRoute> {
        let Source::PathSegment(index) = self.0 else {
            return None;
        };
        let path = parts.uri.path();
        let range = segment(path, index)?;
        let route = [&path[..range.start], TENANT_PLACEHOLDER, &path[range.end..]].concat();
        Some(TenantRoute(route.into()))
    }

    fn describe(&self) -> String {
        match &self.0 {
            Source::Header(name) => format!("the {name} header"),
            Source::Host => "the host".to_owned(),
            Source::PathSegment(index) => format!("segment {index} of the path"),
            Source::Function(_) => "the request".to_owned(),
        }
    }
}

/// Where segment `index` of `path` is, counting from 0 after the leading `/`s.
fn segment(path: &str, index: usize) -> Option<Range<usize>> {
    let mut start = path.len() - path.trim_start_matches('/').len();
    for (at, segment) in path[start..].split('/').enumerate() {
        if at == index {
            return Some(start..start + segment.len());
        }
        start += segment.len() + 1;
    }
    None
}

/// What stands for the tenant's segment in a [`TenantRoute`].
#[cfg(feature = "inbox")]
const TENANT_PLACEHOLDER: &str = "{tenant}";

/// The route a request reached, with the tenant's path segment replaced by
/// a placeholder: the inbox's default endpoint, so that one route mounted
/// for every tenant is one endpoint, however each tenant is spelled.
#[cfg(feature = "inbox")]
#[derive(Debug, Clone)]
pub(crate) struct TenantRoute(pub(crate) Box<str>);

/// A tenant's name in ASCII lower case: a [`normalize`](PerTenantBuilder::normalize)
/// function for tenants whose lookup ignores ASCII case. It allocates only
/// for a name that has an upper-case letter.
///
/// ```
/// use shipment_webhooks::tenant::ascii_lowercase;
///
/// assert_eq!(ascii_lowercase("Acme"), "acme");
/// assert!(matches!(ascii_lowercase("acme"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn ascii_lowercase(tenant: &str) -> Cow<'_, str> {
    if tenant.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(tenant.to_ascii_lowercase())
    } else {
        Cow::Borrowed(tenant)
    }
}

/// The host a request was sent to, in lower case and without its port.
fn host(parts: &Parts) -> Option<String> {
    let authority = match parts.headers.get(HOST) {
        Some(value) => value.to_str().ok()?,
        None => parts.uri.authority()?.as_str(),
    };
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => host,
        _ => authority,
    };
    Some(host.to_ascii_lowercase())
}

impl fmt::Debug for TenantSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

type Normalize = dyn Fn(&str) -> Cow<'_, str> + Send + Sync;

type Lookup<V> = dyn Fn(Arc<str>) -> Pin<Box<dyn Future<Output = Result<Option<V>, BoxError>> + Send>>
    + Send
    + Sync;

/// A layer that looks up, per request, the secrets of the tenant the request
/// names, and verifies it as that tenant's layer would.
///
/// `lookup` gets the tenant's name and returns its layer, built with the
/// fallible constructors (`KosmoSignature::try_new(row.secret)?`) so that a
/// bad row is an error and not a panic, or `None` for a tenant it does not
/// know. Each tenant's layer, its keys prepared, is kept for
/// [`DEFAULT_CACHE_TTL`] (five minutes) and at most
/// [`DEFAULT_CACHE_CAPACITY`] tenants at once; [`invalidate`](Self::invalidate)
/// forgets one at once, after its secret was rotated.
///
/// What a request gets:
///
/// - a tenant found and its proof valid: it reaches the handler, where
///   [`MatchedSecret::tenant`](crate::MatchedSecret::tenant) and `label` say
///   which tenant and which of its secrets matched;
/// - no tenant in the request, an unknown one, or one whose secrets `lookup`
///   refused with a [`ConfigError`] (traced at `error`): 401, as for any
///   proof that does not hold;
/// - any other error from `lookup` (the database is down): 503, traced at
///   `error`, so that the provider tries again later.
///
/// The lookup runs before the proof is checked, since the secret to check it
/// with is what it finds: every request for a tenant not in the cache costs
/// one lookup, whoever sent it (unknown tenants are not cached, and
/// concurrent first requests for a tenant each look it up), and a lookup
/// that never ends holds its request. Rate-limit in front if that matters,
/// and put a timeout (`tower_http::timeout::TimeoutLayer`) outside.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
///
/// use axum::{Router, routing::post};
/// use shipment_webhooks::{GoShiipSignature, MatchedSecret, PerTenant, ShipmentEvent, TenantSource};
///
/// async fn on_event(event: ShipmentEvent, secret: MatchedSecret) {
///     println!("{:?}: {} is {}", secret.tenant(), event.id, event.status);
/// }
///
/// // A tenant table; in an app, a database.
/// let secrets: Arc<HashMap<&str, &str>> =
///     Arc::new(HashMap::from([("acme", "acme-secret"), ("globex", "globex-secret")]));
/// let layer = PerTenant::new(TenantSource::path_segment(2), move |tenant| {
///     let secrets = Arc::clone(&secrets);
///     async move {
///         let Some(secret) = secrets.get(&*tenant) else { return Ok(None) };
///         // A bad row is a `ConfigError`: a 401 and an `error` trace, never a panic.
///         GoShiipSignature::try_new(*secret).map(Some)
///     }
/// });
/// let app: Router = Router::new()
///     .route("/webhooks/goshiip/{tenant}", post(on_event).route_layer(layer));
/// ```
///
/// # Tenant names
///
/// A tenant's name is the one the request gives, passed through the
/// builder's [`normalize`](PerTenantBuilder::normalize) function if it has
/// one. That name is what `lookup` gets, what the cache keeps, and what
/// [`MatchedSecret::tenant`](crate::MatchedSecret::tenant) says, so the
/// [inbox](crate::inbox) scopes its rows by it. If your lookup finds `acme`
/// for `ACME` too (a case-insensitive column), normalize names the same way
/// (`.normalize(tenant::ascii_lowercase)`, see [`ascii_lowercase`]): else
/// `/acme`, `/ACME` and `/Acme` are three tenants, each looked up and cached
/// on its own, and one webhook sent to all three is stored and handled once
/// for each.
pub struct PerTenant<V> {
    secrets: Arc<TenantSecrets<V>>,
}

impl<V> Clone for PerTenant<V> {
    fn clone(&self) -> Self {
        Self {
            secrets: Arc::clone(&self.secrets),
        }
    }
}

impl<V> fmt::Debug for PerTenant<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerTenant")
            .field("tenant", &self.secrets.key)
            .field("normalized", &self.secrets.normalize.is_some())
            .finish_non_exhaustive()
    }
}

impl<V: Verifier> PerTenant<V> {
    /// Verifies each request with the layer `lookup` returns for the tenant
    /// `source` finds in it, with the cache's defaults; see
    /// [`builder`](Self::builder) to size the cache.
    #[must_use]
    pub fn new<F, Fut, E>(source: TenantSource, lookup: F) -> Self
    where
        F: Fn(Arc<str>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<V>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::builder(source, lookup).build()
    }

    /// Like [`new`](Self::new), with the cache's settings and the tenant
    /// names' [normalization](PerTenantBuilder::normalize) still to choose.
    #[must_use]
    pub fn builder<F, Fut, E>(source: TenantSource, lookup: F) -> PerTenantBuilder<V>
    where
        F: Fn(Arc<str>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<V>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let lookup = move |tenant| {
            let future = lookup(tenant);
            Box::pin(async move { future.await.map_err(Into::into) }) as Pin<Box<_>>
        };
        PerTenantBuilder {
            source,
            lookup: Box::new(lookup),
            normalize: None,
            capacity: DEFAULT_CACHE_CAPACITY,
            ttl: DEFAULT_CACHE_TTL,
        }
    }
}

/// A [`PerTenant`] layer's settings, chosen before the layer is made and
/// shared: [`PerTenant::builder`].
pub struct PerTenantBuilder<V> {
    source: TenantSource,
    lookup: Box<Lookup<V>>,
    normalize: Option<Box<Normalize>>,
    capacity: usize,
    ttl: Duration,
}

impl<V> fmt::Debug for PerTenantBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerTenantBuilder")
            .field("tenant", &self.source)
            .field("normalized", &self.normalize.is_some())
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<V> PerTenantBuilder<V> {
    /// Turns the name a request gives into the tenant's name before anything
    /// else sees it: the lookup gets what `normalize` returns, the cache
    /// keeps it, [`MatchedSecret::tenant`](crate::MatchedSecret::tenant)
    /// says it, and [`invalidate`](PerTenant::invalidate) normalizes its
    /// argument the same way. Give one whenever the lookup finds one tenant
    /// under several spellings, so that they are one tenant here too (see
    /// [Tenant names](PerTenant#tenant-names)).
    ///
    /// It runs on every request, on a name already checked (not empty, at
    /// most [`MAX_TENANT_LEN`] bytes), and should be quick; returning
    /// `Cow::Borrowed` when nothing changes spares an allocation. A name it
    /// makes empty or longer than [`MAX_TENANT_LEN`] is refused (401)
    /// without a lookup.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use std::sync::Arc;
    ///
    /// use shipment_webhooks::{GoShiipSignature, PerTenant, TenantSource, tenant};
    ///
    /// async fn lookup(tenant: Arc<str>) -> Result<Option<GoShiipSignature>, std::io::Error> {
    ///     // Tenant names are stored in lower case.
    ///     Ok((&*tenant == "acme").then(|| GoShiipSignature::new("acme-secret")))
    /// }
    ///
    /// // `/webhooks/goshiip/ACME` is tenant `acme`.
    /// let layer = PerTenant::builder(TenantSource::path_segment(2), lookup)
    ///     .normalize(tenant::ascii_lowercase)
    ///     .build();
    ///
    /// // Any function of the name: here, `acme.example.com` is tenant `acme`.
    /// let by_host = PerTenant::builder(TenantSource::host(), lookup)
    ///     .normalize(|host: &str| Cow::Borrowed(host.strip_suffix(".example.com").unwrap_or(host)))
    ///     .build();
    /// # let _ = (layer, by_host);
    /// ```
    #[must_use]
    pub fn normalize(
        mut self,
        normalize: impl Fn(&str) -> Cow<'_, str> + Send + Sync + 'static,
    ) -> Self {
        self.normalize = Some(Box::new(normalize));
        self
    }

    /// Keeps at most `tenants` tenants' secrets prepared (default 1024);
    /// past that, the one kept longest is dropped. Zero keeps none.
    #[must_use]
    pub fn cache_capacity(mut self, tenants: usize) -> Self {
        self.capacity = tenants;
        self
    }

    /// Looks a tenant's secrets up again once they have been kept for
    /// `ttl` (default five minutes).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The layer.
    #[must_use]
    pub fn build(self) -> PerTenant<V> {
        PerTenant {
            secrets: Arc::new(TenantSecrets {
                key: self.source,
                lookup: self.lookup,
                normalize: self.normalize,
                cache: Mutex::new(Cache {
                    entries: HashMap::new(),
                    capacity: self.capacity,
                    ttl: self.ttl,
                    generation: 0,
                }),
            }),
        }
    }
}

/// The cache's controls. They act on the cache that every clone of this
/// layer, and every service it made, shares.
impl<V> PerTenant<V> {
    /// Forgets `tenant`'s secrets, so its next request looks them up again:
    /// call it when a tenant's secret changes. The name is
    /// [normalized](PerTenantBuilder::normalize) as a request's is. A lookup
    /// already under way then keeps what it found out of the cache, since it
    /// may have read the old secret.
    pub fn invalidate(&self, tenant: &str) {
        let tenant = self.secrets.normalized(tenant);
        let mut cache = self.secrets.cache();
        cache.entries.remove(&*tenant);
        cache.generation += 1;
    }

    /// Forgets every tenant's secrets.
    pub fn invalidate_all(&self) {
        let mut cache = self.secrets.cache();
        cache.entries.clear();
        cache.generation += 1;
    }
}

impl<S, V: Verifier> Layer<S> for PerTenant<V> {
    type Service = VerifyWebhook<S, V>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyWebhook::new(inner, Verifiers::PerTenant(self.secrets.clone()))
    }
}

/// A [`PerTenant`] layer's lookup and cache, shared by every service it made.
pub(crate) struct TenantSecrets<V> {
    key: TenantSource,
    lookup: Box<Lookup<V>>,
    normalize: Option<Box<Normalize>>,
    cache: Mutex<Cache<V>>,
}

impl<V> fmt::Debug for TenantSecrets<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSecrets")
            .field("tenant", &self.key)
            .field("normalized", &self.normalize.is_some())
            .finish_non_exhaustive()
    }
}

struct Cache<V> {
    entries: HashMap<Arc<str>, (Instant, Arc<V>)>,
    capacity: usize,
    ttl: Duration,
    /// Counts invalidations, so that a lookup that began before one does not
    /// store what it found.
    generation: u64,
}

impl<V> Cache<V> {
    /// Drops the tenant kept longest; a scan, which only a lookup pays for.
    fn evict_oldest(&mut self) {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, (stored, _))| *stored)
            .map(|(tenant, _)| Arc::clone(tenant));
        if let Some(oldest) = oldest {
            self.entries.remove(&oldest);
        }
    }
}

impl<V> TenantSecrets<V> {
    /// `tenant` as the lookup and the cache name it.
    fn normalized<'a>(&self, tenant: &'a str) -> Cow<'a, str> {
        match &self.normalize {
            Some(normalize) => normalize(tenant),
            None => Cow::Borrowed(tenant),
        }
    }

    /// The tenant `parts` names, normalized, and checked again if
    /// normalizing changed it.
    fn tenant(&self, parts: &Parts) -> Result<Arc<str>, WebhookRejection> {
        let sent = self.key.read(parts)?;
        let tenant = self.normalized(&sent);
        if tenant != sent {
            self.key.check(&tenant, " once normalized")?;
        }
        Ok(Arc::from(&*tenant))
    }

    /// The cache; a panic elsewhere while it was held leaves nothing half
    /// done, so a poisoned lock is taken as it is.
    fn cache(&self) -> MutexGuard<'_, Cache<V>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<V: Verifier> Resolve<V> for TenantSecrets<V> {
    fn resolve(self: Arc<Self>, parts: &mut Parts) -> Result<Resolving<V>, WebhookRejection> {
        let tenant = self.tenant(parts)?;
        #[cfg(feature = "inbox")]
        if let Some(route) = self.key.route(parts) {
            parts.extensions.insert(route);
        }
        let generation = match self.cached(&tenant) {
            Ok(verifier) => return Ok(Resolving::Ready(Some(tenant), verifier)),
            Err(generation) => generation,
        };
        let lookup = (self.lookup)(Arc::clone(&tenant));
        let secrets = self;
        let name = Arc::clone(&tenant);
        let future = async move {
            let verifier = match lookup.await {
                Ok(Some(verifier)) => Arc::new(verifier),
                Ok(None) => {
                    tracing::debug!(tenant = &*name, "webhook for an unknown tenant");
                    return Err(WebhookRejection::new(
                        RejectionKind::UnknownTenant,
                        format!("unknown tenant {}", quote(&name)),
                    ));
                }
                Err(error) => return Err(lookup_failed(&name, &*error)),
            };
            secrets.store(name, Arc::clone(&verifier), generation);
            Ok(verifier)
        };
        Ok(Resolving::Pending(Some(tenant), Box::pin(future)))
    }
}

impl<V> TenantSecrets<V> {
    /// The tenant's cached layer, or the cache's generation to look it up in.
    fn cached(&self, tenant: &str) -> Result<Arc<V>, u64> {
        let mut cache = self.cache();
        let ttl = cache.ttl;
        match cache.entries.get(tenant) {
            Some((stored, verifier)) if stored.elapsed() < ttl => Ok(Arc::clone(verifier)),
            Some(_) => {
                cache.entries.remove(tenant);
                Err(cache.generation)
            }
            None => Err(cache.generation),
        }
    }

    /// Keeps a looked-up layer, unless the cache was invalidated since the
    /// lookup began (`generation`): it may hold a secret since rotated.
    fn store(&self, tenant: Arc<str>, verifier: Arc<V>, generation: u64) {
        let mut cache = self.cache();
        if cache.capacity == 0 || cache.generation != generation {
            return;
        }
        if cache.entries.len() >= cache.capacity && !cache.entries.contains_key(&tenant) {
            cache.evict_oldest();
        }
        cache.entries.insert(tenant, (Instant::now(), verifier));
    }
}

/// A failed lookup: a tenant's bad secret is its own 401; anything else is
/// this server's trouble, 503, so that the provider tries again later.
fn lookup_failed(tenant: &str, error: &(dyn std::error::Error + 'static)) -> WebhookRejection {
    let mut causes = std::iter::successors(Some(error), |error| error.source());
    if let Some(config) = causes.find_map(|cause| cause.downcast_ref::<ConfigError>()) {
        tracing::error!(tenant, error = %config, "a tenant's webhook secrets are refused");
        return WebhookRejection::new(
            RejectionKind::UnknownTenant,
            format!("tenant {} has no usable secret", quote(tenant)),
        );
    }
    tracing::error!(tenant, %error, "looking up a tenant's webhook secrets failed");
    WebhookRejection::new(
        RejectionKind::LookupFailed,
        "the tenant's webhook secrets could not be looked up; try again later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_found_after_any_leading_slashes() {
        fn segments(path: &str) -> Vec<Option<&str>> {
            (0..4)
                .map(|at| segment(path, at).map(|range| &path[range]))
                .collect()
        }
        assert_eq!(
            segments("/webhooks/carrier/acme"),
            [Some("webhooks"), Some("carrier"), Some("acme"), None]
        );
        assert_eq!(
            segments("//webhooks//acme/"),
            [Some("webhooks"), Some(""), Some("acme"), Some("")]
        );
        assert_eq!(segments("/"), [Some(""), None, None, None]);
    }

    #[cfg(feature = "inbox")]
    #[test]
    fn the_route_replaces_only_the_tenants_segment() {
        let route = |source: TenantSource, uri: &str| {
            let (parts, ()) = http::Request::post(uri).body(()).unwrap().into_parts();
            source.route(&parts).map(|route| route.0.into_string())
        };
        let segment = TenantSource::path_segment(2);
        assert_eq!(
            route(segment.clone(), "/webhooks/carrier/ACME?x=1").as_deref(),
            Some("/webhooks/carrier/{tenant}")
        );
        assert_eq!(
            route(segment.clone(), "//webhooks/carrier/acme/events").as_deref(),
            Some("//webhooks/carrier/{tenant}/events")
        );
        assert_eq!(route(segment, "/webhooks/carrier").as_deref(), None);
        assert_eq!(route(TenantSource::host(), "/webhooks/carrier/acme"), None);
    }
}
