//! Shippo, with its header read from the environment: `cargo run --example shippo`.
//!
//! Shippo provisions HMAC on request and its pages do not show the header;
//! this crate reads `Shippo-Auth-Signature: t=<unix>,v1=<hex>` as
//! integrations do. If your account's webhooks carry it under another name,
//! set SHIPPO_SIGNATURE_HEADER. `test: true` marks Shippo's test mode: the
//! event still reaches the handler.

#[path = "support/port.rs"]
mod port;

use axum::{Router, http::StatusCode, routing::post};
use shipment_webhooks::{ShipmentEvent, ShippoEvent, ShippoSignature};

async fn on_shippo(event: ShipmentEvent, shippo: ShippoEvent) -> StatusCode {
    println!(
        "{} {} via {} is {} at {:?}{}",
        shippo.event,
        event.id,
        shippo.data.carrier.as_deref().unwrap_or("a carrier"),
        event.status,
        event.timestamp,
        if shippo.test { " (test mode)" } else { "" }
    );
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret =
        std::env::var("SHIPPO_WEBHOOK_SECRET").unwrap_or_else(|_| "demo-shippo-secret".into());
    let mut layer = ShippoSignature::new(secret);
    if let Ok(name) = std::env::var("SHIPPO_SIGNATURE_HEADER") {
        layer = layer.try_signature_header(&name)?;
    }
    let app = Router::new().route("/webhooks/shippo", post(on_shippo).route_layer(layer));
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
