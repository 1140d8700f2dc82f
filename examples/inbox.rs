//! Every provider into a durable inbox: `cargo run --features sqlite --example inbox`.
//!
//! Same routes, `PORT` and secret variables as `cargo run --example server`,
//! but each verified webhook is stored in a SQLite inbox (`webhooks.db` in
//! the working directory, or `$INBOX_PATH`) before the 200, retried
//! deliveries are answered `duplicate`, and a worker logs each webhook's
//! provider, id and status once, skipping events older than one it already
//! handled. Try `cargo run --example send -- kosmo
//! http://127.0.0.1:3000/webhooks/kosmo --twice` (or `--older-after-newer`).
//! Ctrl-C stops it gracefully: the worker finishes or hands back what it
//! holds, and the next start takes up whatever is left.
//!
//! With `INBOX_ADMIN_TOKEN` set, the admin page is at
//! `http://127.0.0.1:3000/admin/webhooks` behind that token; without it the
//! page is not mounted.

use axum::Router;
use axum::routing::post;
use shipment_webhooks::inbox::{AdminAccess, BoxError, Delivery, Inbox};
use shipment_webhooks::{
    AfterShipSignature, EasyPostSignature, GoShiipSignature, KosmoSignature, KourierBearer,
    SendcloudSignature, ShipBobSignature, ShipEngineSignature, ShipmondoJwt, ShippoSignature,
};

#[path = "support/mod.rs"]
mod support;

/// Your work for each webhook, at least once: make it idempotent (the dedup
/// key is the same on every attempt). An `Err` is retried with backoff.
async fn handle(delivery: Delivery) -> Result<(), BoxError> {
    let event = delivery.event();
    tracing::info!(
        provider = %event.provider,
        id = %event.id,
        status = %event.status,
        attempt = delivery.attempt(),
        key = %delivery.dedup_key(),
        "webhook handled"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let secrets = support::Secrets::from_env()?;
    // Listen first: a port in use stops it before it creates the database.
    let listener = support::listen().await?;
    let path = std::env::var("INBOX_PATH").unwrap_or_else(|_| "webhooks.db".into());
    let inbox = Inbox::sqlite(&path).await?;
    tracing::info!(path, "inbox open");
    let worker = inbox.worker(handle).spawn();

    let receive = || post(inbox.receiver());
    let mut app = Router::new()
        .route(
            "/webhooks/kosmo",
            receive().route_layer(KosmoSignature::new(secrets.kosmo)),
        )
        .route(
            "/webhooks/kourier",
            receive().route_layer(KourierBearer::new(secrets.kourier)),
        )
        .route(
            "/webhooks/shipmondo",
            receive().route_layer(ShipmondoJwt::new(secrets.shipmondo)),
        )
        .route(
            "/webhooks/goshiip",
            receive().route_layer(GoShiipSignature::new(secrets.goshiip)),
        )
        .route(
            "/webhooks/easypost",
            receive().route_layer(EasyPostSignature::new(secrets.easypost)),
        )
        .route(
            "/webhooks/aftership",
            receive().route_layer(AfterShipSignature::new(secrets.aftership)),
        )
        .route(
            "/webhooks/sendcloud",
            receive().route_layer(SendcloudSignature::new(secrets.sendcloud)),
        )
        .route(
            "/webhooks/shippo",
            receive().route_layer(ShippoSignature::new(secrets.shippo)),
        )
        .route(
            "/webhooks/shipbob",
            receive().route_layer(ShipBobSignature::try_new(secrets.shipbob)?),
        )
        .route(
            "/webhooks/shipengine",
            receive().route_layer(ShipEngineSignature::from_jwks(&secrets.shipengine_jwks)?),
        );
    match std::env::var("INBOX_ADMIN_TOKEN") {
        Ok(token) if !token.is_empty() => {
            app = app.nest("/admin/webhooks", inbox.admin(AdminAccess::Token(token)));
            tracing::info!("admin page at /admin/webhooks, behind INBOX_ADMIN_TOKEN");
        }
        _ => tracing::info!(
            "admin page not mounted: set INBOX_ADMIN_TOKEN to a secret to serve it at /admin/webhooks"
        ),
    }

    axum::serve(listener, app)
        .with_graceful_shutdown(support::shutdown_signal())
        .await?;
    worker.shutdown().await;
    Ok(())
}
