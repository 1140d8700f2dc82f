//! The PostgreSQL store, for several instances sharing one database.
//!
//! Claims run one at a time across every instance (a transaction-scoped
//! advisory lock, tried, not waited for, so no worker waits on it; an
//! instance that stalls holding it is cut off by the server after 10 s idle
//! in that transaction, and claims resume). After storing a webhook, an
//! instance `NOTIFY`s `webhook_inbox` (at most one every 2 ms, and outside
//! the insert, whose commit would otherwise be serialized with every other
//! notifying one), and workers `LISTEN`; a missed notification waits for the
//! next poll. Claims and outcomes commit with `synchronous_commit = off`:
//! one lost in a crash only hands a webhook out again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::sql;
use super::store::{
    AttemptRow, Claim, Claimed, DeadRow, DetailRow, Finish, Finished, LEASE_RAN_OUT, ListedRow,
    MinuteCounts, NamedRow, NewWebhook, Purge, RowFilter, Store, StoreFuture, Swept, add_backlog,
};
use super::{Backlog, InboxError, InboxStats, Receipt};

/// The channel instances notify when they store a webhook.
const CHANNEL: &str = "webhook_inbox";
/// Advisory lock keys ("inbox" and "claim" in ASCII), so that schema changes
/// and claims each run one at a time.
const SCHEMA_LOCK: i64 = 0x0069_6e62_6f78;
const CLAIM_LOCK: i64 = 0x0063_6c61_696d;

pub(super) struct PgStore {
    pool: PgPool,
    /// The inbox's wake-up for this process's workers, which LISTEN rings.
    wake: Arc<Notify>,
    listener: OnceLock<JoinHandle<()>>,
    /// A `NOTIFY` is about to be sent: rows stored until then need no other.
    notifying: Arc<AtomicBool>,
}

impl PgStore {
    /// The store on `pool`, which wakes `wake`'s waiters when another
    /// process stores a webhook, once a worker asks it to [`listen`](Store::listen).
    pub(super) async fn open(pool: PgPool, wake: Arc<Notify>) -> Result<Self, InboxError> {
        if pool.options().get_max_connections() < 2 {
            return Err(InboxError::Config(
                "the pool needs 2 connections or more: one is held for LISTEN".into(),
            ));
        }
        let store = Self {
            pool,
            wake,
            listener: OnceLock::new(),
            notifying: Arc::new(AtomicBool::new(false)),
        };
        store.migrate().await?;
        Ok(store)
    }

    const ID_COLUMN: &str = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";
    const BYTES: &str = "BYTEA";
    const DUE: &str = sql::DUE_LOCKED;
    sql::id_list_statements!("= ANY($1)");

    /// The ids a statement of [`sql::id_list_statements`] binds.
    fn id_list(ids: &[i64]) -> Vec<i64> {
        ids.to_vec()
    }

    /// `rows` in one statement, prepared once: a column of each as an
    /// array, `UNNEST`ed (a `VALUES` list would be a statement per batch
    /// size).
    async fn insert_attempts(
        tx: &mut Transaction<'static, Postgres>,
        rows: &[(i64, AttemptRow)],
    ) -> Result<(), InboxError> {
        const INSERT: &str = "INSERT INTO webhook_inbox_attempts \
            (webhook_id, attempt, started_at, ended_at, outcome, error) \
            SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], \
            $5::TEXT[], $6::TEXT[])";
        let column = |of: fn(&(i64, AttemptRow)) -> Option<i64>| -> Vec<Option<i64>> {
            rows.iter().map(of).collect()
        };
        sqlx::query(INSERT)
            .bind(column(|(id, _)| Some(*id)))
            .bind(column(|(_, attempt)| Some(attempt.number)))
            .bind(column(|(_, attempt)| attempt.started_at))
            .bind(column(|(_, attempt)| Some(attempt.ended_at)))
            .bind(
                rows.iter()
                    .map(|(_, attempt)| attempt.outcome.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                rows.iter()
                    .map(|(_, attempt)| attempt.error.as_deref())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn schema_transaction(&self) -> Result<Transaction<'static, Postgres>, InboxError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A bookkeeping transaction holding the claim lock, or `None` while
    /// another instance holds it.
    ///
    /// Its claim must read pending rows in `id` order from the `(state, id)`
    /// index and stop at the limit. Statistics taken before a backlog
    /// arrived (autovacuum analyzes a minute later at best) make the planner
    /// expect a few pending rows and plan to fetch them all, test each
    /// one's shipment and sort them: every claim then costs the whole
    /// backlog, and a drain slows as it goes. Without bitmap scans and
    /// sorts, in this transaction only, it takes the ordered scan.
    async fn claim_transaction(
        &self,
    ) -> Result<Option<Transaction<'static, Postgres>>, InboxError> {
        let mut tx = self.bookkeeping().await?;
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock($1) \
             FROM (SELECT set_config('enable_bitmapscan', 'off', true), \
                          set_config('enable_sort', 'off', true)) AS planner",
        )
        .bind(CLAIM_LOCK)
        .fetch_one(&mut *tx)
        .await?;
        Ok(locked.then_some(tx))
    }

    async fn bookkeeping(&self) -> Result<Transaction<'static, Postgres>, InboxError> {
        let mut tx = self.pool.begin().await?;
        // An instance that stalls mid-transaction (paused, cut off) is cut
        // off by the server, so it cannot hold the claim lock for ever.
        sqlx::query(
            "SELECT set_config('synchronous_commit', 'off', true), \
             set_config('idle_in_transaction_session_timeout', '10s', true)",
        )
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    /// Wakes every instance's workers, soon: one `NOTIFY` for the rows
    /// stored in the next 2 ms.
    fn notify_other_instances(&self) {
        if self.notifying.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, notifying) = (self.pool.clone(), Arc::clone(&self.notifying));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            // Cleared first: a row stored from here on sends its own.
            notifying.store(false, Ordering::Release);
            if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&pool)
                .await
            {
                tracing::debug!(%error, "inbox NOTIFY failed; workers will poll");
            }
        });
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

/// Wakes `wake`'s waiters on every notification, and whenever the
/// connection was lost (notifications may have been missed meanwhile).
async fn listen(pool: PgPool, wake: Arc<Notify>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "inbox LISTEN connection failed; polling meanwhile");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "inbox LISTEN failed; polling meanwhile");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(_) => wake.notify_waiters(),
                Err(error) => {
                    tracing::warn!(%error, "inbox LISTEN lost; reconnecting");
                    wake.notify_waiters();
                    break;
                }
            }
        }
    }
}

sql::sql_store!(
    PgStore,
    "postgres",
    fn insert(&self, row: NewWebhook) -> StoreFuture<'_, Receipt> {
        Box::pin(async move {
            let inserted = sql::bind_insert(&row).fetch_one(&self.pool).await?;
            let receipt = sql::receipt(&inserted)?;
            if let Receipt::Stored { .. } = receipt {
                self.notify_other_instances();
            }
            Ok(receipt)
        })
    },
    fn listen(&self) {
        self.listener
            .get_or_init(|| tokio::spawn(listen(self.pool.clone(), Arc::clone(&self.wake))));
    }
);
