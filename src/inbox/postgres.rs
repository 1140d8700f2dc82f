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

use super::sql;
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

    const ID_COLUMN: &str = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";
    const BYTES: &str = "BYTEA";
    const MORE_DDL: &[&str] = &CREATE_NOTIFY;
    const DUE: &str = sql::DUE_SKIP_LOCKED;

    async fn schema_transaction(&self) -> Result<Transaction<'static, Postgres>, InboxError> {
        self.locked(SCHEMA_LOCK).await
    }

    async fn claim_transaction(&self) -> Result<Transaction<'static, Postgres>, InboxError> {
        self.locked(CLAIM_LOCK).await
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

sql::sql_store!(
    PgStore,
    "postgres",
    fn listen(&self) {
        self.listener
            .get_or_init(|| tokio::spawn(listen(self.pool.clone(), Arc::clone(&self.ready))));
    }
);
