//! How to test your own webhook handler with the `testing` feature: build the
//! request as the provider would send it, and send it through your Router.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Router, routing::post};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{KourierBearer, ShipmentEvent, ShipmentStatus};
use tower::ServiceExt;

/// Your application: it records every delivery's latest status.
type Deliveries = Arc<Mutex<Vec<(String, ShipmentStatus)>>>;

async fn on_kourier(State(deliveries): State<Deliveries>, event: ShipmentEvent) -> StatusCode {
    deliveries.lock().unwrap().push((event.id, event.status));
    StatusCode::OK
}

fn app(deliveries: Deliveries) -> Router {
    Router::new()
        .route(
            "/webhooks/kourier",
            post(on_kourier).layer(KourierBearer::new("test-token")),
        )
        .with_state(deliveries)
}

#[tokio::test]
async fn records_each_status_kourier_sends() {
    let deliveries = Deliveries::default();
    for status in ["created", "in_transit", "delivered"] {
        let request = Webhook::kourier(status)
            .field("/delivery_id", "d-7")
            .sign("test-token");
        let response = app(deliveries.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        *deliveries.lock().unwrap(),
        [
            ("d-7".to_owned(), ShipmentStatus::Created),
            ("d-7".to_owned(), ShipmentStatus::InTransit),
            ("d-7".to_owned(), ShipmentStatus::Delivered),
        ]
    );
}

#[tokio::test]
async fn records_nothing_from_a_forged_webhook() {
    let deliveries = Deliveries::default();
    let forged = Webhook::kourier("delivered").sign("guessed-token");
    let response = app(deliveries.clone()).oneshot(forged).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(deliveries.lock().unwrap().is_empty());
}
