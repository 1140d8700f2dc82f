//! Routing the receiver: `post(inbox.receiver())` (the harness's `app`
//! routes every provider that way) and `post_service`, which routed it
//! before it was a handler too.

use axum::Router;
use axum::routing::post_service;
use shipment_webhooks::KosmoSignature;
use shipment_webhooks::inbox::Inbox;

use crate::common::send;
use crate::harness::*;

#[tokio::test]
async fn post_service_routes_the_receiver_as_post_does() {
    let inbox = Inbox::in_memory();
    let by_service: Router = Router::new().route(
        "/webhooks/kosmo",
        post_service(inbox.receiver()).route_layer(KosmoSignature::new(KOSMO)),
    );
    let by_handler = app(&inbox);
    let retried = kosmo("SG-R1", "PICKED UP", at(0));
    let first = send(&by_handler, retried.sign(KOSMO)).await;
    let second = send(&by_service, kosmo("SG-R2", "PICKED UP", at(0)).sign(KOSMO)).await;
    assert_eq!(
        (
            first.json["status"].as_str(),
            second.json["status"].as_str()
        ),
        (Some("stored"), Some("stored"))
    );
    // The same delivery through either route is one webhook.
    let again = send(&by_service, retried.sign(KOSMO)).await;
    assert_eq!(again.json["status"], "duplicate");
    assert_eq!(inbox.stats().await.expect("stats").pending, 2);
}
