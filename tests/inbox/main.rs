//! The inbox, end to end: signed webhooks through a real axum `Router` into
//! each store (memory, a SQLite file, PostgreSQL), handled by a real worker;
//! and, in `crash`, receiver processes on 127.0.0.1 killed mid-load, and in
//! `faults`, a PostgreSQL cluster of the test's own (`cluster`) restarted
//! mid-load.
//!
//! PostgreSQL runs when `SHIPMENT_WEBHOOKS_TEST_POSTGRES` holds a connection
//! URL (each test makes a schema of its own there); with
//! `SHIPMENT_WEBHOOKS_REQUIRE_POSTGRES=1` (as in CI) its absence fails them.

#[path = "../common/mod.rs"]
mod common;

/// Each named `async fn(Backend)` of the module as three tests, one per
/// store: `memory::name`, `sqlite::name`, `postgres::name`.
macro_rules! every_store {
    ($($test:ident),+ $(,)?) => {
        mod memory { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(crate::harness::Backend::Memory).await }
        )+ }
        mod sqlite { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(crate::harness::Backend::Sqlite).await }
        )+ }
        mod postgres { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
            async fn $test() { super::$test(crate::harness::Backend::Postgres).await }
        )+ }
    };
}

mod admin;
mod browser;
mod cluster;
mod crash;
mod faults;
mod harness;
mod receiver;
mod schema;
mod stores;
