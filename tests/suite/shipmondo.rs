//! Shipmondo: body `{"data": "<JWT HS256>"}` plus SMD-* headers, through a real Router.
//! Tokens are also made and checked with `hmac-sha256`, an HMAC written
//! apart from the one the crate uses, in the form `jsonwebtoken` writes them.

use crate::common::{
    Answer, echo_app, send, set_unused_bits, with_body, with_header, without_header,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

/// The base64url HS256 signature of `message`, by the independent HMAC.
fn hs256(message: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256::HMAC::mac(message, KEY))
}

/// A token as `jsonwebtoken::encode` makes one: `typ` before `alg`, the
/// claims serialized as they are.
fn independent_token(claims: &Value) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"HS256"}"#),
        b64(claims)
    );
    format!("{signed}.{}", hs256(&signed))
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
            "timestamp": "2021-02-23T09:12:40.233+01:00", "event_id": null,
        })
    );
    assert_eq!(
        answer.json["payload"]["headers"],
        json!({
            "resource_type": "Orders", "resource_id": "119175", "webhook_id": "1234",
            "action": "status_update", "user": "Webshop API",
        })
    );
    assert_eq!(answer.json["payload"]["data"]["order_id"], "2042");
    assert_eq!(answer.json["payload"]["webhook"], "Webhook1");
}

#[test]
fn the_signer_s_tokens_verify_with_an_independent_hmac() {
    let token = shipmondo_jwt(KEY, "{\"webhook\":\"Webhook1\"}");
    let (signed, signature) = token.rsplit_once('.').unwrap();
    assert_eq!(signature, hs256(signed));
    // The payload is a JSON string holding JSON, as in Shipmondo's example (`IntcIndlYmhv...`).
    assert!(token.split('.').nth(1).unwrap().starts_with("IntcIndlYmhv"));
}

#[tokio::test]
async fn accepts_independent_tokens_with_string_or_object_payloads() {
    let payload = order_payload();
    let as_string = independent_token(&Value::String(payload.to_string()));
    let as_object = independent_token(&payload);
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
    let signed = format!("{}.{}", b64(&json!({"alg": "HS512"})), b64(&payload));
    let mut mac = <hmac::Hmac<sha2::Sha512> as hmac::KeyInit>::new_from_slice(KEY.as_bytes())
        .expect("any key");
    hmac::Mac::update(&mut mac, signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(hmac::Mac::finalize(mac).into_bytes());
    let hs512 = format!("{signed}.{signature}");
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
fn refuses_a_short_key_without_telling_its_length() {
    for build in [
        Box::new(|| drop(ShipmondoJwt::new("k".repeat(31))))
            as Box<dyn Fn() + std::panic::UnwindSafe>,
        Box::new(|| drop(ShipmondoJwt::new(KEY).with_secret("next", "short"))),
    ] {
        let panic = std::panic::catch_unwind(build).expect_err("a short key panics");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains("keys must be at least 32 bytes")
                && !message.contains("31")
                && !message.contains('5'),
            "{message}"
        );
    }
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
async fn refuses_a_signed_payload_that_is_not_canonical_base64url() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
    let payload = b64(&order_payload());
    // Like the header and the signature, the payload must be unpadded
    // base64url with no unused bits set, even under a signature that holds.
    for payload in [
        "not*base64".to_owned(),
        format!("{payload}="),
        set_unused_bits(&payload, BASE64URL, 2),
    ] {
        let signed = format!("{header}.{payload}");
        let token = format!("{signed}.{}", hs256(&signed));
        answer(with_token(&token)).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            "the JWT payload is not unpadded base64url",
        );
    }
}

#[tokio::test]
async fn refuses_a_signed_payload_string_without_its_closing_quote() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
    // The JSON string holding the order's JSON, cut before its closing
    // quote: with blanks after, a reading of what the unescape had already
    // rewritten in place once passed it.
    let string = serde_json::to_string(&order_payload().to_string()).expect("a string");
    let cut = &string[..string.len() - 1];
    for payload in [cut.to_owned(), format!("{cut}{}", " ".repeat(1000))] {
        let error = serde_json::from_str::<String>(&payload).expect_err("an unclosed string");
        let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(&payload));
        let token = format!("{signed}.{}", hs256(&signed));
        answer(with_token(&token)).await.assert_refused(
            StatusCode::BAD_REQUEST,
            &format!("the JWT payload: {error}"),
        );
    }
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
            "{\"data\":\"[1]\"}",
            "the JWT payload, at data: a string that is not a JSON object",
        ),
        (
            "{\"data\":\"{\\\"id\\\":\"}",
            "the JWT payload, at data: a string that is not a JSON object: EOF",
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

/// A route behind `layer` whose handler counts the requests it gets.
fn counting_app(
    layer: ShipmondoJwt,
) -> (axum::Router, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let handled = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let app = axum::Router::new().route(
        "/webhooks/shipmondo",
        axum::routing::post(move |_: shipment_webhooks::ShipmentEvent| async move {
            counter.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"handled": true}))
        })
        .layer(layer),
    );
    (app, handled)
}

#[tokio::test]
async fn answers_a_connection_test_without_passing_it_on() {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let layer = ShipmondoJwt::new(KEY).on_connection_test(move |test| {
        record.lock().unwrap().push(test.clone());
    });
    let (app, handled) = counting_app(layer);

    let bare = Webhook::shipmondo_connection_test().sign(KEY);
    assert!(
        bare.headers()
            .keys()
            .all(|name| !name.as_str().starts_with("smd-"))
    );
    let with_headers = with_header(
        with_header(
            Webhook::shipmondo_connection_test().sign(KEY),
            "smd-resource-type",
            "Orders",
        ),
        "smd-action",
        "create",
    );
    for request in [bare, with_headers] {
        let answer = send(&app, request).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json, json!({"status": "connection test received"}));
    }
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].webhook.as_deref(), Some("Webhook1"));
    assert_eq!(seen[0].url.as_deref(), Some("https://example.com/webhook"));
    assert_eq!(seen[0].secret.label(), "primary");

    // An order webhook still reaches the handler.
    let answer = send(&app, Webhook::shipmondo_order("open").sign(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refuses_a_forged_connection_test() {
    let (app, handled) = counting_app(ShipmondoJwt::new(KEY));
    let forged = Webhook::shipmondo_connection_test().sign("not-the-shipmondo-key-of-32-bytes!!");
    send(&app, forged)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured key");
    // A payload with another action and no data is not a connection test.
    let other = Webhook::shipmondo_connection_test().field("/action", "ping");
    send(&app, other.sign(KEY))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "missing field `data`");
    assert_eq!(handled.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn accepts_data_sent_as_a_string_holding_the_object() {
    let object = Webhook::shipmondo_order("sent");
    let as_string = object
        .clone()
        .field("/data", object.payload()["data"].to_string());
    let expected = answer(object.sign(KEY)).await;
    let answer = answer(as_string.sign(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"], expected.json["event"]);
    assert_eq!(answer.json["payload"]["data"], object.payload()["data"]);
}

#[tokio::test]
async fn a_shipment_monitor_event_is_its_signed_shipment_id() {
    let answer = answer(Webhook::shipmondo_monitor("AVAILABLE_FOR_DELIVERY").sign(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "shipmondo", "id": "3405958", "status": "out_for_delivery",
            "raw_status": "AVAILABLE_FOR_DELIVERY",
            "timestamp": "2021-02-24T08:25:44.557+01:00", "event_id": null,
        })
    );
    assert_eq!(
        answer.json["payload"]["data"]["current_state"],
        "PROGRESSING"
    );

    // A replayed token with another shipment named in its unsigned header
    // still names the signed shipment.
    let relabelled = with_header(
        Webhook::shipmondo_monitor("DELIVERED").sign(KEY),
        "smd-resource-id",
        "1",
    );
    assert_eq!(answer_id(relabelled).await, "3405958");
}

async fn answer_id(request: Request<Body>) -> Value {
    answer(request).await.json["event"]["id"].clone()
}

#[tokio::test]
async fn maps_every_monitor_status_seen_from_shipmondo() {
    for (raw, status) in [
        ("EN_ROUTE", "in_transit"),
        ("AVAILABLE_FOR_DELIVERY", "out_for_delivery"),
        ("DELIVERED", "delivered"),
        ("FAILED", "failed"),
        ("UNKNOWN", "other"),
    ] {
        let answer = answer(Webhook::shipmondo_monitor(raw).sign(KEY)).await;
        assert_eq!(answer.json["event"]["status"], status, "{raw}");
        assert_eq!(answer.json["event"]["raw_status"], raw);
    }
}

#[tokio::test]
async fn never_takes_the_unsigned_resource_id_as_the_event_id() {
    for webhook in [
        Webhook::shipmondo_order("cancelled").without("/data/id"),
        Webhook::shipmondo_monitor("DELIVERED").without("/data/shipment_id"),
    ] {
        let request = with_header(webhook.sign(KEY), "smd-resource-id", "119175");
        answer(request).await.assert_refused(
            StatusCode::BAD_REQUEST,
            "the JWT payload has neither data.id nor data.shipment_id",
        );
    }
}

#[tokio::test]
async fn the_timestamp_is_the_signed_time_of_the_status() {
    let time = |webhook: Webhook| async move {
        answer(webhook.sign(KEY)).await.json["event"]["timestamp"].clone()
    };
    // Sub-second precision and the offset are kept.
    let order =
        Webhook::shipmondo_order("sent").field("/data/updated_at", "2026-06-19T17:07:11.233+02:00");
    assert_eq!(time(order).await, "2026-06-19T17:07:11.233+02:00");
    let shipment = Webhook::shipmondo_shipment("create");
    assert_eq!(
        time(shipment.clone()).await,
        "2021-02-23T09:12:41.001+01:00"
    );
    assert_eq!(
        time(shipment.without("/data/updated_at")).await,
        "2021-02-23T09:12:40.233+01:00"
    );
    let monitor = Webhook::shipmondo_monitor("EN_ROUTE");
    assert_eq!(time(monitor).await, "2021-02-24T08:25:44.557+01:00");
    let none = Webhook::shipmondo_shipment("cancel")
        .without("/data/updated_at")
        .without("/data/created_at");
    assert_eq!(time(none).await, Value::Null);
}

#[tokio::test]
async fn a_time_that_is_not_rfc_3339_leaves_the_event_without_one() {
    for value in ["2021-02-23 09:12:40", "yesterday", ""] {
        let webhook = Webhook::shipmondo_order("sent").field("/data/updated_at", value);
        let answer = answer(webhook.sign(KEY)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["timestamp"], Value::Null, "{value}");
        // It does not fall back on an older time either.
        assert_eq!(answer.json["event"]["status"], "in_transit");
    }
    let webhook = Webhook::shipmondo_order("sent").field("/data/updated_at", 1_614_000_000);
    answer(webhook.sign(KEY)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "at data.updated_at: invalid type: integer",
    );
}

#[tokio::test]
async fn the_shops_order_number_is_at_hand() {
    let webhook = Webhook::shipmondo_order("open")
        .field("/data/id", 37_707_019)
        .field("/data/order_id", "000000011");
    let app = axum::Router::new().route(
        "/webhooks/shipmondo",
        axum::routing::post(
            |event: shipment_webhooks::ShipmentEvent, payload: ShipmondoEvent| async move {
                axum::Json(json!({"id": event.id, "order_id": payload.order_id()}))
            },
        )
        .layer(ShipmondoJwt::new(KEY)),
    );
    let answer = send(&app, webhook.sign(KEY)).await;
    assert_eq!(
        answer.json,
        json!({"id": "37707019", "order_id": "000000011"})
    );
}

#[tokio::test]
async fn refuses_any_member_of_the_body_but_the_signed_data() {
    let signed = Webhook::shipmondo_order("open").sign(KEY);
    let body = axum::body::to_bytes(signed.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let token = body["data"].as_str().unwrap();
    let request = with_body(
        Webhook::shipmondo_order("open").sign(KEY),
        json!({"data": token, "evil": "unsigned"}).to_string(),
    );
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "unknown field `evil`, expected `data`",
    );
}

#[tokio::test]
async fn one_answer_to_monitor_or_not_picks_the_id_the_status_and_the_time() {
    // An order that also carries `current_status` and `shipment_id` is an order.
    let order = Webhook::shipmondo_order("open")
        .field("/data/shipment_id", 2)
        .field("/data/current_status", "EN_ROUTE")
        .field("/data/current_status_registered_at", "2030-01-01T00:00:00Z");
    let answer = answer(order.sign(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["id"], "119175");
    assert_eq!(answer.json["event"]["status"], "created");
    assert_eq!(
        answer.json["event"]["timestamp"],
        "2021-02-23T09:12:40.233+01:00"
    );
}

#[tokio::test]
async fn an_empty_signed_id_is_no_id() {
    let empty = Webhook::shipmondo_order("cancelled").field("/data/id", "");
    answer(empty.sign(KEY)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the JWT payload has neither data.id nor data.shipment_id",
    );
    let blank_with_other = Webhook::shipmondo_order("cancelled")
        .field("/data/id", " ")
        .field("/data/shipment_id", 3405958);
    assert_eq!(answer_id(blank_with_other.sign(KEY)).await, "3405958");
}
