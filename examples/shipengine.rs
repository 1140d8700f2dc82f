//! ShipEngine / ShipStation API v2 with keys that can rotate:
//! `cargo run --example shipengine`.
//!
//! The layer verifies with the JWKS in the file SHIPENGINE_JWKS names (save
//! <https://api.shipengine.com/jwks> there), or the testing kit's demo JWKS
//! where it is unset. When a webhook names a key id the set lacks, the layer
//! reads the file again, at most once a minute: replace the file when
//! ShipEngine publishes a new key and nothing needs restarting. With an HTTP
//! client, the lookup would fetch the JWKS instead:
//!
//! ```ignore
//! ShipEngineSignature::from_lookup(|| async {
//!     reqwest::get(shipment_webhooks::shipengine::JWKS_URL).await?.error_for_status()?.text().await
//! })
//! ```
//!
//! Try it with `cargo run --example send -- shipengine http://127.0.0.1:3000/webhooks/shipengine`.

#[path = "support/port.rs"]
mod port;

use axum::{Router, http::StatusCode, routing::post};
use shipment_webhooks::{MatchedSecret, ShipEngineEvent, ShipEngineSignature, ShipmentEvent};

async fn on_shipengine(
    event: ShipmentEvent,
    key: MatchedSecret,
    payload: ShipEngineEvent,
) -> StatusCode {
    println!(
        "{} via {} is {} ({}), signed at {:?} by key {key}",
        event.id,
        payload.carrier_code().unwrap_or("an unknown carrier"),
        event.status,
        payload.status_description().unwrap_or(&event.raw_status),
        event.timestamp,
    );
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let layer = match std::env::var("SHIPENGINE_JWKS") {
        Ok(path) => {
            let again = path.clone();
            ShipEngineSignature::from_jwks_file(&path)?
                .refresh_with(move || tokio::fs::read_to_string(again.clone()))
        }
        Err(_) => {
            eprintln!("SHIPENGINE_JWKS is not set: using the DEMO JWKS; never in production");
            ShipEngineSignature::from_jwks(shipment_webhooks::testing::shipengine_demo_jwks())?
        }
    };
    let app = Router::new().route(
        "/webhooks/shipengine",
        post(on_shipengine).route_layer(layer),
    );
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
