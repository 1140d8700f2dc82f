//! One GoShiip endpoint for many merchants, each with its own secret:
//! `cargo run --example tenants`, then from another terminal
//! `cargo run --example send -- goshiip http://127.0.0.1:3000/webhooks/goshiip/acme --secret acme-secret`
//! (accepted) or `--secret globex-secret` (refused: that is globex's).
//!
//! The tenant table is a map here; in an app, a database the lookup queries.

#[path = "support/port.rs"]
mod port;

use std::collections::HashMap;
use std::sync::Arc;

use axum::{Router, http::StatusCode, routing::post};
use shipment_webhooks::{GoShiipSignature, MatchedSecret, PerTenant, ShipmentEvent, TenantSource};

async fn on_event(event: ShipmentEvent, secret: MatchedSecret) -> StatusCode {
    println!(
        "tenant {} (secret {}): shipment {} is {}",
        secret.tenant().unwrap_or("?"),
        secret.label(),
        event.id,
        event.status
    );
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table: Arc<HashMap<&str, &str>> = Arc::new(HashMap::from([
        ("acme", "acme-secret"),
        ("globex", "globex-secret"),
    ]));
    let layer = PerTenant::new(TenantSource::path_segment(2), move |tenant: Arc<str>| {
        let secret = table.get(&*tenant).copied();
        async move { secret.map(GoShiipSignature::try_new).transpose() }
    });
    let app = Router::new().route(
        "/webhooks/goshiip/{tenant}",
        post(on_event).route_layer(layer),
    );
    let port = port::port()?;
    let listener = port::bind(port).await?;
    println!("tenants acme and globex on http://127.0.0.1:{port}/webhooks/goshiip/{{tenant}}");
    axum::serve(listener, app).await?;
    Ok(())
}
