//! One server for every provider: `cargo run --example server`.
//!
//! Listens on 127.0.0.1:$PORT (default 3000) at
//!
//! `POST
//! /webhooks/{kosmo,kourier,shipmondo,goshiip,easypost,aftership,sendcloud,shippo,shipbob,shipengine}`,
//! answers 200 with the normalized event as JSON, and logs each event.
//! Secrets come from KOSMO_WEBHOOK_SECRET, KOURIER_WEBHOOK_TOKEN,
//! SHIPMONDO_WEBHOOK_KEY, GOSHIIP_WEBHOOK_SECRET, EASYPOST_WEBHOOK_SECRET,
//! AFTERSHIP_WEBHOOK_SECRET, SENDCLOUD_WEBHOOK_SECRET, SHIPPO_WEBHOOK_SECRET
//! and SHIPBOB_WEBHOOK_SECRET (`whsec_...`), ShipEngine's keys from the JWKS
//! file SHIPENGINE_JWKS names; where one is unset, a demo value (for
//! ShipEngine, the testing kit's demo key pair) is used and a warning says
//! so. Sendcloud's test button is answered 200 by its layer, without the
//! handler.

use axum::{Json, Router, routing::post};
use shipment_webhooks::{
    AfterShipSignature, EasyPostSignature, GoShiipSignature, KosmoSignature, KourierBearer,
    MatchedSecret, SendcloudSignature, ShipBobSignature, ShipEngineSignature, ShipmentEvent,
    ShipmondoJwt, ShippoSignature,
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
            "/webhooks/easypost",
            post(on_event).route_layer(EasyPostSignature::new(secrets.easypost)),
        )
        .route(
            "/webhooks/aftership",
            post(on_event).route_layer(AfterShipSignature::new(secrets.aftership)),
        )
        .route(
            "/webhooks/sendcloud",
            post(on_event).route_layer(SendcloudSignature::new(secrets.sendcloud)),
        )
        .route(
            "/webhooks/shippo",
            post(on_event).route_layer(ShippoSignature::new(secrets.shippo)),
        )
        .route(
            "/webhooks/shipbob",
            // A `whsec_` secret that is not base64 is an error, not a panic.
            post(on_event).route_layer(ShipBobSignature::try_new(secrets.shipbob)?),
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
