//! No surprises in axum: methods, body limits above axum's own default,
//! layer order, and refusals that middleware outside can see and rewrite.

use crate::common::send;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde_json::{Value, json};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{GoShiipSignature, ShipmentEvent, WebhookRejection};
use tower::ServiceExt;

const SECRET: &str = "your_secret_key";

async fn status_of(app: &Router, request: Request<Body>) -> StatusCode {
    app.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn route_layer_answers_other_methods_405_where_layer_answers_401() {
    let get = || {
        Request::get("/webhooks/goshiip")
            .body(Body::empty())
            .unwrap()
    };
    let recommended = Router::new().route(
        "/webhooks/goshiip",
        post(|_: ShipmentEvent| async {}).route_layer(GoShiipSignature::new(SECRET)),
    );
    assert_eq!(
        status_of(&recommended, get()).await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let signed = Webhook::goshiip("Delivered").sign(SECRET);
    assert_eq!(status_of(&recommended, signed).await, StatusCode::OK);

    // `layer` wraps the method router's 405 too, so the layer refuses first.
    let wrapped = Router::new().route(
        "/webhooks/goshiip",
        post(|_: ShipmentEvent| async {}).layer(GoShiipSignature::new(SECRET)),
    );
    assert_eq!(status_of(&wrapped, get()).await, StatusCode::UNAUTHORIZED);
}

/// The README's safe pattern: a webhook route's own `route_layer` leaves a
/// health check and unknown paths alone; the same layer on the whole router
/// (`Router::layer`) answers both with its 401.
#[tokio::test]
async fn route_layer_leaves_other_routes_alone_where_router_layer_refuses_them() {
    let health = || Request::get("/health").body(Body::empty()).unwrap();
    let unknown = || Request::get("/no/such/path").body(Body::empty()).unwrap();
    let safe = Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route(
            "/webhooks/goshiip",
            post(|_: ShipmentEvent| async {}).route_layer(GoShiipSignature::new(SECRET)),
        );
    assert_eq!(status_of(&safe, health()).await, StatusCode::OK);
    assert_eq!(status_of(&safe, unknown()).await, StatusCode::NOT_FOUND);
    let signed = Webhook::goshiip("Delivered").sign(SECRET);
    assert_eq!(status_of(&safe, signed).await, StatusCode::OK);

    let whole = Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route("/webhooks/goshiip", post(|_: ShipmentEvent| async {}))
        .layer(GoShiipSignature::new(SECRET));
    assert_eq!(status_of(&whole, health()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&whole, unknown()).await, StatusCode::UNAUTHORIZED);
    let signed = Webhook::goshiip("Delivered").sign(SECRET);
    assert_eq!(status_of(&whole, signed).await, StatusCode::OK);
}

#[tokio::test]
async fn a_body_the_layer_verified_reaches_the_handler_above_axums_2_mb_default() {
    let limit = 4 * 1024 * 1024;
    let app = Router::new().route(
        "/webhooks/goshiip",
        post(|_: ShipmentEvent, body: Bytes| async move { body.len().to_string() })
            .route_layer(GoShiipSignature::new(SECRET).body_limit(limit)),
    );
    let webhook = Webhook::goshiip("Delivered").field("/padding", "x".repeat(limit - 1024));
    let response = app.clone().oneshot(webhook.sign(SECRET)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(body, webhook.payload_json().len().to_string());

    // A smaller DefaultBodyLimit set outside does not undo what the layer allowed.
    let outer = app.layer(DefaultBodyLimit::max(1024));
    assert_eq!(
        status_of(&outer, webhook.sign(SECRET)).await,
        StatusCode::OK
    );
}

/// Rewrites the layer's refusals as RFC 9457 problem details, status kept.
async fn problem_details(response: Response) -> Response {
    let Some(rejection) = response.extensions().get::<WebhookRejection>() else {
        return response;
    };
    let status = rejection.status();
    let problem = json!({
        "type": "about:blank",
        "title": rejection.error(),
        "status": status.as_u16(),
        "detail": rejection.details(),
    });
    let mut replaced = (status, Json(problem)).into_response();
    replaced.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/problem+json".parse().unwrap(),
    );
    replaced
}

#[tokio::test]
async fn middleware_outside_sees_each_refusal_and_can_replace_its_body() {
    let app = Router::new()
        .route(
            "/webhooks/goshiip",
            post(|event: ShipmentEvent| async move { Json(event) })
                .route_layer(GoShiipSignature::new(SECRET)),
        )
        .layer(middleware::map_response(problem_details));

    let response = app
        .clone()
        .oneshot(Webhook::goshiip("Delivered").sign("wrong"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 401);
    assert_eq!(problem["title"], "unauthorized");

    // A verified webhook passes untouched.
    let answer = send(&app, Webhook::goshiip("Delivered").sign(SECRET)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["id"], "5lqijs7rm9n0");
}

#[tokio::test]
async fn an_extractors_refusal_is_in_the_extensions_too() {
    // The body verifies but is not a GoShiipEvent: the extractor refuses it.
    let app = Router::new()
        .route(
            "/webhooks/goshiip",
            post(|_: shipment_webhooks::GoShiipEvent| async {})
                .route_layer(GoShiipSignature::new(SECRET)),
        )
        .layer(middleware::map_response(problem_details));
    let webhook = Webhook::goshiip("Delivered").field("/shipment/carrier", 42);
    let response = app.oneshot(webhook.sign(SECRET)).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}
