//! What every layer shares: body limits, read errors, the extractors' guard,
//! plain Tower use, and a real server on 127.0.0.1.

use std::convert::Infallible;

use crate::common::{echo_app, send, serve, with_body, without_header};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode};
use axum::routing::post;
use futures_util::stream;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{
    GoShiipEvent, GoShiipSignature, KosmoEvent, KosmoSignature, KourierBearer, ShipmentEvent,
    ShipmondoJwt, VerifiedWebhook,
};
use tower::{ServiceBuilder, ServiceExt};

const SECRET: &str = "your_secret_key";

fn goshiip_app(limit: usize) -> Router {
    echo_app::<_, GoShiipEvent>(
        "/webhooks/goshiip",
        GoShiipSignature::new(SECRET).body_limit(limit),
    )
}

#[tokio::test]
async fn refuses_a_declared_length_over_the_limit_with_413() {
    let request = Webhook::goshiip("Pending").sign(SECRET);
    let (parts, _) = request.into_parts();
    // Full reports its exact length, as hyper does for a Content-Length body.
    let request = Request::from_parts(parts, Full::new(Bytes::from(vec![b' '; 2048])));
    let response = goshiip_app(1024).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "payload too large");
    assert_eq!(
        json["details"],
        "the body is larger than this endpoint's limit of 1024 bytes"
    );
}

#[tokio::test]
async fn stops_reading_an_endless_chunked_body_at_the_limit() {
    let chunks = stream::repeat_with(|| Ok::<_, Infallible>(Bytes::from_static(&[b'a'; 1000])));
    let request = with_body(Webhook::goshiip("Pending").sign(SECRET), Bytes::new());
    let (parts, _) = request.into_parts();
    let request = Request::from_parts(parts, Body::from_stream(chunks));
    send(&goshiip_app(64 * 1024), request)
        .await
        .assert_refused(StatusCode::PAYLOAD_TOO_LARGE, "limit of 65536 bytes");
}

#[tokio::test]
async fn a_body_exactly_at_the_limit_is_read() {
    let request = Webhook::goshiip("Pending").sign(SECRET);
    let len = Webhook::goshiip("Pending").payload_json().len();
    let answer = send(&goshiip_app(len), request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["body_len"], len);
}

#[tokio::test]
async fn a_body_that_fails_mid_read_is_a_400() {
    let chunks = stream::iter([
        Ok(Bytes::from_static(b"{\"shipment\":")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "peer went away",
        )),
    ]);
    let (parts, _) = Webhook::goshiip("Pending").sign(SECRET).into_parts();
    let request = Request::from_parts(parts, Body::from_stream(chunks));
    let answer = send(&goshiip_app(1024), request).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["error"], "unreadable body");
    assert!(
        answer.json["details"]
            .as_str()
            .unwrap()
            .contains("peer went away")
    );
}

#[tokio::test]
async fn a_chunked_body_is_verified_whole() {
    let json = Webhook::goshiip("Delivered").payload_json();
    let (parts, _) = Webhook::goshiip("Delivered").sign(SECRET).into_parts();
    let chunks: Vec<Result<Bytes, Infallible>> = json
        .as_bytes()
        .chunks(7)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    let request = Request::from_parts(parts, Body::from_stream(stream::iter(chunks)));
    let answer = send(&goshiip_app(1024), request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["body_len"], json.len());
}

#[tokio::test]
async fn the_handler_gets_the_exact_bytes_that_were_verified() {
    async fn raw(body: Bytes) -> Bytes {
        body
    }
    let app = Router::new().route(
        "/webhooks/goshiip",
        post(raw).layer(GoShiipSignature::new(SECRET)),
    );
    let webhook = Webhook::goshiip("Delivered");
    let response = app.oneshot(webhook.sign(SECRET)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, webhook.payload_json().as_bytes());
}

#[tokio::test]
async fn extractors_without_their_layer_answer_500_naming_it() {
    async fn wants_event(_: ShipmentEvent) {}
    async fn wants_kosmo(_: KosmoEvent) {}
    let app = Router::new().route("/bare", post(wants_event)).route(
        "/wrong",
        post(wants_kosmo).layer(GoShiipSignature::new(SECRET)),
    );

    let bare = Webhook::goshiip("Delivered")
        .uri("/bare".parse().unwrap())
        .sign(SECRET);
    send(&app, bare).await.assert_refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ShipmentEvent can only be extracted on a route layered with one of this crate's verifying layers (KosmoSignature...)",
    );
    let wrong = Webhook::goshiip("Delivered")
        .uri("/wrong".parse().unwrap())
        .sign(SECRET);
    send(&app, wrong).await.assert_refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        "KosmoEvent can only be extracted on a route layered with KosmoSignature",
    );
}

#[tokio::test]
async fn a_forged_request_never_reaches_the_handler() {
    async fn must_not_run() -> StatusCode {
        panic!("the handler must not run for a forged request")
    }
    let app = Router::new().route(
        "/webhooks/goshiip",
        post(must_not_run).layer(GoShiipSignature::new(SECRET)),
    );
    let answer = send(&app, Webhook::goshiip("Delivered").sign("forged")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn works_as_a_router_wide_layer() {
    async fn on_event(event: ShipmentEvent) -> String {
        event.id
    }
    let app = Router::new()
        .route("/webhooks/goshiip", post(on_event))
        .layer(GoShiipSignature::new(SECRET));
    let response = app
        .clone()
        .oneshot(Webhook::goshiip("Delivered").sign(SECRET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "5lqijs7rm9n0");
    let forged = app
        .oneshot(Webhook::goshiip("Delivered").sign("nope"))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn works_as_a_plain_tower_layer() {
    let service = ServiceBuilder::new()
        .layer(KourierBearer::new("token"))
        .service_fn(|request: Request<Body>| async move {
            // A plain service reads what the layer verified from the extensions.
            let webhook = request.extensions().get::<VerifiedWebhook>().cloned();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let answer = match webhook {
                Some(webhook) if webhook.json() == &body => webhook.event().id.clone(),
                Some(_) => "the body passed on is not the one verified".to_owned(),
                None => "no VerifiedWebhook in the extensions".to_owned(),
            };
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(answer))))
        });
    let response = service
        .clone()
        .oneshot(Webhook::kourier("delivered").sign("token"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "abc123");
    let refused = service
        .oneshot(Webhook::kourier("delivered").sign("nope"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

/// The four providers on one real server on 127.0.0.1, each sent a real
/// signed request over TCP, and a forged one.
#[tokio::test]
async fn serves_all_four_providers_over_tcp() {
    async fn on_event(event: ShipmentEvent) -> axum::Json<ShipmentEvent> {
        axum::Json(event)
    }
    let app = Router::new()
        .route(
            "/webhooks/kosmo",
            post(on_event).layer(KosmoSignature::new("kosmo-secret")),
        )
        .route(
            "/webhooks/kourier",
            post(on_event).layer(KourierBearer::new("kourier-token")),
        )
        .route(
            "/webhooks/shipmondo",
            post(on_event).layer(ShipmondoJwt::new("a-shipmondo-webhook-key-of-32-bytes!")),
        )
        .route(
            "/webhooks/goshiip",
            post(on_event).layer(GoShiipSignature::new("goshiip-secret")),
        );
    let address = serve(app).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();

    for (webhook, secret, id) in [
        (
            Webhook::kosmo("DELIVERED"),
            "kosmo-secret",
            "SG-19ALqYm4s6P",
        ),
        (Webhook::kourier("delivered"), "kourier-token", "abc123"),
        (
            Webhook::shipmondo_order("sent"),
            "a-shipmondo-webhook-key-of-32-bytes!",
            "119175",
        ),
        (
            Webhook::goshiip("Delivered"),
            "goshiip-secret",
            "5lqijs7rm9n0",
        ),
    ] {
        let uri: axum::http::Uri = format!("http://{address}/webhooks/{}", webhook.provider())
            .parse()
            .unwrap();
        let webhook = webhook.uri(uri);
        let response = client.request(webhook.sign(secret)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(event["id"], id);
        assert_ne!(event["status"], "other");

        let forged = client.request(webhook.sign("forged")).await.unwrap();
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn closes_an_http1_connection_only_when_the_body_was_left_unread() {
    let oversized = |version| {
        let request = with_body(Webhook::goshiip("Pending").sign(SECRET), vec![b' '; 2048]);
        let (mut parts, body) = request.into_parts();
        parts.version = version;
        Request::from_parts(parts, body)
    };
    let app = goshiip_app(1024);
    let answer = send(&app, oversized(axum::http::Version::HTTP_11)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.headers["connection"], "close");
    // HTTP/2 has no connection header: the server resets the stream itself.
    let answer = send(&app, oversized(axum::http::Version::HTTP_2)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!answer.headers.contains_key("connection"));
    // A body read to its end leaves the connection fit for the next request.
    let answer = send(&app, Webhook::goshiip("Pending").sign("another secret")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(!answer.headers.contains_key("connection"));
    // So does a refusal before reading a body that is empty.
    let unsigned = with_body(Webhook::goshiip("Pending").sign(SECRET), Bytes::new());
    let answer = send(&app, without_header(unsigned, "x-signature")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(!answer.headers.contains_key("connection"));
}
