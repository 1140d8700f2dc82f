//! The worker: claims stored webhooks, runs the user's handler on each with
//! its lease kept alive, and records what came of it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::{Id, JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, sleep_until};
use tracing::Instrument;

use super::store::{Claim, Finish, Finished, Store, now_ms};
use super::{Delivery, Inbox, InboxError};

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Handler = Arc<dyn Fn(Delivery) -> HandlerFuture + Send + Sync>;

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
            max_attempts: 10,
            lease: Duration::from_secs(30),
            backoff: (Duration::from_secs(1), Duration::from_secs(10 * 60)),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            handler_timeout: Duration::from_secs(5 * 60),
        }
    }

    /// How many webhooks it handles at once (4 by default; at least 1).
    #[must_use]
    pub fn concurrency(mut self, webhooks: usize) -> Self {
        self.concurrency = webhooks.max(1);
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
    /// from it (30 s by default, at least 1 s). The worker renews the lease
    /// every third of it while the handler runs, so a long handler keeps its
    /// webhook; a worker that dies loses it when the lease ends, and the
    /// webhook is handed out again once a worker's sweep (every
    /// [poll interval](Self::poll_interval)) finds it.
    ///
    /// The renewal runs beside the handler on the same task: a handler that
    /// blocks its thread (CPU work, blocking I/O) for longer than the lease
    /// must do that in `tokio::task::spawn_blocking`, or its webhook is
    /// handed out again while it runs.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
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

    /// How often it looks for webhooks without being woken (1 s by default):
    /// for retries that come due, and for webhooks stored by another process
    /// on SQLite, or on PostgreSQL when a `NOTIFY` was missed. It sweeps lost
    /// leases (any worker's) as often: those on their last attempt are dead,
    /// the others due again.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
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
        let mut running = Running::default();
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
            // Registered before claiming, so a webhook stored meanwhile still wakes it.
            let mut stored = pin!(self.inbox.wake.notified());
            stored.as_mut().enable();
            let free = self.concurrency - running.tasks.len();
            // A claim that superseded rows leaves their shipments' next rows
            // for the next claim: make it at once while places are free.
            let mut again = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok((deliveries, superseded)) => {
                        again = superseded > 0;
                        for delivery in deliveries {
                            self.start(delivery, &mut running);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "inbox claim failed"),
                }
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
                    // Every handler done by now, recorded in one transaction,
                    // so the next claim fills all their places at once.
                    let mut outcomes = Vec::from_iter(self.outcome(joined, &mut running));
                    while let Some(joined) = running.tasks.try_join_next_with_id() {
                        outcomes.extend(self.outcome(joined, &mut running));
                    }
                    self.record(outcomes).await;
                }
                () = stored, if idle => {}
                () = sleep(self.poll_interval), if idle => {}
                () = sleep_until(next_purge) => {}
            }
        }
        self.drain(running).await;
    }

    /// Claims up to `limit` webhooks: the deliveries, and how many rows it
    /// marked superseded instead.
    async fn claim(&self, limit: usize) -> Result<(Vec<Delivery>, usize), InboxError> {
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
        Ok((claimed.deliveries, claimed.superseded.len()))
    }

    fn start(&self, delivery: Delivery, running: &mut Running) {
        let span = tracing::info_span!(
            "inbox_delivery",
            id = delivery.id,
            attempt = delivery.attempt,
            provider = %delivery.event().provider,
            shipment = %delivery.event().id,
        );
        let held = Held {
            id: delivery.id,
            lease: delivery.lease,
            attempt: delivery.attempt,
            marked: Arc::clone(&delivery.marked),
        };
        let store = Arc::clone(&self.inbox.store);
        let (lease, timeout) = (self.lease, self.handler_timeout);
        let handler = Arc::clone(&self.handler);
        let (id, held_lease) = (held.id, held.lease);
        let task = running.tasks.spawn(
            async move {
                // Called in the task, so a panic before its future is caught too.
                let handled = tokio::time::timeout(timeout, handler(delivery));
                let mut handled = pin!(handled);
                // A handler done within a third of the lease needs no renewal.
                let renew_after = lease / 3;
                let outcome = tokio::select! {
                    outcome = &mut handled => outcome,
                    () = sleep(renew_after) => {
                        // Renewed by a task of its own: renewing inline would
                        // stop polling the handler while it waits, and a
                        // handler holding a SQLite write lock in its own
                        // transaction (`Delivery::mark_done_in`) would then
                        // never release it.
                        let renewal = tokio::spawn(
                            renew(store, id, held_lease, lease)
                                .instrument(tracing::Span::current()),
                        );
                        let _renewal = AbortOnDrop(renewal);
                        handled.await
                    }
                };
                outcome.unwrap_or_else(|_| Err(format!("the handler took longer than {timeout:?}")))
            }
            .instrument(span),
        );
        running.held.insert(task.id(), held);
    }

    /// What came of a finished handler: done, retry later, dead, or (stopped
    /// by shutdown) handed back.
    fn outcome(
        &self,
        joined: Result<(Id, Result<(), String>), JoinError>,
        running: &mut Running,
    ) -> Option<(Held, Finish)> {
        let (task, outcome) = match joined {
            Ok((task, outcome)) => (task, outcome.map_err(Some)),
            Err(error) if error.is_panic() => {
                (error.id(), Err(Some("the handler panicked".into())))
            }
            Err(error) => (error.id(), Err(None)),
        };
        let held = running.held.remove(&task)?;
        if held.marked.load(Ordering::Acquire) {
            tracing::debug!(
                id = held.id,
                attempt = held.attempt,
                "webhook handled in its handler's transaction"
            );
            return None;
        }
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
        };
        if let Finish::Retry { error, .. } | Finish::Dead { error } = &finish {
            tracing::warn!(id = held.id, attempt = held.attempt, %error, "webhook {what}");
        } else {
            tracing::debug!(id = held.id, attempt = held.attempt, "webhook {what}");
        }
        Some((held, finish))
    }

    /// Records what came of finished handlers, in one transaction.
    async fn record(&self, outcomes: Vec<(Held, Finish)>) {
        if outcomes.is_empty() {
            return;
        }
        let ids: Vec<i64> = outcomes.iter().map(|(held, _)| held.id).collect();
        let finished = outcomes
            .into_iter()
            .map(|(held, finish)| Finished {
                id: held.id,
                lease: held.lease,
                finish,
            })
            .collect();
        match self.inbox.store.finish(finished).await {
            Ok(recorded) => {
                for (id, recorded) in ids.into_iter().zip(recorded) {
                    if !recorded {
                        tracing::warn!(id, "lease lost before the outcome was recorded");
                    }
                }
            }
            Err(error) => tracing::error!(
                ?ids,
                %error,
                "outcomes not recorded: the webhooks are handed out again when their leases end"
            ),
        }
    }

    /// Waits up to the grace for running handlers, then stops the rest and
    /// hands their webhooks back.
    async fn drain(&self, mut running: Running) {
        let deadline = sleep(self.shutdown_grace);
        let mut deadline = pin!(deadline);
        loop {
            tokio::select! {
                joined = running.tasks.join_next_with_id() => match joined {
                    Some(joined) => {
                        let outcome = self.outcome(joined, &mut running);
                        self.record(Vec::from_iter(outcome)).await;
                    }
                    None => return,
                },
                () = &mut deadline => break,
            }
        }
        running.tasks.abort_all();
        let mut outcomes = Vec::new();
        while let Some(joined) = running.tasks.join_next_with_id().await {
            outcomes.extend(self.outcome(joined, &mut running));
        }
        self.record(outcomes).await;
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

/// Renews the lease of row `id`, held under `lease`, at once and then every
/// third of `duration`, until it is aborted or the lease is lost.
async fn renew(store: Arc<dyn Store>, id: i64, lease: i64, duration: Duration) {
    let mut renewals = interval(duration / 3);
    renewals.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        renewals.tick().await;
        let until = now_ms().saturating_add(millis(duration));
        match store.extend(id, lease, until).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("lease lost: another worker may run this webhook too");
                return;
            }
            Err(error) => tracing::warn!(%error, "lease renewal failed"),
        }
    }
}

/// Aborts a task when dropped, so that a handler's end, or its panic, ends
/// its lease's renewal.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A claimed webhook a handler is running on.
#[derive(Debug)]
struct Held {
    id: i64,
    lease: i64,
    attempt: u32,
    /// Set once the handler marked it handled in its own transaction.
    marked: Arc<AtomicBool>,
}

#[derive(Default)]
struct Running {
    tasks: JoinSet<Result<(), String>>,
    held: HashMap<Id, Held>,
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

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// 64 random bits, for lease tokens and jitter: no RNG crate needed for that.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}
