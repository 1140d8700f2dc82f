//! Sendcloud: `Sendcloud-Signature`, hex HMAC-SHA256 of the raw body, and
//! its `test_webhook`, through a real Router.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::{Answer, echo_app, send, with_body, with_header, without_header};
use axum::body::Body;
use axum::http::{HeaderName, Request, StatusCode};
use serde_json::json;
use shipment_webhooks::testing::{Webhook, sendcloud_signature};
use shipment_webhooks::{ConfigError, SendcloudEvent, SendcloudSignature, ShipmentEvent};

const SECRET: &str = "secretkey";

/// Sendcloud's own example (v2 and v3 webhook pages and OpenAPI): this body,
/// a space after the colon, with `secretkey`.
const DOCS_BODY: &str = r#"{"key": "value"}"#;
const DOCS_SIGNATURE: &str = "1eed4b3d41f4653ac64fd56f1bf1cbfd349e4482cbc11dff7134bd93e5da4b0a";

async fn answer(request: Request<Body>) -> Answer {
    let app = echo_app::<_, SendcloudEvent>("/webhooks/sendcloud", SendcloudSignature::new(SECRET));
    send(&app, request).await
}

fn signed() -> Request<Body> {
    Webhook::sendcloud(11).sign(SECRET)
}

fn counting_app(layer: SendcloudSignature) -> (axum::Router, Arc<AtomicUsize>) {
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let app = axum::Router::new().route(
        "/webhooks/sendcloud",
        axum::routing::post(move |event: ShipmentEvent| async move {
            counter.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"event": event}))
        })
        .layer(layer),
    );
    (app, handled)
}

#[test]
fn signer_matches_sendclouds_known_answer_and_an_independent_hmac() {
    assert_eq!(
        sendcloud_signature(SECRET, DOCS_BODY.as_bytes()),
        DOCS_SIGNATURE
    );
    let tag = hmac_sha256::HMAC::mac(DOCS_BODY.as_bytes(), SECRET.as_bytes());
    let hex: String = tag.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(hex, DOCS_SIGNATURE);
    // Without the space, another body: `87fed1f0…`.
    assert!(sendcloud_signature(SECRET, br#"{"key":"value"}"#).starts_with("87fed1f0"));
}

#[test]
fn verifies_sendclouds_known_answer_byte_for_byte() {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("sendcloud-signature", DOCS_SIGNATURE.parse().unwrap());
    // The signature holds; the body is no Sendcloud event, refused only then.
    let refused = SendcloudSignature::new(SECRET)
        .verify(&headers, DOCS_BODY)
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        shipment_webhooks::RejectionKind::InvalidPayload,
        "{refused}"
    );
    assert!(
        refused.to_string().contains("missing field `action`"),
        "{refused}"
    );
    let compact = SendcloudSignature::new(SECRET)
        .verify(&headers, r#"{"key":"value"}"#)
        .unwrap_err();
    assert_eq!(
        compact.kind(),
        shipment_webhooks::RejectionKind::SignatureMismatch
    );
}

#[tokio::test]
async fn verifies_a_parcel_status_change() {
    let answer = answer(Webhook::sendcloud(12).sign(SECRET)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "sendcloud", "id": "1", "status": "at_pickup_point",
            "raw_status": "Awaiting customer pickup",
            "timestamp": "2018-05-02T14:38:05.993Z", "event_id": null,
        })
    );
    assert_eq!(answer.json["payload"]["parcel"]["status"]["id"], 12);
    assert_eq!(
        answer.json["payload"]["parcel"]["tracking_number"],
        "3SYZXG132912330"
    );
}

#[tokio::test]
async fn maps_by_the_status_id_and_keeps_the_message() {
    for (id, status) in [
        (1000, "created"),
        (1001, "processing"),
        (1, "ready_for_pickup"),
        (22, "picked_up"),
        (3, "in_transit"),
        (92, "out_for_delivery"),
        (12, "at_pickup_point"),
        (11, "delivered"),
        (93, "delivered"),
        (8, "failed"),
        (15, "on_hold"),
        (62992, "returned"),
        (2000, "cancelled"),
        (1337, "other"),
        (94, "other"),
    ] {
        let answer = answer(Webhook::sendcloud(id).sign(SECRET)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], status, "{id}");
    }
    // The 1337 message is longer than any word a mapping reads: the id maps.
    let unknown = answer(Webhook::sendcloud(1337).sign(SECRET)).await;
    assert!(
        unknown.json["event"]["raw_status"]
            .as_str()
            .unwrap()
            .starts_with("Unknown status")
    );
    // Without a message, `raw_status` is the id; a message that disagrees does not matter.
    let bare = Webhook::sendcloud(11)
        .without("/parcel/status/message")
        .sign(SECRET);
    let bare = answer(bare).await;
    assert_eq!(bare.json["event"]["raw_status"], "11");
    assert_eq!(bare.json["event"]["status"], "delivered");
    let placeholder = Webhook::sendcloud(1).field("/parcel/status/message", "Ready to send");
    assert_eq!(
        answer(placeholder.sign(SECRET)).await.json["event"]["status"],
        "ready_for_pickup"
    );
}

#[tokio::test]
async fn answers_a_test_webhook_without_passing_it_on() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let layer = SendcloudSignature::new(SECRET).on_connection_test(move |test| {
        record.lock().unwrap().push(test.clone());
    });
    let (app, handled) = counting_app(layer);
    let answer = send(&app, Webhook::sendcloud_test_webhook().sign(SECRET)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json, json!({"status": "connection test received"}));
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].provider, shipment_webhooks::Provider::Sendcloud);
    assert_eq!(seen[0].secret.label(), "primary");
    // A parcel event still reaches the handler.
    assert_eq!(send(&app, signed()).await.status, StatusCode::OK);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refuses_a_forged_test_webhook() {
    let (app, handled) = counting_app(SendcloudSignature::new(SECRET));
    send(&app, Webhook::sendcloud_test_webhook().sign("not the key"))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    assert_eq!(handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn passes_on_integration_events_scoped_apart_from_parcels() {
    let (app, handled) = counting_app(SendcloudSignature::new(SECRET));
    for action in [
        "integration_connected",
        "integration_credentials",
        "integration_deleted",
        "integration_updated",
    ] {
        let webhook = Webhook::sendcloud_test_webhook()
            .field("/action", action)
            .field(
                "/integration",
                json!({"id": 7, "shop_name": "API Integration", "system": "api"}),
            );
        let answer = send(&app, webhook.sign(SECRET)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(
            answer.json["event"],
            json!({
                "provider": "sendcloud", "id": "7", "status": "other", "raw_status": action,
                "timestamp": "2018-05-02T14:38:05.993Z", "event_id": null,
            })
        );
    }
    // Without an integration id, the action names it.
    let bare = Webhook::sendcloud_test_webhook().field("/action", "integration_deleted");
    let answer = send(&app, bare.sign(SECRET)).await;
    assert_eq!(answer.json["event"]["id"], "integration_deleted");
    assert_eq!(handled.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn refuses_a_missing_repeated_or_malformed_signature() {
    let good = sendcloud_signature(SECRET, Webhook::sendcloud(11).payload_json().as_bytes());
    let cases = [
        (
            without_header(signed(), "sendcloud-signature"),
            "the sendcloud-signature header is missing",
        ),
        (
            with_header(signed(), "sendcloud-signature", ""),
            "is 0 characters long",
        ),
        (
            with_header(signed(), "sendcloud-signature", &good[..63]),
            "is 63 characters long; a hex HMAC-SHA256 is 64",
        ),
        (
            with_header(signed(), "sendcloud-signature", &"zz".repeat(32)),
            "the sendcloud-signature header is not hex",
        ),
        (
            with_header(signed(), "sendcloud-signature", &format!("sha256={good}")),
            "is 71 characters long",
        ),
    ];
    for (request, details) in cases {
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, details);
    }
    let mut repeated = signed();
    repeated
        .headers_mut()
        .append("sendcloud-signature", good.parse().unwrap());
    answer(repeated)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "appears more than once");
    let mut not_ascii = signed();
    not_ascii.headers_mut().insert(
        "sendcloud-signature",
        axum::http::HeaderValue::from_bytes("é".as_bytes()).unwrap(),
    );
    answer(not_ascii)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "is not visible ASCII");
    // Uppercase hex is the same tag.
    let upper = with_header(signed(), "sendcloud-signature", &good.to_uppercase());
    assert_eq!(answer(upper).await.status, StatusCode::OK);
}

#[tokio::test]
async fn refuses_another_secret_a_changed_byte_a_truncated_body_and_the_json_re_serialized() {
    answer(Webhook::sendcloud(11).sign("secretkez"))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    let body = Webhook::sendcloud(11).payload_json();
    for index in [0, body.len() / 2, body.len() - 1] {
        let mut changed = body.as_bytes().to_vec();
        changed[index] ^= 0x01;
        answer(with_body(signed(), changed))
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    }
    answer(with_body(signed(), body[..body.len() - 1].to_owned()))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body).unwrap())
            .unwrap();
    answer(with_body(signed(), pretty))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
}

#[tokio::test]
async fn refuses_a_verified_body_missing_what_the_event_needs() {
    for (webhook, details) in [
        (
            Webhook::sendcloud(11).without("/parcel"),
            "the body: missing field `parcel`",
        ),
        (
            Webhook::sendcloud(11).without("/parcel/id"),
            "the body, at parcel: missing field `id`",
        ),
        (
            Webhook::sendcloud(11).without("/parcel/status"),
            "missing field `status`",
        ),
        (
            Webhook::sendcloud(11).without("/parcel/status/id"),
            "missing field `id`",
        ),
        (
            Webhook::sendcloud(11).without("/action"),
            "missing field `action`",
        ),
        (
            Webhook::sendcloud(11).field("/timestamp", "2018-05-02"),
            "the body, at timestamp: invalid type: string",
        ),
        (
            Webhook::sendcloud(11).field("/timestamp", i64::MAX),
            "is not a time in epoch milliseconds",
        ),
    ] {
        answer(webhook.sign(SECRET))
            .await
            .assert_refused(StatusCode::BAD_REQUEST, details);
    }
}

#[tokio::test]
async fn rotation_names_the_secret_that_matched() {
    let layer = SendcloudSignature::new(SECRET).with_secret("old", "previous");
    let app = echo_app::<_, SendcloudEvent>("/webhooks/sendcloud", layer);
    let answer = send(&app, Webhook::sendcloud(11).sign("previous")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["secret"], "old");
}

#[test]
fn debug_never_shows_a_secret() {
    let debug = format!(
        "{:?}",
        SendcloudSignature::new(SECRET).with_secret("next", "next_key")
    );
    assert!(
        debug.contains("next") && !debug.contains(SECRET) && !debug.contains("next_key"),
        "{debug}"
    );
}

#[tokio::test]
async fn the_typed_payload_is_decoded_only_when_a_handler_asks_for_it() {
    let webhook = Webhook::sendcloud(11).field("/parcel/tracking_number", 7);
    let (event_only, _) = counting_app(SendcloudSignature::new(SECRET));
    assert_eq!(
        send(&event_only, webhook.sign(SECRET)).await.status,
        StatusCode::OK
    );
    answer(webhook.sign(SECRET)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at parcel.tracking_number: invalid type: integer `7`",
    );
}

#[tokio::test]
async fn reads_the_signature_from_a_configured_header() {
    let name = HeaderName::from_static("x-sendcloud-signature");
    let app = echo_app::<_, SendcloudEvent>(
        "/webhooks/sendcloud",
        SendcloudSignature::new(SECRET).signature_header(name.clone()),
    );
    let moved = Webhook::sendcloud(11).signature_header(name).sign(SECRET);
    assert_eq!(send(&app, moved).await.status, StatusCode::OK);
    send(&app, signed()).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-sendcloud-signature header is missing",
    );
    assert_eq!(
        SendcloudSignature::new(SECRET)
            .try_signature_header("x:signature")
            .unwrap_err(),
        ConfigError::InvalidHeaderName {
            name: "x:signature".to_owned()
        }
    );
}
