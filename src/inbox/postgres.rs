//! The PostgreSQL store, for several instances sharing one database.
//!
//! Claims run one at a time across every instance (a transaction-scoped
//! advisory lock), so two instances never lease two events of one shipment
//! at once; within a claim, `FOR UPDATE SKIP LOCKED` passes over rows whose
//! outcome another worker is recording instead of waiting for them. A
//! trigger `NOTIFY`s `webhook_inbox` when a row becomes ready, and workers
//! `LISTEN`; a missed notification waits for the next poll.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::sql::{self, claimed_row, dead_row};
use super::{
    Claim, Claimed, DeadRow, Finish, InboxError, InboxStats, LEASE_RAN_OUT, NewWebhook, Receipt,
    Store, StoreFuture, candidates,
};

/// The channel the trigger notifies.
const CHANNEL: &str = "webhook_inbox";
/// Advisory lock keys ("inbox" and "claim" in ASCII), so that schema changes
/// and claims each run one at a time.
const SCHEMA_LOCK: i64 = 0x0069_6e62_6f78;
const CLAIM_LOCK: i64 = 0x0063_6c61_696d;

const CREATE_NOTIFY: [&str; 3] = [
    "CREATE OR REPLACE FUNCTION webhook_inbox_notify() RETURNS trigger LANGUAGE plpgsql AS \
     $$ BEGIN PERFORM pg_notify('webhook_inbox', ''); RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS webhook_inbox_ready ON webhook_inbox",
    // New rows, replayed ones and those handed back at shutdown: not retries,
    // which come due later and are polled for.
    "CREATE TRIGGER webhook_inbox_ready AFTER INSERT OR UPDATE OF state ON webhook_inbox \
     FOR EACH ROW WHEN (NEW.state = 'pending' AND NEW.attempts = 0) \
     EXECUTE FUNCTION webhook_inbox_notify()",
];

pub(super) struct PgStore {
    pool: PgPool,
    ready: Arc<Notify>,
    listener: OnceLock<JoinHandle<()>>,
}

impl PgStore {
    /// The store on `pool`, which wakes `ready`'s waiters when another
    /// process stores a webhook, once a worker asks it to [`listen`](Store::listen).
    pub(super) async fn open(pool: PgPool, ready: Arc<Notify>) -> Result<Self, InboxError> {
        let store = Self {
            pool,
            ready,
            listener: OnceLock::new(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), InboxError> {
        let mut tx = self.locked(SCHEMA_LOCK).await?;
        sqlx::query(sql::CREATE_VERSION_TABLE)
            .execute(&mut *tx)
            .await?;
        let version: Option<i64> = sqlx::query_scalar(sql::SELECT_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        match version {
            None => {
                let table =
                    sql::create_table("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA");
                sqlx::query(&table).execute(&mut *tx).await?;
                for statement in sql::CREATE_INDEXES.into_iter().chain(CREATE_NOTIFY) {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                sqlx::query(sql::INSERT_VERSION)
                    .bind(sql::SCHEMA_VERSION)
                    .execute(&mut *tx)
                    .await?;
            }
            Some(sql::SCHEMA_VERSION) => {}
            Some(newer) => return Err(sql::newer_schema(newer)),
        }
        tx.commit().await?;
        Ok(())
    }

    /// A transaction holding the advisory lock `key` until it ends.
    async fn locked(&self, key: i64) -> Result<Transaction<'static, Postgres>, InboxError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn claim_in(&self, claim: Claim) -> Result<Claimed, InboxError> {
        let mut tx = self.locked(CLAIM_LOCK).await?;
        sqlx::query(sql::DEAD_LOST_LEASES)
            .bind(LEASE_RAN_OUT)
            .bind(claim.now)
            .bind(i64::from(claim.max_attempts))
            .execute(&mut *tx)
            .await?;
        let due = sqlx::query(sql::DUE_SKIP_LOCKED)
            .bind(claim.now)
            .bind(candidates(claim.limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut shipments = HashSet::new();
        let mut claimed = Claimed::default();
        for row in due {
            if claimed.rows.len() == claim.limit {
                break;
            }
            let id: i64 = row.try_get("id")?;
            if !shipments.insert(sql::shipment(&row)?) {
                continue;
            }
            if claim.latest_wins {
                let superseded = sqlx::query(sql::SUPERSEDE)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if superseded.rows_affected() > 0 {
                    claimed.superseded.push(id);
                    continue;
                }
            }
            let row = sqlx::query(sql::CLAIM)
                .bind(id)
                .bind(claim.lease_until)
                .bind(claim.lease)
                .fetch_one(&mut *tx)
                .await?;
            claimed.rows.push(claimed_row(&row)?);
        }
        tx.commit().await?;
        Ok(claimed)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

/// Wakes `ready`'s waiters on every notification, and whenever the
/// connection was lost (notifications may have been missed meanwhile).
async fn listen(pool: PgPool, ready: Arc<Notify>) {
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
                Ok(_) => ready.notify_waiters(),
                Err(error) => {
                    tracing::warn!(%error, "inbox LISTEN lost; reconnecting");
                    ready.notify_waiters();
                    break;
                }
            }
        }
    }
}

impl Store for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn insert<'a>(&'a self, row: &'a NewWebhook) -> StoreFuture<'a, Receipt> {
        Box::pin(async move {
            let inserted = sql::bind_insert(row).fetch_one(&self.pool).await?;
            sql::receipt(&inserted)
        })
    }

    fn claim(&self, claim: Claim) -> StoreFuture<'_, Claimed> {
        Box::pin(self.claim_in(claim))
    }

    fn extend(&self, id: i64, lease: i64, until: i64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let extended = sqlx::query(sql::EXTEND)
                .bind(id)
                .bind(lease)
                .bind(until)
                .execute(&self.pool)
                .await?;
            Ok(extended.rows_affected() > 0)
        })
    }

    fn finish(&self, id: i64, lease: i64, now: i64, finish: Finish) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let finished = sql::bind_finish(id, lease, now, finish)
                .execute(&self.pool)
                .await?;
            Ok(finished.rows_affected() > 0)
        })
    }

    fn dead(&self, limit: u32) -> StoreFuture<'_, Vec<DeadRow>> {
        Box::pin(async move {
            let rows = sqlx::query(sql::LIST_DEAD)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.iter().map(dead_row).collect::<Result<_, _>>()?)
        })
    }

    fn replay(&self, id: i64, now: i64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let replayed = sqlx::query(sql::REPLAY)
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(replayed.rows_affected() > 0)
        })
    }

    fn stats(&self) -> StoreFuture<'_, InboxStats> {
        Box::pin(async move {
            let mut stats = InboxStats::default();
            for row in sqlx::query(sql::STATS).fetch_all(&self.pool).await? {
                sql::add_stats(
                    &mut stats,
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                );
            }
            Ok(stats)
        })
    }

    fn purge(&self, before: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let purged = sqlx::query(sql::PURGE)
                .bind(before)
                .execute(&self.pool)
                .await?;
            Ok(purged.rows_affected())
        })
    }

    fn listen(&self) {
        self.listener
            .get_or_init(|| tokio::spawn(listen(self.pool.clone(), Arc::clone(&self.ready))));
    }
}
