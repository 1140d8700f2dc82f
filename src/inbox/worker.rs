//! The worker: claims stored webhooks, runs the user's handler on each with
//! its lease kept alive, and records what came of it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::{Id, JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep, sleep_until};
use tracing::Instrument;

use super::store::{
    AttemptRow, Claim, Finish, Finished, Newest, Shipment, Store, bound_error, event_time,
    is_final, now_ms,
};
use super::{AttemptOutcome, Delivery, Inbox, InboxError};

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Handler = Arc<dyn Fn(Delivery) -> HandlerFuture + Send + Sync>;

/// What a handler's task returns: `Ok`, or its error and whether it timed out.
type Attempted = Result<(), (String, bool)>;

/// The most outcomes one transaction records.
const RECORD_BATCH: usize = 1024;

/// How often a worker deletes what is older than the inbox's retention.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Runs a handler for every webhook stored in an [`Inbox`], made by
/// [`Inbox::worker`]: configure it, then [`spawn`](Self::spawn) it.
///
/// Several workers, in one process or many, may share an inbox: each
/// webhook is leased to one at a time.
pub struct Worker {
    inbox: Inbox,
    handler: Handler,
    concurrency: usize,
    batch_size: usize,
    max_attempts: u32,
    lease: Duration,
    backoff: (Duration, Duration),
    poll_interval: Duration,
    shutdown_grace: Duration,
    handler_timeout: Duration,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("inbox", &self.inbox)
            .field("concurrency", &self.concurrency)
            .field("batch_size", &self.batch_size)
            .field("max_attempts", &self.max_attempts)
            .field("lease", &self.lease)
            .field("backoff", &self.backoff)
            .field("poll_interval", &self.poll_interval)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("handler_timeout", &self.handler_timeout)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub(super) fn new<H, Fut, E>(inbox: Inbox, handler: H) -> Self
    where
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let handler: Handler = Arc::new(move |delivery| {
            let handled = handler(delivery);
            Box::pin(async move { handled.await.map_err(|error| error.to_string()) })
        });
        Self {
            inbox,
            handler,
            concurrency: 4,
            batch_size: 256,
            max_attempts: 10,
            lease: Duration::from_secs(30),
            backoff: (Duration::from_secs(1), Duration::from_secs(10 * 60)),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            handler_timeout: Duration::from_secs(5 * 60),
        }
    }

    /// How many webhooks it handles at once (4 by default; at least 1):
    /// at most one of each shipment, whose webhooks run one after another.
    #[must_use]
    pub fn concurrency(mut self, webhooks: usize) -> Self {
        self.concurrency = webhooks.max(1);
        self
    }

    /// How many webhooks it holds at most (256 by default; at least 1):
    /// claimed and not yet recorded, so also the most a crash hands out
    /// again. A claim takes every due webhook of each shipment it reaches,
    /// to be handled one after another, oldest first, so one round trip to
    /// the database serves many webhooks. Those waiting for a free slot stay
    /// leased to this worker, their leases renewed; the worker claims again
    /// once they have all started. With slow handlers and several workers
    /// sharing an inbox, a batch near the concurrency spreads the work more
    /// evenly; with fast handlers, a larger one drains a backlog faster.
    /// A claimed webhook counts an attempt when claimed, so one that waited
    /// for a slot when its worker died comes back with that attempt spent.
    #[must_use]
    pub fn batch_size(mut self, webhooks: usize) -> Self {
        self.batch_size = webhooks.max(1);
        self
    }

    /// How many times a webhook is handed to the handler before it is
    /// `dead` (10 by default; at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// How long a claimed webhook stays leased to this worker without word
    /// from it (30 s by default, at least 1 s, at most a year). The worker renews the leases
    /// of the webhooks it holds (running, or claimed and waiting for a slot)
    /// every third of it, so a long handler keeps its webhook; a worker that
    /// dies loses them when the lease ends, and they are handed out again
    /// once a worker's sweep (every [poll interval](Self::poll_interval))
    /// finds them.
    ///
    /// The renewal runs on the worker's own task: a handler that blocks its
    /// thread (CPU work, blocking I/O) on a current-thread runtime, or every
    /// thread of a multi-thread one, for longer than the lease must do that
    /// in `tokio::task::spawn_blocking`, or its webhooks are handed out
    /// again while it runs.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_secs(1), LONGEST);
        self
    }

    /// The wait before a failed webhook is tried again: `initial`, doubling
    /// with each attempt up to `max`, each wait drawn between half and all of
    /// that (1 s and 10 min by default).
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max.max(initial));
        self
    }

    /// How often it looks for webhooks without being woken (1 s by default,
    /// at most a year):
    /// for retries that come due, and for webhooks stored by another process
    /// on SQLite, or on PostgreSQL when a `NOTIFY` was missed. It sweeps lost
    /// leases (any worker's) as often: those on their last attempt are dead,
    /// the others due again.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.clamp(Duration::from_millis(1), LONGEST);
        self
    }

    /// How long [`WorkerHandle::shutdown`] lets running handlers finish
    /// before it stops them and hands their webhooks back, not counting the
    /// attempt (10 s by default).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long one attempt may run before it counts as failed and is
    /// retried (5 min by default): a handler stuck on a call without a
    /// timeout would otherwise hold its webhook, and every later one of its
    /// shipment, for ever.
    #[must_use]
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// Starts it on the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as `tokio::spawn` does.
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = oneshot::channel();
        WorkerHandle {
            stop,
            task: tokio::spawn(self.run(stopped)),
        }
    }

    async fn run(self, mut stop: oneshot::Receiver<()>) {
        let holding = Arc::new(Holding::default());
        let (outcomes, queue) = mpsc::unbounded_channel();
        let store = &self.inbox.store;
        let recorder = tokio::spawn(record(
            Arc::clone(store),
            queue,
            Arc::clone(&holding),
            self.lease,
        ));
        // Its own task, so that no claim, sweep, purge or shutdown on this
        // one delays it.
        let _renewal = AbortOnDrop(tokio::spawn(renew(
            Arc::clone(store),
            Arc::clone(&holding),
            self.lease,
        )));
        let mut running = Running {
            tasks: JoinSet::new(),
            held: HashMap::new(),
            ready: VecDeque::new(),
            outcomes,
            holding: Arc::clone(&holding),
        };
        // A dropped handle leaves the worker running, with nothing to stop it.
        let mut detached = false;
        let mut next_purge = Instant::now();
        let mut next_sweep = Instant::now();
        self.inbox.store.listen();
        loop {
            if Instant::now() >= next_sweep {
                // Lost leases, whoever held them, on a timer rather than in every claim.
                match self.inbox.store.sweep(now_ms(), self.max_attempts).await {
                    Ok(0) => {}
                    Ok(swept) => tracing::debug!(swept, "lost leases swept"),
                    Err(error) => tracing::warn!(%error, "inbox sweep of lost leases failed"),
                }
                next_sweep = Instant::now() + self.poll_interval;
            }
            if Instant::now() >= next_purge {
                match self.inbox.purge().await {
                    Ok(0) => {}
                    Ok(purged) => tracing::debug!(purged, "inbox purged"),
                    Err(error) => tracing::warn!(%error, "inbox purge failed"),
                }
                next_purge = Instant::now() + PURGE_EVERY;
            }
            // Registered before claiming, so a webhook stored meanwhile, or
            // an outcome recorded, still wakes it.
            let mut stored = pin!(self.inbox.wake.notified());
            stored.as_mut().enable();
            let mut recorded = pin!(holding.released.notified());
            recorded.as_mut().enable();
            self.fill(&mut running);
            // A full claim may have left due webhooks behind: claim again at
            // once while slots are free.
            let mut again = false;
            // At most a batch held at once, recorded or not: what a crash
            // hands out again.
            let room = self.batch_size.saturating_sub(running.holding.len());
            if running.ready.is_empty() && running.tasks.len() < self.concurrency && room > 0 {
                match self.claim(room, &mut running).await {
                    Ok(full) => again = full,
                    Err(error) => tracing::warn!(%error, "inbox claim failed"),
                }
                self.fill(&mut running);
            }
            let idle = running.tasks.len() < self.concurrency;
            if again && idle {
                continue;
            }
            tokio::select! {
                stopped = &mut stop, if !detached => match stopped {
                    Ok(()) => break,
                    Err(_) => detached = true,
                },
                Some(joined) = running.tasks.join_next_with_id() => {
                    // Every handler done by now, its shipment's next webhook started.
                    self.joined(joined, &mut running, false);
                    while let Some(joined) = running.tasks.try_join_next_with_id() {
                        self.joined(joined, &mut running, false);
                    }
                }
                () = stored, if idle => {}
                () = recorded, if idle => {}
                () = sleep(self.poll_interval), if idle => {}
                () = sleep_until(next_purge) => {}
            }
        }
        self.drain(running).await;
        if let Err(error) = recorder.await {
            tracing::error!(%error, "inbox outcome recorder stopped abnormally");
        }
    }

    /// Claims up to `limit` webhooks and queues them as chains, one per
    /// shipment; whether the claim was full.
    async fn claim(&self, limit: usize, running: &mut Running) -> Result<bool, InboxError> {
        let now = now_ms();
        let claimed = self
            .inbox
            .store
            .claim(Claim {
                limit,
                now,
                lease_until: now.saturating_add(millis(self.lease)),
                lease: random() as i64,
                latest_wins: self.inbox.latest_wins,
            })
            .await?;
        for &id in &claimed.superseded {
            tracing::info!(
                id,
                "webhook superseded: a newer event of its shipment was handled"
            );
        }
        running.holding.add(
            claimed
                .deliveries
                .iter()
                .map(|delivery| (delivery.lease, delivery.id)),
        );
        let mut chains: Vec<Chain> = Vec::new();
        let mut chain_of: HashMap<Shipment, usize> = HashMap::new();
        for delivery in claimed.deliveries {
            match chain_of.entry(delivery.shipment.clone()) {
                Entry::Occupied(at) => chains[*at.get()].rest.push_back(delivery),
                Entry::Vacant(slot) => {
                    slot.insert(chains.len());
                    chains.push(Chain {
                        rest: VecDeque::from([delivery]),
                        newest: Newest::default(),
                    });
                }
            }
        }
        running.ready.extend(chains);
        Ok(claimed.full)
    }

    /// Starts claimed chains while slots are free.
    fn fill(&self, running: &mut Running) {
        while running.tasks.len() < self.concurrency
            && let Some(chain) = running.ready.pop_front()
        {
            self.advance(chain, running);
        }
    }

    /// Starts the chain's next webhook, passing over those a webhook the
    /// chain handled already makes older news.
    fn advance(&self, mut chain: Chain, running: &mut Running) {
        while let Some(delivery) = chain.rest.pop_front() {
            let held = Held::of(&delivery);
            if self.inbox.latest_wins && chain.newest.supersedes(held.time, held.final_status) {
                tracing::info!(
                    id = held.id,
                    "webhook superseded: a newer event of its shipment was handled"
                );
                let now = now_ms();
                let attempt = held.attempt(now, now, AttemptOutcome::Superseded, None);
                running.queue(held, Finish::Superseded, Some(attempt));
                continue;
            }
            self.start(delivery, held, chain, running);
            return;
        }
    }

    fn start(&self, delivery: Delivery, held: Held, chain: Chain, running: &mut Running) {
        let span = tracing::info_span!(
            "inbox_delivery",
            id = delivery.id,
            attempt = delivery.attempt,
            provider = %delivery.event().provider,
            shipment = %delivery.event().id,
        );
        let timeout = self.handler_timeout;
        let handler = Arc::clone(&self.handler);
        let mut held = held;
        held.started_at = now_ms();
        let task = running.tasks.spawn(
            async move {
                // Called in the task, so a panic before its future is caught too.
                match tokio::time::timeout(timeout, handler(delivery)).await {
                    Ok(handled) => handled.map_err(|error| (error, false)),
                    Err(_) => Err((format!("the handler took longer than {timeout:?}"), true)),
                }
            }
            .instrument(span),
        );
        running.held.insert(task.id(), (held, chain));
    }

    /// What came of a finished handler (done, retry later, dead, or, stopped
    /// by shutdown, handed back), queued for the next record; then its
    /// shipment's next webhook is started, or, `stopping`, handed back.
    fn joined(
        &self,
        joined: Result<(Id, Attempted), JoinError>,
        running: &mut Running,
        stopping: bool,
    ) {
        let (task, outcome, timed_out) = match joined {
            Ok((task, Ok(()))) => (task, Ok(()), false),
            Ok((task, Err((error, timed_out)))) => (task, Err(Some(error)), timed_out),
            Err(error) if error.is_panic() => {
                (error.id(), Err(Some("the handler panicked".into())), false)
            }
            Err(error) => (error.id(), Err(None), false),
        };
        let Some((held, mut chain)) = running.held.remove(&task) else {
            return;
        };
        let (time, final_status) = (held.time, held.final_status);
        let handled = if held.marked.load(Ordering::Acquire) {
            running.holding.remove([(held.lease, held.id)]);
            tracing::debug!(
                id = held.id,
                attempt = held.attempt,
                "webhook handled in its handler's transaction"
            );
            true
        } else {
            let finish = self.finish(&held, outcome);
            let handled = matches!(finish, Finish::Done);
            let outcome = match &finish {
                Finish::Done => Some((AttemptOutcome::Handled, None)),
                Finish::Retry { error, .. } | Finish::Dead { error } => Some((
                    if timed_out {
                        AttemptOutcome::TimedOut
                    } else if matches!(finish, Finish::Dead { .. }) {
                        AttemptOutcome::Dead
                    } else {
                        AttemptOutcome::Failed
                    },
                    Some(bound_error(error)),
                )),
                Finish::Release { .. } => None,
                Finish::Superseded => Some((AttemptOutcome::Superseded, None)),
            };
            let attempt = outcome
                .map(|(outcome, error)| held.attempt(held.started_at, now_ms(), outcome, error));
            running.queue(held, finish, attempt);
            handled
        };
        if handled {
            chain.newest.record(time, final_status);
        }
        if stopping {
            running.release(chain);
        } else {
            self.advance(chain, running);
            self.fill(running);
        }
    }

    /// How to record a handler's outcome (`None`: stopped by shutdown).
    fn finish(&self, held: &Held, outcome: Result<(), Option<String>>) -> Finish {
        let now = now_ms();
        let finish = match outcome {
            Ok(()) => Finish::Done,
            Err(None) => Finish::Release { at: now },
            Err(Some(error)) if held.attempt >= self.max_attempts => Finish::Dead { error },
            Err(Some(error)) => Finish::Retry {
                at: now.saturating_add(millis(self.retry_delay(held.attempt))),
                error,
            },
        };
        let what = match &finish {
            Finish::Done => "handled",
            Finish::Retry { .. } => "failed; will retry",
            Finish::Dead { .. } => "failed on its last attempt: dead",
            Finish::Release { .. } => "handed back at shutdown",
            Finish::Superseded => "superseded",
        };
        if let Finish::Retry { error, .. } | Finish::Dead { error } = &finish {
            tracing::warn!(id = held.id, attempt = held.attempt, %error, "webhook {what}");
        } else {
            tracing::debug!(id = held.id, attempt = held.attempt, "webhook {what}");
        }
        finish
    }

    /// Hands back the chains not started, waits up to the grace for running
    /// handlers, then stops the rest and hands their webhooks back.
    async fn drain(&self, mut running: Running) {
        while let Some(chain) = running.ready.pop_front() {
            running.release(chain);
        }
        let deadline = sleep(self.shutdown_grace);
        let mut deadline = pin!(deadline);
        loop {
            tokio::select! {
                joined = running.tasks.join_next_with_id() => match joined {
                    Some(joined) => self.joined(joined, &mut running, true),
                    None => return,
                },
                () = &mut deadline => break,
            }
        }
        running.tasks.abort_all();
        while let Some(joined) = running.tasks.join_next_with_id().await {
            self.joined(joined, &mut running, true);
        }
    }

    /// The wait after attempt `attempt` failed.
    fn retry_delay(&self, attempt: u32) -> Duration {
        let (initial, max) = self.backoff;
        let doublings = attempt.saturating_sub(1).min(31);
        let ceiling = initial.saturating_mul(1 << doublings).min(max);
        let half = ceiling / 2;
        half + half.mul_f64(random() as f64 / u64::MAX as f64)
    }
}

/// Records outcomes as they come: those queued while one transaction
/// commits go in the next, so a slow database takes more per transaction
/// instead of holding back the handlers. A failed transaction is tried
/// again, with what came meanwhile, for as long as a lease lasts (the rows
/// stay held, their leases renewed, until then): a blip does not hand out
/// again a webhook whose shipment's later ones were handled since. Ends
/// once the worker has dropped its end of the queue and every outcome is
/// recorded or given up.
async fn record(
    store: Arc<dyn Store>,
    mut queue: mpsc::UnboundedReceiver<Finished>,
    holding: Arc<Holding>,
    lease: Duration,
) {
    let mut outcomes = Vec::new();
    while queue.recv_many(&mut outcomes, RECORD_BATCH).await > 0 {
        let give_up = Instant::now() + lease;
        let mut wait = Duration::from_millis(50);
        loop {
            match store.finish(outcomes.clone()).await {
                Ok(recorded) => {
                    for (outcome, recorded) in outcomes.iter().zip(recorded) {
                        if !recorded {
                            tracing::warn!(
                                id = outcome.id,
                                "lease lost before the outcome was recorded"
                            );
                        }
                    }
                    break;
                }
                Err(error) if Instant::now() + wait < give_up => {
                    tracing::warn!(%error, "outcomes not recorded; trying again");
                    sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                    while outcomes.len() < RECORD_BATCH
                        && let Ok(outcome) = queue.try_recv()
                    {
                        outcomes.push(outcome);
                    }
                }
                Err(error) => {
                    let ids: Vec<i64> = outcomes.iter().map(|outcome| outcome.id).collect();
                    tracing::error!(
                        ?ids,
                        %error,
                        "outcomes not recorded: the webhooks are handed out again when their leases end"
                    );
                    break;
                }
            }
        }
        holding.remove(
            outcomes
                .drain(..)
                .map(|outcome| (outcome.lease, outcome.id)),
        );
    }
}

/// Renews, every third of `lease`, the leases of the webhooks the worker
/// holds: running, waiting for a slot, or with an outcome not recorded yet.
/// One statement per claim.
async fn renew(store: Arc<dyn Store>, holding: Arc<Holding>, lease: Duration) {
    let every = lease / 3;
    let mut ticks = interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let until = now_ms().saturating_add(millis(lease));
        for (lease, ids) in holding.by_lease() {
            let asked = ids.len() as u64;
            match store.extend(lease, ids, until).await {
                Ok(extended) if extended == asked => {}
                Ok(extended) => tracing::warn!(
                    lost = asked - extended,
                    "lease lost: another worker may run these webhooks too"
                ),
                Err(error) => tracing::warn!(%error, "lease renewal failed"),
            }
        }
    }
}

/// The webhooks a worker holds, by lease: claimed, and not yet recorded
/// or marked handled by their handler.
#[derive(Debug, Default)]
struct Holding {
    rows: Mutex<HeldRows>,
    /// Rung when rows are let go, so a worker with no room to claim tries again.
    released: Notify,
}

/// Row ids by lease, and how many in all.
#[derive(Debug, Default)]
struct HeldRows(HashMap<i64, HashSet<i64>>, usize);

impl Holding {
    fn rows(&self) -> MutexGuard<'_, HeldRows> {
        // Every change is whole before it can panic.
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.rows().1
    }

    fn add(&self, rows: impl IntoIterator<Item = (i64, i64)>) {
        let mut held = self.rows();
        for (lease, id) in rows {
            if held.0.entry(lease).or_default().insert(id) {
                held.1 += 1;
            }
        }
    }

    fn remove(&self, rows: impl IntoIterator<Item = (i64, i64)>) {
        let mut held = self.rows();
        for (lease, id) in rows {
            if let Some(ids) = held.0.get_mut(&lease)
                && ids.remove(&id)
            {
                if ids.is_empty() {
                    held.0.remove(&lease);
                }
                held.1 -= 1;
            }
        }
        drop(held);
        self.released.notify_waiters();
    }

    fn by_lease(&self) -> Vec<(i64, Vec<i64>)> {
        self.rows()
            .0
            .iter()
            .map(|(&lease, ids)| (lease, ids.iter().copied().collect()))
            .collect()
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A shipment's claimed webhooks, handed to the handler one after another.
#[derive(Debug)]
struct Chain {
    /// Those not started yet, oldest first.
    rest: VecDeque<Delivery>,
    /// The newest of those handled so far.
    newest: Newest,
}

/// A claimed webhook, as the worker records its outcome.
#[derive(Debug)]
struct Held {
    id: i64,
    lease: i64,
    attempt: u32,
    /// Set once the handler marked it handled in its own transaction.
    marked: Arc<AtomicBool>,
    /// Its event's signed time and finality, for latest wins.
    time: Option<i64>,
    final_status: bool,
    /// When its handler started.
    started_at: i64,
}

impl Held {
    fn of(delivery: &Delivery) -> Self {
        let event = delivery.event();
        Self {
            id: delivery.id,
            lease: delivery.lease,
            attempt: delivery.attempt,
            marked: Arc::clone(&delivery.marked),
            time: event.timestamp.map(event_time),
            final_status: is_final(&event.status),
            started_at: 0,
        }
    }

    /// This attempt, for the webhook's history.
    fn attempt(
        &self,
        started_at: i64,
        ended_at: i64,
        outcome: AttemptOutcome,
        error: Option<String>,
    ) -> AttemptRow {
        AttemptRow {
            number: i64::from(self.attempt),
            started_at: Some(started_at),
            ended_at,
            outcome,
            error,
        }
    }
}

struct Running {
    /// One handler per shipment being handled.
    tasks: JoinSet<Attempted>,
    /// Each task's webhook and the rest of its shipment's chain.
    held: HashMap<Id, (Held, Chain)>,
    /// Claimed chains waiting for a free slot.
    ready: VecDeque<Chain>,
    /// The recorder's queue.
    outcomes: mpsc::UnboundedSender<Finished>,
    /// What the renewal renews.
    holding: Arc<Holding>,
}

impl Running {
    /// Queues an outcome for the recorder.
    fn queue(&self, held: Held, finish: Finish, attempt: Option<AttemptRow>) {
        // The recorder ends only after this queue is dropped.
        let _ = self.outcomes.send(Finished {
            id: held.id,
            lease: held.lease,
            finish,
            attempt,
        });
    }

    /// Hands back a chain's webhooks not started: not an attempt.
    fn release(&self, chain: Chain) {
        let at = now_ms();
        for delivery in chain.rest {
            self.queue(Held::of(&delivery), Finish::Release { at }, None);
        }
    }
}

/// A running [`Worker`]; dropping it leaves the worker running.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops claiming, lets running handlers finish within the
    /// [grace](Worker::shutdown_grace), hands back the webhooks of those that
    /// did not, and returns once all that is recorded.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "inbox worker stopped abnormally");
        }
    }
}

/// The longest lease and poll interval: the worker adds them to the clock,
/// where `Duration::MAX` would overflow.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 60 * 60);

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// 64 random bits, for lease tokens and jitter: no RNG crate needed for that.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}
