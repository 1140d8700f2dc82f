//! One server for every provider: `cargo run --example server`.
//!
//! Listens on 127.0.0.1:$PORT (default 3000) at
//! `POST /webhooks/{kosmo,kourier,shipmondo,goshiip,shipengine}`,
//! answers 200 with the normalized event as JSON, and logs each event.
//! Secrets come from KOSMO_WEBHOOK_SECRET, KOURIER_WEBHOOK_TOKEN,
//! SHIPMONDO_WEBHOOK_KEY and GOSHIIP_WEBHOOK_SECRET, ShipEngine's keys from
//! the JWKS file SHIPENGINE_JWKS names; where one is unset, a demo value (for
//! ShipEngine, the testing kit's demo key pair) is used and a warning says so.

use axum::{Json, Router, routing::post};
use shipment_webhooks::{
    GoShiipSignature, KosmoSignature, KourierBearer, MatchedSecret, ShipEngineSignature,
    ShipmentEvent, ShipmondoJwt,
};

#[path = "support/mod.rs"]
mod support;

async fn on_event(event: ShipmentEvent, secret: MatchedSecret) -> Json<ShipmentEvent> {
    tracing::info!(
        provider = %event.provider,
        id = %event.id,
        status = %event.status,
        raw_status = %event.raw_status,
        secret = %secret,
        "webhook received"
    );
    Json(event)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let secrets = support::Secrets::from_env()?;

    let app = Router::new()
        .route(
            "/webhooks/kosmo",
            post(on_event).route_layer(KosmoSignature::new(secrets.kosmo)),
        )
        .route(
            "/webhooks/kourier",
            post(on_event).route_layer(KourierBearer::new(secrets.kourier)),
        )
        .route(
            "/webhooks/shipmondo",
            post(on_event).route_layer(ShipmondoJwt::new(secrets.shipmondo)),
        )
        .route(
            "/webhooks/goshiip",
            post(on_event).route_layer(GoShiipSignature::new(secrets.goshiip)),
        )
        .route(
            "/webhooks/shipengine",
            post(on_event).route_layer(ShipEngineSignature::from_jwks(&secrets.shipengine_jwks)?),
        );

    let listener = support::listen().await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(support::shutdown_signal())
        .await?;
    Ok(())
}
