//! Shipmondo: body `{"data": "<JWT HS256>"}` plus SMD-* headers, through a real Router.
//! Tokens also come from `jsonwebtoken`, an independent implementation.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Answer, echo_app, send, set_unused_bits, with_body, with_header, without_header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shipment_webhooks::testing::{Webhook, shipmondo_jwt};
use shipment_webhooks::{ShipmondoEvent, ShipmondoJwt};

const KEY: &str = "a-shipmondo-webhook-key-of-32-bytes!";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

async fn answer(request: Request<Body>) -> Answer {
    let app = echo_app::<_, ShipmondoEvent>("/webhooks/shipmondo", ShipmondoJwt::new(KEY));
    send(&app, request).await
}

/// A signed order webhook whose body's `data` is `token` instead.
fn with_token(token: &str) -> Request<Body> {
    let signed = Webhook::shipmondo_order("open").sign(KEY);
    with_body(signed, json!({ "data": token }).to_string())
}

fn hs256(message: &str) -> String {
    jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(KEY.as_bytes()),
        Algorithm::HS256,
    )
    .expect("jsonwebtoken signs HS256")
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

fn order_payload() -> Value {
    Webhook::shipmondo_order("open").payload().clone()
}

#[tokio::test]
async fn accepts_an_order_webhook_and_keeps_the_smd_headers() {
    let answer = answer(Webhook::shipmondo_order("sent").sign(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "shipmondo", "id": "119175", "status": "in_transit", "raw_status": "sent",
            "timestamp": null, "event_id": null,
        })
    );
    assert_eq!(
        answer.json["payload"]["headers"],
        json!({
            "resource_type": "Orders", "resource_id": "119175", "webhook_id": "1234",
            "action": "update", "user": "Webshop API",
        })
    );
    assert_eq!(answer.json["payload"]["data"]["order_id"], "2042");
    assert_eq!(answer.json["payload"]["webhook"], "Webhook1");
}

#[test]
fn the_signer_s_tokens_verify_with_jsonwebtoken() {
    let token = shipmondo_jwt(KEY, "{\"webhook\":\"Webhook1\"}");
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let key = jsonwebtoken::DecodingKey::from_secret(KEY.as_bytes());
    assert!(
        jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key, Algorithm::HS256).unwrap()
    );
    // The payload is a JSON string holding JSON, as in Shipmondo's example (`IntcIndlYmhv...`).
    assert!(token.split('.').nth(1).unwrap().starts_with("IntcIndlYmhv"));
}

#[tokio::test]
async fn accepts_tokens_made_by_jsonwebtoken_with_string_or_object_payloads() {
    let payload = order_payload();
    let header = Header::new(Algorithm::HS256);
    let key = EncodingKey::from_secret(KEY.as_bytes());
    let as_string = jsonwebtoken::encode(&header, &payload.to_string(), &key).unwrap();
    let as_object = jsonwebtoken::encode(&header, &payload, &key).unwrap();
    for token in [as_string, as_object] {
        let answer = answer(with_token(&token)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], "created");
    }
}

#[tokio::test]
async fn decodes_the_example_from_shipmondos_page() {
    // The page's decoded example, its padded keys and values included.
    let example = r#"{"webhook":"Webhook1","data":{"id":119175,"order_id":"2042","ordered_at ":"2021-02-22T11:41:08.000+01:00","order_status ":"on_hold ","fulfillment_status ":"unfulfilled"},"url":"https://example.com/webhook"}"#;
    let answer = answer(with_token(&shipmondo_jwt(KEY, example))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["status"], "on_hold");
    assert_eq!(answer.json["event"]["raw_status"], "on_hold ");
}

#[tokio::test]
async fn maps_shipments_by_action_and_the_monitor_by_current_status() {
    for (webhook, status) in [
        (Webhook::shipmondo_shipment("create"), "created"),
        (Webhook::shipmondo_shipment("cancel"), "cancelled"),
        (Webhook::shipmondo_monitor("EN_ROUTE"), "in_transit"),
        (Webhook::shipmondo_monitor("DELIVERED"), "delivered"),
    ] {
        let answer = answer(webhook.sign(KEY)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], status);
        assert_eq!(answer.json["event"]["id"], "3405958");
    }
}

#[tokio::test]
async fn refuses_a_token_signed_with_another_key() {
    let request = Webhook::shipmondo_order("open").sign("another-key-another-key-another-key");
    answer(request).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the JWT signature matches no configured key",
    );
}

#[tokio::test]
async fn refuses_a_token_whose_payload_was_changed() {
    let token = shipmondo_jwt(KEY, &order_payload().to_string());
    let forged_payload = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({"webhook": "x", "data": {"id": 1}}).to_string()).unwrap(),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    answer(with_token(&forged))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured key");
}

#[tokio::test]
async fn refuses_any_algorithm_but_hs256() {
    let payload = order_payload();
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &payload,
        &EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap();
    answer(with_token(&hs512)).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the JWT is signed with \"HS512\"; only HS256 is accepted",
    );

    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&payload));
    answer(with_token(&none))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "signed with \"none\"");
}

#[tokio::test]
async fn refuses_crit_extensions_even_when_the_signature_holds() {
    let signed = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "crit": ["exp"], "exp": 1})),
        b64(&order_payload())
    );
    let token = format!("{signed}.{}", hs256(&signed));
    answer(with_token(&token))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "`crit` extensions");
}

#[tokio::test]
async fn refuses_a_jwt_header_that_is_not_an_object_even_when_signed() {
    // serde reads a struct from an array too; RFC 7515 wants an object.
    let signed = format!("{}.{}", b64(&json!(["HS256"])), b64(&order_payload()));
    let token = format!("{signed}.{}", hs256(&signed));
    answer(with_token(&token)).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the JWT header is not valid: invalid type: sequence, expected a JSON object",
    );
}

#[tokio::test]
async fn refuses_malformed_tokens() {
    let good = shipmondo_jwt(KEY, &order_payload().to_string());
    let [header, payload, signature]: [&str; 3] =
        good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let cases = [
        ("not-a-jwt".to_owned(), "three dot-separated parts"),
        (format!("{good}.extra"), "three dot-separated parts"),
        (
            format!("{header}.{payload}.{signature}="),
            "the JWT signature is 44 characters long; an HS256 signature is 43",
        ),
        (
            format!("{header}.{payload}.{}*", &signature[..42]),
            "the JWT signature is not unpadded base64url",
        ),
        (
            // The same 32 bytes with the last character's two unused bits set.
            format!(
                "{header}.{payload}.{}",
                set_unused_bits(signature, BASE64URL, 2)
            ),
            "the JWT signature is not unpadded base64url",
        ),
        (
            format!("***.{payload}.{signature}"),
            "the JWT header is not unpadded base64url",
        ),
        (
            format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode("[1]")),
            "the JWT header is not valid",
        ),
        (
            format!("{header}.{payload}.{}", &signature[..20]),
            "the JWT signature is 20 characters long",
        ),
        (
            format!("{}.{payload}.{signature}", "A".repeat(100_000)),
            "the JWT header is 100000 characters long; at most 256",
        ),
        (String::new(), "three dot-separated parts"),
    ];
    for (token, details) in cases {
        answer(with_token(&token))
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, details);
    }
}

#[test]
#[should_panic(expected = "a Shipmondo key must be at least 32 bytes, and this one is 31")]
fn refuses_a_key_shorter_than_32_bytes() {
    let _ = ShipmondoJwt::new("k".repeat(31));
}

#[test]
#[should_panic(expected = "a Shipmondo key must be at least 32 bytes, and this one is 5")]
fn refuses_a_short_key_added_for_rotation() {
    let _ = ShipmondoJwt::new(KEY).with_secret("next", "short");
}

#[tokio::test]
async fn accepts_short_keys_only_when_told_to() {
    let layer = ShipmondoJwt::allowing_short_keys("short").with_secret("old", "shorter");
    let app = echo_app::<_, ShipmondoEvent>("/webhooks/shipmondo", layer);
    for (key, label) in [("short", "primary"), ("shorter", "old")] {
        let answer = send(&app, Webhook::shipmondo_order("sent").sign(key)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["secret"], label);
    }
}

#[test]
#[should_panic(expected = "a webhook secret must not be empty")]
fn refuses_an_empty_key_even_when_short_keys_are_allowed() {
    let _ = ShipmondoJwt::allowing_short_keys("");
}

#[tokio::test]
async fn refuses_a_signed_payload_that_is_not_base64url() {
    let signed = format!(
        "{}.not*base64",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#)
    );
    let token = format!("{signed}.{}", hs256(&signed));
    answer(with_token(&token))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "the JWT payload is not base64url");
}

#[tokio::test]
async fn the_signer_names_the_resource_it_signs() {
    let request = Webhook::shipmondo_order("open")
        .field("/data/id", 42)
        .sign(KEY);
    assert_eq!(request.headers()["smd-resource-id"], "42");
    assert_eq!(answer(request).await.json["event"]["id"], "42");
}

#[tokio::test]
async fn refuses_a_body_that_is_not_the_envelope() {
    let signed = || Webhook::shipmondo_order("open").sign(KEY);
    let cases = [
        (
            with_body(signed(), "eyJhbGciOiJIUzI1NiJ9.e30.x"),
            "the body: expected value",
        ),
        (with_body(signed(), "{}"), "missing field `data`"),
        (
            with_body(signed(), r#"{"data": 42}"#),
            "the body, at data: invalid type: integer `42`",
        ),
    ];
    for (request, details) in cases {
        answer(request)
            .await
            .assert_refused(StatusCode::BAD_REQUEST, details);
    }
}

#[tokio::test]
async fn refuses_a_verified_payload_that_is_not_shipmondos_shape() {
    for (payload, details) in [
        (
            "[{\"id\":1,\"order_status\":\"sent\"}]",
            "the JWT payload: invalid type: sequence, expected a JSON object",
        ),
        (
            "{\"data\":[1,\"sent\"]}",
            "the JWT payload, at data: invalid type: sequence, expected a JSON object",
        ),
        ("{\"webhook\":\"Webhook1\"}", "missing field `data`"),
        (
            "{\"data\":{\"order_status\":\"open\"}}",
            "no data.id in the JWT payload and no smd-resource-id header",
        ),
    ] {
        let request = without_header(with_token(&shipmondo_jwt(KEY, payload)), "smd-resource-id");
        answer(request)
            .await
            .assert_refused(StatusCode::BAD_REQUEST, details);
    }
}

#[tokio::test]
async fn the_signed_id_wins_over_a_contradicting_smd_resource_id() {
    let request = with_header(
        Webhook::shipmondo_order("open").sign(KEY),
        "smd-resource-id",
        "999",
    );
    let answer = answer(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["id"], "119175");
    assert_eq!(answer.json["payload"]["headers"]["resource_id"], "999");
}

#[tokio::test]
async fn a_replayed_token_cannot_be_relabelled_by_its_unsigned_headers() {
    let signed = Webhook::shipmondo_order("open").sign(KEY);
    let relabelled = with_header(
        with_header(signed, "smd-resource-type", "Shipments"),
        "smd-action",
        "cancel",
    );
    let answer = answer(relabelled).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["status"], "created");
    assert_eq!(answer.json["event"]["raw_status"], "open");

    let shipment = with_header(
        Webhook::shipmondo_shipment("create").sign(KEY),
        "smd-action",
        "delivered",
    );
    assert_eq!(answer_status(shipment).await, "other");
}

async fn answer_status(request: Request<Body>) -> Value {
    answer(request).await.json["event"]["status"].clone()
}

#[tokio::test]
async fn falls_back_to_the_signed_id_without_the_header() {
    let request = without_header(
        Webhook::shipmondo_order("open").sign(KEY),
        "smd-resource-id",
    );
    let answer = answer(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["id"], "119175");
}

#[tokio::test]
async fn refuses_a_repeated_smd_header() {
    let mut request = Webhook::shipmondo_order("open").sign(KEY);
    request
        .headers_mut()
        .append("smd-action", "cancel".parse().unwrap());
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the smd-action header appears more than once",
    );
}

#[tokio::test]
async fn rotation_names_the_key_that_matched() {
    let layer = ShipmondoJwt::new(KEY).with_secret("next", "the-next-shipmondo-webhook-key!!");
    let app = echo_app::<_, ShipmondoEvent>("/webhooks/shipmondo", layer);
    let answer = send(
        &app,
        Webhook::shipmondo_order("open").sign("the-next-shipmondo-webhook-key!!"),
    )
    .await;
    assert_eq!(answer.json["secret"], "next");
}

#[test]
fn debug_never_shows_a_key() {
    let debug = format!("{:?}", ShipmondoJwt::new(KEY));
    assert!(debug.contains("primary") && !debug.contains(KEY), "{debug}");
}

#[tokio::test]
async fn the_layer_refuses_any_repeated_smd_header_whatever_the_handler_takes() {
    let event_only = axum::Router::new().route(
        "/webhooks/shipmondo",
        axum::routing::post(|event: shipment_webhooks::ShipmentEvent| async move { event.id })
            .layer(ShipmondoJwt::new(KEY)),
    );
    let mut request = Webhook::shipmondo_order("open").sign(KEY);
    request
        .headers_mut()
        .append("smd-user", "someone else".parse().unwrap());
    send(&event_only, request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the smd-user header appears more than once",
    );
}
