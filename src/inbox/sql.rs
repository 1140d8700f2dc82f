//! The SQL the SQLite and PostgreSQL stores share: one table, `$n`
//! parameters (which sqlx binds by number on SQLite too), and only types
//! both databases read the same way.

use bytes::Bytes;
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};

use super::store::{
    AttemptRow, ClaimedRow, DeadRow, Finish, ListedRow, MinuteCounts, NewWebhook, RowFilter,
    SHIPMENT_KEYS,
};
use super::{AttemptOutcome, Delivery, InboxError, InboxStats, Receipt};

/// The schema version these statements read and write. Version 1 stored
/// provider headers as one provider's typed headers; version 2 stores every
/// provider's as a JSON object of header names to text; version 3 keeps each
/// shipment's newest handled event past the purge of its rows
/// (`webhook_inbox_shipments`); version 4 indexes shipments by their hash
/// first; version 5 keeps every attempt (`webhook_inbox_attempts`).
pub(super) const SCHEMA_VERSION: i64 = 5;

/// Each attempt at a webhook, deleted with it: `started_at` is null for a
/// lease that ran out, whose start no one recorded.
pub(super) const CREATE_ATTEMPTS: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS webhook_inbox_attempts (
        webhook_id BIGINT NOT NULL,
        attempt BIGINT NOT NULL,
        started_at BIGINT,
        ended_at BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT
    )",
    "CREATE INDEX IF NOT EXISTS webhook_inbox_attempts_of \
     ON webhook_inbox_attempts (webhook_id, ended_at)",
];

/// The attempts whose lease ran out by `$1`, before the sweep releases them.
pub(super) const LOST_LEASE_ATTEMPTS: &str = "INSERT INTO webhook_inbox_attempts \
    (webhook_id, attempt, started_at, ended_at, outcome, error) \
    SELECT id, attempts, NULL, lease_until, 'lease_lost', NULL FROM webhook_inbox \
    WHERE state = 'processing' AND lease_until <= $1";

/// The first parameter after those of [`filter_where`].
const AFTER_FILTER: usize = 7 + SHIPMENT_KEYS;

/// What a [`RowFilter`] tests, each skipped when null: `$1` to `$4` (state,
/// provider, endpoint, tenant), `$5` on (the shipment's keys, one per
/// [`SHIPMENT_KEYS`]), then received from and until.
fn filter_where(bytes: &str) -> String {
    let keys: Vec<String> = (5..5 + SHIPMENT_KEYS).map(|at| format!("${at}")).collect();
    let from = 5 + SHIPMENT_KEYS;
    format!(
        "(CAST($1 AS TEXT) IS NULL OR state = $1) \
         AND (CAST($2 AS TEXT) IS NULL OR provider = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR endpoint = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR tenant = $4) \
         AND (CAST($5 AS {bytes}) IS NULL OR shipment IN ({})) \
         AND (CAST(${from} AS BIGINT) IS NULL OR received_at >= ${from}) \
         AND (CAST(${until} AS BIGINT) IS NULL OR received_at < ${until})",
        keys.join(", "),
        until = from + 1,
    )
}

/// The rows a filter matches past the parameter after it, at most the next.
pub(super) fn list(bytes: &str) -> String {
    format!(
        "SELECT id, provider, endpoint, tenant, state, event, attempts, last_error, \
         received_at, duplicates FROM webhook_inbox WHERE {} AND id > ${AFTER_FILTER} \
         ORDER BY id LIMIT ${}",
        filter_where(bytes),
        AFTER_FILTER + 1
    )
}

/// Replays, at the parameter after the filter's, the dead rows it matches.
pub(super) fn replay_matching(bytes: &str) -> String {
    format!(
        "UPDATE webhook_inbox SET state = 'pending', attempts = 0, run_at = ${AFTER_FILTER} \
         WHERE {} AND state = 'dead'",
        filter_where(bytes)
    )
}

/// `statement` with `filter`'s parameters bound (those of [`filter_where`]).
pub(super) fn bind_filter<'q, DB>(
    statement: &'q str,
    filter: &'q RowFilter,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
{
    let mut query = sqlx::query(statement)
        .bind(filter.state)
        .bind(filter.provider.as_deref())
        .bind(filter.endpoint.as_deref())
        .bind(filter.tenant.as_deref());
    for at in 0..SHIPMENT_KEYS {
        query = query.bind(filter.shipment.as_ref().map(|keys| keys[at].as_slice()));
    }
    query.bind(filter.received_from).bind(filter.received_until)
}

/// One row, whole.
pub(super) const GET: &str = "SELECT id, provider, endpoint, tenant, state, event, attempts, \
    last_error, received_at, duplicates, dedup_key, body, provider_headers, secret_label \
    FROM webhook_inbox WHERE id = $1";
/// Its attempts, oldest first.
pub(super) const GET_ATTEMPTS: &str = "SELECT attempt, started_at, ended_at, outcome, error \
    FROM webhook_inbox_attempts WHERE webhook_id = $1 ORDER BY ended_at, attempt";
/// Deletes a pending or dead row; then its attempts.
pub(super) const DISCARD: &str =
    "DELETE FROM webhook_inbox WHERE id = $1 AND state IN ('pending', 'dead')";
pub(super) const DISCARD_ATTEMPTS: &str =
    "DELETE FROM webhook_inbox_attempts WHERE webhook_id = $1";
/// The attempts of the rows [`PURGE`] deletes.
pub(super) const PURGE_ATTEMPTS: &str = "DELETE FROM webhook_inbox_attempts WHERE webhook_id IN \
    (SELECT id FROM webhook_inbox \
     WHERE (state IN ('done', 'superseded') AND received_at < $1) \
       OR (state = 'dead' AND received_at < $2))";

/// Reads a row [`list`] or [`GET`] returned.
pub(super) fn listed_row<'r, R>(row: &'r R) -> Result<ListedRow, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ListedRow {
        id: row.try_get("id")?,
        provider: row.try_get("provider")?,
        endpoint: row.try_get("endpoint")?,
        tenant: row.try_get("tenant")?,
        state: row.try_get("state")?,
        event: row.try_get("event")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        received_at: row.try_get("received_at")?,
        duplicates: row.try_get("duplicates")?,
    })
}

/// Reads a row [`GET_ATTEMPTS`] returned.
pub(super) fn attempt_row<'r, R>(row: &'r R) -> Result<AttemptRow, InboxError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    let outcome: String = row.try_get("outcome")?;
    Ok(AttemptRow {
        number: row.try_get("attempt")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| {
            InboxError::Database(format!("unknown attempt outcome {outcome:?}").into())
        })?,
        error: row.try_get("error")?,
    })
}

/// Rows with provider headers, which the migration from version 1 rewrites.
pub(super) const SELECT_HEADERS: &str =
    "SELECT id, provider, provider_headers FROM webhook_inbox WHERE provider_headers IS NOT NULL";
pub(super) const UPDATE_HEADERS: &str =
    "UPDATE webhook_inbox SET provider_headers = $2 WHERE id = $1";

pub(super) const CREATE_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS webhook_inbox_schema (version BIGINT NOT NULL)";
pub(super) const SELECT_VERSION: &str = "SELECT MAX(version) FROM webhook_inbox_schema";
pub(super) const INSERT_VERSION: &str = "INSERT INTO webhook_inbox_schema (version) VALUES ($1)";

/// The table, with the store's id column and byte type put in.
pub(super) fn create_table(id: &str, bytes: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS webhook_inbox (
            id {id},
            provider TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            tenant TEXT NOT NULL,
            dedup_key {bytes} NOT NULL,
            shipment {bytes} NOT NULL,
            event TEXT NOT NULL,
            event_time BIGINT,
            final_status INTEGER NOT NULL,
            body {bytes} NOT NULL,
            provider_headers TEXT,
            secret_label TEXT NOT NULL,
            received_at BIGINT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts BIGINT NOT NULL DEFAULT 0,
            run_at BIGINT NOT NULL,
            lease_until BIGINT NOT NULL DEFAULT 0,
            lease BIGINT,
            last_error TEXT,
            duplicates BIGINT NOT NULL DEFAULT 0,
            UNIQUE (provider, endpoint, tenant, dedup_key)
        )"
    )
}

/// What latest wins needs of each shipment's handled events once their rows
/// are purged (folded in by the purge): the newest signed time and the dedup
/// key of the event that set it (or of the last one, where there is no
/// time), whether a final status was handled (at all, and without a time),
/// and when the last of them was received.
pub(super) fn create_shipments_table(bytes: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS webhook_inbox_shipments (
            provider TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            tenant TEXT NOT NULL,
            shipment {bytes} NOT NULL,
            newest_time BIGINT,
            newest_key {bytes},
            final_any INTEGER NOT NULL,
            final_untimed INTEGER NOT NULL,
            handled_at BIGINT NOT NULL,
            PRIMARY KEY (provider, endpoint, tenant, shipment)
        )"
    )
}

/// Folds the handled rows received before `$1`, about to be purged, into
/// their shipments' marks, so latest wins remembers them.
pub(super) const FOLD_SHIPMENTS: &str = "INSERT INTO webhook_inbox_shipments \
    (provider, endpoint, tenant, shipment, newest_time, newest_key, final_any, final_untimed, \
      handled_at) \
    SELECT provider, endpoint, tenant, shipment, MAX(event_time), \
      (SELECT n.dedup_key FROM webhook_inbox n \
        WHERE n.provider = d.provider AND n.endpoint = d.endpoint AND n.tenant = d.tenant \
          AND n.shipment = d.shipment AND n.state = 'done' AND n.received_at < $1 \
        ORDER BY n.event_time DESC, n.id DESC LIMIT 1), \
      MAX(final_status), MAX(CASE WHEN event_time IS NULL THEN final_status ELSE 0 END), \
      MAX(received_at) \
    FROM webhook_inbox d WHERE state = 'done' AND received_at < $1 \
    GROUP BY provider, endpoint, tenant, shipment \
    ON CONFLICT (provider, endpoint, tenant, shipment) DO UPDATE SET \
      newest_key = CASE WHEN excluded.newest_time IS NULL \
          OR webhook_inbox_shipments.newest_time IS NULL \
          OR excluded.newest_time >= webhook_inbox_shipments.newest_time \
        THEN excluded.newest_key ELSE webhook_inbox_shipments.newest_key END, \
      newest_time = CASE WHEN webhook_inbox_shipments.newest_time IS NULL \
          OR excluded.newest_time > webhook_inbox_shipments.newest_time \
        THEN excluded.newest_time ELSE webhook_inbox_shipments.newest_time END, \
      final_any = CASE WHEN excluded.final_any = 1 THEN 1 \
        ELSE webhook_inbox_shipments.final_any END, \
      final_untimed = CASE WHEN excluded.final_untimed = 1 THEN 1 \
        ELSE webhook_inbox_shipments.final_untimed END, \
      handled_at = excluded.handled_at";

pub(super) const CREATE_INDEXES: [&str; 3] = [
    // Claims read pending rows, and leased ones, oldest first.
    "CREATE INDEX IF NOT EXISTS webhook_inbox_due ON webhook_inbox (state, id)",
    // Purges read handled rows by age.
    "CREATE INDEX IF NOT EXISTS webhook_inbox_kept ON webhook_inbox (state, received_at)",
    SHIPMENT_INDEX,
];

/// Finds a shipment's rows in a state. The hash comes first: every claim
/// and outcome changes `state`, so this index is written twice per webhook,
/// and keys that differ in their first bytes are cheap to place. The
/// provider, endpoint and tenant stay in it so that SQLite, without
/// statistics, prefers it to the unique index's (provider, endpoint,
/// tenant) prefix, which would scan an endpoint's every row.
const SHIPMENT_INDEX: &str = "CREATE INDEX IF NOT EXISTS webhook_inbox_by_shipment \
    ON webhook_inbox (shipment, provider, endpoint, tenant, state)";

/// Replaces the shipment index of versions 1 to 3, by the scope first.
pub(super) const UPGRADE_SHIPMENT_INDEX: [&str; 2] = [
    "DROP INDEX IF EXISTS webhook_inbox_shipment",
    SHIPMENT_INDEX,
];

/// Inserts a webhook, or counts a duplicate on the row with its key.
pub(super) const INSERT: &str = "INSERT INTO webhook_inbox (provider, endpoint, tenant, dedup_key, \
    shipment, event, event_time, final_status, body, provider_headers, secret_label, \
    received_at, run_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
    ON CONFLICT (provider, endpoint, tenant, dedup_key) \
    DO UPDATE SET duplicates = webhook_inbox.duplicates + 1 \
    RETURNING id, duplicates";

/// Rows whose lease ran out on their last attempt are dead: their ids,
/// providers and events, for the log and the counter.
pub(super) const DEAD_LOST_LEASES: &str = "UPDATE webhook_inbox \
    SET state = 'dead', lease = NULL, last_error = $1 \
    WHERE state = 'processing' AND lease_until <= $2 AND attempts >= $3 \
    RETURNING id, provider, event";

/// Rows whose lease ran out on an earlier attempt are due again at `$1`.
pub(super) const RELEASE_LOST_LEASES: &str = "UPDATE webhook_inbox \
    SET state = 'pending', lease = NULL, run_at = $1 \
    WHERE state = 'processing' AND lease_until <= $1";

/// Pending rows due by `$1`, oldest first, at most `$2`, of shipments none
/// of whose rows is leased (a lost lease waits for the sweep to release
/// it). Read in `id` order from the `(state, id)` index and stopped at the
/// limit; each row's shipment is checked through the shipment index, so a
/// shipment being handled takes no place in the claim (no head-of-line
/// blocking), and a shipment's due rows come together, in order.
macro_rules! due {
    () => {
        "SELECT c.id FROM webhook_inbox c WHERE c.state = 'pending' AND c.run_at <= $1 \
         AND NOT EXISTS (SELECT 1 FROM webhook_inbox o \
           WHERE o.provider = c.provider AND o.endpoint = c.endpoint \
             AND o.tenant = c.tenant AND o.shipment = c.shipment AND o.state = 'processing') \
         ORDER BY c.id LIMIT $2"
    };
}

/// The rows a claim takes.
#[cfg(feature = "sqlite")]
pub(super) const DUE: &str = due!();
/// [`DUE`], locking its rows. Not `SKIP LOCKED`: the only lock a pending
/// row can be under is a duplicate's count being committed, and skipping
/// it would hand out its shipment's later rows before it.
#[cfg(feature = "postgres")]
pub(super) const DUE_LOCKED: &str = concat!(due!(), " FOR UPDATE OF c");

/// The statements over a list of ids, bound as `$1`: each store gives the
/// SQL that tests `id` against the list (`$list`), since PostgreSQL binds an
/// array and SQLite a JSON array.
macro_rules! id_list_statements {
    ($list:literal) => {
        /// Marks superseded those of the rows in `$1` that a newer event of
        /// their shipment makes older news; their ids. Newer is by signed
        /// time where both have one, else by a final status. Handled rows
        /// still kept are read as they are; purged ones through their
        /// shipment's marks, which also catch the very event handled newest,
        /// sent again after its dedup key was purged.
        const SUPERSEDE_MANY: &str = concat!(
            "UPDATE webhook_inbox AS c SET state = 'superseded', lease = NULL WHERE c.id ",
            $list,
            " AND (EXISTS (SELECT 1 FROM webhook_inbox d \
               WHERE d.provider = c.provider AND d.endpoint = c.endpoint AND d.tenant = c.tenant \
                 AND d.shipment = c.shipment AND d.state = 'done' \
                 AND ((d.event_time IS NOT NULL AND c.event_time IS NOT NULL AND d.event_time > c.event_time) \
                   OR ((d.event_time IS NULL OR c.event_time IS NULL) \
                     AND d.final_status = 1 AND c.final_status = 0))) \
             OR EXISTS (SELECT 1 FROM webhook_inbox_shipments m \
               WHERE m.provider = c.provider AND m.endpoint = c.endpoint AND m.tenant = c.tenant \
                 AND m.shipment = c.shipment \
                 AND (m.newest_key = c.dedup_key \
                   OR (c.event_time IS NOT NULL AND m.newest_time > c.event_time) \
                   OR (c.final_status = 0 AND ((c.event_time IS NULL AND m.final_any = 1) \
                     OR (c.event_time IS NOT NULL AND m.final_untimed = 1)))))) \
             RETURNING id, provider, event"
        );
        /// Leases the rows in `$1` until `$2` under lease `$3`: what a
        /// delivery is made of.
        const CLAIM_MANY: &str = concat!(
            "UPDATE webhook_inbox SET state = 'processing', attempts = attempts + 1, \
             lease_until = $2, lease = $3 WHERE id ",
            $list,
            " RETURNING id, shipment, lease, attempts, dedup_key, provider, endpoint, tenant, \
             event, body, provider_headers, secret_label, received_at"
        );
        /// Pushes to `$3` the lease of the rows in `$1` still held under `$2`.
        const EXTEND_MANY: &str = concat!(
            "UPDATE webhook_inbox SET lease_until = $3 WHERE id ",
            $list,
            " AND lease = $2 AND state = 'processing'"
        );
        /// Replays at `$2` the rows in `$1` that are dead.
        const REPLAY_MANY: &str = concat!(
            "UPDATE webhook_inbox SET state = 'pending', attempts = 0, run_at = $2 WHERE id ",
            $list,
            " AND state = 'dead'"
        );
        /// The attempts of the rows in `$1`, by row, each row's oldest first:
        /// those of a page of dead rows in one query.
        const ATTEMPTS_OF_MANY: &str = concat!(
            "SELECT webhook_id, attempt, started_at, ended_at, outcome, error \
             FROM webhook_inbox_attempts WHERE webhook_id ",
            $list,
            " ORDER BY webhook_id, ended_at, attempt"
        );
        /// Marks done the rows in `$1` still held under lease `$2`; their ids.
        const DONE_MANY: &str = concat!(
            "UPDATE webhook_inbox SET state = 'done', lease = NULL WHERE id ",
            $list,
            " AND lease = $2 AND state = 'processing' RETURNING id"
        );
    };
}

pub(super) use id_list_statements;

/// What `finish` sets, by outcome (`DONE` also in a handler's own
/// transaction, `Delivery::mark_done_in`): `$1` id, `$2` lease, then the outcome's
/// fields in order (`RETRY`: when, error; `DEAD`: error; `RELEASE`: when;
/// `SUPERSEDED`: none).
pub(super) const DONE: &str = "UPDATE webhook_inbox SET state = 'done', lease = NULL \
    WHERE id = $1 AND lease = $2 AND state = 'processing'";
pub(super) const RETRY: &str = "UPDATE webhook_inbox \
    SET state = 'pending', lease = NULL, run_at = $3, last_error = $4 \
    WHERE id = $1 AND lease = $2 AND state = 'processing'";
pub(super) const DEAD: &str = "UPDATE webhook_inbox SET state = 'dead', lease = NULL, last_error = $3 \
    WHERE id = $1 AND lease = $2 AND state = 'processing'";
pub(super) const RELEASE: &str = "UPDATE webhook_inbox \
    SET state = 'pending', lease = NULL, run_at = $3, attempts = attempts - 1 \
    WHERE id = $1 AND lease = $2 AND state = 'processing'";
pub(super) const SUPERSEDED: &str = "UPDATE webhook_inbox SET state = 'superseded', lease = NULL \
    WHERE id = $1 AND lease = $2 AND state = 'processing'";

pub(super) const LIST_DEAD: &str = "SELECT id, event, endpoint, attempts, last_error, \
    received_at, dedup_key, body FROM webhook_inbox WHERE state = 'dead' ORDER BY id LIMIT $1";

pub(super) const REPLAY: &str = "UPDATE webhook_inbox SET state = 'pending', attempts = 0, run_at = $2 \
    WHERE id = $1 AND state = 'dead'";

/// Pending, processing and dead rows by provider, and the oldest pending
/// one's `received_at`, for the gauges.
pub(super) const BACKLOG: &str = "SELECT provider, state, COUNT(*), MIN(received_at) \
    FROM webhook_inbox WHERE state IN ('pending', 'processing', 'dead') GROUP BY provider, state";

/// Webhooks received, and attempts handled and failed, in `$1..$2`, by
/// minute since `$1`. The received rows are read through the
/// `(state, received_at)` index, one range per state; the attempts by
/// scanning their table, which the purge keeps to the retention.
pub(super) const PER_MINUTE: &str = "SELECT minute, \
      CAST(SUM(received) AS BIGINT), CAST(SUM(handled) AS BIGINT), CAST(SUM(failed) AS BIGINT) \
    FROM (SELECT (received_at - $1) / 60000 AS minute, 1 AS received, 0 AS handled, 0 AS failed \
        FROM webhook_inbox \
        WHERE state IN ('pending', 'processing', 'done', 'dead', 'superseded') \
          AND received_at >= $1 AND received_at < $2 \
      UNION ALL \
      SELECT (ended_at - $1) / 60000, 0, \
          CASE WHEN outcome = 'handled' THEN 1 ELSE 0 END, \
          CASE WHEN outcome = 'handled' THEN 0 ELSE 1 END \
        FROM webhook_inbox_attempts \
        WHERE outcome IN ('handled', 'failed', 'dead', 'timed_out') \
          AND ended_at >= $1 AND ended_at < $2) AS counted \
    GROUP BY minute";

/// Reads a row [`PER_MINUTE`] returned.
pub(super) fn minute_counts<'r, R>(row: &'r R) -> Result<MinuteCounts, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let count = |at: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(at)?).unwrap_or_default())
    };
    Ok(MinuteCounts {
        minute: row.try_get(0)?,
        received: count(1)?,
        handled: count(2)?,
        failed: count(3)?,
    })
}

pub(super) const STATS: &str = "SELECT state, COUNT(*), CAST(SUM(duplicates) AS BIGINT) \
    FROM webhook_inbox GROUP BY state";

/// Deletes handled and superseded rows received before `$1`, and dead ones
/// received before `$2`.
pub(super) const PURGE: &str = "DELETE FROM webhook_inbox \
    WHERE (state IN ('done', 'superseded') AND received_at < $1) \
      OR (state = 'dead' AND received_at < $2)";
/// Forgets the marks of shipments with nothing handled since `$1`.
pub(super) const PURGE_SHIPMENTS: &str =
    "DELETE FROM webhook_inbox_shipments WHERE handled_at < $1";

/// The delivery a row `CLAIM_MANY` returned holds.
pub(super) fn delivery<'r, R>(row: &'r R) -> Result<Delivery, InboxError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    ClaimedRow {
        id: row.try_get("id")?,
        shipment: row.try_get("shipment")?,
        lease: row.try_get("lease")?,
        attempts: row.try_get("attempts")?,
        dedup_key: row.try_get("dedup_key")?,
        provider: row.try_get("provider")?,
        endpoint: row.try_get("endpoint")?,
        tenant: row.try_get("tenant")?,
        event: row.try_get("event")?,
        body: Bytes::from(row.try_get::<Vec<u8>, _>("body")?),
        provider_headers: row.try_get("provider_headers")?,
        secret_label: row.try_get("secret_label")?,
        received_at: row.try_get("received_at")?,
    }
    .into_delivery()
}

/// Reads a row [`LIST_DEAD`] returned, its attempts still to be added.
pub(super) fn dead_row<'r, R>(row: &'r R) -> Result<DeadRow, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(DeadRow {
        id: row.try_get("id")?,
        event: row.try_get("event")?,
        endpoint: row.try_get("endpoint")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        received_at: row.try_get("received_at")?,
        dedup_key: row.try_get("dedup_key")?,
        body: Bytes::from(row.try_get::<Vec<u8>, _>("body")?),
        history: Vec::new(),
    })
}

/// Adds one [`STATS`] row (state, count, duplicates) to `stats`.
pub(super) fn add_stats(stats: &mut InboxStats, state: &str, count: i64, duplicates: Option<i64>) {
    let count = u64::try_from(count).unwrap_or_default();
    match state {
        "pending" => stats.pending += count,
        "processing" => stats.processing += count,
        "done" => stats.done += count,
        "dead" => stats.dead += count,
        "superseded" => stats.superseded += count,
        _ => {}
    }
    stats.duplicates += duplicates
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_default();
}

/// The refusal to touch a table a newer version of this crate laid out.
pub(super) fn newer_schema(found: i64) -> InboxError {
    InboxError::NewerSchema {
        found,
        known: SCHEMA_VERSION,
    }
}

/// [`INSERT`] with `row` bound.
pub(super) fn bind_insert<'q, DB>(row: &'q NewWebhook) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    i32: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(INSERT)
        .bind(row.provider.as_str())
        .bind(row.endpoint.as_str())
        .bind(row.tenant.as_str())
        .bind(row.dedup_key.as_bytes().as_slice())
        .bind(row.shipment.as_slice())
        .bind(row.event.as_str())
        .bind(row.event_time)
        .bind(i32::from(row.final_status))
        .bind(&row.body[..])
        .bind(row.provider_headers.as_deref())
        .bind(row.secret_label.as_str())
        .bind(row.received_at)
}

/// What an [`INSERT`] returned: a new row has no duplicates yet.
pub(super) fn receipt<'r, R>(row: &'r R) -> Result<Receipt, InboxError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let id = row.try_get("id")?;
    Ok(if row.try_get::<i64, _>("duplicates")? == 0 {
        Receipt::Stored { id }
    } else {
        Receipt::Duplicate { id }
    })
}

/// The statement that records `finish` on row `id` held under `lease`.
pub(super) fn bind_finish<'q, DB>(
    id: i64,
    lease: i64,
    finish: Finish,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
{
    let query = |sql| sqlx::query(sql).bind(id).bind(lease);
    match finish {
        Finish::Done => query(DONE),
        Finish::Retry { at, error } => query(RETRY).bind(at).bind(error),
        Finish::Dead { error } => query(DEAD).bind(error),
        Finish::Release { at } => query(RELEASE).bind(at),
        Finish::Superseded => query(SUPERSEDED),
    }
}

/// The inbox on one sqlx database: `migrate`, and every [`Store`](super::Store)
/// method but `name`, `insert` and `listen` (given as `$more`), written once
/// for both. A macro rather than generic code because sqlx's per-database
/// result types (`rows_affected`) share no trait. The store (`$store`) has a
/// `pool` and provides `schema_transaction`, `claim_transaction` (each
/// holding the lock its work needs) and `bookkeeping` (a transaction whose
/// commit need not wait for the disk: losing one in a crash only hands a
/// webhook out again), `notify_other_instances`, and the constants
/// `ID_COLUMN`, `BYTES` and `DUE`.
macro_rules! sql_store {
    ($store:ty, $name:literal $(, $more:item)* $(,)?) => {
        impl $store {
            async fn migrate(&self) -> Result<(), InboxError> {
                let mut tx = self.schema_transaction().await?;
                sqlx::query(sql::CREATE_VERSION_TABLE).execute(&mut *tx).await?;
                let version: Option<i64> = sqlx::query_scalar(sql::SELECT_VERSION)
                    .fetch_one(&mut *tx)
                    .await?;
                match version {
                    None => {
                        let table = sql::create_table(Self::ID_COLUMN, Self::BYTES);
                        sqlx::query(&table).execute(&mut *tx).await?;
                        for statement in sql::CREATE_INDEXES {
                            sqlx::query(statement).execute(&mut *tx).await?;
                        }
                        let shipments = sql::create_shipments_table(Self::BYTES);
                        sqlx::query(&shipments).execute(&mut *tx).await?;
                        for statement in sql::CREATE_ATTEMPTS {
                            sqlx::query(statement).execute(&mut *tx).await?;
                        }
                    }
                    Some(old @ 1..=4) => {
                        if old == 1 {
                            // Each provider's headers as it stored them, as every provider's are now.
                            let rows = sqlx::query(sql::SELECT_HEADERS).fetch_all(&mut *tx).await?;
                            for row in rows {
                                let (id, provider, headers): (i64, String, String) =
                                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                                if let Some(headers) =
                                    crate::providers::headers_of_schema_1(&provider, &headers)
                                {
                                    sqlx::query(sql::UPDATE_HEADERS)
                                        .bind(id)
                                        .bind(headers.to_json())
                                        .execute(&mut *tx)
                                        .await?;
                                }
                            }
                        }
                        if old < 3 {
                            // Where latest wins keeps what the purge deletes.
                            let shipments = sql::create_shipments_table(Self::BYTES);
                            sqlx::query(&shipments).execute(&mut *tx).await?;
                        }
                        if old < 4 {
                            for statement in sql::UPGRADE_SHIPMENT_INDEX {
                                sqlx::query(statement).execute(&mut *tx).await?;
                            }
                        }
                        // Attempts are kept from now on; earlier ones were not.
                        for statement in sql::CREATE_ATTEMPTS {
                            sqlx::query(statement).execute(&mut *tx).await?;
                        }
                    }
                    Some(sql::SCHEMA_VERSION) => {
                        tx.commit().await?;
                        return Ok(());
                    }
                    Some(newer) => return Err(sql::newer_schema(newer)),
                }
                sqlx::query(sql::INSERT_VERSION)
                    .bind(sql::SCHEMA_VERSION)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_in(&self, claim: Claim) -> Result<Claimed, InboxError> {
                let Some(mut tx) = self.claim_transaction().await? else {
                    return Ok(Claimed::default());
                };
                let due = sqlx::query(Self::DUE)
                    .bind(claim.now)
                    .bind(i64::try_from(claim.limit).unwrap_or(i64::MAX))
                    .fetch_all(&mut *tx)
                    .await?;
                let mut chosen = Vec::with_capacity(due.len());
                for row in &due {
                    chosen.push(row.try_get::<i64, _>("id")?);
                }
                let mut claimed = Claimed {
                    full: chosen.len() >= claim.limit,
                    ..Claimed::default()
                };
                if chosen.is_empty() {
                    tx.commit().await?;
                    return Ok(claimed);
                }
                if claim.latest_wins {
                    let superseded = sqlx::query(Self::SUPERSEDE_MANY)
                        .bind(Self::id_list(&chosen))
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in superseded {
                        claimed.superseded.push(NamedRow {
                            id: row.try_get("id")?,
                            provider: row.try_get("provider")?,
                            event: row.try_get("event")?,
                        });
                    }
                    chosen.retain(|id| !claimed.superseded.iter().any(|row| row.id == *id));
                }
                if !chosen.is_empty() {
                    let rows = sqlx::query(Self::CLAIM_MANY)
                        .bind(Self::id_list(&chosen))
                        .bind(claim.lease_until)
                        .bind(claim.lease)
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in rows {
                        match sql::delivery(&row) {
                            Ok(delivery) => claimed.deliveries.push(delivery),
                            // A row this crate did not write: dead, for a
                            // person to look at, rather than failing every claim.
                            Err(error) => {
                                let id: i64 = row.try_get("id")?;
                                let provider: String = row.try_get("provider")?;
                                super::store::unreadable(&provider, id, &error);
                                sqlx::query(sql::DEAD)
                                    .bind(id)
                                    .bind(claim.lease)
                                    .bind(format!("unreadable row: {error}"))
                                    .execute(&mut *tx)
                                    .await?;
                            }
                        }
                    }
                    claimed.deliveries.sort_unstable_by_key(|delivery| delivery.id);
                }
                tx.commit().await?;
                Ok(claimed)
            }
        }

        impl Store for $store {
            fn name(&self) -> &'static str {
                $name
            }

            fn claim(&self, claim: Claim) -> StoreFuture<'_, Claimed> {
                Box::pin(self.claim_in(claim))
            }

            fn sweep(&self, now: i64, max_attempts: u32) -> StoreFuture<'_, Swept> {
                Box::pin(async move {
                    let mut tx = self.bookkeeping().await?;
                    sqlx::query(sql::LOST_LEASE_ATTEMPTS)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    let dead = sqlx::query(sql::DEAD_LOST_LEASES)
                        .bind(LEASE_RAN_OUT)
                        .bind(now)
                        .bind(i64::from(max_attempts))
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut swept = Swept::default();
                    for row in dead {
                        swept.dead.push(NamedRow {
                            id: row.try_get("id")?,
                            provider: row.try_get("provider")?,
                            event: row.try_get("event")?,
                        });
                    }
                    swept.released = sqlx::query(sql::RELEASE_LOST_LEASES)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    tx.commit().await?;
                    Ok(swept)
                })
            }

            fn extend(&self, lease: i64, ids: Vec<i64>, until: i64) -> StoreFuture<'_, u64> {
                Box::pin(async move {
                    let mut tx = self.bookkeeping().await?;
                    let extended = sqlx::query(Self::EXTEND_MANY)
                        .bind(Self::id_list(&ids))
                        .bind(lease)
                        .bind(until)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(extended.rows_affected())
                })
            }

            fn finish(&self, outcomes: Vec<Finished>) -> StoreFuture<'_, Vec<bool>> {
                Box::pin(async move {
                    let mut tx = self.bookkeeping().await?;
                    let mut finished = vec![false; outcomes.len()];
                    let attempts: Vec<Option<(i64, AttemptRow)>> = outcomes
                        .iter()
                        .map(|outcome| outcome.attempt.clone().map(|attempt| (outcome.id, attempt)))
                        .collect();
                    // Handled rows, one statement per lease (per claim) where
                    // it holds several.
                    let mut done: HashMap<i64, Vec<(usize, i64)>> = HashMap::new();
                    for (at, outcome) in outcomes.into_iter().enumerate() {
                        match outcome.finish {
                            Finish::Done => done.entry(outcome.lease).or_default().push((at, outcome.id)),
                            finish => {
                                let result = sql::bind_finish(outcome.id, outcome.lease, finish)
                                    .execute(&mut *tx)
                                    .await?;
                                finished[at] = result.rows_affected() > 0;
                            }
                        }
                    }
                    for (lease, rows) in done {
                        if let [(at, id)] = rows[..] {
                            let result = sql::bind_finish(id, lease, Finish::Done)
                                .execute(&mut *tx)
                                .await?;
                            finished[at] = result.rows_affected() > 0;
                            continue;
                        }
                        let ids: Vec<i64> = rows.iter().map(|&(_, id)| id).collect();
                        let marked = sqlx::query(Self::DONE_MANY)
                            .bind(Self::id_list(&ids))
                            .bind(lease)
                            .fetch_all(&mut *tx)
                            .await?;
                        let mut marked_ids = HashSet::with_capacity(marked.len());
                        for row in marked {
                            marked_ids.insert(row.try_get::<i64, _>(0)?);
                        }
                        for (at, id) in rows {
                            finished[at] = marked_ids.contains(&id);
                        }
                    }
                    // The attempts of the rows recorded, in one statement
                    // prepared once, whatever their number.
                    let kept: Vec<(i64, AttemptRow)> = attempts
                        .into_iter()
                        .zip(&finished)
                        .filter_map(|(attempt, &recorded)| attempt.filter(|_| recorded))
                        .collect();
                    if !kept.is_empty() {
                        Self::insert_attempts(&mut tx, &kept).await?;
                    }
                    tx.commit().await?;
                    Ok(finished)
                })
            }

            fn dead(&self, limit: u32) -> StoreFuture<'_, Vec<DeadRow>> {
                Box::pin(async move {
                    let rows = sqlx::query(sql::LIST_DEAD)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                    let mut dead: Vec<DeadRow> =
                        rows.iter().map(sql::dead_row).collect::<Result<_, _>>()?;
                    if dead.is_empty() {
                        return Ok(dead);
                    }
                    let ids: Vec<i64> = dead.iter().map(|row| row.id).collect();
                    let attempts = sqlx::query(Self::ATTEMPTS_OF_MANY)
                        .bind(Self::id_list(&ids))
                        .fetch_all(&self.pool)
                        .await?;
                    for attempt in &attempts {
                        let id: i64 = attempt.try_get("webhook_id")?;
                        // By id, as `dead` (and `ids`) is ordered.
                        if let Ok(at) = ids.binary_search(&id) {
                            dead[at].history.push(sql::attempt_row(attempt)?);
                        }
                    }
                    Ok(dead)
                })
            }

            fn replay(&self, id: i64, now: i64) -> StoreFuture<'_, bool> {
                Box::pin(async move {
                    let replayed = sqlx::query(sql::REPLAY)
                        .bind(id)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                    let replayed = replayed.rows_affected() > 0;
                    if replayed {
                        self.notify_other_instances();
                    }
                    Ok(replayed)
                })
            }

            fn replay_many(&self, ids: Vec<i64>, now: i64) -> StoreFuture<'_, u64> {
                Box::pin(async move {
                    let replayed = sqlx::query(Self::REPLAY_MANY)
                        .bind(Self::id_list(&ids))
                        .bind(now)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                    if replayed > 0 {
                        self.notify_other_instances();
                    }
                    Ok(replayed)
                })
            }

            fn replay_matching(&self, filter: RowFilter, now: i64) -> StoreFuture<'_, u64> {
                Box::pin(async move {
                    let statement = sql::replay_matching(Self::BYTES);
                    let replayed = sql::bind_filter(&statement, &filter)
                        .bind(now)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                    if replayed > 0 {
                        self.notify_other_instances();
                    }
                    Ok(replayed)
                })
            }

            fn list(&self, filter: RowFilter) -> StoreFuture<'_, Vec<ListedRow>> {
                Box::pin(async move {
                    let statement = sql::list(Self::BYTES);
                    let rows = sql::bind_filter(&statement, &filter)
                        .bind(filter.after)
                        .bind(filter.limit)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows.iter().map(sql::listed_row).collect::<Result<_, _>>()?)
                })
            }

            fn get(&self, id: i64) -> StoreFuture<'_, Option<DetailRow>> {
                Box::pin(async move {
                    let Some(row) = sqlx::query(sql::GET).bind(id).fetch_optional(&self.pool).await?
                    else {
                        return Ok(None);
                    };
                    let attempts = sqlx::query(sql::GET_ATTEMPTS)
                        .bind(id)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(Some(DetailRow {
                        row: sql::listed_row(&row)?,
                        dedup_key: row.try_get("dedup_key")?,
                        body: bytes::Bytes::from(row.try_get::<Vec<u8>, _>("body")?),
                        provider_headers: row.try_get("provider_headers")?,
                        secret_label: row.try_get("secret_label")?,
                        history: attempts.iter().map(sql::attempt_row).collect::<Result<_, _>>()?,
                    }))
                })
            }

            fn discard(&self, id: i64) -> StoreFuture<'_, bool> {
                Box::pin(async move {
                    let mut tx = self.bookkeeping().await?;
                    let deleted = sqlx::query(sql::DISCARD).bind(id).execute(&mut *tx).await?;
                    let discarded = deleted.rows_affected() > 0;
                    if discarded {
                        sqlx::query(sql::DISCARD_ATTEMPTS).bind(id).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(discarded)
                })
            }

            fn stats(&self) -> StoreFuture<'_, InboxStats> {
                Box::pin(async move {
                    let mut stats = InboxStats::default();
                    for row in sqlx::query(sql::STATS).fetch_all(&self.pool).await? {
                        sql::add_stats(&mut stats, row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                    }
                    Ok(stats)
                })
            }

            fn backlog(&self) -> StoreFuture<'_, Vec<Backlog>> {
                Box::pin(async move {
                    let mut backlog = Vec::new();
                    for row in sqlx::query(sql::BACKLOG).fetch_all(&self.pool).await? {
                        let count: i64 = row.try_get(2)?;
                        add_backlog(
                            &mut backlog,
                            row.try_get(0)?,
                            row.try_get(1)?,
                            u64::try_from(count).unwrap_or_default(),
                            row.try_get(3)?,
                        );
                    }
                    Ok(backlog)
                })
            }

            fn per_minute(&self, from: i64, until: i64) -> StoreFuture<'_, Vec<MinuteCounts>> {
                Box::pin(async move {
                    let rows = sqlx::query(sql::PER_MINUTE)
                        .bind(from)
                        .bind(until)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows.iter().map(sql::minute_counts).collect::<Result<_, _>>()?)
                })
            }

            fn purge(&self, purge: Purge) -> StoreFuture<'_, u64> {
                Box::pin(async move {
                    let mut tx = self.bookkeeping().await?;
                    sqlx::query(sql::PURGE_ATTEMPTS)
                        .bind(purge.handled_before)
                        .bind(purge.dead_before)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(sql::FOLD_SHIPMENTS)
                        .bind(purge.handled_before)
                        .execute(&mut *tx)
                        .await?;
                    let purged = sqlx::query(sql::PURGE)
                        .bind(purge.handled_before)
                        .bind(purge.dead_before)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(sql::PURGE_SHIPMENTS)
                        .bind(purge.shipments_before)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(purged.rows_affected())
                })
            }

            $($more)*
        }
    };
}

pub(super) use sql_store;
