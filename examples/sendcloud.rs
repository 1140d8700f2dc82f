//! Sendcloud parcels, and its test button: `cargo run --example sendcloud`.
//!
//! Sendcloud signs the raw body with the integration's Secret Key or Webhook
//! Signature Key (`SENDCLOUD_WEBHOOK_SECRET`). Pressing "test webhook" in the
//! integration's settings sends a `test_webhook`, which the layer answers 200
//! itself and shows to `on_connection_test`; parcel status changes reach the
//! handler, with the numeric status id mapped.

#[path = "support/port.rs"]
mod port;

use axum::{Router, http::StatusCode, routing::post};
use shipment_webhooks::{SendcloudEvent, SendcloudSignature, ShipmentEvent};

async fn on_sendcloud(event: ShipmentEvent, sendcloud: SendcloudEvent) -> StatusCode {
    let parcel = sendcloud.parcel.as_ref();
    println!(
        "{} {} ({:?}) is {} ({}) at {:?}",
        sendcloud.action,
        event.id,
        parcel.and_then(|p| p.tracking_number.as_deref()),
        event.status,
        event.raw_status,
        event.timestamp,
    );
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("SENDCLOUD_WEBHOOK_SECRET").unwrap_or_else(|_| {
        eprintln!("SENDCLOUD_WEBHOOK_SECRET is not set: using the DEMO value secretkey");
        "secretkey".into()
    });
    let layer = SendcloudSignature::new(secret)
        .on_connection_test(|test| println!("Sendcloud test webhook, secret {}", test.secret));
    let app = Router::new().route("/webhooks/sendcloud", post(on_sendcloud).route_layer(layer));
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
