//! The private protocol between the inbox and its stores: the row the
//! receiver stores, what a claim asks and returns, how a worker finishes a
//! row, and the [`Store`] trait each backend implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{
    Attempt, AttemptOutcome, Backlog, DeadWebhook, Delivery, Filter, InboxError, InboxStats,
    Receipt, WebhookDetail, WebhookState, WebhookSummary,
};
use crate::webhook::{DedupKey, ProviderHeaders, SHIPMENT_SCOPES};
use crate::{MatchedSecret, Provider, ShipmentEvent, ShipmentStatus, VerifiedWebhook};

/// A webhook as the receiver stores it: one row.
#[derive(Debug)]
pub(super) struct NewWebhook {
    pub(super) provider: Provider,
    pub(super) endpoint: String,
    /// The tenant, or `""`: part of the unique key, so never null.
    pub(super) tenant: String,
    pub(super) dedup_key: DedupKey,
    /// SHA-256 of the shipment's id: any id fits in an index (and a
    /// PostgreSQL column) as 32 bytes; the id itself is in `event`.
    pub(super) shipment: [u8; 32],
    pub(super) event: String,
    pub(super) event_time: Option<i64>,
    pub(super) final_status: bool,
    pub(super) body: Bytes,
    pub(super) provider_headers: Option<String>,
    pub(super) secret_label: String,
    pub(super) received_at: i64,
}

impl NewWebhook {
    /// The row for `webhook` received on `endpoint`. Its shipment key is
    /// SHA-256 of the id, or, for an id the provider scoped
    /// ([`VerifiedWebhook::with_shipment_scope`]), of the scope, a NUL and
    /// the id: ids of different kinds of resource never share a shipment,
    /// and unscoped ids keep the key rows had before scopes existed.
    pub(super) fn new(webhook: &VerifiedWebhook, endpoint: &str) -> Result<Self, InboxError> {
        let event = webhook.event();
        let shipment = shipment_key(webhook);
        Ok(Self {
            provider: event.provider,
            endpoint: endpoint.to_owned(),
            tenant: webhook.secret().tenant().unwrap_or_default().to_owned(),
            dedup_key: webhook.dedup_key(),
            shipment,
            event: serde_json::to_string(event).map_err(InboxError::InvalidEvent)?,
            event_time: event.timestamp.map(event_time),
            final_status: is_final(&event.status),
            body: webhook.json().clone(),
            provider_headers: webhook.headers().map(ProviderHeaders::to_json),
            secret_label: webhook.secret().label().to_owned(),
            received_at: now_ms(),
        })
    }
}

/// A webhook's shipment key: SHA-256 of its event's id, or of its scope, a
/// NUL and the id (see [`NewWebhook::new`]).
pub(super) fn shipment_key(webhook: &VerifiedWebhook) -> [u8; 32] {
    scoped_key(webhook.shipment_scope(), &webhook.event().id)
}

fn scoped_key(scope: Option<&str>, id: &str) -> [u8; 32] {
    match scope {
        None => Sha256::digest(id).into(),
        Some(scope) => Sha256::new()
            .chain_update(scope)
            .chain_update([0])
            .chain_update(id)
            .finalize()
            .into(),
    }
}

/// How many shipment keys a shipment filter tries: the id unscoped, in each
/// scope, and as `scope:id`.
pub(super) const SHIPMENT_KEYS: usize = SHIPMENT_SCOPES.len() + 2;

/// The keys of the shipments `filter` (a [`Filter::shipment`]) names: the
/// id unscoped and in every scope, and, for `scope:id` with a known scope,
/// that id in that scope (the last key repeats the first otherwise).
pub(super) fn shipment_keys(filter: &str) -> [[u8; 32]; SHIPMENT_KEYS] {
    let mut keys = [scoped_key(None, filter); SHIPMENT_KEYS];
    for (key, scope) in keys[1..].iter_mut().zip(SHIPMENT_SCOPES) {
        *key = scoped_key(Some(scope), filter);
    }
    if let Some((scope, id)) = filter.split_once(':')
        && SHIPMENT_SCOPES.contains(&scope)
    {
        keys[SHIPMENT_KEYS - 1] = scoped_key(Some(scope), id);
    }
    keys
}

/// Which shipment a row is about, as latest wins and leasing group rows:
/// provider, endpoint, tenant and the hash of the shipment's id.
pub(super) type Shipment = (Provider, String, String, [u8; 32]);

/// A row a worker claimed, as the store reads it back.
#[derive(Debug)]
pub(super) struct ClaimedRow {
    pub(super) id: i64,
    pub(super) shipment: Vec<u8>,
    pub(super) lease: i64,
    pub(super) attempts: i64,
    pub(super) dedup_key: Vec<u8>,
    pub(super) provider: String,
    pub(super) endpoint: String,
    pub(super) tenant: String,
    pub(super) event: String,
    pub(super) body: Bytes,
    pub(super) provider_headers: Option<String>,
    pub(super) secret_label: String,
    pub(super) received_at: i64,
}

impl ClaimedRow {
    pub(super) fn into_delivery(self) -> Result<Delivery, InboxError> {
        let id = self.id;
        let bad = |reason: &str| InboxError::CorruptRow {
            id,
            reason: reason.to_owned(),
        };
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
        let shipment: [u8; 32] = self
            .shipment
            .as_slice()
            .try_into()
            .map_err(|_| bad("shipment is not 32 bytes"))?;
        let headers = match self.provider_headers.as_deref() {
            // A row an instance of the previous version stored after the
            // migration has its headers in schema 1's shape.
            Some(json) => Some(
                crate::providers::headers_of_schema_1(&self.provider, json)
                    .or_else(|| ProviderHeaders::from_json(json))
                    .ok_or_else(|| {
                        bad("provider headers are not a JSON object of names to text")
                    })?,
            ),
            None => None,
        };
        let shipment = (event.provider, self.endpoint.clone(), self.tenant, shipment);
        let tenant = (!shipment.2.is_empty()).then(|| Arc::from(shipment.2.as_str()));
        let secret = MatchedSecret::stored(Arc::from(self.secret_label), tenant);
        let webhook = VerifiedWebhook::stored(event, secret, self.body, headers, DedupKey(key));
        Ok(Delivery {
            marked: Arc::default(),
            id: self.id,
            lease: self.lease,
            attempt: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            endpoint: self.endpoint,
            received_at: from_ms(self.received_at),
            webhook,
            shipment,
            for_test: false,
        })
    }
}

/// What a claim took: deliveries for the handler, oldest first, and the ids
/// it marked superseded. A row that cannot be read back is marked dead
/// instead, for a person to look at, rather than failing every claim.
#[derive(Debug, Default)]
pub(super) struct Claimed {
    pub(super) deliveries: Vec<Delivery>,
    pub(super) superseded: Vec<NamedRow>,
    /// Whether it took as many rows as it could: more may be due.
    pub(super) full: bool,
}

/// A row a claim marked superseded, or a sweep marked dead: its id,
/// provider and event, for the log line and the counter.
#[derive(Debug)]
pub(super) struct NamedRow {
    pub(super) id: i64,
    pub(super) provider: String,
    /// The event as stored (JSON), whose `id` names the shipment.
    pub(super) event: String,
}

impl NamedRow {
    /// The shipment's id as the event gives it; empty if the stored event
    /// does not say (a row this crate did not write).
    pub(super) fn shipment(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        serde_json::from_str::<Id>(&self.event)
            .map(|event| event.id)
            .unwrap_or_default()
    }
}

/// A dead row, as the store reads it back, with every attempt.
#[derive(Debug)]
pub(super) struct DeadRow {
    pub(super) id: i64,
    pub(super) event: String,
    pub(super) endpoint: String,
    pub(super) attempts: i64,
    pub(super) last_error: Option<String>,
    pub(super) received_at: i64,
    pub(super) dedup_key: Vec<u8>,
    pub(super) body: Bytes,
    /// Oldest first.
    pub(super) history: Vec<AttemptRow>,
}

impl DeadRow {
    pub(super) fn into_dead(self) -> Result<DeadWebhook, InboxError> {
        let id = self.id;
        let bad = |reason: &str| InboxError::CorruptRow {
            id,
            reason: reason.to_owned(),
        };
        let dedup_key: [u8; 32] = self
            .dedup_key
            .as_slice()
            .try_into()
            .map_err(|_| bad("dedup key is not 32 bytes"))?;
        Ok(DeadWebhook {
            id,
            event: serde_json::from_str(&self.event)
                .map_err(|_| bad("event is not a ShipmentEvent"))?,
            endpoint: self.endpoint,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            last_error: self.last_error,
            received_at: from_ms(self.received_at),
            dedup_key: Some(DedupKey(dedup_key)),
            body: self.body,
            history: self
                .history
                .into_iter()
                .map(AttemptRow::into_attempt)
                .collect(),
        })
    }
}

/// What a sweep of lost leases did: the rows it marked dead (their lease ran
/// out on their last attempt), and how many it made due again.
#[derive(Debug, Default)]
pub(super) struct Swept {
    pub(super) dead: Vec<NamedRow>,
    pub(super) released: u64,
}

/// What a claim asks of the store.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim {
    /// At most this many rows, of any number of shipments.
    pub(super) limit: usize,
    pub(super) now: i64,
    /// The lease's end for the rows claimed.
    pub(super) lease_until: i64,
    /// Marks this claim's rows, so only its holder finishes them.
    pub(super) lease: i64,
    pub(super) latest_wins: bool,
}

/// How a worker finished with a claimed row.
#[derive(Debug, Clone)]
pub(super) enum Finish {
    /// The handler returned `Ok`.
    Done,
    /// The handler failed; try again at this time.
    Retry { at: i64, error: String },
    /// The handler failed on its last attempt.
    Dead { error: String },
    /// The worker stopped before the handler finished, or before it started
    /// it: not an attempt; due again at this time.
    Release { at: i64 },
    /// Not handled: an event of its shipment handled after it was claimed
    /// is newer.
    Superseded,
}

/// How a worker finished with row `id`, claimed under `lease`.
#[derive(Debug, Clone)]
pub(super) struct Finished {
    pub(super) id: i64,
    pub(super) lease: i64,
    pub(super) finish: Finish,
    /// Its provider and shipment id (as the event gives it), for the logs.
    pub(super) provider: Provider,
    pub(super) shipment: Arc<str>,
    /// The attempt this was (`None`: not an attempt, a release), kept in the
    /// row's history once the outcome is recorded.
    pub(super) attempt: Option<AttemptRow>,
}

/// One attempt, as the stores keep it: times in milliseconds since the epoch.
#[derive(Debug, Clone)]
pub(super) struct AttemptRow {
    pub(super) number: i64,
    pub(super) started_at: Option<i64>,
    pub(super) ended_at: i64,
    pub(super) outcome: AttemptOutcome,
    pub(super) error: Option<String>,
}

impl AttemptRow {
    pub(super) fn into_attempt(self) -> Attempt {
        Attempt {
            number: u32::try_from(self.number).unwrap_or(u32::MAX),
            started_at: self.started_at.map(from_ms),
            ended_at: from_ms(self.ended_at),
            outcome: self.outcome,
            error: self.error,
        }
    }
}

/// The longest error text an attempt keeps, in bytes: longer ones are cut at
/// a character boundary and end with `…`.
pub(super) const MAX_ERROR_BYTES: usize = 2048;

/// `error` cut to [`MAX_ERROR_BYTES`].
pub(super) fn bound_error(error: &str) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error.to_owned();
    }
    let mut end = MAX_ERROR_BYTES - '…'.len_utf8();
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}

/// A stored row, as `list` and `get` read it back.
#[derive(Debug)]
pub(super) struct ListedRow {
    pub(super) id: i64,
    pub(super) provider: String,
    pub(super) endpoint: String,
    pub(super) tenant: String,
    pub(super) state: String,
    pub(super) event: String,
    pub(super) attempts: i64,
    pub(super) last_error: Option<String>,
    pub(super) received_at: i64,
    pub(super) duplicates: i64,
}

impl ListedRow {
    pub(super) fn into_summary(self) -> Result<WebhookSummary, InboxError> {
        let id = self.id;
        let bad = |reason: &str| InboxError::CorruptRow {
            id,
            reason: reason.to_owned(),
        };
        let event: ShipmentEvent =
            serde_json::from_str(&self.event).map_err(|_| bad("event is not a ShipmentEvent"))?;
        let state = WebhookState::parse(&self.state).ok_or_else(|| bad("unknown state"))?;
        Ok(WebhookSummary {
            id,
            provider: event.provider,
            endpoint: self.endpoint,
            tenant: (!self.tenant.is_empty()).then_some(self.tenant),
            state,
            event,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            last_error: self.last_error,
            received_at: from_ms(self.received_at),
            duplicates: u64::try_from(self.duplicates).unwrap_or_default(),
        })
    }
}

/// What `get` adds to a listed row.
#[derive(Debug)]
pub(super) struct DetailRow {
    pub(super) row: ListedRow,
    pub(super) dedup_key: Vec<u8>,
    pub(super) body: Bytes,
    pub(super) provider_headers: Option<String>,
    pub(super) secret_label: String,
    pub(super) history: Vec<AttemptRow>,
}

impl DetailRow {
    pub(super) fn into_detail(self) -> Result<WebhookDetail, InboxError> {
        let id = self.row.id;
        let dedup_key: [u8; 32] =
            self.dedup_key
                .as_slice()
                .try_into()
                .map_err(|_| InboxError::CorruptRow {
                    id,
                    reason: "dedup key is not 32 bytes".to_owned(),
                })?;
        let provider = self.row.provider.clone();
        let headers = self
            .provider_headers
            .as_deref()
            .and_then(|json| {
                crate::providers::headers_of_schema_1(&provider, json)
                    .or_else(|| ProviderHeaders::from_json(json))
            })
            .map(|headers| headers.to_json())
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        Ok(WebhookDetail {
            summary: self.row.into_summary()?,
            dedup_key: DedupKey(dedup_key),
            body: self.body,
            headers,
            secret_label: self.secret_label,
            history: self
                .history
                .into_iter()
                .map(AttemptRow::into_attempt)
                .collect(),
        })
    }
}

/// One minute's counts, as [`Store::per_minute`] returns them: `minute` is
/// whole minutes since its `from`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct MinuteCounts {
    pub(super) minute: i64,
    pub(super) received: u64,
    pub(super) handled: u64,
    pub(super) failed: u64,
}

impl AttemptOutcome {
    /// Whether the chart counts it handled (`Some(true)`), failed
    /// (`Some(false)`) or neither.
    pub(super) fn handled_or_failed(self) -> Option<bool> {
        match self {
            AttemptOutcome::Handled => Some(true),
            AttemptOutcome::Failed | AttemptOutcome::Dead | AttemptOutcome::TimedOut => Some(false),
            AttemptOutcome::LeaseLost | AttemptOutcome::Superseded => None,
        }
    }
}

/// A [`Filter`] as the stores match it: the shipment as the hashes of its
/// keys ([`shipment_keys`]).
#[derive(Debug, Clone, Default)]
pub(super) struct RowFilter {
    pub(super) state: Option<&'static str>,
    pub(super) provider: Option<String>,
    pub(super) endpoint: Option<String>,
    pub(super) tenant: Option<String>,
    pub(super) shipment: Option<[[u8; 32]; SHIPMENT_KEYS]>,
    pub(super) received_from: Option<i64>,
    pub(super) received_until: Option<i64>,
    /// Only ids greater than this.
    pub(super) after: i64,
    pub(super) limit: i64,
}

impl RowFilter {
    pub(super) fn new(filter: &Filter) -> Self {
        Self {
            state: filter.state.map(WebhookState::as_str),
            provider: filter.provider.map(|provider| provider.as_str().to_owned()),
            endpoint: filter.endpoint.clone(),
            tenant: filter.tenant.clone(),
            shipment: filter.shipment.as_deref().map(shipment_keys),
            received_from: filter.received_from.map(to_ms),
            received_until: filter.received_until.map(to_ms),
            after: filter.after.unwrap_or(0),
            limit: i64::from(filter.limit.clamp(1, super::MAX_PAGE)),
        }
    }

    /// Whether the row's fields match (all but `after` and `limit`).
    pub(super) fn matches(&self, state: &str, new: &NewWebhook) -> bool {
        self.state.is_none_or(|wanted| wanted == state)
            && self
                .provider
                .as_deref()
                .is_none_or(|wanted| wanted == new.provider.as_str())
            && self
                .endpoint
                .as_deref()
                .is_none_or(|wanted| wanted == new.endpoint)
            && self
                .tenant
                .as_deref()
                .is_none_or(|wanted| wanted == new.tenant)
            && self
                .shipment
                .is_none_or(|wanted| wanted.contains(&new.shipment))
            && self
                .received_from
                .is_none_or(|from| new.received_at >= from)
            && self
                .received_until
                .is_none_or(|until| new.received_at < until)
    }
}

/// A time as milliseconds since the epoch, clamped to `i64`.
pub(super) fn to_ms(time: OffsetDateTime) -> i64 {
    let ms = time.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// What a purge deletes: rows handled or superseded, and dead rows,
/// received before these times, and the marks of shipments with nothing
/// handled since the last.
#[derive(Debug, Clone, Copy)]
pub(super) struct Purge {
    pub(super) handled_before: i64,
    pub(super) dead_before: i64,
    pub(super) shipments_before: i64,
}

pub(super) type StoreFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, InboxError>> + Send + 'a>>;

/// One store's SQL (or memory) for what the inbox does. All three give the
/// same answers to the same calls, which `tests/inbox` checks.
pub(super) trait Store: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Inserts the row unless its (provider, endpoint, tenant, dedup key) is
    /// there, in which case it counts a duplicate on the row that is.
    fn insert(&self, row: NewWebhook) -> StoreFuture<'_, Receipt>;

    /// Claims up to `limit` pending rows that are due, oldest first, of
    /// shipments none of whose rows is leased: a shipment's due rows come
    /// together, in order, for one worker to handle one after another. With
    /// `latest_wins`, a row older than a handled one of its shipment is
    /// marked superseded instead of returned. The claim is whole: no other
    /// claim runs beside it.
    fn claim(&self, claim: Claim) -> StoreFuture<'_, Claimed>;

    /// Marks dead the rows whose lease ran out on attempt `max_attempts`,
    /// and makes due at `now` those whose lease ran out on an earlier one.
    fn sweep(&self, now: i64, max_attempts: u32) -> StoreFuture<'_, Swept>;

    /// Pushes to `until` the lease of those rows of `ids` still held under
    /// `lease`; how many were.
    fn extend(&self, lease: i64, ids: Vec<i64>, until: i64) -> StoreFuture<'_, u64>;

    /// Finishes rows still held under their lease, in one transaction;
    /// for each, `false` if it is not (its lease ran out and another worker
    /// took it).
    fn finish(&self, outcomes: Vec<Finished>) -> StoreFuture<'_, Vec<bool>>;

    /// The first `limit` dead rows by id, each with its attempts: two
    /// queries, whatever the limit.
    fn dead(&self, limit: u32) -> StoreFuture<'_, Vec<DeadRow>>;

    fn replay(&self, id: i64, now: i64) -> StoreFuture<'_, bool>;

    /// Replays those of `ids` that are dead, in one transaction; how many.
    fn replay_many(&self, ids: Vec<i64>, now: i64) -> StoreFuture<'_, u64>;

    /// Replays every dead row `filter` matches (its `after` and `limit`
    /// ignored); how many.
    fn replay_matching(&self, filter: RowFilter, now: i64) -> StoreFuture<'_, u64>;

    /// The rows `filter` matches with ids above its `after`, by id, at most
    /// its `limit`.
    fn list(&self, filter: RowFilter) -> StoreFuture<'_, Vec<ListedRow>>;

    /// Row `id` with its body, headers, dedup key and every attempt.
    fn get(&self, id: i64) -> StoreFuture<'_, Option<DetailRow>>;

    /// Deletes row `id`, with its attempts, if it is pending or dead.
    fn discard(&self, id: i64) -> StoreFuture<'_, bool>;

    fn stats(&self) -> StoreFuture<'_, InboxStats>;

    /// Pending, processing and dead rows by provider, with the oldest
    /// pending one's `received_at`: one query, for the gauges.
    fn backlog(&self) -> StoreFuture<'_, Vec<Backlog>>;

    /// Webhooks received, and attempts handled and failed (failed, dead or
    /// timed out), in `from..until`, by minute counted from `from`: only
    /// minutes with any, in no order. One query.
    fn per_minute(&self, from: i64, until: i64) -> StoreFuture<'_, Vec<MinuteCounts>>;

    /// Deletes what `purge` says is past its retention; returns how many rows.
    fn purge(&self, purge: Purge) -> StoreFuture<'_, u64>;

    /// Starts waking this process's workers when another process stores a
    /// webhook (PostgreSQL's `NOTIFY`), where the store can tell.
    fn listen(&self) {}
}

/// The last error of a row whose lease ran out on its last attempt.
pub(super) const LEASE_RAN_OUT: &str = "the worker's lease ran out on the last attempt";

/// The newest of a shipment's handled events, as latest wins compares
/// another with it: by signed time where both have one, else by a final
/// status.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Newest {
    pub(super) time: Option<i64>,
    /// Whether a final status was handled at all, and without a time.
    pub(super) final_any: bool,
    pub(super) final_untimed: bool,
}

impl Newest {
    /// Adds a handled event.
    pub(super) fn record(&mut self, time: Option<i64>, final_status: bool) {
        self.time = self.time.max(time);
        self.final_any |= final_status;
        self.final_untimed |= final_status && time.is_none();
    }

    /// Whether an event with this time and finality is older news.
    pub(super) fn supersedes(&self, time: Option<i64>, final_status: bool) -> bool {
        match time {
            Some(time) => {
                self.time.is_some_and(|newest| newest > time)
                    || (!final_status && self.final_untimed)
            }
            None => !final_status && self.final_any,
        }
    }
}

/// Adds `count` rows of `provider` in `state` (pending, processing or dead),
/// the oldest pending received at `oldest`, to `backlog`. A provider this
/// crate does not know (a row it did not write) is left out.
pub(super) fn add_backlog(
    backlog: &mut Vec<Backlog>,
    provider: &str,
    state: &str,
    count: u64,
    oldest: Option<i64>,
) {
    let Ok(provider) = provider.parse::<crate::Provider>() else {
        return;
    };
    let at = match backlog.iter().position(|row| row.provider == provider) {
        Some(at) => at,
        None => {
            backlog.push(Backlog::empty(provider));
            backlog.len() - 1
        }
    };
    let row = &mut backlog[at];
    match state {
        "pending" => {
            row.pending += count;
            if let Some(oldest) = oldest {
                let oldest = from_ms(oldest);
                row.oldest_pending_at =
                    Some(row.oldest_pending_at.map_or(oldest, |at| at.min(oldest)));
            }
        }
        "processing" => row.processing += count,
        "dead" => row.dead += count,
        _ => {}
    }
}

/// Logs and counts a claimed row that cannot be read back, marked dead. Its
/// shipment is not named: its event is what could not be read.
pub(super) fn unreadable(provider: &str, id: i64, error: &InboxError) {
    tracing::error!(provider, id, %error, "inbox row unreadable: dead");
    #[cfg(feature = "metrics")]
    if let Ok(provider) = provider.parse::<crate::Provider>() {
        metrics::counter!("shipment_webhooks_inbox_dead_lettered_total", "provider" => provider.as_str())
            .increment(1);
    }
}

/// The statuses a shipment does not leave, for ordering events without a time.
pub(super) fn is_final(status: &ShipmentStatus) -> bool {
    matches!(
        status,
        ShipmentStatus::Delivered | ShipmentStatus::Cancelled | ShipmentStatus::Returned
    )
}

/// An event's time as nanoseconds since the epoch, clamped to what `i64`
/// holds (the years 1677 to 2262).
pub(super) fn event_time(time: OffsetDateTime) -> i64 {
    let nanos = time.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

pub(super) fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
