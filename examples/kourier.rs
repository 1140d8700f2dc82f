//! Kourier with its typed payload: `cargo run --example kourier`.
//!
//! Kourier retries any webhook that is not answered with a 2xx, so this
//! handler answers 200 for every event it received, known or not.

#[path = "support/port.rs"]
mod port;

use axum::{Router, http::StatusCode, routing::post};
use shipment_webhooks::{KourierBearer, KourierEvent, ShipmentEvent};

async fn on_kourier(event: ShipmentEvent, kourier: KourierEvent) -> StatusCode {
    match kourier.event.as_str() {
        "delivery.created" => println!("delivery {} created", event.id),
        "delivery.updated" => println!("delivery {} is now {}", event.id, event.status),
        "delivery.cancelled" => println!("delivery {} was cancelled", event.id),
        other => println!("unhandled Kourier event {other}"),
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token =
        std::env::var("KOURIER_WEBHOOK_TOKEN").unwrap_or_else(|_| "demo-kourier-token".into());
    let app = Router::new().route(
        "/webhooks/kourier",
        post(on_kourier).route_layer(KourierBearer::new(token)),
    );
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
