//! What the crate traces. Alone in its own test binary: tracing caches each
//! call site's interest process-wide, so tests running beside this one on
//! threads without a subscriber could make it miss events.

mod common;

use std::sync::{Arc, Mutex};

use common::{echo_app, send, with_body};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{GoShiipEvent, GoShiipSignature};

const SECRET: &str = "your_secret_key";

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
