//! The test suite, one binary: linking a test binary per file cost most of
//! `cargo test`'s build. Tests that need a process of their own (a global
//! recorder, allocator or tracing interest) are beside this folder.

#[path = "../common/mod.rs"]
mod common;

mod aftership;
mod axum_fit;
mod bad_inputs;
mod easypost;
mod event_serde;
mod examples;
mod goshiip;
mod kosmo;
mod kourier;
mod layer;
mod plain_tower;
mod properties;
mod secrets;
mod sendcloud;
mod shipbob;
mod shipengine;
mod shipmondo;
mod shippo;
mod standard_webhooks;
mod tenant;
mod your_handler;
