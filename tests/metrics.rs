//! Counters of accepted and refused webhooks through the `metrics` facade
//! (feature `metrics`). Alone in its own test binary: it installs the
//! process's global recorder.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{echo_app, send, with_body};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{KourierBearer, KourierEvent};

/// Counters by name and labels (`name{label=value,...}`).
#[derive(Default, Clone)]
struct Counters(Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>);

impl Counters {
    fn get(&self, key: &str) -> u64 {
        let counters = self.0.lock().unwrap();
        counters
            .get(key)
            .map_or(0, |count| count.load(Ordering::SeqCst))
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let count = self.0.lock().unwrap().entry(name).or_default().clone();
        Counter::from_arc(count)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn counts_accepted_and_refused_webhooks_by_provider_and_reason() {
    let counters = Counters::default();
    metrics::set_global_recorder(counters.clone()).expect("the only recorder");
    let app = echo_app::<_, KourierEvent>("/webhooks/kourier", KourierBearer::new("token"));
    for _ in 0..3 {
        send(&app, Webhook::kourier("delivered").sign("token")).await;
    }
    send(&app, Webhook::kourier("delivered").sign("wrong")).await;
    send(
        &app,
        with_body(Webhook::kourier("delivered").sign("token"), "{}"),
    )
    .await;

    assert_eq!(
        counters.get("shipment_webhooks_accepted_total{provider=kourier}"),
        3
    );
    assert_eq!(
        counters.get("shipment_webhooks_refused_total{provider=kourier,reason=signature_mismatch}"),
        1
    );
    assert_eq!(
        counters.get("shipment_webhooks_refused_total{provider=kourier,reason=invalid_payload}"),
        1
    );
}
