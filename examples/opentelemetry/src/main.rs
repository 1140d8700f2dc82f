//! The crate's spans and log lines sent to OpenTelemetry through
//! `tracing-opentelemetry`: each webhook's `webhook` span (provider, route,
//! secret) with its log lines as span events, and each delivery's
//! `inbox_delivery` span (row id, attempt, provider, shipment).
//!
//! `cargo run -p opentelemetry-example` sends one signed Kosmo webhook and
//! one forged one through a Router into an in-memory inbox, lets a worker
//! handle the first, and prints every span the SDK exports. A real set-up
//! exports with `opentelemetry-otlp` instead of `Print` (see the README's
//! "Metrics and logs").

use std::error::Error;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use shipment_webhooks::KosmoSignature;
use shipment_webhooks::inbox::{Delivery, Inbox};
use shipment_webhooks::testing::Webhook;
use tower::ServiceExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

const SECRET: &str = "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm";

/// Prints each span the SDK exports: its name, attributes and events.
#[derive(Debug)]
struct Print;

impl SpanExporter for Print {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        for span in batch {
            let attributes: Vec<String> = span
                .attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            println!("span {} [{}]", span.name, attributes.join(" "));
            for event in span.events.iter() {
                let attributes: Vec<String> = event
                    .attributes
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, kv.value))
                    .collect();
                println!("  event {} [{}]", event.name, attributes.join(" "));
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(Print)
        .build();
    tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("shipment-webhooks")))
        .with(tracing_subscriber::fmt::layer())
        .init();

    let inbox = Inbox::in_memory();
    let worker = inbox
        .worker(|delivery: Delivery| async move {
            tracing::info!(status = %delivery.event().status, "the app's handler ran");
            Ok(())
        })
        .spawn();
    let app = Router::new().route(
        "/webhooks/kosmo",
        post(inbox.receiver()).route_layer(KosmoSignature::new(SECRET)),
    );
    let stored = app
        .clone()
        .oneshot(Webhook::kosmo("DELIVERED").sign(SECRET))
        .await?;
    let forged = app
        .oneshot(Webhook::kosmo("DELIVERED").sign("not the secret"))
        .await?;
    println!("answered {} and {}", stored.status(), forged.status());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inbox.stats().await?.done < 1 {
        if tokio::time::Instant::now() > deadline {
            return Err("the worker did not handle the webhook within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.shutdown().await;
    provider.shutdown()?;
    Ok(())
}
