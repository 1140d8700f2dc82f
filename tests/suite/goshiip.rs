//! GoShiip: `X-Signature`, hex HMAC-SHA256 of the raw body, through a real Router.

use crate::common::{Answer, echo_app, send, with_body, with_header, without_header};
use axum::http::{HeaderName, StatusCode};
use serde_json::json;
use shipment_webhooks::testing::{Webhook, goshiip_signature};
use shipment_webhooks::{ConfigError, GoShiipEvent, GoShiipSignature};

const SECRET: &str = "your_secret_key";

// GoShiip's sample event exactly as its page prints it, line breaks and all.
const PAGE_SAMPLE: &str = r#"{
  "shipment": {
    "data": {
      "destination": "David Ola Ojeniyi St, Ibadan, Nigeria",
      "origin": "1 Kayode Otitoju St, Lekki Phase I 106104, Lekki, Nigeria",
      "reference": "5lqijs7rm9n0",
      "id": "565",
      "status": "Delivered",
      "extra": "pending,In progress,picked up,delivered."
    },
    "carrier": "DHL"
  }
}"#;

async fn answer(request: axum::http::Request<axum::body::Body>) -> Answer {
    let app = echo_app::<_, GoShiipEvent>("/webhooks/goshiip", GoShiipSignature::new(SECRET));
    send(&app, request).await
}

fn page_sample_request(signature: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post("/webhooks/goshiip")
        .header("content-type", "application/json")
        .header("x-signature", signature)
        .body(axum::body::Body::from(PAGE_SAMPLE))
        .unwrap()
}

#[test]
fn signer_matches_an_independent_hmac() {
    // `printf %s "$PAGE_SAMPLE" | openssl dgst -sha256 -hmac your_secret_key`
    assert_eq!(
        goshiip_signature(SECRET, PAGE_SAMPLE.as_bytes()),
        "e5cca791bafb05c8630baa8488c3278b3c0f8f086cc5c4bd1c17c5e95fb7cdf8"
    );
}

#[tokio::test]
async fn verifies_the_exact_bytes_of_the_pages_sample() {
    let signature = goshiip_signature(SECRET, PAGE_SAMPLE.as_bytes());
    let answer = answer(page_sample_request(&signature)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "goshiip", "id": "5lqijs7rm9n0", "status": "delivered", "raw_status": "Delivered",
            "timestamp": null, "event_id": null,
        })
    );
    assert_eq!(answer.json["payload"]["shipment"]["carrier"], "DHL");
    assert_eq!(answer.json["body_len"], PAGE_SAMPLE.len());
}

#[tokio::test]
async fn accepts_an_uppercase_hex_signature() {
    let signature = goshiip_signature(SECRET, PAGE_SAMPLE.as_bytes()).to_uppercase();
    assert_eq!(
        answer(page_sample_request(&signature)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refuses_the_same_json_re_serialized() {
    let signature = goshiip_signature(SECRET, PAGE_SAMPLE.as_bytes());
    let compact = serde_json::from_str::<serde_json::Value>(PAGE_SAMPLE)
        .unwrap()
        .to_string();
    let request = with_body(page_sample_request(&signature), compact);
    answer(request).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the signature matches no configured secret",
    );
}

#[tokio::test]
async fn refuses_any_one_byte_changed() {
    let signature = goshiip_signature(SECRET, PAGE_SAMPLE.as_bytes());
    for index in [0, PAGE_SAMPLE.len() / 2, PAGE_SAMPLE.len() - 1] {
        let mut body = PAGE_SAMPLE.as_bytes().to_vec();
        body[index] ^= 0x01;
        let request = with_body(page_sample_request(&signature), body);
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    }
}

#[tokio::test]
async fn refuses_a_missing_short_or_non_hex_signature() {
    let signed = || Webhook::goshiip("Pending").sign(SECRET);
    let cases = [
        (
            without_header(signed(), "x-signature"),
            "the x-signature header is missing",
        ),
        (
            with_header(signed(), "x-signature", "abc123"),
            "is 6 characters long; a hex HMAC-SHA256 is 64",
        ),
        (
            with_header(signed(), "x-signature", &"zz".repeat(32)),
            "the x-signature header is not hex",
        ),
        (
            with_header(signed(), "x-signature", ""),
            "is 0 characters long",
        ),
    ];
    for (request, details) in cases {
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, details);
    }
}

#[tokio::test]
async fn refuses_a_verified_body_that_is_not_json() {
    let body = "shipment=5lqijs7rm9n0&status=Delivered";
    let request = with_header(
        with_body(Webhook::goshiip("Pending").sign(SECRET), body),
        "x-signature",
        &goshiip_signature(SECRET, body.as_bytes()),
    );
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body: expected value at line 1 column 1",
    );
}

#[tokio::test]
async fn refuses_a_verified_body_without_a_reference_naming_where() {
    let request = Webhook::goshiip("Pending")
        .without("/shipment/data/reference")
        .sign(SECRET);
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at shipment.data: missing field `reference`",
    );
}

#[tokio::test]
async fn accepts_a_numeric_id_and_maps_each_documented_status() {
    for (raw, status) in [
        ("Pending", "created"),
        ("In Progress", "processing"),
        ("Picked Up", "picked_up"),
    ] {
        let request = Webhook::goshiip(raw)
            .field("/shipment/data/id", 565)
            .sign(SECRET);
        let answer = answer(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], status);
        assert_eq!(answer.json["payload"]["shipment"]["data"]["id"], "565");
    }
}

#[tokio::test]
async fn rotation_names_the_secret_that_matched() {
    let layer = GoShiipSignature::new(SECRET).with_secret("old", "previous_key");
    let app = echo_app::<_, GoShiipEvent>("/webhooks/goshiip", layer);
    let answer = send(&app, Webhook::goshiip("Delivered").sign("previous_key")).await;
    assert_eq!(answer.json["secret"], "old");
}

#[test]
fn debug_never_shows_a_secret() {
    let debug = format!(
        "{:?}",
        GoShiipSignature::new(SECRET).with_secret("next", "next_key")
    );
    assert!(
        debug.contains("next") && !debug.contains(SECRET) && !debug.contains("next_key"),
        "{debug}"
    );
}

#[tokio::test]
async fn the_typed_payload_is_decoded_only_when_a_handler_asks_for_it() {
    let webhook = Webhook::goshiip("Delivered").field("/shipment/data/origin", 7);
    let event_only = axum::Router::new().route(
        "/webhooks/goshiip",
        axum::routing::post(|event: shipment_webhooks::ShipmentEvent| async move { event.id })
            .layer(GoShiipSignature::new(SECRET)),
    );
    let response = tower::ServiceExt::oneshot(event_only, webhook.sign(SECRET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    answer(webhook.sign(SECRET)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at shipment.data.origin: invalid type: integer `7`",
    );
}

#[tokio::test]
async fn reads_the_signature_from_a_configured_header() {
    let name = HeaderName::from_static("x-goshiip-signature");
    let app = echo_app::<_, GoShiipEvent>(
        "/webhooks/goshiip",
        GoShiipSignature::new(SECRET).signature_header(name.clone()),
    );
    let moved = Webhook::goshiip("Delivered")
        .signature_header(name)
        .sign(SECRET);
    assert_eq!(send(&app, moved).await.status, StatusCode::OK);
    let original = Webhook::goshiip("Delivered").sign(SECRET);
    send(&app, original).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-goshiip-signature header is missing",
    );
    let refused = GoShiipSignature::new(SECRET).try_signature_header("x:signature");
    assert_eq!(
        refused.unwrap_err(),
        ConfigError::InvalidHeaderName {
            name: "x:signature".to_owned()
        }
    );
}
