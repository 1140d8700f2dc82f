//! AfterShip Tracking updates, by carrier and tracking number: `cargo run --example aftership`.
//!
//! AfterShip signs the raw body with the webhook secret from Settings →
//! Webhooks (`AFTERSHIP_WEBHOOK_SECRET`). The event's `id` is the tracking
//! number; the carrier (`slug`) and AfterShip's own tracking id are in the
//! typed payload. `edd_revise` and `tracking_pending_time` events carry the
//! tracking too.

#[path = "support/port.rs"]
mod port;

use axum::{Router, http::StatusCode, routing::post};
use shipment_webhooks::{AfterShipEvent, AfterShipSignature, ShipmentEvent};

async fn on_aftership(event: ShipmentEvent, aftership: AfterShipEvent) -> StatusCode {
    let msg = &aftership.msg;
    println!(
        "{} {} ({}, subtag {:?}) is {}; event {}",
        msg.slug.as_deref().unwrap_or("?"),
        event.id,
        aftership.event.as_deref().unwrap_or("?"),
        msg.subtag,
        event.status,
        event.event_id.as_deref().unwrap_or("?"),
    );
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("AFTERSHIP_WEBHOOK_SECRET").unwrap_or_else(|_| {
        eprintln!("AFTERSHIP_WEBHOOK_SECRET is not set: using a DEMO value");
        "demo-aftership-secret".into()
    });
    let app = Router::new().route(
        "/webhooks/aftership",
        post(on_aftership).route_layer(AfterShipSignature::new(secret)),
    );
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
