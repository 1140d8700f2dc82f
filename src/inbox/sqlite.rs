//! The SQLite store: one file in WAL mode, written through one connection.
//!
//! All writes go through a single pooled connection, so writers in this
//! process queue in the pool rather than in SQLite's busy handler, and every
//! transaction starts with `BEGIN IMMEDIATE`, which takes the write lock up
//! front: another process on the same file makes it wait (up to the busy
//! timeout) instead of failing with "database is locked" when a read turns
//! into a write. Receivers' webhooks are committed by one writer task, many
//! to a commit.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::sql;
use super::store::{
    AttemptRow, Claim, Claimed, DeadRow, DetailRow, Finish, Finished, LEASE_RAN_OUT, ListedRow,
    MinuteCounts, NamedRow, NewWebhook, Purge, RowFilter, Store, StoreFuture, Swept, add_backlog,
};
use super::{Backlog, InboxError, InboxStats, Receipt};

/// What an acknowledged webhook survives on SQLite, set by
/// [`Inbox::sqlite_with`](super::Inbox::sqlite_with). Needs the `sqlite`
/// feature.
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
    /// Where receivers queue their webhooks for the writer's next commit.
    inserts: mpsc::Sender<Insert>,
}

/// A webhook to store, and where to say what came of it.
type Insert = (NewWebhook, oneshot::Sender<Result<Receipt, InboxError>>);

/// The most webhooks one commit takes.
const MAX_BATCH: usize = 256;

impl SqliteStore {
    /// Opens the file. Connections run with `synchronous=NORMAL`, which
    /// commits without waiting for the disk; the writer switches to `FULL`
    /// (unless `sync` says not to) for the commits that acknowledge
    /// webhooks, whose flush of the WAL also makes every earlier commit
    /// durable. So only acknowledgements wait for the disk; a claim or an
    /// outcome lost to a power cut only hands a webhook out again.
    pub(super) async fn open(path: &Path, sync: SqliteSync) -> Result<Self, InboxError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        // Switching a new file to WAL takes a lock SQLite's busy handler does
        // not wait for: a second process opening the same new file at that
        // moment is told "database is locked", so it tries again.
        let mut tries = 0;
        let pool = loop {
            match SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
            {
                Err(sqlx::Error::Database(error))
                    if error.code().as_deref() == Some("5") && tries < 50 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                connected => break connected?,
            }
        };
        let (inserts, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write(pool.clone(), sync, queue));
        let store = Self { pool, inserts };
        store.migrate().await?;
        Ok(store)
    }

    const ID_COLUMN: &str = "INTEGER PRIMARY KEY AUTOINCREMENT";
    const BYTES: &str = "BLOB";
    const DUE: &str = sql::DUE;
    sql::id_list_statements!("IN (SELECT value FROM json_each($1))");

    /// The ids a statement of [`sql::id_list_statements`] binds, as a JSON array.
    fn id_list(ids: &[i64]) -> String {
        let mut list = String::with_capacity(ids.len() * 8 + 2);
        list.push('[');
        for (at, id) in ids.iter().enumerate() {
            if at > 0 {
                list.push(',');
            }
            list.push_str(&id.to_string());
        }
        list.push(']');
        list
    }

    /// `rows` in one statement, prepared once: a JSON array of arrays that
    /// `json_each` reads back (a `VALUES` list would be a statement per
    /// batch size, parsed anew each time).
    async fn insert_attempts(
        tx: &mut Transaction<'static, Sqlite>,
        rows: &[(i64, AttemptRow)],
    ) -> Result<(), InboxError> {
        const INSERT: &str = "INSERT INTO webhook_inbox_attempts \
            (webhook_id, attempt, started_at, ended_at, outcome, error) \
            SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 \
            FROM json_each($1)";
        let rows: Vec<_> = rows
            .iter()
            .map(|(id, attempt)| {
                (
                    id,
                    attempt.number,
                    attempt.started_at,
                    attempt.ended_at,
                    attempt.outcome.as_str(),
                    attempt.error.as_deref(),
                )
            })
            .collect();
        let json =
            serde_json::to_string(&rows).map_err(|error| InboxError::Database(error.into()))?;
        sqlx::query(INSERT).bind(json).execute(&mut **tx).await?;
        Ok(())
    }

    /// Migrations, claims and bookkeeping all take the write lock up front.
    async fn schema_transaction(&self) -> Result<Transaction<'static, Sqlite>, InboxError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn claim_transaction(&self) -> Result<Option<Transaction<'static, Sqlite>>, InboxError> {
        Ok(Some(self.schema_transaction().await?))
    }

    async fn bookkeeping(&self) -> Result<Transaction<'static, Sqlite>, InboxError> {
        self.schema_transaction().await
    }

    /// Other processes on the file poll; this one's workers are woken by
    /// the inbox itself.
    fn notify_other_instances(&self) {}
}

/// The writer: commits every webhook queued while the previous commit was
/// being flushed in one transaction (group commit), so one flush of the
/// disk acknowledges many webhooks.
async fn write(pool: SqlitePool, sync: SqliteSync, mut queue: mpsc::Receiver<Insert>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match commit(&pool, sync, &batch).await {
            Ok(receipts) => {
                for ((_, reply), receipt) in batch.drain(..).zip(receipts) {
                    let _ = reply.send(Ok(receipt));
                }
            }
            // One row's failure must not fail the others: each on its own.
            Err(_) if batch.len() > 1 => {
                for insert in batch.drain(..) {
                    let one = [insert];
                    let receipt = commit(&pool, sync, &one).await;
                    let [(_, reply)] = one;
                    let _ = reply.send(receipt.and_then(|mut receipts| {
                        receipts.pop().ok_or_else(|| {
                            InboxError::Database("the insert returned no row".into())
                        })
                    }));
                }
            }
            Err(error) => {
                if let Some((_, reply)) = batch.pop() {
                    let _ = reply.send(Err(error));
                }
            }
        }
    }
}

async fn commit(
    pool: &SqlitePool,
    sync: SqliteSync,
    batch: &[Insert],
) -> Result<Vec<Receipt>, InboxError> {
    let mut connection = pool.acquire().await?;
    if sync == SqliteSync::Full {
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *connection)
            .await?;
    }
    let committed = async {
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await?;
        let mut receipts = Vec::with_capacity(batch.len());
        for (row, _) in batch {
            let inserted = sql::bind_insert(row).fetch_one(&mut *tx).await?;
            receipts.push(sql::receipt(&inserted)?);
        }
        tx.commit().await?;
        Ok::<_, InboxError>(receipts)
    }
    .await;
    if sync == SqliteSync::Full
        && let Err(error) = sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *connection)
            .await
    {
        // Still correct, only slower: every commit then waits for the disk.
        tracing::warn!(%error, "inbox connection left at synchronous=FULL");
    }
    committed
}

sql::sql_store!(
    SqliteStore,
    "sqlite",
    fn insert(&self, row: NewWebhook) -> StoreFuture<'_, Receipt> {
        Box::pin(async move {
            let (reply, receipt) = oneshot::channel();
            self.inserts
                .send((row, reply))
                .await
                .map_err(|_| InboxError::Closed)?;
            receipt.await.map_err(|_| InboxError::Closed)?
        })
    }
);
