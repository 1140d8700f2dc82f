//! What an operator reads of the inbox: webhooks listed by a [`Filter`], one
//! webhook's detail with every [`Attempt`], and the states they are in.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::{DedupKey, Provider, ShipmentEvent};

/// The most webhooks one [`Page`] holds: 1000.
pub const MAX_PAGE: u32 = 1000;

/// Where a webhook is in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WebhookState {
    /// Waiting for a worker, now or after a failed attempt.
    Pending,
    /// Leased to a worker.
    Processing,
    /// Handled: the handler returned `Ok`.
    Done,
    /// Failed on every attempt.
    Dead,
    /// Not handled: a newer event about its shipment was.
    Superseded,
}

impl WebhookState {
    /// Every state, in the order a webhook goes through them.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Processing,
        Self::Done,
        Self::Dead,
        Self::Superseded,
    ];

    /// Its name, as stored and as the command line takes it: `pending`,
    /// `processing`, `done`, `dead`, `superseded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Superseded => "superseded",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

impl fmt::Display for WebhookState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`WebhookState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown state {:?}: one of pending, processing, done, dead, superseded",
            self.0
        )
    }
}

impl std::error::Error for UnknownState {}

impl FromStr for WebhookState {
    type Err = UnknownState;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::parse(name).ok_or_else(|| UnknownState(name.to_owned()))
    }
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The handler returned `Ok`. (A webhook the handler marked handled in
    /// its own transaction, [`Delivery::mark_done_in`](super::Delivery::mark_done_in),
    /// has no attempt recorded for that: the commit was the handler's.)
    Handled,
    /// The handler returned an error, or panicked; retried later.
    Failed,
    /// The handler failed on the last attempt: the webhook is dead.
    Dead,
    /// The handler ran past [`Worker::handler_timeout`](super::Worker::handler_timeout).
    TimedOut,
    /// The worker's lease ran out before it recorded an outcome (it died,
    /// or stalled): the webhook was handed out again, or, on the last
    /// attempt, marked dead.
    LeaseLost,
    /// Not handled: a newer event of its shipment was handled first.
    Superseded,
}

impl AttemptOutcome {
    /// Its name, as stored: `handled`, `failed`, `dead`, `timed_out`,
    /// `lease_lost`, `superseded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::TimedOut => "timed_out",
            Self::LeaseLost => "lease_lost",
            Self::Superseded => "superseded",
        }
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(super) fn parse(name: &str) -> Option<Self> {
        [
            Self::Handled,
            Self::Failed,
            Self::Dead,
            Self::TimedOut,
            Self::LeaseLost,
            Self::Superseded,
        ]
        .into_iter()
        .find(|outcome| outcome.as_str() == name)
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt at a webhook, kept with it until it is purged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// 1 for the first; counted from 1 again after a replay.
    pub number: u32,
    /// When the handler started on it; `None` where the worker's lease ran
    /// out, whose start no one recorded.
    pub started_at: Option<OffsetDateTime>,
    /// When its outcome was known (for a lost lease, when the lease ended).
    pub ended_at: OffsetDateTime,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// The handler's error, at most 2048 bytes (longer ones are cut at a
    /// character boundary and end with `…`).
    pub error: Option<String>,
}

/// Which webhooks [`Inbox::list`](super::Inbox::list) and
/// [`Inbox::replay_dead`](super::Inbox::replay_dead) take: those matching
/// every field set. Build it with the methods; `Filter::default()` matches
/// every webhook, 100 a page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filter {
    /// Only webhooks in this state.
    pub state: Option<WebhookState>,
    /// Only this provider's.
    pub provider: Option<Provider>,
    /// Only those received on this endpoint.
    pub endpoint: Option<String>,
    /// Only this tenant's.
    pub tenant: Option<String>,
    /// Only those about the shipment with this id, as the event names it
    /// ([`ShipmentEvent::id`](crate::ShipmentEvent::id)), whatever it
    /// numbers: where a provider numbers other resources apart from
    /// shipments (orders, transactions, batches, integrations, messages:
    /// see each provider's docs), `123` matches the shipment 123 and each
    /// of those numbered 123, and
    /// `order:123` (also `transaction:`, `batch:`, `integration:`,
    /// `message:`) only the one of that kind. Every provider's: add
    /// [`provider`](Self::provider) for one. Matched through the shipment
    /// index, not by reading every event.
    pub shipment: Option<String>,
    /// Only those received at or after this time.
    pub received_from: Option<OffsetDateTime>,
    /// Only those received before this time.
    pub received_until: Option<OffsetDateTime>,
    /// The page after this id: [`Page::next`] of the previous page.
    pub after: Option<i64>,
    /// At most this many a page (1 to [`MAX_PAGE`]; 100 by default).
    pub limit: u32,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            state: None,
            provider: None,
            endpoint: None,
            tenant: None,
            shipment: None,
            received_from: None,
            received_until: None,
            after: None,
            limit: 100,
        }
    }
}

impl Filter {
    /// Only webhooks in `state`.
    #[must_use]
    pub fn state(mut self, state: WebhookState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only `provider`'s webhooks.
    #[must_use]
    pub fn provider(mut self, provider: Provider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Only webhooks received on `endpoint`.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Only `tenant`'s webhooks.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Only webhooks about shipment `id`, in any scope, or `scope:id` in
    /// one (see [`shipment`](Self#structfield.shipment)).
    #[must_use]
    pub fn shipment(mut self, id: impl Into<String>) -> Self {
        self.shipment = Some(id.into());
        self
    }

    /// Only webhooks received in `from..until`.
    #[must_use]
    pub fn received(mut self, from: Option<OffsetDateTime>, until: Option<OffsetDateTime>) -> Self {
        self.received_from = from;
        self.received_until = until;
        self
    }

    /// The page after id `after`.
    #[must_use]
    pub fn after(mut self, after: i64) -> Self {
        self.after = Some(after);
        self
    }

    /// At most `limit` webhooks a page (clamped to 1 to [`MAX_PAGE`]).
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_PAGE);
        self
    }
}

/// A page of webhooks, oldest (lowest id) first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page {
    /// The webhooks.
    pub webhooks: Vec<WebhookSummary>,
    /// The cursor of the next page ([`Filter::after`]), or `None` on the last.
    pub next: Option<i64>,
}

/// A stored webhook as [`Inbox::list`](super::Inbox::list) shows it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookSummary {
    /// Its id in the inbox.
    pub id: i64,
    /// Who sent it.
    pub provider: Provider,
    /// The endpoint it was received on.
    pub endpoint: String,
    /// The tenant it was received for.
    pub tenant: Option<String>,
    /// Where it is.
    pub state: WebhookState,
    /// The normalized event.
    pub event: ShipmentEvent,
    /// How many times it was handed to the handler since it was stored or
    /// last replayed.
    pub attempts: u32,
    /// The last error the handler returned.
    pub last_error: Option<String>,
    /// When it was stored.
    pub received_at: OffsetDateTime,
    /// How many deliveries of it were dropped as duplicates.
    pub duplicates: u64,
}

/// A stored webhook whole, as [`Inbox::get`](super::Inbox::get) reads it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookDetail {
    /// What the list shows.
    pub summary: WebhookSummary,
    /// The key its retried deliveries share.
    pub dedup_key: DedupKey,
    /// The verified body, as received.
    pub body: Bytes,
    /// The provider's headers kept with it (names to values), if any.
    pub headers: BTreeMap<String, String>,
    /// The label of the secret that verified it.
    pub secret_label: String,
    /// Every attempt, oldest first.
    pub history: Vec<Attempt>,
}

/// What happened in one minute, as [`Inbox::last_hour`](super::Inbox::last_hour)
/// counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Minute {
    /// When the minute began (on the clock's minute).
    pub start: OffsetDateTime,
    /// Webhooks stored in it (duplicates dropped are not counted).
    pub received: u64,
    /// Attempts that ended in it with the handler returning `Ok`.
    pub handled: u64,
    /// Attempts that ended in it failed, dead or timed out (a lost lease is
    /// not counted: it is no handler's outcome).
    pub failed: u64,
}
