//! EasyPost trackers, with test-mode events told apart: `cargo run --example easypost`.
//!
//! EasyPost signs the raw body with the webhook's secret (normalized to
//! NFKD, which the layer does once); set `EASYPOST_WEBHOOK_SECRET` to the
//! `webhook_secret` you gave EasyPost. Tracker events carry the tracker's id
//! (`trk_…`) and status; any other event (`batch.updated`, `refund.successful`…)
//! is passed on too, as `other` with its `description`, and answered 200 so
//! EasyPost never retries or disables the endpoint for it.

#[path = "support/port.rs"]
mod port;

use axum::{Router, http::StatusCode, routing::post};
use shipment_webhooks::{EasyPostEvent, EasyPostSignature, ShipmentEvent, ShipmentStatus};

async fn on_easypost(event: ShipmentEvent, easypost: EasyPostEvent) -> StatusCode {
    let test = easypost.mode.as_deref() == Some("test");
    match (&event.status, easypost.result.as_ref()) {
        (ShipmentStatus::Other(_), _) if !easypost.description.starts_with("tracker.") => {
            println!(
                "{} about {} (not a tracker)",
                easypost.description, event.id
            );
        }
        (status, result) => println!(
            "{}tracker {} ({}) is {status} at {:?}; event {:?}",
            if test { "TEST " } else { "" },
            event.id,
            result
                .and_then(|r| r.carrier.as_deref())
                .unwrap_or("no carrier"),
            event.timestamp,
            event.event_id,
        ),
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("EASYPOST_WEBHOOK_SECRET").unwrap_or_else(|_| {
        eprintln!("EASYPOST_WEBHOOK_SECRET is not set: using the DEMO value A1B2C3");
        "A1B2C3".into()
    });
    let app = Router::new().route(
        "/webhooks/easypost",
        post(on_easypost).route_layer(EasyPostSignature::new(secret)),
    );
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
