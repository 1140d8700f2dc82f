//! Kosmo with a secret being rotated: `cargo run --example kosmo`.
//!
//! KOSMO_WEBHOOK_SECRET is the current secret token, KOSMO_PREVIOUS_SECRET the
//! one being retired (optional). Each event logs which of the two signed it, so
//! you know when nothing uses the old one any more.

#[path = "support/port.rs"]
mod port;

use axum::{Router, http::StatusCode, routing::post};
use shipment_webhooks::{KosmoEvent, KosmoSignature, MatchedSecret, ShipmentEvent};

async fn on_kosmo(event: ShipmentEvent, kosmo: KosmoEvent, secret: MatchedSecret) -> StatusCode {
    // Kosmo's advice: webhooks can arrive out of order, so keep the newest timestamp per order.
    println!(
        "order {} is {} ({}) at {:?}, {} stops, signed with the {secret} secret",
        event.id,
        event.status,
        event.raw_status,
        event.timestamp,
        kosmo.stops.len()
    );
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let current = std::env::var("KOSMO_WEBHOOK_SECRET")
        .unwrap_or_else(|_| "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm".into()); // Kosmo's documented example
    let mut layer = KosmoSignature::new(current);
    if let Ok(previous) = std::env::var("KOSMO_PREVIOUS_SECRET") {
        layer = layer.with_secret("previous", previous);
    }
    let app = Router::new().route("/webhooks/kosmo", post(on_kosmo).route_layer(layer));
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
