//! EasyPost: `X-Hmac-Signature: hmac-sha256-hex=<hex>` over the raw body,
//! keyed with the secret in NFKD, through a real Router.

use crate::common::{Answer, echo_app, send, with_body, with_header, without_header};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Request, StatusCode};
use serde_json::json;
use shipment_webhooks::testing::{Webhook, easypost_signature};
use shipment_webhooks::{ConfigError, EasyPostEvent, EasyPostSignature, ShipmentEvent};

const SECRET: &str = "A1B2C3";

/// `EasyPost/examples` `official/fixtures/event-body.json` (commit
/// `0492e408`) without its trailing newline, as the SDKs' tests sign it.
const FIXTURE_BODY: &str = include_str!("../fixtures/easypost-event-body.json");
/// `official/fixtures/client-library-fixtures.json`'s `webhooks.secret`.
const FIXTURE_SECRET: &str = "sécret";
/// `official/fixtures/client-library-fixtures.json`'s `webhooks.hmac_signature`.
const FIXTURE_SIGNATURE: &str =
    "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db";

async fn answer(request: Request<Body>) -> Answer {
    let app = echo_app::<_, EasyPostEvent>("/webhooks/easypost", EasyPostSignature::new(SECRET));
    send(&app, request).await
}

async fn fixture_answer(body: impl Into<axum::body::Bytes>, signature: &str) -> Answer {
    let app =
        echo_app::<_, EasyPostEvent>("/webhooks/easypost", EasyPostSignature::new(FIXTURE_SECRET));
    let request = Request::post("/webhooks/easypost")
        .header("content-type", "application/json")
        .header("x-hmac-signature", signature)
        .body(Body::from(body.into()))
        .unwrap();
    send(&app, request).await
}

fn signed() -> Request<Body> {
    Webhook::easypost("in_transit").sign(SECRET)
}

#[test]
fn the_fixture_is_easyposts_bytes() {
    assert_eq!(FIXTURE_BODY.len(), 3550);
    assert!(!FIXTURE_BODY.ends_with('\n'));
    assert_eq!(
        hex(&hmac_sha256::Hash::hash(FIXTURE_BODY.as_bytes())),
        "c312298bbffb5cf2fc1dd9d310b59e687179d65deca3a630671a0a83dbb531b1"
    );
}

#[test]
fn signer_matches_easyposts_known_answer() {
    assert_eq!(
        easypost_signature(FIXTURE_SECRET, FIXTURE_BODY.as_bytes()),
        FIXTURE_SIGNATURE
    );
}

#[test]
fn signer_matches_an_independent_hmac() {
    // The NFKD key by hand: "se" + U+0301 + "cret".
    let key = "se\u{301}cret".as_bytes();
    let tag = hmac_sha256::HMAC::mac(FIXTURE_BODY.as_bytes(), key);
    assert_eq!(format!("hmac-sha256-hex={}", hex(&tag)), FIXTURE_SIGNATURE);
    let body = br#"{"id":"evt_1"}"#;
    assert_eq!(
        easypost_signature(SECRET, body),
        format!(
            "hmac-sha256-hex={}",
            hex(&hmac_sha256::HMAC::mac(body, SECRET.as_bytes()))
        )
    );
}

#[tokio::test]
async fn verifies_easyposts_fixture_byte_for_byte() {
    let answer = fixture_answer(FIXTURE_BODY, FIXTURE_SIGNATURE).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "easypost", "id": "trk_1", "status": "in_transit", "raw_status": "in_transit",
            "timestamp": "2024-08-02T19:26:51Z", "event_id": "evt_1",
        })
    );
    assert_eq!(answer.json["payload"]["description"], "tracker.updated");
    assert_eq!(answer.json["payload"]["result"]["carrier"], "FedEx");
    assert_eq!(answer.json["body_len"], 3550);
}

#[tokio::test]
async fn refuses_the_fixture_with_its_trailing_newline() {
    // `044558ad…`: the file as committed, newline included, is another body.
    let body = format!("{FIXTURE_BODY}\n");
    fixture_answer(body, FIXTURE_SIGNATURE)
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "the signature matches no configured secret",
        );
}

#[tokio::test]
async fn refuses_the_fixture_keyed_with_the_secret_not_normalized() {
    // `7f1669d6…`: HMAC keyed with "sécret" composed (NFC), which EasyPost never sends.
    let nfc = hmac_sha256::HMAC::mac(FIXTURE_BODY.as_bytes(), "s\u{e9}cret".as_bytes());
    let signature = format!("hmac-sha256-hex={}", hex(&nfc));
    assert!(signature.starts_with("hmac-sha256-hex=7f1669d6"));
    fixture_answer(FIXTURE_BODY, &signature)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    // A layer given the secret composed normalizes it: the same key as decomposed.
    let app = echo_app::<_, EasyPostEvent>(
        "/webhooks/easypost",
        EasyPostSignature::new("se\u{301}cret"),
    );
    let request = with_header(
        with_body(signed(), FIXTURE_BODY),
        "x-hmac-signature",
        FIXTURE_SIGNATURE,
    );
    assert_eq!(send(&app, request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn accepts_a_short_secret_and_an_uppercase_hex_signature() {
    assert_eq!(answer(signed()).await.status, StatusCode::OK);
    let body = Webhook::easypost("delivered").payload_json();
    let signature = easypost_signature(SECRET, body.as_bytes());
    let upper = format!(
        "hmac-sha256-hex={}",
        signature["hmac-sha256-hex=".len()..].to_uppercase()
    );
    let request = with_header(with_body(signed(), body), "x-hmac-signature", &upper);
    assert_eq!(answer(request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn refuses_a_missing_repeated_or_malformed_signature() {
    let good = easypost_signature(
        SECRET,
        Webhook::easypost("in_transit").payload_json().as_bytes(),
    );
    let bare_hex = good["hmac-sha256-hex=".len()..].to_owned();
    let cases = [
        (
            without_header(signed(), "x-hmac-signature"),
            "the x-hmac-signature header is missing",
        ),
        (
            with_header(signed(), "x-hmac-signature", ""),
            "does not start with hmac-sha256-hex=",
        ),
        (
            with_header(signed(), "x-hmac-signature", &bare_hex),
            "does not start with hmac-sha256-hex=",
        ),
        (
            with_header(
                signed(),
                "x-hmac-signature",
                &format!("HMAC-SHA256-HEX={bare_hex}"),
            ),
            "does not start with hmac-sha256-hex=",
        ),
        (
            with_header(
                signed(),
                "x-hmac-signature",
                &format!("hmac-sha256={bare_hex}"),
            ),
            "does not start with hmac-sha256-hex=",
        ),
        (
            with_header(signed(), "x-hmac-signature", &good[..good.len() - 1]),
            "has 63 characters after hmac-sha256-hex=; a hex HMAC-SHA256 is 64",
        ),
        (
            with_header(signed(), "x-hmac-signature", "hmac-sha256-hex="),
            "has 0 characters after hmac-sha256-hex=",
        ),
        (
            with_header(
                signed(),
                "x-hmac-signature",
                &format!("hmac-sha256-hex={}", "zz".repeat(32)),
            ),
            "is not hex after hmac-sha256-hex=",
        ),
        (
            with_header(signed(), "x-hmac-signature", &format!("{good} ")),
            "has 65 characters",
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
        .append("x-hmac-signature", good.parse().unwrap());
    answer(repeated)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "appears more than once");
    let mut not_ascii = signed();
    not_ascii.headers_mut().insert(
        "x-hmac-signature",
        axum::http::HeaderValue::from_bytes("hmac-sha256-hex=é".as_bytes()).unwrap(),
    );
    answer(not_ascii)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "is not visible ASCII");
}

#[tokio::test]
async fn refuses_another_secret_a_changed_byte_and_the_json_re_serialized() {
    answer(Webhook::easypost("delivered").sign("A1B2C4"))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    for index in [0, FIXTURE_BODY.len() / 2, FIXTURE_BODY.len() - 1] {
        let mut body = FIXTURE_BODY.as_bytes().to_vec();
        body[index] ^= 0x01;
        fixture_answer(body, FIXTURE_SIGNATURE)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    }
    // The same JSON written again (here pretty-printed) is other bytes.
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(FIXTURE_BODY).unwrap(),
    )
    .unwrap();
    fixture_answer(pretty, FIXTURE_SIGNATURE)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
}

#[tokio::test]
async fn refuses_a_signature_over_a_truncated_body() {
    let body = Webhook::easypost("delivered").payload_json();
    let signature = easypost_signature(SECRET, body.as_bytes());
    let request = with_header(
        with_body(signed(), body[..body.len() - 1].to_owned()),
        "x-hmac-signature",
        &signature,
    );
    answer(request)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
}

#[tokio::test]
async fn maps_each_documented_tracker_status() {
    for (raw, status) in [
        ("pre_transit", "created"),
        ("in_transit", "in_transit"),
        ("out_for_delivery", "out_for_delivery"),
        ("available_for_pickup", "at_pickup_point"),
        ("delivered", "delivered"),
        ("return_to_sender", "returned"),
        ("failure", "failed"),
        ("cancelled", "cancelled"),
        ("error", "other"),
        ("unknown", "other"),
    ] {
        let answer = answer(Webhook::easypost(raw).sign(SECRET)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], status, "{raw}");
        assert_eq!(answer.json["event"]["raw_status"], raw);
    }
}

#[tokio::test]
async fn a_tracker_created_event_is_a_tracking_event() {
    let request = Webhook::easypost("pre_transit")
        .field("/description", "tracker.created")
        .sign(SECRET);
    let answer = answer(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["id"], "trk_1");
    assert_eq!(answer.json["event"]["status"], "created");
}

#[tokio::test]
async fn passes_on_events_that_are_not_a_trackers() {
    // A Batch's `status` is an object: read as nothing, never refused.
    let batch = Webhook::easypost("in_transit")
        .field("/description", "batch.updated")
        .field(
            "/result",
            json!({"id": "batch_1", "object": "Batch", "state": "purchased",
                   "status": {"created": 0, "postage_purchased": 2}}),
        );
    let answer_ = answer(batch.sign(SECRET)).await;
    assert_eq!(answer_.status, StatusCode::OK, "{}", answer_.json);
    assert_eq!(
        answer_.json["event"],
        json!({
            "provider": "easypost", "id": "batch_1", "status": "other", "raw_status": "batch.updated",
            "timestamp": null, "event_id": "evt_1",
        })
    );
    // No `result` at all: the event's own id.
    let bare = Webhook::easypost("in_transit")
        .field("/description", "report.available")
        .without("/result");
    let answer_ = answer(bare.sign(SECRET)).await;
    assert_eq!(answer_.status, StatusCode::OK, "{}", answer_.json);
    assert_eq!(answer_.json["event"]["id"], "evt_1");
    assert_eq!(answer_.json["event"]["raw_status"], "report.available");
}

#[tokio::test]
async fn refuses_a_verified_tracker_event_missing_what_it_needs() {
    for (webhook, details) in [
        (
            Webhook::easypost("delivered").without("/result/id"),
            "the body, at result: missing field `id`",
        ),
        (
            Webhook::easypost("delivered").without("/result/status"),
            "the body, at result: missing field `status`",
        ),
        (
            Webhook::easypost("delivered").field("/result/status", 7),
            "the body, at result: `status` is not a string",
        ),
        (
            Webhook::easypost("delivered").without("/result"),
            "a \"tracker.updated\" event without a `result`",
        ),
        (
            Webhook::easypost("delivered").without("/id"),
            "missing field `id`",
        ),
        (
            Webhook::easypost("delivered").without("/description"),
            "missing field `description`",
        ),
    ] {
        answer(webhook.sign(SECRET))
            .await
            .assert_refused(StatusCode::BAD_REQUEST, details);
    }
}

#[tokio::test]
async fn refuses_a_verified_time_not_rfc_3339() {
    let request = Webhook::easypost("delivered")
        .field("/result/updated_at", "2024-08-02 19:26:51")
        .sign(SECRET);
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body's result.updated_at: \"2024-08-02 19:26:51\" is not an RFC 3339 date-time",
    );
}

#[tokio::test]
async fn refuses_a_verified_body_that_is_not_json() {
    let body = "id=evt_1";
    let request = with_header(
        with_body(signed(), body),
        "x-hmac-signature",
        &easypost_signature(SECRET, body.as_bytes()),
    );
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body: expected value at line 1 column 1",
    );
}

#[test]
fn the_dedup_key_is_the_signed_event_id_whatever_the_delivery_fields() {
    let verify = |webhook: Webhook| {
        let request = webhook.sign(SECRET);
        let headers: HeaderMap = request.headers().clone();
        let body = webhook_body(&webhook);
        EasyPostSignature::new(SECRET)
            .verify(&headers, body)
            .expect("signed")
            .into_webhook()
            .expect("a webhook")
    };
    let first = verify(Webhook::easypost("delivered"));
    let retry = verify(
        Webhook::easypost("delivered")
            .field("/status", "retrying")
            .field("/completed_urls", json!(["https://example.com/easypost"])),
    );
    assert_eq!(first.dedup_key(), retry.dedup_key());
    assert_eq!(
        first.dedup_key().as_bytes(),
        &hmac_sha256::Hash::hash(b"evt_1")
    );
    let other = verify(Webhook::easypost("delivered").field("/id", "evt_2"));
    assert_ne!(first.dedup_key(), other.dedup_key());
}

fn webhook_body(webhook: &Webhook) -> String {
    webhook.payload_json()
}

#[tokio::test]
async fn rotation_names_the_secret_that_matched() {
    let layer = EasyPostSignature::new(SECRET).with_secret("old", "previous");
    let app = echo_app::<_, EasyPostEvent>("/webhooks/easypost", layer);
    let answer = send(&app, Webhook::easypost("delivered").sign("previous")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["secret"], "old");
}

#[test]
fn debug_never_shows_a_secret() {
    let debug = format!(
        "{:?}",
        EasyPostSignature::new(SECRET).with_secret("next", "next_key")
    );
    assert!(
        debug.contains("next") && !debug.contains(SECRET) && !debug.contains("next_key"),
        "{debug}"
    );
}

#[tokio::test]
async fn the_typed_payload_is_decoded_only_when_a_handler_asks_for_it() {
    let webhook = Webhook::easypost("delivered").field("/mode", 7);
    let event_only = axum::Router::new().route(
        "/webhooks/easypost",
        axum::routing::post(|event: ShipmentEvent| async move { event.id })
            .layer(EasyPostSignature::new(SECRET)),
    );
    let response = tower::ServiceExt::oneshot(event_only, webhook.sign(SECRET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    answer(webhook.sign(SECRET)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at mode: invalid type: integer `7`",
    );
}

#[tokio::test]
async fn reads_the_signature_from_a_configured_header() {
    let name = HeaderName::from_static("x-easypost-signature");
    let app = echo_app::<_, EasyPostEvent>(
        "/webhooks/easypost",
        EasyPostSignature::new(SECRET).signature_header(name.clone()),
    );
    let moved = Webhook::easypost("delivered")
        .signature_header(name)
        .sign(SECRET);
    assert_eq!(send(&app, moved).await.status, StatusCode::OK);
    send(&app, signed()).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-easypost-signature header is missing",
    );
    assert_eq!(
        EasyPostSignature::new(SECRET)
            .try_signature_header("x:signature")
            .unwrap_err(),
        ConfigError::InvalidHeaderName {
            name: "x:signature".to_owned()
        }
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn the_unsupported_v2_headers_are_ignored() {
    // EasyPost's newer `x-hmac-signature-v2`, `x-timestamp` and `x-path`: not
    // what this layer checks, so neither a reason to refuse nor a proof.
    let v2 = |request| {
        let request = with_header(request, "x-hmac-signature-v2", "hmac-sha256-hex=00");
        let request = with_header(request, "x-timestamp", "Tue, 19 Aug 2025 20:37:09 -0000");
        with_header(request, "x-path", "/webhooks/easypost")
    };
    assert_eq!(answer(v2(signed())).await.status, StatusCode::OK);
    answer(without_header(v2(signed()), "x-hmac-signature"))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "the x-hmac-signature header is missing",
        );
}
