//! What the crate traces. Alone in its own test binary: tracing caches each
//! call site's interest process-wide, so tests running beside this one on
//! threads without a subscriber could make it miss events. Within it, a
//! global subscriber that takes every event (and writes none) is set before
//! any test runs a call site: a call site first reached outside `traced`
//! while another test's subscriber is being registered could otherwise be
//! cached as of interest to no one, and that test would miss its events.

mod common;

use std::sync::{Arc, Mutex};

use common::{echo_app, send, with_body};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{GoShiipEvent, GoShiipSignature};

const SECRET: &str = "your_secret_key";

/// Sets the global subscriber the module docs describe, once: every test
/// calls it first.
fn interested() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        let everything = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::set_global_default(everything).expect("the only global subscriber");
    });
}

/// Captures what the crate traces at debug level while `run` runs.
async fn traced<F: std::future::Future>(run: F) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    run.await;
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

#[tokio::test]
async fn traces_the_matched_secret_and_hints_at_a_mismatch_cause() {
    interested();
    let layer = GoShiipSignature::new(SECRET).with_secret("next", "next_key");
    let app = echo_app::<_, GoShiipEvent>("/webhooks/goshiip", layer);

    let log = traced(send(&app, Webhook::goshiip("Delivered").sign("next_key"))).await;
    assert!(
        log.contains("webhook verified") && log.contains("secret=\"next\""),
        "{log}"
    );

    let pretty = serde_json::to_string_pretty(Webhook::goshiip("Delivered").payload()).unwrap();
    let request = with_body(Webhook::goshiip("Delivered").sign(SECRET), pretty.clone());
    let log = traced(send(&app, request)).await;
    assert!(log.contains(&format!("body_len={}", pretty.len())), "{log}");
    assert!(log.contains("re-serialized or pretty-printed"), "{log}");

    let with_bom = [
        b"\xEF\xBB\xBF".as_slice(),
        Webhook::goshiip("Delivered").payload_json().as_bytes(),
    ]
    .concat();
    let request = with_body(Webhook::goshiip("Delivered").sign(SECRET), with_bom);
    let log = traced(send(&app, request)).await;
    assert!(log.contains("byte-order mark"), "{log}");

    let mut gzipped = Webhook::goshiip("Delivered").sign("wrong");
    gzipped
        .headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    let log = traced(send(&app, gzipped)).await;
    assert!(
        log.contains("content_encoding=\"gzip\"") && log.contains("content-encoded"),
        "{log}"
    );
    assert!(!log.contains(SECRET) && !log.contains("next_key"), "{log}");
}

#[tokio::test]
async fn each_webhook_runs_in_a_span_naming_provider_route_and_secret() {
    interested();
    let layer = GoShiipSignature::new(SECRET).with_secret("next", "next_key");
    let app = echo_app::<_, GoShiipEvent>("/webhooks/goshiip", layer);
    let log = traced(send(&app, Webhook::goshiip("Delivered").sign("next_key"))).await;
    assert!(
        log.contains(r#"webhook{provider=goshiip route="/webhooks/goshiip" secret="next"}"#),
        "{log}"
    );
    let log = traced(send(&app, Webhook::goshiip("Delivered").sign("wrong"))).await;
    assert!(
        log.contains(r#"webhook{provider=goshiip route="/webhooks/goshiip"}"#)
            && log.contains("webhook rejected"),
        "{log}"
    );
}

#[tokio::test]
async fn a_shipmondo_connection_test_is_traced_at_info() {
    interested();
    const KEY: &str = "a-shipmondo-webhook-key-of-32-bytes!";
    let app = common::echo_app::<_, shipment_webhooks::ShipmondoEvent>(
        "/webhooks/shipmondo",
        shipment_webhooks::ShipmondoJwt::new(KEY),
    );
    let log = traced(send(&app, Webhook::shipmondo_connection_test().sign(KEY))).await;
    assert!(
        log.contains(" INFO ")
            && log.contains("connection test answered with 200")
            && log.contains("provider=shipmondo")
            && log.contains(r#"webhook="Webhook1""#),
        "{log}"
    );
}

/// The line of `log` that says `message`; every line that does, if several.
fn lines<'a>(log: &'a str, message: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(message)).collect()
}

/// A signature mismatch is worth a `warn` (a rotated secret, or a forger),
/// but a flood of them is one line per provider per 10 s, counting those it
/// left at `debug`.
#[tokio::test]
async fn signature_mismatches_warn_at_most_once_per_provider_per_window() {
    interested();
    let app = echo_app::<_, shipment_webhooks::KourierEvent>(
        "/webhooks/kourier",
        shipment_webhooks::KourierBearer::new("token"),
    );
    let flood = traced(async {
        for _ in 0..3 {
            send(&app, Webhook::kourier("delivered").sign("wrong")).await;
        }
    })
    .await;
    let warned = lines(&flood, " WARN ");
    assert_eq!(warned.len(), 1, "{flood}");
    assert!(
        warned[0].contains("no configured secret made its signature")
            && warned[0].contains("provider=\"kourier\"")
            && warned[0].contains("reason=\"signature_mismatch\"")
            && warned[0].contains("suppressed=0")
            && warned[0].contains(r#"route="/webhooks/kourier""#),
        "{flood}"
    );
    assert_eq!(
        lines(&flood, " DEBUG ")
            .iter()
            .filter(|line| line.contains("webhook rejected"))
            .count(),
        2,
        "the others at debug: {flood}"
    );
    // The next window's warning and its `suppressed` count: the unit test
    // `mismatch_warnings_come_at_most_once_per_window_with_the_count_suppressed`,
    // on a clock of its own rather than 10 s of this one.
}

/// The inbox's lines (feature `inbox`; `cargo test --all-features`).
#[cfg(feature = "inbox")]
mod inbox {
    use std::time::Duration;

    use super::*;

    /// The worker's lines name the provider, the shipment (its id as the event
    /// gives it) and the row: a failed attempt at `warn`, dead-lettering at
    /// `error`, a superseded webhook at `info`.
    #[tokio::test]
    async fn inbox_lines_name_provider_shipment_and_row_at_their_levels() {
        use axum::routing::post_service;
        use shipment_webhooks::inbox::{Delivery, Inbox};

        const KOSMO: &str = "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm";
        interested();
        let kosmo = |n: u64, order: &str, status: &str, seconds: i64| {
            Webhook::kosmo(status)
                .field("/eventId", format!("00000000-0000-4000-8000-{n:012x}"))
                .field("/orderId", order)
                .at(time::OffsetDateTime::from_unix_timestamp(1_790_000_000 + seconds).unwrap())
        };
        let inbox = Inbox::in_memory();
        let app = axum::Router::new().route(
            "/webhooks/kosmo",
            post_service(inbox.receiver())
                .route_layer(shipment_webhooks::KosmoSignature::new(KOSMO)),
        );
        let log = traced(async {
            send(&app, kosmo(1, "SG-T1", "DELIVERED", 10).sign(KOSMO)).await;
            send(&app, kosmo(2, "SG-T1", "PICKED UP", 0).sign(KOSMO)).await;
            send(&app, kosmo(3, "SG-T2", "PICKED UP", 0).sign(KOSMO)).await;
            let worker = inbox
                .worker(|delivery: Delivery| async move {
                    match delivery.event().id.as_str() {
                        "SG-T2" => Err("carrier API down".into()),
                        _ => Ok(()),
                    }
                })
                .max_attempts(2)
                // One at a time: the older SG-T1 is superseded by the claim
                // that reads it back from the store, not within a claim.
                .batch_size(1)
                .poll_interval(Duration::from_millis(10))
                .backoff(Duration::from_millis(10), Duration::from_millis(20))
                .spawn();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let stats = inbox.stats().await.unwrap();
                if (stats.done, stats.superseded, stats.dead) == (1, 1, 1) {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "{stats:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            worker.shutdown().await;
        })
        .await;

        let named = |line: &str, shipment: &str, id: u32| {
            line.contains(r#"provider="kosmo""#)
                && line.contains(&format!(r#"shipment="{shipment}""#))
                && line.contains(&format!("id={id}"))
        };
        let dead = lines(&log, "webhook failed on its last attempt: dead");
        assert_eq!(dead.len(), 1, "{log}");
        assert!(
            dead[0].contains(" ERROR ") && named(dead[0], "SG-T2", 3),
            "{log}"
        );
        assert!(dead[0].contains("carrier API down"), "{log}");
        let retried = lines(&log, "webhook failed; will retry");
        assert_eq!(retried.len(), 1, "{log}");
        assert!(
            retried[0].contains(" WARN ") && named(retried[0], "SG-T2", 3),
            "{log}"
        );
        let superseded = lines(&log, "webhook superseded");
        assert_eq!(superseded.len(), 1, "{log}");
        assert!(
            superseded[0].contains(" INFO ") && named(superseded[0], "SG-T1", 2),
            "{log}"
        );
        let handled = lines(&log, "webhook handled");
        assert!(handled.iter().any(|line| named(line, "SG-T1", 1)), "{log}");
        let stored = lines(&log, "webhook stored");
        assert_eq!(stored.len(), 3, "{log}");
        assert!(named(stored[2], "SG-T2", 3), "{log}");
    }

    /// A webhook whose lease ran out on its last attempt (its worker crashed),
    /// marked dead by another worker's sweep, is logged at `error` naming the
    /// provider, the shipment and the row, as the worker's own dead-lettering.
    #[tokio::test]
    async fn a_lease_lost_on_the_last_attempt_is_logged_at_error() {
        use axum::routing::post_service;
        use shipment_webhooks::inbox::{Delivery, Inbox};

        const KOSMO: &str = "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm";
        interested();
        let inbox = Inbox::in_memory();
        let app = axum::Router::new().route(
            "/webhooks/kosmo",
            post_service(inbox.receiver())
                .route_layer(shipment_webhooks::KosmoSignature::new(KOSMO)),
        );
        let webhook = Webhook::kosmo("DELIVERED")
            .field("/eventId", "00000000-0000-4000-8000-0000000000a1")
            .field("/orderId", "SG-LOST")
            .at(time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap());
        send(&app, webhook.sign(KOSMO)).await;
        // A worker on a runtime of its own, dropped mid-handler: a crash.
        let crashed = inbox.clone();
        common::crash_after(move || async move {
            let _worker = crashed
                .worker(|_| {
                    std::future::pending::<Result<(), shipment_webhooks::inbox::BoxError>>()
                })
                .lease(Duration::from_millis(300))
                .poll_interval(Duration::from_millis(10))
                .spawn();
            while crashed.stats().await.unwrap().processing == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let log = traced(async {
            inbox
                .worker(|_: Delivery| async { Ok(()) })
                .max_attempts(1)
                .poll_interval(Duration::from_millis(10))
                .run_until_idle()
                .await
                .unwrap();
        })
        .await;
        assert_eq!(inbox.stats().await.unwrap().dead, 1);
        let dead = lines(&log, "lease ran out on its last attempt: dead");
        assert_eq!(dead.len(), 1, "{log}");
        assert!(
            dead[0].contains(" ERROR ")
                && dead[0].contains(r#"provider="kosmo""#)
                && dead[0].contains(r#"shipment="SG-LOST""#)
                && dead[0].contains("id=1"),
            "{log}"
        );
    }
}
