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
use crate::Provider;

/// A worker handler's error: any error, through `?` or `.into()`. A
/// concrete type, so that a handler returning only `Ok(())` needs no
/// annotation.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Handler = Arc<dyn Fn(Delivery) -> HandlerFuture + Send + Sync>;

/// What a handler's task returns: `Ok`, or its error and whether it timed out.
type Attempted = Result<(), (String, bool)>;

/// The most outcomes one transaction records.
const RECORD_BATCH: usize = 1024;

/// How often a worker deletes what is older than the inbox's retention.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// How often a worker reads the inbox's backlog for the gauges by default.
#[cfg(feature = "metrics")]
const GAUGE_EVERY: Duration = Duration::from_secs(10);

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
    #[cfg(feature = "metrics")]
    gauge_interval: Duration,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Worker");
        f.field("inbox", &self.inbox)
            .field("concurrency", &self.concurrency)
            .field("batch_size", &self.batch_size)
            .field("max_attempts", &self.max_attempts)
            .field("lease", &self.lease)
            .field("backoff", &self.backoff)
            .field("poll_interval", &self.poll_interval)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("handler_timeout", &self.handler_timeout);
        #[cfg(feature = "metrics")]
        f.field("gauge_interval", &self.gauge_interval);
        f.finish_non_exhaustive()
    }
}

impl Worker {
    pub(super) fn new<H, Fut>(inbox: Inbox, handler: H) -> Self
    where
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
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
            #[cfg(feature = "metrics")]
            gauge_interval: GAUGE_EVERY,
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

    /// How often it reads the inbox's backlog ([`Inbox::backlog`], one
    /// query) and sets the `metrics` gauges of pending, processing and dead
    /// webhooks and of the oldest pending one's age, by provider: 10 s by
    /// default, at least 10 ms, at most a year. The first reading is at
    /// start. Every worker sets them, each with the whole inbox's counts:
    /// several workers in one process set the same values; in several
    /// processes sharing a database, each process reports the same numbers,
    /// so aggregate them with `max`, not `sum`.
    ///
    /// Needs the `metrics` feature.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    #[must_use]
    pub fn gauge_interval(mut self, interval: Duration) -> Self {
        self.gauge_interval = interval.clamp(Duration::from_millis(10), LONGEST);
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
            task: tokio::spawn(async move {
                // Without `until_idle` it ends only when stopped: no error to report.
                let _ = self.run(stopped, false).await;
            }),
        }
    }

    /// Runs on the current task until the inbox has nothing left for a
    /// worker: no webhook pending (due now, or waiting out a retry's
    /// backoff) and none processing, by this worker or another. Then it
    /// stops as [`WorkerHandle::shutdown`] does and returns what it did.
    /// For tests, and for jobs that drain an inbox and exit.
    ///
    /// A webhook whose handler failed is waited for, not left behind: it is
    /// tried again after its [backoff](Self::backoff) until it is handled or
    /// `dead` after its [last attempt](Self::max_attempts), so a test sees
    /// the final outcome. With the defaults (10 attempts, backoff from 1 s
    /// up to 10 min) a handler that always fails takes about an hour: in
    /// tests, set a short backoff or fewer attempts. It looks again at least
    /// every 10 ms (or every [poll interval](Self::poll_interval), if
    /// shorter), so a retry that comes due is not left waiting. Webhooks
    /// stored while it runs are handled too: it returns only once the inbox
    /// is idle.
    ///
    /// # Errors
    ///
    /// If the inbox's counts cannot be read (the database is unreachable):
    /// it stops as a shutdown does, handing back what it holds, then
    /// returns the error.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as `tokio::spawn` does.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use shipment_webhooks::inbox::{Delivery, Inbox};
    ///
    /// let inbox = Inbox::in_memory();
    /// // ... store webhooks, through the receiver or `inbox.receive`
    /// let stats = inbox
    ///     .worker(|_delivery: Delivery| async { Ok(()) })
    ///     .backoff(Duration::from_millis(10), Duration::from_millis(50))
    ///     .run_until_idle()
    ///     .await?;
    /// assert_eq!(stats.handled, 0);
    /// # Ok(()) }
    /// ```
    pub async fn run_until_idle(self) -> Result<RunStats, InboxError> {
        // Held until it returns: only idleness (or an error) ends the run.
        let (_stop, stopped) = oneshot::channel();
        self.run(stopped, true).await
    }

    /// The worker's loop: until `stop`, or with `until_idle` until the
    /// inbox has nothing pending or processing.
    async fn run(
        self,
        mut stop: oneshot::Receiver<()>,
        until_idle: bool,
    ) -> Result<RunStats, InboxError> {
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
        // Its own task too: counting a long backlog must not delay claims.
        #[cfg(feature = "metrics")]
        let _gauges = AbortOnDrop(tokio::spawn(gauges(Arc::clone(store), self.gauge_interval)));
        let mut running = Running {
            tasks: JoinSet::new(),
            held: HashMap::new(),
            ready: VecDeque::new(),
            outcomes,
            holding: Arc::clone(&holding),
            stats: RunStats::default(),
        };
        let look = if until_idle {
            self.poll_interval.min(IDLE_LOOK)
        } else {
            self.poll_interval
        };
        let mut failed = None;
        // A dropped handle leaves the worker running, with nothing to stop it.
        let mut detached = false;
        let mut next_purge = Instant::now();
        let mut next_sweep = Instant::now();
        self.inbox.store.listen();
        loop {
            if Instant::now() >= next_sweep {
                // Lost leases, whoever held them, on a timer rather than in every claim.
                match self.inbox.store.sweep(now_ms(), self.max_attempts).await {
                    Ok(swept) => {
                        if swept.released > 0 {
                            tracing::debug!(released = swept.released, "lost leases swept");
                        }
                        for row in &swept.dead {
                            lease_ran_out(&row.provider, &row.shipment(), row.id);
                        }
                    }
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
            if until_idle
                && running.tasks.is_empty()
                && running.ready.is_empty()
                && running.holding.len() == 0
            {
                match self.inbox.store.stats().await {
                    Ok(stats) if stats.pending == 0 && stats.processing == 0 => break,
                    Ok(_) => {}
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                }
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
                () = sleep(look), if idle => {}
                () = sleep_until(next_purge) => {}
            }
        }
        let stats = self.drain(running).await;
        if let Err(error) = recorder.await {
            tracing::error!(%error, "inbox outcome recorder stopped abnormally");
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(stats),
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
        running.stats.superseded += claimed.superseded.len() as u64;
        for row in &claimed.superseded {
            superseded(&row.provider, &row.shipment(), row.id);
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
                superseded(held.provider.as_str(), &held.shipment, held.id);
                let now = now_ms();
                let attempt = held.attempt(now, now, AttemptOutcome::Superseded, None);
                running.queue(held, Finish::Superseded, Some(attempt));
                running.stats.superseded += 1;
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
            running.stats.handled += 1;
            running.holding.remove([(held.lease, held.id)]);
            tracing::debug!(
                provider = held.provider.as_str(),
                shipment = &*held.shipment,
                id = held.id,
                attempt = held.attempt,
                "webhook handled in its handler's transaction"
            );
            #[cfg(feature = "metrics")]
            metrics::counter!("shipment_webhooks_inbox_handled_total", "provider" => held.provider.as_str())
                .increment(1);
            true
        } else {
            let finish = self.finish(&held, outcome);
            running.stats.count(&finish);
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
        let (provider, shipment, id, attempt) = (
            held.provider.as_str(),
            &*held.shipment,
            held.id,
            held.attempt,
        );
        match &finish {
            Finish::Done => {
                tracing::debug!(provider, shipment, id, attempt, "webhook handled");
            }
            Finish::Retry { error, .. } => {
                tracing::warn!(provider, shipment, id, attempt, %error, "webhook failed; will retry");
            }
            Finish::Dead { error } => tracing::error!(
                provider,
                shipment,
                id,
                attempt,
                %error,
                "webhook failed on its last attempt: dead"
            ),
            Finish::Release { .. } => {
                tracing::debug!(
                    provider,
                    shipment,
                    id,
                    attempt,
                    "webhook handed back at shutdown"
                );
            }
            Finish::Superseded => {}
        }
        #[cfg(feature = "metrics")]
        {
            let counter = |name: &'static str| {
                metrics::counter!(name, "provider" => provider).increment(1);
            };
            match &finish {
                Finish::Done => counter("shipment_webhooks_inbox_handled_total"),
                Finish::Retry { .. } => counter("shipment_webhooks_inbox_failed_attempts_total"),
                Finish::Dead { .. } => {
                    counter("shipment_webhooks_inbox_failed_attempts_total");
                    counter("shipment_webhooks_inbox_dead_lettered_total");
                }
                Finish::Release { .. } | Finish::Superseded => {}
            }
        }
        finish
    }

    /// Hands back the chains not started, waits up to the grace for running
    /// handlers, then stops the rest and hands their webhooks back.
    async fn drain(&self, mut running: Running) -> RunStats {
        while let Some(chain) = running.ready.pop_front() {
            running.release(chain);
        }
        let deadline = sleep(self.shutdown_grace);
        let mut deadline = pin!(deadline);
        loop {
            tokio::select! {
                joined = running.tasks.join_next_with_id() => match joined {
                    Some(joined) => self.joined(joined, &mut running, true),
                    None => return running.stats,
                },
                () = &mut deadline => break,
            }
        }
        running.tasks.abort_all();
        while let Some(joined) = running.tasks.join_next_with_id().await {
            self.joined(joined, &mut running, true);
        }
        running.stats
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
                                provider = outcome.provider.as_str(),
                                shipment = &*outcome.shipment,
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

/// Logs and counts a webhook the sweep marked dead: its lease ran out on
/// its last attempt (its worker died or stalled), as the worker's own
/// dead-lettering is logged and counted.
fn lease_ran_out(provider: &str, shipment: &str, id: i64) {
    tracing::error!(
        provider,
        shipment,
        id,
        "webhook's lease ran out on its last attempt: dead"
    );
    #[cfg(feature = "metrics")]
    if let Ok(provider) = provider.parse::<Provider>() {
        metrics::counter!("shipment_webhooks_inbox_dead_lettered_total", "provider" => provider.as_str())
            .increment(1);
    }
}

/// Logs and counts a webhook superseded: a newer event of its shipment was
/// handled.
fn superseded(provider: &str, shipment: &str, id: i64) {
    tracing::info!(
        provider,
        shipment,
        id,
        "webhook superseded: a newer event of its shipment was handled"
    );
    #[cfg(feature = "metrics")]
    if let Ok(provider) = provider.parse::<Provider>() {
        metrics::counter!("shipment_webhooks_inbox_superseded_total", "provider" => provider.as_str())
            .increment(1);
    }
}

/// Sets the gauges from the inbox's backlog now and every `every`: pending,
/// processing and dead webhooks and the oldest pending one's age, by
/// provider; a provider whose webhooks are all gone is set to zero, not
/// left at its last value.
#[cfg(feature = "metrics")]
async fn gauges(store: Arc<dyn Store>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seen: HashSet<Provider> = HashSet::new();
    loop {
        ticks.tick().await;
        let backlog = match store.backlog().await {
            Ok(backlog) => backlog,
            Err(error) => {
                tracing::warn!(%error, "inbox gauges not updated: reading the backlog failed");
                continue;
            }
        };
        let now = time::OffsetDateTime::now_utc();
        for provider in &seen {
            if !backlog.iter().any(|row| row.provider == *provider) {
                set_gauges(&super::Backlog::empty(*provider), now);
            }
        }
        for row in &backlog {
            seen.insert(row.provider);
            set_gauges(row, now);
        }
    }
}

#[cfg(feature = "metrics")]
fn set_gauges(row: &super::Backlog, now: time::OffsetDateTime) {
    let provider = row.provider.as_str();
    #[allow(clippy::cast_precision_loss)]
    let count = |n: u64| n as f64;
    metrics::gauge!("shipment_webhooks_inbox_pending", "provider" => provider)
        .set(count(row.pending));
    metrics::gauge!("shipment_webhooks_inbox_processing", "provider" => provider)
        .set(count(row.processing));
    metrics::gauge!("shipment_webhooks_inbox_dead", "provider" => provider).set(count(row.dead));
    metrics::gauge!("shipment_webhooks_inbox_oldest_pending_age_seconds", "provider" => provider)
        .set(row.oldest_pending_age(now).as_secs_f64());
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
    /// Its provider and shipment id (as the event gives it), for the logs.
    provider: Provider,
    shipment: Arc<str>,
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
            provider: event.provider,
            shipment: Arc::from(event.id.as_str()),
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
    /// What came of the webhooks it handed out.
    stats: RunStats,
}

impl Running {
    /// Queues an outcome for the recorder.
    fn queue(&self, held: Held, finish: Finish, attempt: Option<AttemptRow>) {
        // The recorder ends only after this queue is dropped.
        let _ = self.outcomes.send(Finished {
            id: held.id,
            lease: held.lease,
            finish,
            provider: held.provider,
            shipment: held.shipment,
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

/// What a [`Worker::run_until_idle`] did: how its handler's attempts ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// Webhooks handled: the handler returned `Ok`, or marked them handled
    /// in its own transaction.
    pub handled: u64,
    /// Attempts that failed (an error, a panic, a timeout) and were
    /// scheduled to be tried again.
    pub retried: u64,
    /// Webhooks that failed on their last attempt and are now `dead`.
    pub dead: u64,
    /// Webhooks not handled because a newer event of their shipment was.
    pub superseded: u64,
}

impl RunStats {
    fn count(&mut self, finish: &Finish) {
        match finish {
            Finish::Done => self.handled += 1,
            Finish::Retry { .. } => self.retried += 1,
            Finish::Dead { .. } => self.dead += 1,
            Finish::Superseded => self.superseded += 1,
            Finish::Release { .. } => {}
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

/// The longest [`Worker::run_until_idle`] waits before it looks again.
const IDLE_LOOK: Duration = Duration::from_millis(10);

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
