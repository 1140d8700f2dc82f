//! A durable inbox: acknowledge a verified webhook once it is stored, drop
//! retried duplicates, keep the newest status per shipment, and process each
//! webhook with a worker that retries, with nothing lost across a crash.
//!
//! ```no_run
//! use axum::{Router, routing::post_service};
//! use shipment_webhooks::KosmoSignature;
//! use shipment_webhooks::inbox::{Delivery, Inbox};
//!
//! async fn handle(delivery: Delivery) -> Result<(), String> {
//!     let event = delivery.event();
//!     println!("{} {} is {}", event.provider, event.id, event.status);
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let inbox = Inbox::sqlite("webhooks.db").await?;
//! let worker = inbox.worker(handle).spawn();
//! let app = Router::new().route(
//!     "/webhooks/kosmo",
//!     post_service(inbox.receiver()).route_layer(KosmoSignature::new("whk_...")),
//! );
//! # let _: Router = app;
//! // ... serve `app`; on shutdown:
//! worker.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # What it guarantees
//!
//! - **Acknowledged means stored.** The [receiver](Inbox::receiver) answers
//!   200 only once the webhook's row is committed (on SQLite with
//!   `synchronous=FULL`, on disk). If the store fails or takes longer than
//!   the receiver's [timeout](InboxReceiver::timeout), it answers 503, which
//!   every provider treats as "try again". A webhook the layer refused never
//!   reaches it. A Shipmondo message whose process dies before the commit
//!   got no 200; Shipmondo does not say it sends it again, so it may be lost
//!   there: keep the timeout well under Shipmondo's 3 seconds (the default is
//!   2) so that what can be stored is.
//! - **Retried duplicates are dropped.** A delivery whose
//!   [`DedupKey`] (a SHA-256 of what the provider signed) was
//!   seen before on the same provider, endpoint and tenant is answered 200
//!   and counted, not stored or processed again, as long as the first is
//!   kept ([`Inbox::retention`], 7 days by default).
//! - **At least once, one shipment at a time.** The [`Worker`] hands every
//!   stored webhook to the handler until it returns `Ok`, retrying errors
//!   with exponential backoff and jitter, and marks it `dead` after its last
//!   attempt ([`Inbox::dead`], [`Inbox::replay`]). A claimed webhook is
//!   leased: if its worker dies, it is handed out again when the lease ends.
//!   So a handler may see a webhook again after a crash, with a higher
//!   [`attempt`](Delivery::attempt) and the same
//!   [`dedup_key`](Delivery::dedup_key): make it idempotent with the key
//!   (the attempt can repeat if the database itself crashes: claims and
//!   outcomes commit without waiting for the disk). Webhooks about one
//!   shipment are never handled at once while their leases hold, and are
//!   handed out oldest first; one waiting out a retry's backoff does not
//!   hold back the later ones (latest wins then supersedes it if a newer one
//!   was handled). An attempt running past [`Worker::handler_timeout`]
//!   counts as failed.
//! - **The newest status wins.** With [`Inbox::latest_wins`] (on by
//!   default), a webhook about a shipment whose newer event was already
//!   handled is marked `superseded` instead. "Newer" is by the provider's
//!   signed time (Kosmo, Kourier, Shipmondo); where either event has no time
//!   (GoShiip), a shipment that reached a final status (delivered,
//!   cancelled, returned) never goes back to a status that is not final.
//!   Events with equal times are both handled. GoShiip's body is its dedup
//!   key, so a status GoShiip sends again after another (In Progress, Picked
//!   Up, In Progress) is a duplicate of the first: its last status is lost.
//!
//! # Stores
//!
//! | store | feature | for |
//! |---|---|---|
//! | [`Inbox::in_memory`] | `inbox` | tests and single-process apps: **not durable**, a stopped process loses it all |
//! | [`Inbox::sqlite`] | `sqlite` | the embedded default: one file, WAL, `synchronous=FULL` |
//! | [`Inbox::postgres`] | `postgres` | several instances sharing one database |
//!
//! The stores keep their times in milliseconds since the epoch from the
//! clock of the process that writes them; instances sharing a PostgreSQL
//! database need clocks in step (NTP) to within a small part of the
//! [lease](Worker::lease).

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod receiver;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod worker;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::shipmondo::ShipmondoHeaders;
use crate::verified::DedupKey;
use crate::{
    MatchedSecret, Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook,
    WebhookRejection,
};

pub use receiver::{DEFAULT_RECEIVE_TIMEOUT, InboxReceiver, ReceiverFuture};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteSync;
pub use worker::{Worker, WorkerHandle};

/// How long dedup keys are kept by default: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The durable inbox: a store, with what the receiver and the worker share.
/// Cloning it is cheap, and clones share the store.
#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn Store>,
    /// Wakes this process's workers when a webhook is stored or replayed.
    wake: Arc<Notify>,
    retention: Duration,
    latest_wins: bool,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("store", &self.store.name())
            .field("retention", &self.retention)
            .field("latest_wins", &self.latest_wins)
            .finish()
    }
}

impl Inbox {
    /// An inbox on `store`, whose workers wait on `wake`.
    fn with_store(store: impl Store, wake: Arc<Notify>) -> Self {
        Self {
            store: Arc::new(store),
            wake,
            retention: DEFAULT_RETENTION,
            latest_wins: true,
        }
    }

    /// An inbox in this process's memory: **not durable**. Everything in it,
    /// acknowledged or not, is lost when the process stops. For tests, and
    /// for apps that accept that.
    pub fn in_memory() -> Self {
        Self::with_store(memory::MemoryStore::default(), Arc::default())
    }

    /// An inbox in the SQLite file at `path`, created if missing, in WAL mode
    /// with `synchronous=FULL`: an acknowledged webhook survives a power
    /// loss. See [`sqlite_with`](Self::sqlite_with) to trade that for speed.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn sqlite(path: impl AsRef<std::path::Path>) -> Result<Self, InboxError> {
        Self::sqlite_with(path, SqliteSync::Full).await
    }

    /// An inbox in the SQLite file at `path`, with the given durability.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn sqlite_with(
        path: impl AsRef<std::path::Path>,
        sync: SqliteSync,
    ) -> Result<Self, InboxError> {
        let store = sqlite::SqliteStore::open(path.as_ref(), sync).await?;
        Ok(Self::with_store(store, Arc::default()))
    }

    /// An inbox in the PostgreSQL database at `url`
    /// (`postgres://user:password@host/database`; a socket directory goes in
    /// `?host=/run/postgresql`). Its tables are created if missing. Workers
    /// in every process sharing the database wake on `LISTEN`/`NOTIFY`.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres(url: &str) -> Result<Self, InboxError> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        Self::postgres_pool(pool).await
    }

    /// An inbox in the database of an existing sqlx 0.8 pool. It needs a
    /// connection per concurrent request or claim, and one more for the
    /// workers' `LISTEN`.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres_pool(pool: sqlx::PgPool) -> Result<Self, InboxError> {
        let wake = Arc::new(Notify::new());
        let store = postgres::PgStore::open(pool, Arc::clone(&wake)).await?;
        Ok(Self::with_store(store, wake))
    }

    /// How long a webhook handled (or superseded) is kept, and with it its
    /// dedup key, counted from when it was received: 7 days by default.
    /// Dead webhooks are kept until replayed.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Whether a webhook older than one already handled for the same
    /// shipment is marked `superseded` instead of handled (on by default).
    #[must_use]
    pub fn latest_wins(mut self, on: bool) -> Self {
        self.latest_wins = on;
        self
    }

    /// A Tower service (for axum's `post_service`) that stores the
    /// [`VerifiedWebhook`] a verifying layer put in the request and answers
    /// 200 once it is committed; see [`InboxReceiver`].
    pub fn receiver(&self) -> InboxReceiver {
        InboxReceiver::new(self.clone())
    }

    /// Stores `webhook` as received on `endpoint` (a route, or any name that
    /// tells your endpoints apart), unless a delivery with the same dedup key
    /// was stored there before. The framework-free path of the receiver:
    /// answer the provider 200 only once this returns `Ok`.
    pub async fn receive(
        &self,
        webhook: &VerifiedWebhook,
        endpoint: &str,
    ) -> Result<Receipt, InboxError> {
        let row = NewWebhook::new(webhook, endpoint)?;
        let (provider, key) = (row.provider, row.dedup_key);
        let receipt = self.store.insert(row).await?;
        match receipt {
            Receipt::Stored { .. } => self.wake.notify_waiters(),
            Receipt::Duplicate { id } => {
                tracing::debug!(id, %provider, %key, "duplicate webhook dropped");
                #[cfg(feature = "metrics")]
                metrics::counter!("shipment_webhooks_duplicates_total", "provider" => provider.as_str())
                    .increment(1);
            }
        }
        Ok(receipt)
    }

    /// A worker running `handler` for every stored webhook; configure it,
    /// then [`spawn`](Worker::spawn) it.
    pub fn worker<H, Fut, E>(&self, handler: H) -> Worker
    where
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        Worker::new(self.clone(), handler)
    }

    /// The dead webhooks, oldest first, at most `limit` of them: those whose
    /// handler failed on every attempt.
    pub async fn dead(&self, limit: u32) -> Result<Vec<DeadWebhook>, InboxError> {
        let rows = self.store.dead(limit).await?;
        rows.into_iter().map(DeadRow::into_dead).collect()
    }

    /// Hands the dead webhook `id` to the workers again, with its attempts
    /// counted from zero; `false` if no dead webhook has that id.
    pub async fn replay(&self, id: i64) -> Result<bool, InboxError> {
        let replayed = self.store.replay(id, now_ms()).await?;
        if replayed {
            self.wake.notify_waiters();
        }
        Ok(replayed)
    }

    /// How many webhooks the inbox holds in each state, and how many
    /// duplicates of them it dropped.
    pub async fn stats(&self) -> Result<InboxStats, InboxError> {
        self.store.stats().await
    }

    /// Deletes the handled and superseded webhooks received longer than the
    /// [retention](Self::retention) ago, with their dedup keys; returns how
    /// many. Workers do this every few minutes.
    pub async fn purge(&self) -> Result<u64, InboxError> {
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        self.store.purge(now_ms().saturating_sub(retention)).await
    }
}

/// What [`Inbox::receive`] did with a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Stored, under this id.
    Stored {
        /// The webhook's id in the inbox.
        id: i64,
    },
    /// A delivery with the same dedup key is already stored, under this id.
    Duplicate {
        /// The first delivery's id in the inbox.
        id: i64,
    },
}

/// How many webhooks an inbox holds in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxStats {
    /// Waiting for a worker, now or after a failed attempt.
    pub pending: u64,
    /// Leased to a worker.
    pub processing: u64,
    /// Handled: the handler returned `Ok`.
    pub done: u64,
    /// Failed on every attempt.
    pub dead: u64,
    /// Not handled: a newer event about the same shipment was.
    pub superseded: u64,
    /// Deliveries dropped as duplicates of the webhooks it holds.
    pub duplicates: u64,
}

/// A webhook that failed on every attempt, as [`Inbox::dead`] lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadWebhook {
    /// Its id in the inbox, for [`Inbox::replay`].
    pub id: i64,
    /// The event.
    pub event: ShipmentEvent,
    /// The endpoint it was received on.
    pub endpoint: String,
    /// How many times it was handed to the handler.
    pub attempts: u32,
    /// The last error the handler returned.
    pub last_error: Option<String>,
    /// When it was received.
    pub received_at: OffsetDateTime,
}

/// A stored webhook handed to the worker's handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    id: i64,
    lease: i64,
    attempt: u32,
    endpoint: String,
    received_at: OffsetDateTime,
    webhook: VerifiedWebhook,
}

impl Delivery {
    /// Its id in the inbox.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Which attempt this is: 1 the first time; higher after an error, or
    /// after a worker died holding it.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The key retried deliveries share: record it with what the handler
    /// does, to do it once.
    pub fn dedup_key(&self) -> DedupKey {
        self.webhook.dedup_key()
    }

    /// The endpoint it was received on.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// When the receiver stored it.
    pub fn received_at(&self) -> OffsetDateTime {
        self.received_at
    }

    /// The normalized event.
    pub fn event(&self) -> &ShipmentEvent {
        self.webhook.event()
    }

    /// The verified webhook as stored: its event, the secret's label and
    /// tenant, the verified JSON.
    pub fn webhook(&self) -> &VerifiedWebhook {
        &self.webhook
    }

    /// The provider's typed payload, decoded from the stored JSON (see
    /// [`VerifiedWebhook::payload`]).
    pub fn payload<P: TypedPayload>(&self) -> Result<P, WebhookRejection> {
        self.webhook.payload()
    }
}

/// Why the inbox could not do what was asked: the store failed (a
/// database error, a lost connection, a full disk) or a row could not be
/// read back.
#[derive(Debug)]
pub struct InboxError(Box<dyn std::error::Error + Send + Sync>);

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for InboxError {
    fn from(error: sqlx::Error) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webhook inbox: {}", self.0)
    }
}

impl std::error::Error for InboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A webhook as the receiver stores it: one row.
#[derive(Debug)]
struct NewWebhook {
    provider: Provider,
    endpoint: String,
    /// The tenant, or `""`: part of the unique key, so never null.
    tenant: String,
    dedup_key: DedupKey,
    /// SHA-256 of the shipment's id: any id fits in an index (and a
    /// PostgreSQL column) as 32 bytes; the id itself is in `event`.
    shipment: [u8; 32],
    event: String,
    event_time: Option<i64>,
    final_status: bool,
    body: Bytes,
    provider_headers: Option<String>,
    secret_label: String,
    received_at: i64,
}

impl NewWebhook {
    fn new(webhook: &VerifiedWebhook, endpoint: &str) -> Result<Self, InboxError> {
        let event = webhook.event();
        Ok(Self {
            provider: event.provider,
            endpoint: endpoint.to_owned(),
            tenant: webhook.secret().tenant().unwrap_or_default().to_owned(),
            dedup_key: webhook.dedup_key(),
            shipment: Sha256::digest(&event.id).into(),
            event: serde_json::to_string(event).map_err(|error| InboxError(error.into()))?,
            event_time: event.timestamp.map(event_time),
            final_status: is_final(&event.status),
            body: webhook.json().clone(),
            provider_headers: webhook
                .smd_headers()
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|error| InboxError(error.into()))?,
            secret_label: webhook.secret().label().to_owned(),
            received_at: now_ms(),
        })
    }
}

/// A row a worker claimed, as the store reads it back.
#[derive(Debug)]
struct ClaimedRow {
    id: i64,
    lease: i64,
    attempts: i64,
    dedup_key: Vec<u8>,
    provider: String,
    endpoint: String,
    tenant: String,
    event: String,
    body: Bytes,
    provider_headers: Option<String>,
    secret_label: String,
    received_at: i64,
}

impl ClaimedRow {
    fn into_delivery(self) -> Result<Delivery, InboxError> {
        let bad = |what: &str| InboxError(format!("row {}: {what}", self.id).into());
        let event: ShipmentEvent =
            serde_json::from_str(&self.event).map_err(|_| bad("event is not a ShipmentEvent"))?;
        if event.provider.as_str() != self.provider {
            return Err(bad("event's provider differs from the row's"));
        }
        let key: [u8; 32] = self
            .dedup_key
            .as_slice()
            .try_into()
            .map_err(|_| bad("dedup key is not 32 bytes"))?;
        let headers: Option<ShipmondoHeaders> = self
            .provider_headers
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| bad("provider headers are not Shipmondo's"))?;
        let tenant = (!self.tenant.is_empty()).then(|| Arc::from(self.tenant));
        let secret = MatchedSecret::stored(Arc::from(self.secret_label), tenant);
        let webhook = VerifiedWebhook::stored(event, secret, self.body, headers, DedupKey(key));
        Ok(Delivery {
            id: self.id,
            lease: self.lease,
            attempt: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            endpoint: self.endpoint,
            received_at: from_ms(self.received_at),
            webhook,
        })
    }
}

/// What a claim took: deliveries for the handler, and the ids it marked
/// superseded. A row that cannot be read back is marked dead instead, for a
/// person to look at, rather than failing every claim.
#[derive(Debug, Default)]
struct Claimed {
    deliveries: Vec<Delivery>,
    superseded: Vec<i64>,
}

/// A dead row, as the store reads it back.
#[derive(Debug)]
struct DeadRow {
    id: i64,
    event: String,
    endpoint: String,
    attempts: i64,
    last_error: Option<String>,
    received_at: i64,
}

impl DeadRow {
    fn into_dead(self) -> Result<DeadWebhook, InboxError> {
        Ok(DeadWebhook {
            id: self.id,
            event: serde_json::from_str(&self.event)
                .map_err(|_| InboxError(format!("row {}: not a ShipmentEvent", self.id).into()))?,
            endpoint: self.endpoint,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            last_error: self.last_error,
            received_at: from_ms(self.received_at),
        })
    }
}

/// What a claim asks of the store.
#[derive(Debug, Clone, Copy)]
struct Claim {
    /// At most this many rows.
    limit: usize,
    now: i64,
    /// The lease's end for the rows claimed.
    lease_until: i64,
    /// Marks this claim's rows, so only its holder finishes them.
    lease: i64,
    /// A row whose lease ran out on this attempt is dead, not claimed again.
    max_attempts: u32,
    latest_wins: bool,
}

/// How a worker finished with a claimed row.
#[derive(Debug)]
enum Finish {
    /// The handler returned `Ok`.
    Done,
    /// The handler failed; try again at this time.
    Retry { at: i64, error: String },
    /// The handler failed on its last attempt.
    Dead { error: String },
    /// The worker stopped before the handler finished: not an attempt; due
    /// again at this time.
    Release { at: i64 },
}

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, InboxError>> + Send + 'a>>;

/// One store's SQL (or memory) for what the inbox does. All three give the
/// same answers to the same calls, which `tests/inbox` checks.
trait Store: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Inserts the row unless its (provider, endpoint, tenant, dedup key) is
    /// there, in which case it counts a duplicate on the row that is.
    fn insert(&self, row: NewWebhook) -> StoreFuture<'_, Receipt>;

    /// Marks dead the rows whose lease ran out on their last attempt, then
    /// claims up to `limit` rows that are due or whose lease ran out, at most
    /// one per shipment and none of a shipment already leased, oldest first;
    /// with `latest_wins`, a claimed row older than a handled one of its
    /// shipment is marked superseded instead of returned.
    fn claim(&self, claim: Claim) -> StoreFuture<'_, Claimed>;

    /// Pushes the lease of a row still held under `lease` to `until`.
    fn extend(&self, id: i64, lease: i64, until: i64) -> StoreFuture<'_, bool>;

    /// Finishes a row still held under `lease`; `false` if it is not (its
    /// lease ran out and another worker took it).
    fn finish(&self, id: i64, lease: i64, finish: Finish) -> StoreFuture<'_, bool>;

    fn dead(&self, limit: u32) -> StoreFuture<'_, Vec<DeadRow>>;

    fn replay(&self, id: i64, now: i64) -> StoreFuture<'_, bool>;

    fn stats(&self) -> StoreFuture<'_, InboxStats>;

    /// Deletes done and superseded rows received before `before`.
    fn purge(&self, before: i64) -> StoreFuture<'_, u64>;

    /// Starts waking this process's workers when another process stores a
    /// webhook (PostgreSQL's `NOTIFY`), where the store can tell.
    fn listen(&self) {}
}

/// The last error of a row whose lease ran out on its last attempt.
const LEASE_RAN_OUT: &str = "the worker's lease ran out on the last attempt";

/// How many due rows a claim of `limit` looks at: rows of one shipment
/// count once, so it looks further than it takes.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn candidates(limit: usize) -> i64 {
    i64::try_from(limit.saturating_mul(4).saturating_add(16)).unwrap_or(i64::MAX)
}

/// The statuses a shipment does not leave, for ordering events without a time.
fn is_final(status: &ShipmentStatus) -> bool {
    matches!(
        status,
        ShipmentStatus::Delivered | ShipmentStatus::Cancelled | ShipmentStatus::Returned
    )
}

/// An event's time as nanoseconds since the epoch, clamped to what `i64`
/// holds (the years 1677 to 2262).
fn event_time(time: OffsetDateTime) -> i64 {
    let nanos = time.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
