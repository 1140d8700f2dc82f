//! Why the inbox could not do what was asked.

use std::fmt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the inbox could not do what was asked.
///
/// [`is_transient`](Self::is_transient) tells an outage that may pass (the
/// database unreachable, busy or restarting) from what trying again will not
/// mend.
#[derive(Debug)]
#[non_exhaustive]
pub enum InboxError {
    /// The database could not be reached, or was too busy to answer (a lost
    /// connection, a pool timed out, a lock held too long, a restart).
    Unavailable(BoxError),
    /// The database refused what was asked for good (a full disk, a
    /// permission, a constraint).
    Database(BoxError),
    /// A stored row cannot be read back: changed by something other than
    /// this crate, or corrupt.
    CorruptRow {
        /// The row's id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The inbox's tables were laid out by a newer version of this crate:
    /// this one leaves them alone.
    NewerSchema {
        /// The schema version the database is at.
        found: i64,
        /// The newest version this crate knows.
        known: i64,
    },
    /// The webhook's event cannot be written as JSON (a timestamp RFC 3339
    /// cannot write, which only `ShipmentEvent::with_timestamp` can make).
    InvalidEvent(serde_json::Error),
    /// The inbox was set up in a way it cannot work with.
    Config(String),
    /// The inbox's writer has stopped, with the runtime it ran on.
    Closed,
}

impl InboxError {
    /// Whether the same call may succeed later unchanged: the database was
    /// unreachable or busy. The receiver answers every error with 503
    /// either way, so that the provider sends the webhook again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for InboxError {
    fn from(error: sqlx::Error) -> Self {
        let transient = match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(database) => {
                database.code().is_some_and(|code| transient_code(&code))
            }
            _ => false,
        };
        if transient {
            Self::Unavailable(error.into())
        } else {
            Self::Database(error.into())
        }
    }
}

/// Whether a database error code says "try again": SQLite's `BUSY` and
/// `LOCKED` (and their extended codes), PostgreSQL's connection errors
/// (class 08), serialization failures and deadlocks, lack of resources
/// (class 53), a lock not available, and a server shutting down or
/// starting (57P01-57P03).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn transient_code(code: &str) -> bool {
    if let Ok(sqlite) = code.parse::<u32>() {
        return matches!(sqlite & 0xff, 5 | 6);
    }
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03"
        )
}

impl fmt::Display for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(error) => write!(f, "webhook inbox: database unavailable: {error}"),
            Self::Database(error) => write!(f, "webhook inbox: {error}"),
            Self::CorruptRow { id, reason } => write!(f, "webhook inbox: row {id}: {reason}"),
            Self::NewerSchema { found, known } => write!(
                f,
                "webhook inbox: the inbox tables are at schema version {found}; this version \
                 of shipment-webhooks knows up to {known}"
            ),
            Self::InvalidEvent(error) => {
                write!(f, "webhook inbox: the event cannot be stored: {error}")
            }
            Self::Config(what) => write!(f, "webhook inbox: {what}"),
            Self::Closed => f.write_str("webhook inbox: the inbox's writer has stopped"),
        }
    }
}

impl std::error::Error for InboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(error) | Self::Database(error) => Some(&**error),
            Self::InvalidEvent(error) => Some(error),
            _ => None,
        }
    }
}
