//! With no tracing subscriber, a `log` logger still sees the layer's span
//! and events through tracing's `log` bridge (on here, as axum's default
//! `tower-log` turns it on): the layer skips its span only when neither
//! listens. Alone in its own test binary: a `log` logger is process-wide.

mod common;

use std::sync::Mutex;

use axum::http::StatusCode;
use common::{echo_app, send};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{GoShiipEvent, GoShiipSignature};

const SECRET: &str = "your_secret_key";

/// A `log` logger keeping every record as `target: message`.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{}: {}", record.target(), record.args());
        self.0.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[tokio::test]
async fn a_log_logger_sees_the_span_and_events_without_a_subscriber() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let app = echo_app::<_, GoShiipEvent>("/webhooks/goshiip", GoShiipSignature::new(SECRET));

    let answer = send(&app, Webhook::goshiip("Delivered").sign(SECRET)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);

    let lines = CAPTURE.0.lock().unwrap().join("\n");
    for expected in [
        "webhook; provider=goshiip route=\"/webhooks/goshiip\"",
        "webhook; secret=\"primary\"",
        "webhook verified provider=goshiip",
        "-> webhook;",
    ] {
        assert!(lines.contains(expected), "{expected:?} in\n{lines}");
    }
}
