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
    /// The inbox was closed: its writer stopped with the runtime it ran on,
    /// or the database pool it was given was closed.
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
            sqlx::Error::PoolClosed => return Self::Closed,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(database) => transient_database_error(&**database),
            _ => false,
        };
        if transient {
            Self::Unavailable(error.into())
        } else {
            Self::Database(error.into())
        }
    }
}

/// Whether the database's error says "try again", read by the database
/// that raised it: PostgreSQL's SQLSTATEs are digits too, so the code alone
/// cannot tell a SQLite code from one.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn transient_database_error(error: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = error.code() else {
        return false;
    };
    #[cfg(feature = "sqlite")]
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        return transient_sqlite_code(&code);
    }
    transient_sqlstate(&code)
}

/// SQLite's `BUSY` and `LOCKED`, and their extended codes.
#[cfg(feature = "sqlite")]
fn transient_sqlite_code(code: &str) -> bool {
    code.parse::<u32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// PostgreSQL's connection errors (class 08), serialization failures and
/// deadlocks, lack of resources (class 53), a lock not available, and a
/// server shutting down or starting (57P01-57P03).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn transient_sqlstate(code: &str) -> bool {
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

#[cfg(all(test, feature = "sqlite", feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_read_as_postgresql_means_them() {
        for transient in [
            "40001", "40P01", "08000", "08001", "08003", "08006", "08P01", "53100", "53300",
            "55P03", "57P01", "57P03",
        ] {
            assert!(transient_sqlstate(transient), "{transient}");
        }
        // Digits whose low byte a SQLite reading would take for BUSY or LOCKED.
        for lasting in ["42501", "22021", "23505", "42P01", "22P02"] {
            assert!(!transient_sqlstate(lasting), "{lasting}");
        }
    }

    #[test]
    fn sqlite_codes_are_read_with_their_extended_codes() {
        // BUSY, LOCKED, BUSY_SNAPSHOT, LOCKED_SHAREDCACHE.
        for transient in ["5", "6", "517", "262"] {
            assert!(transient_sqlite_code(transient), "{transient}");
        }
        // FULL, CONSTRAINT_UNIQUE, READONLY.
        for lasting in ["13", "2067", "8"] {
            assert!(!transient_sqlite_code(lasting), "{lasting}");
        }
    }
}
