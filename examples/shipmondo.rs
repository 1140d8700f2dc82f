//! Shipmondo, answering within its 3 seconds: `cargo run --features sqlite --example shipmondo`.
//!
//! Shipmondo drops a message that is not answered 200 within 3 seconds, so
//! the route stores the verified webhook in a SQLite inbox
//! (`shipmondo.db`) and answers as soon as it is committed; a worker handles
//! it after. An event stored is not lost if the process stops: the next
//! start handles it.

#[path = "support/port.rs"]
mod port;

use axum::{Router, routing::post};
use shipment_webhooks::inbox::{BoxError, Delivery, Inbox};
use shipment_webhooks::{ShipmondoEvent, ShipmondoJwt};

async fn handle(delivery: Delivery) -> Result<(), BoxError> {
    let shipmondo: ShipmondoEvent = delivery.payload()?;
    let event = delivery.event();
    println!(
        "{} {} is {} (action {:?} by {:?}, attempt {})",
        shipmondo
            .headers
            .resource_type
            .as_deref()
            .unwrap_or("resource"),
        event.id,
        event.status,
        shipmondo.headers.action,
        shipmondo.headers.user,
        delivery.attempt(),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("SHIPMONDO_WEBHOOK_KEY")
        .unwrap_or_else(|_| "demo-shipmondo-key-change-me-in-prod".into());
    let inbox = Inbox::sqlite("shipmondo.db").await?;
    let worker = inbox.worker(handle).spawn();
    let app = Router::new().route(
        "/webhooks/shipmondo",
        post(inbox.receiver()).route_layer(ShipmondoJwt::new(key)),
    );
    let listener = port::bind(port::port()?).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    worker.shutdown().await;
    Ok(())
}
