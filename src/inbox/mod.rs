//! A durable inbox: acknowledge a verified webhook once it is stored, drop
//! retried duplicates, keep the newest status per shipment, and process each
//! webhook with a worker that retries, with nothing lost across a crash.
//!
//! Needs the `inbox` feature (the in-memory store), `sqlite` or `postgres`
//! for a durable one.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use shipment_webhooks::KosmoSignature;
//! use shipment_webhooks::inbox::{BoxError, Delivery, Inbox};
//!
//! async fn handle(delivery: Delivery) -> Result<(), BoxError> {
//!     let event = delivery.event();
//!     println!("{} {} is {}", event.provider, event.id, event.status);
//!     Ok(())
//! }
//!
//! # #[cfg(feature = "sqlite")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let inbox = Inbox::sqlite("webhooks.db").await?;
//! let worker = inbox.worker(handle).spawn();
//! let app = Router::new().route(
//!     "/webhooks/kosmo",
//!     post(inbox.receiver()).route_layer(KosmoSignature::new("whk_...")),
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
//!   leased: if its worker dies, it is handed out again once the lease has
//!   ended, at the next sweep of lost leases (every worker sweeps, every
//!   [poll interval](Worker::poll_interval)); its shipment's later webhooks
//!   wait for it.
//!   So a handler may see a webhook again after a crash, with a higher
//!   [`attempt`](Delivery::attempt) and the same
//!   [`dedup_key`](Delivery::dedup_key): those it was running, and those it
//!   had handled whose outcomes were not recorded yet (outcomes are
//!   recorded many to a transaction, as they come; a worker holds at most
//!   its [batch](Worker::batch_size) of webhooks claimed and not recorded). Make it idempotent with the key
//!   (the attempt can repeat if the database itself crashes: claims and
//!   outcomes commit without waiting for the disk), or write the handler's
//!   effects in the transaction that marks the webhook handled
//!   ([`Delivery::mark_done_in`]): then they happen exactly once. Webhooks
//!   about one shipment are never handled at once while their leases hold,
//!   and are handed out oldest first: a claim takes each shipment's due
//!   webhooks together, and the worker runs them one after another in one
//!   of its slots. One waiting out a retry's backoff does not hold back the
//!   later ones (latest wins then supersedes it if a newer one was
//!   handled). An attempt running past [`Worker::handler_timeout`] counts
//!   as failed.
//! - **The newest status wins.** With [`Inbox::latest_wins`] (on by
//!   default), a webhook about a shipment whose newer event was already
//!   handled is marked `superseded` instead. A shipment is what the
//!   provider's id names, per provider, endpoint and tenant: where a
//!   provider numbers other resources apart (Shipmondo's orders), those are
//!   shipments of their own. "Newer" is by the provider's
//!   signed time (Kosmo, Kourier, Shipmondo); where either event has no time
//!   (GoShiip), a shipment that reached a final status (delivered,
//!   cancelled, returned) never goes back to a status that is not final.
//!   Events with equal times are both handled. GoShiip's body is its dedup
//!   key, so a status GoShiip sends again after another (In Progress, Picked
//!   Up, In Progress) is a duplicate of the first: its last status is lost.
//!   What is newest is remembered per shipment past the purge of its rows
//!   ([`Inbox::shipment_retention`]): the newest signed time, whether a
//!   final status was handled, and the newest event's dedup key, so a
//!   captured webhook replayed after the [retention](Inbox::retention), as
//!   sent or with an unsigned field changed, is superseded, not handled.
//! - **No shipment holds back another.** A claim passes over the rows of a
//!   shipment that is being handled, so a shipment with a long queue or a
//!   hung handler never delays another's due webhook while a worker slot is
//!   free: its webhooks take one slot, in order, and the next claim reads
//!   past them. Across workers sharing an inbox, a claim keeps up to a
//!   [batch](Worker::batch_size) for its own worker's slots: with slow
//!   handlers, keep the batch near the concurrency.
//!
//! # Stores
//!
//! | store | feature | for |
//! |---|---|---|
//! | [`Inbox::in_memory`] | `inbox` | tests and single-process apps: **not durable**, a stopped process loses it all |
//! | [`Inbox::sqlite`] | `sqlite` | the embedded default: one file, WAL, `synchronous=FULL` |
//! | [`Inbox::postgres`] | `postgres` | several instances sharing one database |
//!
//! The SQL stores' tables carry a schema version (now 5). Opening a database
//! an older version of this crate wrote migrates it in place, in one
//! transaction, keeping every row; one a newer version wrote is refused with
//! [`InboxError::NewerSchema`] and left untouched. Upgrade every instance
//! sharing a database together: rows an instance of the previous version
//! stores after the migration are still read (their provider headers in the
//! old shape), but that instance reads the provider headers of rows the new
//! one stored as absent. Check
//! [`InboxError::is_transient`] to tell an outage from a lasting fault.
//!
//! The stores keep their times in milliseconds since the epoch from the
//! clock of the process that writes them; instances sharing a PostgreSQL
//! database need clocks in step (NTP) to within a small part of the
//! [lease](Worker::lease).

#[cfg(feature = "admin")]
mod admin;
mod error;
mod history;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod receiver;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

/// The sqlx this crate's stores are built on, so that the pool you give
/// [`Inbox::postgres_pool`] and the transactions you give
/// [`Delivery::mark_done_in`] have its types, whatever sqlx your own
/// `Cargo.toml` names. Needs the `sqlite` or `postgres` feature.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sqlx;
#[cfg(test)]
mod tests;
mod worker;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::{DedupKey, Provider, ShipmentEvent, TypedPayload, VerifiedWebhook, WebhookRejection};
use store::{NewWebhook, Purge, RowFilter, Store, now_ms};

#[cfg(feature = "admin")]
pub use admin::AdminAccess;
pub use error::InboxError;
pub use history::{
    Attempt, AttemptOutcome, Filter, MAX_PAGE, Minute, Page, UnknownState, WebhookDetail,
    WebhookState, WebhookSummary,
};
pub use receiver::{DEFAULT_RECEIVE_TIMEOUT, InboxReceiver, ReceiverFuture};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteSync;
pub use worker::{BoxError, RunStats, Worker, WorkerHandle};

/// How long handled webhooks, and with them their dedup keys, are kept by
/// default: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long dead webhooks are kept by default, for a person to look at: 30 days.
pub const DEFAULT_DEAD_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How long a shipment's newest handled event is remembered for latest wins
/// by default, counted from the last one handled: 365 days.
pub const DEFAULT_SHIPMENT_RETENTION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The durable inbox: a store, with what the receiver and the worker share.
/// Cloning it is cheap, and clones share the store.
#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn Store>,
    /// Wakes this process's workers when a webhook is stored or replayed.
    wake: Arc<Notify>,
    retention: Duration,
    dead_retention: Duration,
    shipment_retention: Duration,
    latest_wins: bool,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("store", &self.store.name())
            .field("retention", &self.retention)
            .field("dead_retention", &self.dead_retention)
            .field("shipment_retention", &self.shipment_retention)
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
            dead_retention: DEFAULT_DEAD_RETENTION,
            shipment_retention: DEFAULT_SHIPMENT_RETENTION,
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
    ///
    /// Needs the `sqlite` feature.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn sqlite(path: impl AsRef<std::path::Path>) -> Result<Self, InboxError> {
        Self::sqlite_with(path, SqliteSync::Full).await
    }

    /// An inbox in the SQLite file at `path`, with the given durability.
    ///
    /// Needs the `sqlite` feature.
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
    ///
    /// Needs the `postgres` feature.
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
    ///
    /// Needs the `postgres` feature.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres_pool(pool: sqlx::PgPool) -> Result<Self, InboxError> {
        let wake = Arc::new(Notify::new());
        let store = postgres::PgStore::open(pool, Arc::clone(&wake)).await?;
        Ok(Self::with_store(store, wake))
    }

    /// How long a webhook handled (or superseded) is kept, and with it its
    /// dedup key, counted from when it was received: 7 days by default. A
    /// delivery sent again after that is stored again; latest wins still
    /// supersedes it if its shipment has handled a newer event (see
    /// [`shipment_retention`](Self::shipment_retention)).
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long a dead webhook is kept, counted from when it was received:
    /// 30 days by default, so that someone can look at it and replay it.
    #[must_use]
    pub fn dead_retention(mut self, retention: Duration) -> Self {
        self.dead_retention = retention;
        self
    }

    /// How long latest wins remembers a shipment's newest handled event
    /// (its signed time, and whether a final status was handled) after the
    /// last one, past the purge of the webhooks themselves: 365 days by
    /// default. A captured webhook replayed within it is superseded, not
    /// handled, whatever the [retention](Self::retention).
    #[must_use]
    pub fn shipment_retention(mut self, retention: Duration) -> Self {
        self.shipment_retention = retention;
        self
    }

    /// Whether a webhook older than one already handled for the same
    /// shipment is marked `superseded` instead of handled (on by default).
    #[must_use]
    pub fn latest_wins(mut self, on: bool) -> Self {
        self.latest_wins = on;
        self
    }

    /// The axum handler and Tower service that stores the
    /// [`VerifiedWebhook`] a verifying layer put in the request and answers
    /// 200 once it is committed; see [`InboxReceiver`]. Route it with `post`
    /// (or `post_service`), behind the provider's layer:
    ///
    /// ```
    /// # use axum::{Router, routing::post};
    /// # use shipment_webhooks::{KosmoSignature, inbox::Inbox};
    /// let inbox = Inbox::in_memory();
    /// let app: Router = Router::new().route(
    ///     "/webhooks/kosmo",
    ///     post(inbox.receiver()).route_layer(KosmoSignature::new("whk_...")),
    /// );
    /// ```
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
        let shipment = webhook.event().id.as_str();
        match receipt {
            Receipt::Stored { id } => {
                tracing::debug!(provider = provider.as_str(), shipment, id, "webhook stored");
                self.wake.notify_waiters();
            }
            Receipt::Duplicate { id } => {
                tracing::debug!(provider = provider.as_str(), shipment, id, %key, "duplicate webhook dropped");
                #[cfg(feature = "metrics")]
                metrics::counter!("shipment_webhooks_duplicates_total", "provider" => provider.as_str())
                    .increment(1);
            }
        }
        Ok(receipt)
    }

    /// A worker running `handler` for every stored webhook; configure it,
    /// then [`spawn`](Worker::spawn) it.
    ///
    /// The handler returns `Result<(), BoxError>`: an `Err` is retried
    /// with backoff, its text recorded as the attempt's error. `?` turns any
    /// error into a [`BoxError`], `"text".into()` a message, and a closure
    /// that only returns `Ok(())` needs no annotation:
    ///
    /// ```
    /// use shipment_webhooks::inbox::{Delivery, Inbox};
    ///
    /// let inbox = Inbox::in_memory();
    /// let never_fails = inbox.worker(|delivery: Delivery| async move {
    ///     println!("{}", delivery.event().status);
    ///     Ok(())
    /// });
    /// let may_fail = inbox.worker(|delivery: Delivery| async move {
    ///     std::fs::write("last-status", delivery.event().status.as_str())?;
    ///     if delivery.attempt() > 3 {
    ///         return Err("still failing after three attempts".into());
    ///     }
    ///     Ok(())
    /// });
    /// # drop((never_fails, may_fail));
    /// ```
    pub fn worker<H, Fut>(&self, handler: H) -> Worker
    where
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        Worker::new(self.clone(), handler)
    }

    /// The dead webhooks, oldest first, at most `limit` of them: those whose
    /// handler failed on every attempt.
    ///
    /// Each comes with its payload, dedup key and every attempt, read in two
    /// queries whatever `limit` is (the rows, then all their attempts).
    /// Every body is held in memory at once: page through many with
    /// [`list`](Self::list) instead, and [`get`](Self::get) those to look at.
    pub async fn dead(&self, limit: u32) -> Result<Vec<DeadWebhook>, InboxError> {
        self.store
            .dead(limit)
            .await?
            .into_iter()
            .map(store::DeadRow::into_dead)
            .collect()
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

    /// Hands those of `ids` that are dead to the workers again, as
    /// [`replay`](Self::replay) does, in one transaction; how many were dead.
    pub async fn replay_many(&self, ids: &[i64]) -> Result<u64, InboxError> {
        let replayed = self.store.replay_many(ids.to_vec(), now_ms()).await?;
        if replayed > 0 {
            self.wake.notify_waiters();
        }
        Ok(replayed)
    }

    /// Replays every dead webhook `filter` matches, whatever its state,
    /// cursor and limit say; how many.
    pub async fn replay_dead(&self, filter: &Filter) -> Result<u64, InboxError> {
        let mut filter = RowFilter::new(filter);
        filter.state = Some(WebhookState::Dead.as_str());
        let replayed = self.store.replay_matching(filter, now_ms()).await?;
        if replayed > 0 {
            self.wake.notify_waiters();
        }
        Ok(replayed)
    }

    /// A page of the webhooks `filter` matches, by id: pass
    /// [`Page::next`] to [`Filter::after`] for the next one. A cursor rather
    /// than an offset: rows stored or purged meanwhile neither repeat nor
    /// skip a webhook.
    pub async fn list(&self, filter: &Filter) -> Result<Page, InboxError> {
        let mut rows = RowFilter::new(filter);
        let limit = rows.limit;
        rows.limit += 1;
        let mut listed = self.store.list(rows).await?;
        let more = listed.len() as i64 > limit;
        listed.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let webhooks = listed
            .into_iter()
            .map(store::ListedRow::into_summary)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more {
            webhooks.last().map(|webhook| webhook.id)
        } else {
            None
        };
        Ok(Page { webhooks, next })
    }

    /// Webhook `id` whole: its stored body and headers, dedup key, event and
    /// every attempt; `None` if the inbox has no webhook with that id.
    pub async fn get(&self, id: i64) -> Result<Option<WebhookDetail>, InboxError> {
        self.store
            .get(id)
            .await?
            .map(store::DetailRow::into_detail)
            .transpose()
    }

    /// Deletes webhook `id`, with its attempts, if it is dead or pending (a
    /// webhook being handled, handled or superseded is left alone:
    /// `false`). Deleted, not marked: its dedup key goes with it, so the
    /// provider's next retry of it is stored again.
    pub async fn discard(&self, id: i64) -> Result<bool, InboxError> {
        self.store.discard(id).await
    }

    /// How many webhooks the inbox holds in each state, and how many
    /// duplicates of them it dropped.
    pub async fn stats(&self) -> Result<InboxStats, InboxError> {
        self.store.stats().await
    }

    /// What the last hour saw, minute by minute: 60 [`Minute`]s, oldest
    /// first, the last the minute now is in (so far). Webhooks received by
    /// the time they were stored; handled and failed attempts by the time
    /// they ended. One query; the admin page charts it.
    pub async fn last_hour(&self) -> Result<Vec<Minute>, InboxError> {
        const MINUTE: i64 = 60_000;
        let now = now_ms();
        let from = (now.div_euclid(MINUTE) - 59) * MINUTE;
        let mut minutes: Vec<Minute> = (0..60)
            .map(|minute| Minute {
                start: store::from_ms(from + minute * MINUTE),
                received: 0,
                handled: 0,
                failed: 0,
            })
            .collect();
        for counts in self.store.per_minute(from, from + 60 * MINUTE).await? {
            if let Some(minute) = usize::try_from(counts.minute)
                .ok()
                .and_then(|at| minutes.get_mut(at))
            {
                minute.received += counts.received;
                minute.handled += counts.handled;
                minute.failed += counts.failed;
            }
        }
        Ok(minutes)
    }

    /// The webhooks not handled yet, by provider: how many are pending,
    /// processing and dead, and when the oldest pending one was received.
    /// Providers with none of them are left out; the order is
    /// [`Provider::ALL`]'s. One query, which the workers run for the
    /// `metrics` gauges (see [`Worker::gauge_interval`]).
    pub async fn backlog(&self) -> Result<Vec<Backlog>, InboxError> {
        let mut backlog = self.store.backlog().await?;
        backlog.sort_by_key(|row| Provider::ALL.iter().position(|p| *p == row.provider));
        Ok(backlog)
    }

    /// Deletes the handled and superseded webhooks received longer than the
    /// [retention](Self::retention) ago, with their dedup keys, the dead ones
    /// past the [dead retention](Self::dead_retention), and what latest wins
    /// remembers of shipments past the
    /// [shipment retention](Self::shipment_retention); returns how many
    /// webhooks. Workers do this every few minutes.
    pub async fn purge(&self) -> Result<u64, InboxError> {
        let now = now_ms();
        let before = |retention: Duration| {
            now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
        };
        self.store
            .purge(Purge {
                handled_before: before(self.retention),
                dead_before: before(self.dead_retention),
                shipments_before: before(self.shipment_retention),
            })
            .await
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

/// One provider's webhooks not handled yet, as [`Inbox::backlog`] counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backlog {
    /// Whose webhooks these are.
    pub provider: Provider,
    /// Waiting for a worker, now or after a failed attempt.
    pub pending: u64,
    /// Leased to a worker.
    pub processing: u64,
    /// Failed on every attempt.
    pub dead: u64,
    /// When the oldest pending one was received; `None` if none is.
    pub oldest_pending_at: Option<OffsetDateTime>,
}

impl Backlog {
    pub(super) fn empty(provider: Provider) -> Self {
        Self {
            provider,
            pending: 0,
            processing: 0,
            dead: 0,
            oldest_pending_at: None,
        }
    }

    /// How long the oldest pending webhook has waited at `now`: zero if
    /// none is pending (or the clock went back).
    pub fn oldest_pending_age(&self, now: OffsetDateTime) -> Duration {
        self.oldest_pending_at
            .and_then(|at| Duration::try_from(now - at).ok())
            .unwrap_or_default()
    }
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
    /// The key its retried deliveries share (always given by
    /// [`Inbox::dead`]).
    pub dedup_key: Option<DedupKey>,
    /// The verified body, as received.
    pub body: bytes::Bytes,
    /// Every attempt, oldest first.
    pub history: Vec<Attempt>,
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
    /// Set once the handler marked it handled in a transaction of its own,
    /// so the worker does not record it again.
    marked: Arc<AtomicBool>,
    /// The shipment it is about, whose webhooks a worker handles in order.
    shipment: store::Shipment,
    /// Made by the testing kit, with no inbox row: marking it writes nothing.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    for_test: bool,
}

impl Delivery {
    /// A delivery with no inbox row behind it, for
    /// [`testing::DeliveryBuilder`](crate::testing::DeliveryBuilder). Its
    /// webhook is a verified one: nothing forges a `VerifiedWebhook`.
    #[cfg(feature = "testing")]
    pub(crate) fn for_test(
        webhook: VerifiedWebhook,
        id: i64,
        attempt: u32,
        endpoint: String,
        received_at: OffsetDateTime,
    ) -> Self {
        let event = webhook.event();
        // No worker sees it: its shipment only has to be one.
        let shipment = (
            event.provider,
            endpoint.clone(),
            webhook.secret().tenant().unwrap_or_default().to_owned(),
            store::shipment_key(&webhook),
        );
        Self {
            id,
            lease: 0,
            attempt,
            endpoint,
            received_at,
            webhook,
            marked: Arc::default(),
            shipment,
            for_test: true,
        }
    }

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

    /// Marks this webhook handled within the caller's transaction on the
    /// inbox's own database, so that the handler's writes and the mark
    /// commit together or not at all: exactly-once effects. `Ok(false)` if
    /// this worker no longer holds it (its lease ran out and another took
    /// it): roll the transaction back then.
    ///
    /// ```no_run
    /// # async fn handle(delivery: shipment_webhooks::inbox::Delivery, pool: sqlx::PgPool)
    /// #     -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO shipment_status (id, status) VALUES ($1, $2) \
    ///              ON CONFLICT (id) DO UPDATE SET status = excluded.status")
    ///     .bind(&delivery.event().id)
    ///     .bind(delivery.event().status.as_str())
    ///     .execute(&mut *tx)
    ///     .await?;
    /// if !delivery.mark_done_in(&mut *tx).await? {
    ///     return Err("lease lost: another worker has this webhook".into()); // rolls back
    /// }
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The transaction must be on the database the inbox is in (on
    /// PostgreSQL, in the schema it uses). If it does not commit, the
    /// webhook is handed out again once its lease runs out, with the
    /// handler's writes rolled back with it. Once it has marked the webhook,
    /// the worker records nothing more for it, whatever the handler returns,
    /// and takes it as handled: a transaction rolled back after the mark
    /// leaves the webhook to be handed out again when its lease ends, after
    /// its shipment's later webhooks of the same claim.
    ///
    /// On a delivery the testing kit made
    /// ([`testing::DeliveryBuilder`](crate::testing::DeliveryBuilder)),
    /// there is no row to mark: it writes nothing on `connection` and
    /// returns `Ok(true)`, so a handler under test commits its own writes.
    ///
    /// Needs the `sqlite` or `postgres` feature.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    pub async fn mark_done_in(
        &self,
        connection: &mut impl InboxConnection,
    ) -> Result<bool, InboxError> {
        let marked = self.for_test || connection.mark_done(self.id, self.lease).await?;
        if marked {
            self.marked
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(marked)
    }
}

/// A connection to the inbox's database, in the handler's transaction, for
/// [`Delivery::mark_done_in`]: sqlx's `PgConnection` or `SqliteConnection`
/// (a `Transaction` dereferences to one: `&mut *tx`).
///
/// Sealed: implemented for those two only. Needs the `sqlite` or `postgres`
/// feature.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub trait InboxConnection: sealed::Sealed + Send {
    #[doc(hidden)]
    /// Marks row `id` handled if still held under `lease`.
    fn mark_done(&mut self, id: i64, lease: i64) -> store::StoreFuture<'_, bool>;
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sealed {
    pub trait Sealed {}
}

/// What [`InboxConnection`] does on either database, written once.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! inbox_connection {
    ($connection:ty) => {
        impl sealed::Sealed for $connection {}

        impl InboxConnection for $connection {
            fn mark_done(&mut self, id: i64, lease: i64) -> store::StoreFuture<'_, bool> {
                Box::pin(async move {
                    let marked = sqlx::query(sql::DONE)
                        .bind(id)
                        .bind(lease)
                        .execute(self)
                        .await?;
                    Ok(marked.rows_affected() > 0)
                })
            }
        }
    };
}

#[cfg(feature = "postgres")]
inbox_connection!(sqlx::PgConnection);
#[cfg(feature = "sqlite")]
inbox_connection!(sqlx::SqliteConnection);
