//! Kosmo: base64 HMAC-SHA256 over eventId + orderId + timestamp, through a real Router.

use crate::common::{Answer, echo_app, send, with_body, with_header, without_header};
use axum::http::{HeaderName, StatusCode};
use serde_json::json;
use shipment_webhooks::testing::{Webhook, kosmo_signature};
use shipment_webhooks::{KosmoEvent, KosmoSignature};
use std::time::Duration;

// Kosmo's documentation page's own example.
const SECRET: &str = "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm";
const EVENT_ID: &str = "9ddafe4f-010b-43e9-a0b4-baad0c46d9de";
const ORDER_ID: &str = "SG-19ALqYm4s6P";
const TIMESTAMP: &str = "2023-02-23T04:22:15Z";
const SIGNATURE: &str = "xQ9NddICmM1PeGZKrhpdlWz2ILz4X4iw8t4oSAYmueU=";

fn app() -> axum::Router {
    echo_app::<_, KosmoEvent>("/webhooks/kosmo", KosmoSignature::new(SECRET))
}

async fn answer(request: axum::http::Request<axum::body::Body>) -> Answer {
    send(&app(), request).await
}

#[test]
fn signer_reproduces_the_known_answer_from_kosmos_page() {
    assert_eq!(
        kosmo_signature(SECRET, EVENT_ID, ORDER_ID, TIMESTAMP),
        SIGNATURE
    );
}

#[test]
fn the_sample_webhook_carries_the_known_answer() {
    let request = Webhook::kosmo("DELIVERED").sign(SECRET);
    assert_eq!(request.headers()["x-kosmo-signature"], SIGNATURE);
}

#[tokio::test]
async fn accepts_the_known_answer_from_kosmos_page() {
    let body = json!({
        "eventId": EVENT_ID, "orderId": ORDER_ID, "timestamp": TIMESTAMP,
        "status": "COMPLETED", "stops": [],
    });
    let request = axum::http::Request::post("/webhooks/kosmo")
        .header("x-kosmo-signature", SIGNATURE)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let answer = answer(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "kosmo", "id": ORDER_ID, "status": "delivered", "raw_status": "COMPLETED",
            "timestamp": TIMESTAMP, "event_id": EVENT_ID,
        })
    );
    assert_eq!(answer.json["secret"], "primary");
}

#[test]
fn the_dedup_key_is_over_the_signed_fields_as_unescaped() {
    // The timestamp's `Z` sent as `\u005a`: signed, and keyed, as its text.
    let body = format!(
        r#"{{"eventId":"{EVENT_ID}","orderId":"{ORDER_ID}","timestamp":"{}\u005a","status":"COMPLETED"}}"#,
        TIMESTAMP.trim_end_matches('Z')
    );
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("x-kosmo-signature", SIGNATURE.parse().unwrap());
    let verified = KosmoSignature::new(SECRET)
        .verify(&headers, body)
        .expect("signed over the unescaped fields")
        .into_webhook()
        .expect("a webhook");
    let signed = [EVENT_ID, ORDER_ID, TIMESTAMP].concat();
    assert_eq!(
        verified.dedup_key().as_bytes(),
        &hmac_sha256::Hash::hash(signed.as_bytes())
    );
}

#[tokio::test]
async fn typed_payload_keeps_fields_the_crate_does_not_model() {
    let request = Webhook::kosmo("PICKED UP")
        .field("/driver", json!({"name": "Ana", "phone": "+65 8123 4567"}))
        .sign(SECRET);
    let answer = answer(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["status"], "picked_up");
    assert_eq!(answer.json["payload"]["status"], "PICKED UP");
    assert_eq!(answer.json["payload"]["driver"]["name"], "Ana");
    assert_eq!(answer.json["payload"]["stops"][1]["type"], "DROPOFF");
}

#[tokio::test]
async fn refuses_a_request_without_the_signature_header() {
    let request = without_header(Webhook::kosmo("ASSIGNED").sign(SECRET), "x-kosmo-signature");
    answer(request).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-kosmo-signature header is missing",
    );
}

#[tokio::test]
async fn refuses_a_signature_that_is_not_base64() {
    let request = with_header(
        Webhook::kosmo("ASSIGNED").sign(SECRET),
        "x-kosmo-signature",
        "not*base64!",
    );
    answer(request).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-kosmo-signature header is not base64",
    );
}

#[tokio::test]
async fn refuses_a_signature_of_the_wrong_length() {
    let short = &SIGNATURE[..40];
    let request = with_header(
        Webhook::kosmo("ASSIGNED").sign(SECRET),
        "x-kosmo-signature",
        short,
    );
    answer(request)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "decodes to 30 bytes");
}

#[tokio::test]
async fn refuses_a_signature_made_with_another_secret() {
    let request = Webhook::kosmo("DELIVERED").sign("whk_someone_else");
    answer(request).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the signature matches no configured secret",
    );
}

#[tokio::test]
async fn refuses_each_signed_field_changed_after_signing() {
    for field in ["eventId", "orderId", "timestamp"] {
        let signed = Webhook::kosmo("DELIVERED").sign(SECRET);
        let value = if field == "timestamp" {
            "2023-02-23T04:22:16Z"
        } else {
            "SG-other"
        };
        let tampered = Webhook::kosmo("DELIVERED").field(&format!("/{field}"), value);
        let request = with_body(signed, tampered.payload_json());
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
    }
}

#[tokio::test]
async fn refuses_two_signature_headers() {
    let mut request = Webhook::kosmo("DELIVERED").sign(SECRET);
    request
        .headers_mut()
        .append("x-kosmo-signature", SIGNATURE.parse().unwrap());
    answer(request)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "appears more than once");
}

#[tokio::test]
async fn refuses_a_body_that_is_not_json() {
    let request = with_body(
        Webhook::kosmo("DELIVERED").sign(SECRET),
        "eventId=1&orderId=2",
    );
    answer(request)
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "the body: expected value");
}

#[tokio::test]
async fn refuses_a_signature_header_that_is_not_visible_ascii() {
    let mut request = Webhook::kosmo("ASSIGNED").sign(SECRET);
    let value = axum::http::HeaderValue::from_bytes(b"xQ9Ndd\xC3\xA9").unwrap();
    request.headers_mut().insert("x-kosmo-signature", value);
    answer(request).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-kosmo-signature header is not visible ASCII",
    );
}

#[tokio::test]
async fn tells_only_a_verified_sender_what_else_is_wrong_with_the_body() {
    let webhook = Webhook::kosmo("DELIVERED").without("/status");
    answer(webhook.sign(SECRET))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "missing field `status`");
    answer(webhook.sign("whk_forger"))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
}

#[tokio::test]
async fn cuts_long_echoed_values_in_details() {
    let request = Webhook::kosmo("DELIVERED")
        .field("/timestamp", "9".repeat(100_000))
        .sign(SECRET);
    let answer = answer(request).await;
    answer.assert_refused(StatusCode::BAD_REQUEST, "is not an RFC 3339 date-time");
    let details = answer.json["details"].as_str().unwrap();
    assert!(details.len() < 200, "{} bytes", details.len());
}

#[tokio::test]
async fn refuses_a_body_missing_a_signed_field_naming_it() {
    let webhook = Webhook::kosmo("DELIVERED").without("/orderId");
    let request = with_body(webhook.sign(SECRET), webhook.payload_json());
    answer(request)
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "missing field `orderId`");
}

#[tokio::test]
async fn refuses_a_field_of_the_wrong_type_naming_it() {
    let request = Webhook::kosmo("DELIVERED").field("/status", 7).sign(SECRET);
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "at status: invalid type: integer `7`",
    );
}

#[tokio::test]
async fn refuses_a_signed_timestamp_that_is_not_rfc_3339() {
    let request = Webhook::kosmo("DELIVERED")
        .field("/timestamp", "yesterday")
        .sign(SECRET);
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "\"yesterday\" is not an RFC 3339 date-time",
    );
}

#[tokio::test]
async fn reads_the_signature_from_a_configured_header() {
    let refused = KosmoSignature::new(SECRET).try_signature_header("x signature");
    assert_eq!(
        refused.unwrap_err(),
        shipment_webhooks::ConfigError::InvalidHeaderName {
            name: "x signature".to_owned()
        }
    );
    // A name read at run time, in any case, works as a `HeaderName` does.
    let from_config = KosmoSignature::new(SECRET)
        .try_signature_header("X-Signature")
        .expect("a valid header name");
    let app = echo_app::<_, KosmoEvent>(
        "/webhooks/kosmo",
        KosmoSignature::new(SECRET).signature_header(HeaderName::from_static("x-signature")),
    );
    let app = app.merge(echo_app::<_, KosmoEvent>(
        "/webhooks/kosmo/config",
        from_config,
    ));
    let signed = Webhook::kosmo("DELIVERED").sign(SECRET);
    let signature = signed.headers()["x-kosmo-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let moved = with_header(
        without_header(signed, "x-kosmo-signature"),
        "x-signature",
        &signature,
    );
    assert_eq!(send(&app, moved).await.status, StatusCode::OK);
    let moved = Webhook::kosmo("DELIVERED")
        .signature_header(HeaderName::from_static("x-signature"))
        .uri("/webhooks/kosmo/config".parse().unwrap())
        .sign(SECRET);
    assert_eq!(send(&app, moved).await.status, StatusCode::OK);

    let original = Webhook::kosmo("DELIVERED").sign(SECRET);
    send(&app, original).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-signature header is missing",
    );
}

#[tokio::test]
async fn accepts_every_configured_secret_and_names_the_one_that_matched() {
    let layer = KosmoSignature::new(SECRET).with_secret("2026-11", "whk_next");
    let app = echo_app::<_, KosmoEvent>("/webhooks/kosmo", layer);
    for (secret, label) in [(SECRET, "primary"), ("whk_next", "2026-11")] {
        let answer = send(&app, Webhook::kosmo("DELIVERED").sign(secret)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json["secret"], label);
    }
    send(&app, Webhook::kosmo("DELIVERED").sign("whk_retired"))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
}

#[test]
fn debug_never_shows_a_secret() {
    let layer = KosmoSignature::new(SECRET).with_secret("next", "whk_next_secret");
    let debug = format!("{layer:?}");
    assert!(
        debug.contains("primary") && debug.contains("next"),
        "{debug}"
    );
    assert!(!debug.contains("whk_"), "{debug}");
}

/// A request signed with `SECRET` whose timestamp is `offset` from now.
fn signed_at(offset: time::Duration) -> axum::http::Request<axum::body::Body> {
    let timestamp = (time::OffsetDateTime::now_utc() + offset)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    Webhook::kosmo("DELIVERED")
        .field("/timestamp", timestamp)
        .sign(SECRET)
}

fn app_with_window(layer: KosmoSignature) -> axum::Router {
    echo_app::<_, KosmoEvent>("/webhooks/kosmo", layer)
}

#[tokio::test]
async fn without_a_replay_window_accepts_events_of_any_age() {
    // The sample is from 2023; Kosmo retries late, so no window is the default.
    assert_eq!(
        answer(Webhook::kosmo("DELIVERED").sign(SECRET))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        answer(signed_at(time::Duration::hours(1))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn max_age_accepts_fresh_events_and_refuses_stale_ones() {
    let app = app_with_window(KosmoSignature::new(SECRET).max_age(Duration::from_secs(300)));
    for offset in [
        time::Duration::ZERO,
        time::Duration::seconds(-240),
        time::Duration::seconds(30),
    ] {
        let answer = send(&app, signed_at(offset)).await;
        assert_eq!(answer.status, StatusCode::OK, "{offset}: {}", answer.json);
    }
    send(&app, signed_at(time::Duration::seconds(-600)))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "this endpoint accepts webhooks up to 300 s old",
        );
    send(&app, Webhook::kosmo("DELIVERED").sign(SECRET))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "this endpoint accepts webhooks up to 300 s old",
        );
}

#[tokio::test]
async fn max_age_refuses_events_from_the_future_beyond_the_skew() {
    let app = app_with_window(KosmoSignature::new(SECRET).max_age(Duration::from_secs(300)));
    send(&app, signed_at(time::Duration::minutes(5)))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "ahead of this server's clock; at most 60 s",
        );

    let app = app_with_window(
        KosmoSignature::new(SECRET)
            .max_age(Duration::from_secs(300))
            .max_future_skew(Duration::from_secs(600)),
    );
    assert_eq!(
        send(&app, signed_at(time::Duration::minutes(5)))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn max_future_skew_alone_leaves_old_events_alone() {
    let app = app_with_window(KosmoSignature::new(SECRET).max_future_skew(Duration::from_secs(5)));
    assert_eq!(
        send(&app, Webhook::kosmo("DELIVERED").sign(SECRET))
            .await
            .status,
        StatusCode::OK
    );
    send(&app, signed_at(time::Duration::minutes(1)))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "at most 5 s is accepted");
}

#[tokio::test]
async fn the_window_is_checked_only_once_the_signature_holds() {
    let app = app_with_window(KosmoSignature::new(SECRET).max_age(Duration::from_secs(300)));
    send(&app, Webhook::kosmo("DELIVERED").sign("whk_forged"))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
}

#[tokio::test]
async fn refuses_ids_moved_across_the_signed_boundary_or_made_empty() {
    // Each request below keeps Kosmo's signature valid: only where `eventId`
    // ends and `orderId` begins has moved.
    let joined = format!("{EVENT_ID}{ORDER_ID}");
    for split in [0, 35, 37, joined.len()] {
        let (event_id, order_id) = joined.split_at(split);
        let webhook = Webhook::kosmo("DELIVERED")
            .field("/eventId", event_id)
            .field("/orderId", order_id);
        let request = webhook.sign(SECRET);
        assert_eq!(request.headers()["x-kosmo-signature"], SIGNATURE);
        let details = match split {
            0 => "eventId is empty",
            n if n == joined.len() => "orderId is empty",
            _ => "is not a UUID, as Kosmo sends it",
        };
        answer(request)
            .await
            .assert_refused(StatusCode::BAD_REQUEST, details);
    }
}

#[tokio::test]
async fn any_event_id_accepts_other_ids_but_never_empty_ones() {
    let app = echo_app::<_, KosmoEvent>(
        "/webhooks/kosmo",
        KosmoSignature::new(SECRET).any_event_id(),
    );
    let other = Webhook::kosmo("DELIVERED").field("/eventId", "evt_42");
    let answer = send(&app, other.sign(SECRET)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["event"]["event_id"], "evt_42");

    let empty = Webhook::kosmo("DELIVERED").field("/orderId", "");
    send(&app, empty.sign(SECRET))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "orderId is empty");
}

#[tokio::test]
async fn checks_the_ids_only_once_the_signature_holds() {
    let forged = Webhook::kosmo("DELIVERED").field("/eventId", "");
    answer(forged.sign("whk_someone_else"))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret");
}

#[tokio::test]
async fn refuses_a_repeated_status_before_the_signature() {
    // The body is parsed once, before the signature is checked, and a repeated
    // key makes it ambiguous: 400 whatever the signature.
    let body = format!(
        r#"{{"eventId":"{EVENT_ID}","orderId":"{ORDER_ID}","timestamp":"{TIMESTAMP}","status":"ASSIGNED","status":"DELIVERED"}}"#
    );
    for secret in [SECRET, "whk_someone_else"] {
        let request = with_body(Webhook::kosmo("DELIVERED").sign(secret), body.clone());
        answer(request)
            .await
            .assert_refused(StatusCode::BAD_REQUEST, "duplicate field `status`");
    }
}
