//! Shipmondo, answering within its 3 seconds: `cargo run --example shipmondo`.
//!
//! Shipmondo drops a message that is not answered 200 within 3 seconds, so
//! the handler hands the verified event to a worker and answers at once.

use axum::{Router, extract::State, http::StatusCode, routing::post};
use shipment_webhooks::{ShipmentEvent, ShipmondoEvent, ShipmondoJwt};
use tokio::sync::mpsc;

async fn on_shipmondo(
    State(queue): State<mpsc::Sender<(ShipmentEvent, ShipmondoEvent)>>,
    event: ShipmentEvent,
    shipmondo: ShipmondoEvent,
) -> StatusCode {
    match queue.try_send((event, shipmondo)) {
        Ok(()) => StatusCode::OK,
        // Not a 200: Shipmondo will try again later instead of the event being lost.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("SHIPMONDO_WEBHOOK_KEY")
        .unwrap_or_else(|_| "demo-shipmondo-key-change-me-in-prod".into());
    let (queue, mut events) = mpsc::channel::<(ShipmentEvent, ShipmondoEvent)>(1024);
    tokio::spawn(async move {
        while let Some((event, shipmondo)) = events.recv().await {
            println!(
                "{} {} is {} (action {:?} by {:?})",
                shipmondo
                    .headers
                    .resource_type
                    .as_deref()
                    .unwrap_or("resource"),
                event.id,
                event.status,
                shipmondo.headers.action,
                shipmondo.headers.user,
            );
        }
    });
    let app = Router::new()
        .route(
            "/webhooks/shipmondo",
            post(on_shipmondo).route_layer(ShipmondoJwt::new(key)),
        )
        .with_state(queue);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
