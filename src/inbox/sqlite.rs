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

use super::sql::{self, claimed_row, dead_row};
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
            .await
            .map_err(InboxError::store)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), InboxError> {
        let mut tx = self.begin().await?;
        sqlx::query(sql::CREATE_VERSION_TABLE)
            .execute(&mut *tx)
            .await?;
        let version: Option<i64> = sqlx::query_scalar(sql::SELECT_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        match version {
            None => {
                let table = sql::create_table("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB");
                sqlx::query(&table).execute(&mut *tx).await?;
                for index in sql::CREATE_INDEXES {
                    sqlx::query(index).execute(&mut *tx).await?;
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

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, InboxError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn claim_in(&self, claim: Claim) -> Result<Claimed, InboxError> {
        let mut tx = self.begin().await?;
        sqlx::query(sql::DEAD_LOST_LEASES)
            .bind(LEASE_RAN_OUT)
            .bind(claim.now)
            .bind(i64::from(claim.max_attempts))
            .execute(&mut *tx)
            .await?;
        let due = sqlx::query(sql::DUE)
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

impl Store for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
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
}
