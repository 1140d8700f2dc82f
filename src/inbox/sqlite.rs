//! The SQLite store: one file in WAL mode, written through one connection.
//!
//! All writes go through a single pooled connection, so writers in this
//! process queue in the pool rather than in SQLite's busy handler; a claim's
//! several statements run in `BEGIN IMMEDIATE`, which takes the write lock
//! up front, so another process on the same file makes it wait (up to the
//! busy timeout) instead of failing with "database is locked" when a read
//! turns into a write. Every other write is one statement, which takes the
//! write lock as it starts.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::sql;
use super::{
    Claim, Claimed, DeadRow, Finish, InboxError, InboxStats, LEASE_RAN_OUT, NewWebhook, Receipt,
    Store, StoreFuture, candidates,
};

/// What an acknowledged webhook survives on SQLite, set by
/// [`Inbox::sqlite_with`](super::Inbox::sqlite_with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SqliteSync {
    /// `synchronous=FULL`, the default: every commit is on disk before the
    /// 200, so it survives the process being killed and the machine losing
    /// power.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits survive the process being killed, but
    /// the last ones before a power loss or an OS crash may be lost, though
    /// acknowledged. Faster, since commits do not wait for the disk.
    Normal,
}

pub(super) struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub(super) async fn open(path: &Path, sync: SqliteSync) -> Result<Self, InboxError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    const ID_COLUMN: &str = "INTEGER PRIMARY KEY AUTOINCREMENT";
    const BYTES: &str = "BLOB";
    const MORE_DDL: &[&str] = &[];
    const DUE: &str = sql::DUE;

    /// Migrations and claims both take the write lock up front.
    async fn schema_transaction(&self) -> Result<Transaction<'static, Sqlite>, InboxError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn claim_transaction(&self) -> Result<Transaction<'static, Sqlite>, InboxError> {
        self.schema_transaction().await
    }
}

sql::sql_store!(SqliteStore, "sqlite");
