//! ShipBob, and any other Standard Webhooks sender: `cargo run --example shipbob`.
//!
//! `/webhooks/shipbob` is ShipBob's layer; `/webhooks/standard` verifies
//! any Standard Webhooks sender with `StandardWebhooks::verify`, no layer,
//! and answers with what it proved. Both take the `whsec_` secret in
//! SHIPBOB_WEBHOOK_SECRET.

#[path = "support/port.rs"]
mod port;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router, routing::post};
use serde_json::json;
use shipment_webhooks::standard_webhooks::StandardWebhooks;
use shipment_webhooks::{ShipBobEvent, ShipBobSignature, ShipmentEvent};

async fn on_shipbob(event: ShipmentEvent, shipbob: ShipBobEvent, headers: HeaderMap) -> StatusCode {
    // The topic is not signed: the status comes from the body where it has one.
    let topic = headers.get("x-webhook-topic").and_then(|v| v.to_str().ok());
    println!(
        "{topic:?}: {} is {} (message {:?}, tracking {:?})",
        event.id,
        event.status,
        event.event_id,
        shipbob.tracking.as_ref().and_then(|t| t.get("tracking_id"))
    );
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("SHIPBOB_WEBHOOK_SECRET")
        .unwrap_or_else(|_| "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
    let keys = StandardWebhooks::try_new(&secret)?;
    let any_sender = move |headers: HeaderMap, body: Bytes| async move {
        match keys.verify(&headers, &body) {
            Ok(proof) => {
                Json(json!({"id": proof.id, "timestamp": proof.timestamp.unix_timestamp()}))
                    .into_response()
            }
            Err(refusal) => refusal.to_response::<axum::body::Body>(),
        }
    };
    let app = Router::new()
        .route(
            "/webhooks/shipbob",
            post(on_shipbob).route_layer(ShipBobSignature::try_new(&secret)?),
        )
        .route("/webhooks/standard", post(any_sender));
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
