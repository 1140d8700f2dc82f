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

mod admin;
mod browser;
mod cluster;
mod crash;
mod faults;
mod harness;
mod receiver;
mod schema;
mod stores;
