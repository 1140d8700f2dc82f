//! GoShiip with a smaller body limit: `cargo run --example goshiip`.
//!
//! GoShiip's webhooks are small, so this endpoint reads at most 64 KiB.
//! Its signature covers the raw body, so nothing may rewrite the body before
//! the layer; the handler can still read the very bytes that were verified.

#[path = "support/port.rs"]
mod port;

use axum::{Router, body::Bytes, http::StatusCode, routing::post};
use shipment_webhooks::{GoShiipEvent, GoShiipSignature, ShipmentEvent};

async fn on_goshiip(event: ShipmentEvent, goshiip: GoShiipEvent, body: Bytes) -> StatusCode {
    let data = &goshiip.shipment.data;
    println!(
        "shipment {} ({:?} to {:?}, {}) is {}; {} bytes verified",
        event.id,
        data.origin,
        data.destination,
        goshiip.shipment.carrier.as_deref().unwrap_or("no carrier"),
        event.status,
        body.len()
    );
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret =
        std::env::var("GOSHIIP_WEBHOOK_SECRET").unwrap_or_else(|_| "your_secret_key".into());
    let layer = GoShiipSignature::new(secret).body_limit(64 * 1024);
    let app = Router::new().route("/webhooks/goshiip", post(on_goshiip).route_layer(layer));
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
