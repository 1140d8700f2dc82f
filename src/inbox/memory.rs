//! The in-memory store: the same answers as the databases, in a mutex, lost
//! when the process stops.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::store::{
    AttemptRow, Claim, Claimed, ClaimedRow, DeadRow, DetailRow, Finish, Finished, LEASE_RAN_OUT,
    ListedRow, MinuteCounts, NamedRow, NewWebhook, Newest, Purge, RowFilter, Shipment, Store,
    StoreFuture, Swept, add_backlog,
};
use super::{AttemptOutcome, Backlog, InboxStats, Receipt};
use crate::Provider;

#[derive(Debug, Default)]
pub(super) struct MemoryStore(Mutex<Rows>);

#[derive(Debug, Default)]
struct Rows {
    next_id: i64,
    rows: BTreeMap<i64, Row>,
    /// (provider, endpoint, tenant, dedup key) to id.
    keys: HashMap<(Provider, String, String, [u8; 32]), i64>,
    by_shipment: HashMap<Shipment, BTreeSet<i64>>,
    /// What latest wins needs of each shipment's handled events, kept past
    /// the purge of their rows.
    marks: HashMap<Shipment, Mark>,
    /// Pending and processing rows: the only ones a claim looks at.
    open: BTreeSet<i64>,
}

/// A shipment's handled events whose rows were purged: the newest, the
/// dedup key of the event that set its time (or of the last one where there
/// is no time), and when the last was received.
#[derive(Debug, Default, Clone, Copy)]
struct Mark {
    newest: Newest,
    newest_key: Option<[u8; 32]>,
    handled_at: i64,
}

impl Mark {
    fn record(&mut self, row: &NewWebhook) {
        let (time, newest) = (row.event_time, self.newest.time);
        if time.is_none() || newest.is_none() || time >= newest {
            self.newest_key = Some(row.dedup_key.0);
        }
        self.newest.record(time, row.final_status);
        self.handled_at = self.handled_at.max(row.received_at);
    }

    /// Whether the shipment's handled events make `row` older news, or it is
    /// the event handled newest, sent again.
    fn supersedes(&self, row: &NewWebhook) -> bool {
        self.newest_key == Some(row.dedup_key.0)
            || self.newest.supersedes(row.event_time, row.final_status)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Processing,
    Done,
    Dead,
    Superseded,
}

#[derive(Debug)]
struct Row {
    new: NewWebhook,
    state: State,
    attempts: i64,
    run_at: i64,
    lease_until: i64,
    lease: Option<i64>,
    last_error: Option<String>,
    duplicates: u64,
    history: Vec<AttemptRow>,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Superseded => "superseded",
        }
    }
}

impl Row {
    fn listed(&self, id: i64) -> ListedRow {
        ListedRow {
            id,
            provider: self.new.provider.as_str().to_owned(),
            endpoint: self.new.endpoint.clone(),
            tenant: self.new.tenant.clone(),
            state: self.state.as_str().to_owned(),
            event: self.new.event.clone(),
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            received_at: self.new.received_at,
            duplicates: i64::try_from(self.duplicates).unwrap_or(i64::MAX),
        }
    }

    /// Replays it if it is dead.
    fn replay(&mut self, now: i64) -> bool {
        if self.state != State::Dead {
            return false;
        }
        self.state = State::Pending;
        self.attempts = 0;
        self.run_at = now;
        true
    }

    fn shipment(&self) -> Shipment {
        let new = &self.new;
        (
            new.provider,
            new.endpoint.clone(),
            new.tenant.clone(),
            new.shipment,
        )
    }

    /// Whether `self`, handled, is a newer event of `other`'s shipment.
    fn supersedes(&self, other: &Row) -> bool {
        if self.state != State::Done {
            return false;
        }
        let mut handled = Newest::default();
        handled.record(self.new.event_time, self.new.final_status);
        handled.supersedes(other.new.event_time, other.new.final_status)
    }

    fn claimed(&self, id: i64) -> ClaimedRow {
        let new = &self.new;
        ClaimedRow {
            id,
            shipment: new.shipment.to_vec(),
            lease: self.lease.unwrap_or_default(),
            attempts: self.attempts,
            dedup_key: new.dedup_key.0.to_vec(),
            provider: new.provider.as_str().to_owned(),
            endpoint: new.endpoint.clone(),
            tenant: new.tenant.clone(),
            event: new.event.clone(),
            body: new.body.clone(),
            provider_headers: new.provider_headers.clone(),
            secret_label: new.secret_label.clone(),
            received_at: new.received_at,
        }
    }
}

impl MemoryStore {
    fn rows(&self) -> MutexGuard<'_, Rows> {
        // Every change below is whole before it can panic, so a poisoned
        // lock still guards consistent rows.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Rows {
    /// Finishes row `id` if it is still held under `lease`.
    fn finish(&mut self, id: i64, lease: i64, finish: Finish, attempt: Option<AttemptRow>) -> bool {
        let held = self
            .rows
            .get(&id)
            .is_some_and(|row| row.state == State::Processing && row.lease == Some(lease));
        if !held {
            return false;
        }
        if let (Some(attempt), Some(row)) = (attempt, self.rows.get_mut(&id)) {
            row.history.push(attempt);
        }
        match finish {
            Finish::Done => self.close(id, State::Done),
            Finish::Dead { error } => {
                self.close(id, State::Dead);
                if let Some(row) = self.rows.get_mut(&id) {
                    row.last_error = Some(error);
                }
            }
            Finish::Retry { at, error } => {
                if let Some(row) = self.rows.get_mut(&id) {
                    row.state = State::Pending;
                    row.lease = None;
                    row.run_at = at;
                    row.last_error = Some(error);
                }
            }
            Finish::Release { at } => {
                if let Some(row) = self.rows.get_mut(&id) {
                    row.state = State::Pending;
                    row.lease = None;
                    row.run_at = at;
                    row.attempts -= 1;
                }
            }
            Finish::Superseded => self.close(id, State::Superseded),
        }
        true
    }

    /// Whether a handled row of the shipment, or what is remembered of the
    /// purged ones, makes row `id` older news.
    fn superseded(&self, id: i64, shipment: &Shipment) -> bool {
        let row = &self.rows[&id];
        let by_rows = self.by_shipment.get(shipment).is_some_and(|ids| {
            ids.iter()
                .any(|&other| other != id && self.rows[&other].supersedes(row))
        });
        by_rows
            || self
                .marks
                .get(shipment)
                .is_some_and(|mark| mark.supersedes(&row.new))
    }

    /// Deletes row `id`, its key and its place among its shipment's rows.
    fn remove(&mut self, id: i64) -> Option<Row> {
        let row = self.rows.remove(&id)?;
        self.open.remove(&id);
        let shipment = row.shipment();
        let new = &row.new;
        self.keys.remove(&(
            new.provider,
            new.endpoint.clone(),
            new.tenant.clone(),
            new.dedup_key.0,
        ));
        if let Some(ids) = self.by_shipment.get_mut(&shipment) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_shipment.remove(&shipment);
            }
        }
        Some(row)
    }

    fn close(&mut self, id: i64, state: State) {
        self.open.remove(&id);
        if let Some(row) = self.rows.get_mut(&id) {
            row.state = state;
            row.lease = None;
        }
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn insert(&self, new: NewWebhook) -> StoreFuture<'_, Receipt> {
        let mut rows = self.rows();
        let key = (
            new.provider,
            new.endpoint.clone(),
            new.tenant.clone(),
            new.dedup_key.0,
        );
        let receipt = if let Some(&id) = rows.keys.get(&key) {
            if let Some(row) = rows.rows.get_mut(&id) {
                row.duplicates += 1;
            }
            Receipt::Duplicate { id }
        } else {
            rows.next_id += 1;
            let id = rows.next_id;
            let row = Row {
                run_at: new.received_at,
                new,
                state: State::Pending,
                attempts: 0,
                lease_until: 0,
                lease: None,
                last_error: None,
                duplicates: 0,
                history: Vec::new(),
            };
            rows.keys.insert(key, id);
            rows.by_shipment
                .entry(row.shipment())
                .or_default()
                .insert(id);
            rows.open.insert(id);
            rows.rows.insert(id, row);
            Receipt::Stored { id }
        };
        Box::pin(async move { Ok(receipt) })
    }

    fn claim(&self, claim: Claim) -> StoreFuture<'_, Claimed> {
        let mut rows = self.rows();
        let rows = &mut *rows;
        let mut leased: HashSet<Shipment> = HashSet::new();
        let mut due = Vec::new();
        for &id in &rows.open {
            let row = &rows.rows[&id];
            match row.state {
                State::Processing => {
                    leased.insert(row.shipment());
                }
                _ if row.run_at <= claim.now => due.push(id),
                _ => {}
            }
        }
        let mut claimed = Claimed::default();
        let mut taken = 0;
        for id in due {
            if taken == claim.limit {
                break;
            }
            let shipment = rows.rows[&id].shipment();
            if leased.contains(&shipment) {
                continue;
            }
            taken += 1;
            if claim.latest_wins && rows.superseded(id, &shipment) {
                rows.close(id, State::Superseded);
                let new = &rows.rows[&id].new;
                claimed.superseded.push(NamedRow {
                    id,
                    provider: new.provider.as_str().to_owned(),
                    event: new.event.clone(),
                });
                continue;
            }
            if let Some(row) = rows.rows.get_mut(&id) {
                row.state = State::Processing;
                row.attempts += 1;
                row.lease_until = claim.lease_until;
                row.lease = Some(claim.lease);
                match row.claimed(id).into_delivery() {
                    Ok(delivery) => claimed.deliveries.push(delivery),
                    Err(error) => {
                        super::store::unreadable(row.new.provider.as_str(), id, &error);
                        row.state = State::Dead;
                        row.lease = None;
                        row.last_error = Some(format!("unreadable row: {error}"));
                        rows.open.remove(&id);
                    }
                }
            }
        }
        claimed.full = taken == claim.limit;
        Box::pin(async move { Ok(claimed) })
    }

    fn sweep(&self, now: i64, max_attempts: u32) -> StoreFuture<'_, Swept> {
        let mut rows = self.rows();
        let rows = &mut *rows;
        let lost: Vec<i64> = rows
            .open
            .iter()
            .copied()
            .filter(|id| {
                let row = &rows.rows[id];
                row.state == State::Processing && row.lease_until <= now
            })
            .collect();
        let mut swept = Swept::default();
        for &id in &lost {
            if let Some(row) = rows.rows.get_mut(&id) {
                row.history.push(AttemptRow {
                    number: row.attempts,
                    started_at: None,
                    ended_at: row.lease_until,
                    outcome: AttemptOutcome::LeaseLost,
                    error: None,
                });
            }
            if rows.rows[&id].attempts >= i64::from(max_attempts) {
                rows.close(id, State::Dead);
                if let Some(row) = rows.rows.get_mut(&id) {
                    row.last_error = Some(LEASE_RAN_OUT.to_owned());
                    swept.dead.push(NamedRow {
                        id,
                        provider: row.new.provider.as_str().to_owned(),
                        event: row.new.event.clone(),
                    });
                }
            } else if let Some(row) = rows.rows.get_mut(&id) {
                row.state = State::Pending;
                row.lease = None;
                row.run_at = now;
                swept.released += 1;
            }
        }
        Box::pin(async move { Ok(swept) })
    }

    fn extend(&self, lease: i64, ids: Vec<i64>, until: i64) -> StoreFuture<'_, u64> {
        let mut rows = self.rows();
        let mut extended = 0;
        for id in ids {
            if let Some(row) = rows.rows.get_mut(&id)
                && row.state == State::Processing
                && row.lease == Some(lease)
            {
                row.lease_until = until;
                extended += 1;
            }
        }
        Box::pin(async move { Ok(extended) })
    }

    fn finish(&self, outcomes: Vec<Finished>) -> StoreFuture<'_, Vec<bool>> {
        let mut rows = self.rows();
        let finished = outcomes
            .into_iter()
            .map(
                |Finished {
                     id,
                     lease,
                     finish,
                     attempt,
                     ..
                 }| rows.finish(id, lease, finish, attempt),
            )
            .collect();
        Box::pin(async move { Ok(finished) })
    }

    fn dead(&self, limit: u32) -> StoreFuture<'_, Vec<DeadRow>> {
        let rows = self.rows();
        let dead = rows
            .rows
            .iter()
            .filter(|(_, row)| row.state == State::Dead)
            .take(limit as usize)
            .map(|(&id, row)| DeadRow {
                id,
                event: row.new.event.clone(),
                endpoint: row.new.endpoint.clone(),
                attempts: row.attempts,
                last_error: row.last_error.clone(),
                received_at: row.new.received_at,
                dedup_key: row.new.dedup_key.0.to_vec(),
                body: row.new.body.clone(),
                history: row.history.clone(),
            })
            .collect();
        Box::pin(async move { Ok(dead) })
    }

    fn replay(&self, id: i64, now: i64) -> StoreFuture<'_, bool> {
        let mut rows = self.rows();
        let replayed = rows.rows.get_mut(&id).is_some_and(|row| row.replay(now));
        if replayed {
            rows.open.insert(id);
        }
        Box::pin(async move { Ok(replayed) })
    }

    fn replay_many(&self, ids: Vec<i64>, now: i64) -> StoreFuture<'_, u64> {
        let mut rows = self.rows();
        let mut replayed = 0;
        for id in ids {
            if rows.rows.get_mut(&id).is_some_and(|row| row.replay(now)) {
                rows.open.insert(id);
                replayed += 1;
            }
        }
        Box::pin(async move { Ok(replayed) })
    }

    fn replay_matching(&self, filter: RowFilter, now: i64) -> StoreFuture<'_, u64> {
        let mut rows = self.rows();
        let rows = &mut *rows;
        let mut replayed = 0;
        for (&id, row) in &mut rows.rows {
            if filter.matches(row.state.as_str(), &row.new) && row.replay(now) {
                rows.open.insert(id);
                replayed += 1;
            }
        }
        Box::pin(async move { Ok(replayed) })
    }

    fn list(&self, filter: RowFilter) -> StoreFuture<'_, Vec<ListedRow>> {
        let rows = self.rows();
        let listed = rows
            .rows
            .range(filter.after.saturating_add(1)..)
            .filter(|(_, row)| filter.matches(row.state.as_str(), &row.new))
            .take(usize::try_from(filter.limit).unwrap_or(usize::MAX))
            .map(|(&id, row)| row.listed(id))
            .collect();
        Box::pin(async move { Ok(listed) })
    }

    fn get(&self, id: i64) -> StoreFuture<'_, Option<DetailRow>> {
        let rows = self.rows();
        let detail = rows.rows.get(&id).map(|row| DetailRow {
            row: row.listed(id),
            dedup_key: row.new.dedup_key.0.to_vec(),
            body: row.new.body.clone(),
            provider_headers: row.new.provider_headers.clone(),
            secret_label: row.new.secret_label.clone(),
            history: row.history.clone(),
        });
        Box::pin(async move { Ok(detail) })
    }

    fn discard(&self, id: i64) -> StoreFuture<'_, bool> {
        let mut rows = self.rows();
        let rows = &mut *rows;
        let discarded = rows
            .rows
            .get(&id)
            .is_some_and(|row| matches!(row.state, State::Pending | State::Dead));
        if discarded {
            rows.remove(id);
        }
        Box::pin(async move { Ok(discarded) })
    }

    fn stats(&self) -> StoreFuture<'_, InboxStats> {
        let rows = self.rows();
        let mut stats = InboxStats::default();
        for row in rows.rows.values() {
            *match row.state {
                State::Pending => &mut stats.pending,
                State::Processing => &mut stats.processing,
                State::Done => &mut stats.done,
                State::Dead => &mut stats.dead,
                State::Superseded => &mut stats.superseded,
            } += 1;
            stats.duplicates += row.duplicates;
        }
        Box::pin(async move { Ok(stats) })
    }

    fn backlog(&self) -> StoreFuture<'_, Vec<Backlog>> {
        let rows = self.rows();
        let mut backlog = Vec::new();
        for row in rows.rows.values() {
            let state = match row.state {
                State::Pending => "pending",
                State::Processing => "processing",
                State::Dead => "dead",
                State::Done | State::Superseded => continue,
            };
            let oldest = Some(row.new.received_at);
            add_backlog(&mut backlog, row.new.provider.as_str(), state, 1, oldest);
        }
        Box::pin(async move { Ok(backlog) })
    }

    fn per_minute(&self, from: i64, until: i64) -> StoreFuture<'_, Vec<MinuteCounts>> {
        let rows = self.rows();
        let mut minutes: BTreeMap<i64, MinuteCounts> = BTreeMap::new();
        let mut count = |time: i64, field: fn(&mut MinuteCounts) -> &mut u64| {
            let minute = (time - from) / 60_000;
            *field(minutes.entry(minute).or_insert(MinuteCounts {
                minute,
                ..MinuteCounts::default()
            })) += 1;
        };
        for row in rows.rows.values() {
            if (from..until).contains(&row.new.received_at) {
                count(row.new.received_at, |m| &mut m.received);
            }
            for attempt in &row.history {
                if !(from..until).contains(&attempt.ended_at) {
                    continue;
                }
                match attempt.outcome.handled_or_failed() {
                    Some(true) => count(attempt.ended_at, |m| &mut m.handled),
                    Some(false) => count(attempt.ended_at, |m| &mut m.failed),
                    None => {}
                }
            }
        }
        let counts = minutes.into_values().collect();
        Box::pin(async move { Ok(counts) })
    }

    fn purge(&self, purge: Purge) -> StoreFuture<'_, u64> {
        let mut rows = self.rows();
        let rows = &mut *rows;
        let old: Vec<i64> = rows
            .rows
            .iter()
            .filter(|(_, row)| match row.state {
                State::Done | State::Superseded => row.new.received_at < purge.handled_before,
                State::Dead => row.new.received_at < purge.dead_before,
                State::Pending | State::Processing => false,
            })
            .map(|(&id, _)| id)
            .collect();

        for &id in &old {
            if let Some(row) = rows.remove(id)
                && row.state == State::Done
            {
                rows.marks
                    .entry(row.shipment())
                    .or_default()
                    .record(&row.new);
            }
        }
        rows.marks
            .retain(|_, mark| mark.handled_at >= purge.shipments_before);
        let purged = old.len() as u64;
        Box::pin(async move { Ok(purged) })
    }
}
