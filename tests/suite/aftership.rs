//! AfterShip: `aftership-hmac-sha256`, base64 HMAC-SHA256 of the raw body,
//! through a real Router.

use crate::common::{
    Answer, echo_app, send, set_unused_bits, with_body, with_header, without_header,
};
use axum::body::Body;
use axum::http::{HeaderName, Request, StatusCode};
use serde_json::json;
use shipment_webhooks::testing::{Webhook, aftership_signature};
use shipment_webhooks::{AfterShipEvent, AfterShipSignature, ConfigError, ShipmentEvent};

const SECRET: &str = "secretkey";

/// A body of AfterShip's documented shape (webhook specifications), 279
/// bytes. AfterShip publishes no signature example: the signature below is
/// [computed] for this crate (docs/platforms-research.md), with `secretkey`.
const COMPUTED_BODY: &str = r#"{"event":"tracking_update","event_id":"94dadd60-ed26-46d0-aa52-3ced925a50ff","is_tracking_first_tag":true,"msg":{"tracking_number":"0000000000000000","slug":"usps","tag":"Delivered","subtag":"Delivered_001","subtag_message":"Delivered","order_number":"ORD-1001"},"ts":1712741696}"#;
const COMPUTED_SIGNATURE: &str = "fQmMmL/aUGrsLqT3qdeKlckwRDeERHurm4oR2Dy/ojc=";

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

async fn answer(request: Request<Body>) -> Answer {
    let app = echo_app::<_, AfterShipEvent>("/webhooks/aftership", AfterShipSignature::new(SECRET));
    send(&app, request).await
}

fn computed_request(body: impl Into<axum::body::Bytes>, signature: &str) -> Request<Body> {
    Request::post("/webhooks/aftership")
        .header("content-type", "application/json")
        .header("aftership-hmac-sha256", signature)
        .body(Body::from(body.into()))
        .unwrap()
}

fn signed() -> Request<Body> {
    Webhook::aftership("InTransit").sign(SECRET)
}

#[test]
fn signer_matches_the_computed_answer_and_an_independent_hmac() {
    assert_eq!(COMPUTED_BODY.len(), 279);
    assert_eq!(
        aftership_signature(SECRET, COMPUTED_BODY.as_bytes()),
        COMPUTED_SIGNATURE
    );
    let tag = hmac_sha256::HMAC::mac(COMPUTED_BODY.as_bytes(), SECRET.as_bytes());
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(tag),
        COMPUTED_SIGNATURE
    );
}

#[tokio::test]
async fn verifies_the_computed_answer_byte_for_byte() {
    let answer = answer(computed_request(COMPUTED_BODY, COMPUTED_SIGNATURE)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "aftership", "id": "0000000000000000", "status": "delivered", "raw_status": "Delivered",
            "timestamp": "2024-04-10T09:34:56Z", "event_id": "94dadd60-ed26-46d0-aa52-3ced925a50ff",
        })
    );
    assert_eq!(answer.json["payload"]["msg"]["slug"], "usps");
    assert_eq!(answer.json["body_len"], 279);
}

#[tokio::test]
async fn the_timestamp_is_msg_updated_at_when_sent() {
    let request = Webhook::aftership("InTransit")
        .field("/msg/updated_at", "2024-04-10T10:00:00+00:00")
        .sign(SECRET);
    let answer = answer(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["timestamp"], "2024-04-10T10:00:00Z");
    let neither = Webhook::aftership("InTransit").without("/ts").sign(SECRET);
    let answer = self::answer(neither).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["timestamp"], json!(null));
}

#[tokio::test]
async fn maps_each_documented_tag_and_the_exception_subtags() {
    for (tag, subtag, status) in [
        ("Pending", "Pending_001", "created"),
        ("InfoReceived", "InfoReceived_001", "ready_for_pickup"),
        ("InTransit", "InTransit_007", "in_transit"),
        ("OutForDelivery", "OutForDelivery_001", "out_for_delivery"),
        (
            "AvailableForPickup",
            "AvailableForPickup_001",
            "at_pickup_point",
        ),
        ("Delivered", "Delivered_002", "delivered"),
        ("AttemptFail", "AttemptFail_001", "failed"),
        ("Exception", "Exception_013", "failed"),
        ("Exception", "Exception_006", "on_hold"),
        ("Exception", "Exception_010", "returned"),
        ("Exception", "Exception_011", "returned"),
        ("Expired", "Expired_001", "other"),
    ] {
        let request = Webhook::aftership(tag)
            .field("/msg/subtag", subtag)
            .sign(SECRET);
        let answer = answer(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], status, "{tag} {subtag}");
        assert_eq!(answer.json["event"]["raw_status"], tag);
    }
}

#[tokio::test]
async fn passes_on_the_other_event_codes_with_their_trackings_status() {
    for event in ["edd_revise", "tracking_pending_time"] {
        let request = Webhook::aftership("InTransit")
            .field("/event", event)
            .sign(SECRET);
        let answer = answer(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], "in_transit");
        assert_eq!(answer.json["payload"]["event"], event);
    }
}

#[tokio::test]
async fn refuses_a_missing_repeated_or_malformed_signature() {
    let good = aftership_signature(
        SECRET,
        Webhook::aftership("InTransit").payload_json().as_bytes(),
    );
    let unpadded = good.trim_end_matches('=').to_owned();
    let url_safe = good.replace('+', "-").replace('/', "_");
    let cases = [
        (
            without_header(signed(), "aftership-hmac-sha256"),
            "the aftership-hmac-sha256 header is missing",
        ),
        (
            with_header(signed(), "aftership-hmac-sha256", ""),
            "decodes to 0 bytes; an HMAC-SHA256 is 32",
        ),
        (
            with_header(signed(), "aftership-hmac-sha256", &good[..40]),
            "decodes to 30 bytes",
        ),
        (
            with_header(signed(), "aftership-hmac-sha256", &unpadded),
            "is not base64",
        ),
        (
            with_header(signed(), "aftership-hmac-sha256", "!!!!"),
            "is not base64",
        ),
        (
            with_header(signed(), "aftership-hmac-sha256", &hex_of(&good)),
            "decodes to 48 bytes",
        ),
        (
            with_header(
                signed(),
                "aftership-hmac-sha256",
                &format!("{}=", set_unused_bits(&good[..43], BASE64, 2)),
            ),
            "is not base64",
        ),
    ];
    for (request, details) in cases {
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, details);
    }
    // A URL-safe variant is another alphabet: refused unless it happens to hold none of `+/`.
    if url_safe != good {
        answer(with_header(signed(), "aftership-hmac-sha256", &url_safe))
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "is not base64");
    }
    let mut repeated = signed();
    repeated
        .headers_mut()
        .append("aftership-hmac-sha256", good.parse().unwrap());
    answer(repeated)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "appears more than once");
    let mut not_ascii = signed();
    not_ascii.headers_mut().insert(
        "aftership-hmac-sha256",
        axum::http::HeaderValue::from_bytes("é".as_bytes()).unwrap(),
    );
    answer(not_ascii)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "is not visible ASCII");
}

/// 64 hex digits: what a receiver that expected hex would send, 48 bytes as base64.
fn hex_of(signature: &str) -> String {
    use base64::Engine;
    let tag = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .unwrap();
    tag.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn refuses_another_secret_a_changed_byte_a_truncated_body_and_the_json_re_serialized() {
    answer(Webhook::aftership("Delivered").sign("secretkez"))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    for index in [0, COMPUTED_BODY.len() / 2, COMPUTED_BODY.len() - 1] {
        let mut body = COMPUTED_BODY.as_bytes().to_vec();
        body[index] ^= 0x01;
        answer(computed_request(body, COMPUTED_SIGNATURE))
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    }
    let truncated = &COMPUTED_BODY[..COMPUTED_BODY.len() - 1];
    answer(computed_request(truncated.to_owned(), COMPUTED_SIGNATURE))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(COMPUTED_BODY).unwrap(),
    )
    .unwrap();
    answer(computed_request(pretty, COMPUTED_SIGNATURE))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
}

#[tokio::test]
async fn refuses_a_verified_body_missing_what_the_event_needs() {
    for (webhook, details) in [
        (
            Webhook::aftership("Delivered").without("/msg/tracking_number"),
            "the body, at msg: missing field `tracking_number`",
        ),
        (
            Webhook::aftership("Delivered").without("/msg/tag"),
            "the body, at msg: missing field `tag`",
        ),
        (
            Webhook::aftership("Delivered").without("/msg"),
            "missing field `msg`",
        ),
        (
            Webhook::aftership("Delivered").field("/ts", "yesterday"),
            "the body, at ts: invalid type: string",
        ),
        (
            Webhook::aftership("Delivered").field("/msg/updated_at", "10/04/2024"),
            "the body's msg.updated_at: \"10/04/2024\" is not an RFC 3339 date-time",
        ),
        (
            Webhook::aftership("Delivered").field("/ts", i64::MAX),
            "is not a time in unix seconds",
        ),
    ] {
        answer(webhook.sign(SECRET))
            .await
            .assert_refused(StatusCode::BAD_REQUEST, details);
    }
    let body = "msg=1";
    let request = with_header(
        with_body(signed(), body),
        "aftership-hmac-sha256",
        &aftership_signature(SECRET, body.as_bytes()),
    );
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body: expected value at line 1 column 1",
    );
}

#[tokio::test]
async fn rotation_names_the_secret_that_matched() {
    let layer = AfterShipSignature::new(SECRET).with_secret("old", "previous");
    let app = echo_app::<_, AfterShipEvent>("/webhooks/aftership", layer);
    let answer = send(&app, Webhook::aftership("Delivered").sign("previous")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["secret"], "old");
}

#[test]
fn debug_never_shows_a_secret() {
    let debug = format!(
        "{:?}",
        AfterShipSignature::new(SECRET).with_secret("next", "next_key")
    );
    assert!(
        debug.contains("next") && !debug.contains(SECRET) && !debug.contains("next_key"),
        "{debug}"
    );
}

#[tokio::test]
async fn the_typed_payload_is_decoded_only_when_a_handler_asks_for_it() {
    let webhook = Webhook::aftership("Delivered").field("/msg/slug", 7);
    let event_only = axum::Router::new().route(
        "/webhooks/aftership",
        axum::routing::post(|event: ShipmentEvent| async move { event.id })
            .layer(AfterShipSignature::new(SECRET)),
    );
    let response = tower::ServiceExt::oneshot(event_only, webhook.sign(SECRET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    answer(webhook.sign(SECRET)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at msg.slug: invalid type: integer `7`",
    );
}

#[tokio::test]
async fn reads_the_signature_from_a_configured_header() {
    // AfterShip Returns signs the same way in `as-signature-hmac-sha256`.
    let name = HeaderName::from_static("as-signature-hmac-sha256");
    let app = echo_app::<_, AfterShipEvent>(
        "/webhooks/aftership",
        AfterShipSignature::new(SECRET).signature_header(name.clone()),
    );
    let moved = Webhook::aftership("Delivered")
        .signature_header(name)
        .sign(SECRET);
    assert_eq!(send(&app, moved).await.status, StatusCode::OK);
    send(&app, signed()).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the as-signature-hmac-sha256 header is missing",
    );
    assert_eq!(
        AfterShipSignature::new(SECRET)
            .try_signature_header("x:signature")
            .unwrap_err(),
        ConfigError::InvalidHeaderName {
            name: "x:signature".to_owned()
        }
    );
}
