//! One server for all four providers: `cargo run --example server`.
//!
//! Listens on 127.0.0.1:$PORT (default 3000) at `POST /webhooks/{kosmo,kourier,shipmondo,goshiip}`,
//! answers 200 with the normalized event as JSON, and logs each event.
//! Secrets come from KOSMO_WEBHOOK_SECRET, KOURIER_WEBHOOK_TOKEN,
//! SHIPMONDO_WEBHOOK_KEY and GOSHIIP_WEBHOOK_SECRET; where one is unset, a
//! demo value is used and a warning says so.

use axum::{Json, Router, routing::post};
use shipment_webhooks::{
    GoShiipSignature, KosmoSignature, KourierBearer, MatchedSecret, ShipmentEvent, ShipmondoJwt,
};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

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

/// The secret in `var`, or `demo` (with a warning) where `var` is not set at all.
fn secret(var: &str, demo: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(secret) if secret.is_empty() => Err(format!("{var} is set but empty")),
        Ok(secret) => Ok(secret),
        Err(std::env::VarError::NotPresent) => {
            tracing::warn!(
                "{var} is not set: using the DEMO value {demo:?}; never use it in production"
            );
            Ok(demo.to_owned())
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{var} is not UTF-8")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `RUST_LOG=shipment_webhooks=trace,info` and the like; no regex, so no
    // regex engine to build.
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|filter| filter.parse().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("shipment_webhooks", tracing::Level::DEBUG)
        });
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();

    // The Kosmo and GoShiip demo values are the ones on those providers' own pages.
    let kosmo = secret(
        "KOSMO_WEBHOOK_SECRET",
        "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm",
    )?;
    let kourier = secret("KOURIER_WEBHOOK_TOKEN", "demo-kourier-token")?;
    let shipmondo = secret(
        "SHIPMONDO_WEBHOOK_KEY",
        "demo-shipmondo-key-change-me-in-prod",
    )?;
    let goshiip = secret("GOSHIIP_WEBHOOK_SECRET", "your_secret_key")?;

    let app = Router::new()
        .route(
            "/webhooks/kosmo",
            post(on_event).route_layer(KosmoSignature::new(kosmo)),
        )
        .route(
            "/webhooks/kourier",
            post(on_event).route_layer(KourierBearer::new(kourier)),
        )
        .route(
            "/webhooks/shipmondo",
            post(on_event).route_layer(ShipmondoJwt::new(shipmondo)),
        )
        .route(
            "/webhooks/goshiip",
            post(on_event).route_layer(GoShiipSignature::new(goshiip)),
        );

    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        "listening on http://{}/webhooks/{{kosmo,kourier,shipmondo,goshiip}}",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
