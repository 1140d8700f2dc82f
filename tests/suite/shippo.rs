//! Shippo: `Shippo-Auth-Signature: t=<unix>,v1=<hex>` over `"<t>.<body>"`
//! (as integrations read it), through a real Router.

use std::time::Duration;

use crate::common::{Answer, echo_app, send, with_body, with_header, without_header};
use axum::body::Body;
use axum::http::{HeaderName, Request, StatusCode};
use serde_json::json;
use shipment_webhooks::testing::{Webhook, shippo_signature};
use shipment_webhooks::{ConfigError, ShippoEvent, ShippoSignature, Verified};
use time::OffsetDateTime;

const SECRET: &str = "secretkey";
/// The research's computed answer (docs/platforms-research.md §2): no
/// official vector exists.
const KNOWN_BODY: &str = r#"{"event":"track_updated","test":true,"data":{"carrier":"shippo","tracking_number":"SHIPPO_DELIVERED","tracking_status":{"status":"DELIVERED","status_date":"2024-01-02T03:04:05Z"}}}"#;
const KNOWN_T: i64 = 1700000000;
const KNOWN_HEADER: &str =
    "t=1700000000,v1=21bcd1e6c82d94f3d1020ac47187bc2a9bd5fcfa25b2e620a469b080b4e4fa44";

fn app(layer: ShippoSignature) -> axum::Router {
    echo_app::<_, ShippoEvent>("/webhooks/shippo", layer)
}

async fn answer(request: Request<Body>) -> Answer {
    send(&app(ShippoSignature::new(SECRET)), request).await
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn request(signature: &str, body: &str) -> Request<Body> {
    Request::post("/webhooks/shippo")
        .header("content-type", "application/json")
        .header("shippo-auth-signature", signature)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// The known body signed with `SECRET` at `t`.
fn known_at(t: i64) -> Request<Body> {
    request(
        &shippo_signature(SECRET, t, KNOWN_BODY.as_bytes()),
        KNOWN_BODY,
    )
}

fn signed() -> Request<Body> {
    Webhook::shippo("TRANSIT").sign(SECRET)
}

#[test]
fn signer_matches_the_known_answer() {
    assert_eq!(KNOWN_BODY.len(), 180);
    assert_eq!(
        shippo_signature(SECRET, KNOWN_T, KNOWN_BODY.as_bytes()),
        KNOWN_HEADER
    );
}

#[tokio::test]
async fn verifies_the_known_answer_byte_for_byte() {
    let app = app(ShippoSignature::new(SECRET).max_age(Duration::from_secs(100 * 365 * 86_400)));
    let answer = send(&app, request(KNOWN_HEADER, KNOWN_BODY)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "shippo", "id": "SHIPPO_DELIVERED", "status": "delivered",
            "raw_status": "DELIVERED", "timestamp": "2024-01-02T03:04:05Z", "event_id": null,
        })
    );
    // A test-mode event reaches the handler, flag and all.
    assert_eq!(answer.json["payload"]["test"], true);
    assert_eq!(answer.json["payload"]["data"]["carrier"], "shippo");
    assert_eq!(answer.json["body_len"], 180);
}

#[tokio::test]
async fn maps_each_documented_status_through_the_layer() {
    for (raw, status) in [
        ("PRE_TRANSIT", "created"),
        ("TRANSIT", "in_transit"),
        ("DELIVERED", "delivered"),
        ("RETURNED", "returned"),
        ("FAILURE", "failed"),
        ("UNKNOWN", "other"),
    ] {
        let answer = answer(Webhook::shippo(raw).sign(SECRET)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], status, "{raw}");
        assert_eq!(answer.json["event"]["id"], "9205590164917312751089");
        assert_eq!(answer.json["event"]["timestamp"], "2016-07-23T13:03:00Z");
        assert_eq!(answer.json["payload"]["test"], false);
    }
}

#[tokio::test]
async fn reads_a_transactions_bare_status_and_its_update_time() {
    let body = json!({
        "event": "transaction_updated",
        "test": false,
        "data": {
            "object_id": "70ae8117ee1749e393f249d5b77c45e0",
            "object_updated": "2024-03-04T05:06:07Z",
            "status": "SUCCESS",
            "tracking_number": "9499907123456123456781",
            "tracking_status": "TRANSIT"
        }
    })
    .to_string();
    let answer_ = answer(request(
        &shippo_signature(SECRET, now(), body.as_bytes()),
        &body,
    ))
    .await;
    assert_eq!(answer_.status, StatusCode::OK, "{}", answer_.json);
    assert_eq!(
        answer_.json["event"],
        json!({
            "provider": "shippo", "id": "9499907123456123456781", "status": "in_transit",
            "raw_status": "TRANSIT", "timestamp": "2024-03-04T05:06:07Z", "event_id": null,
        })
    );
    // A label that failed has no tracking number: its transaction names it.
    let failed = body.replace("\"9499907123456123456781\"", "null");
    let answer_ = answer(request(
        &shippo_signature(SECRET, now(), failed.as_bytes()),
        &failed,
    ))
    .await;
    assert_eq!(
        answer_.json["event"]["id"],
        "70ae8117ee1749e393f249d5b77c45e0"
    );
}

#[tokio::test]
async fn accepts_an_uppercase_hex_signature() {
    let header = shippo_signature(SECRET, now(), KNOWN_BODY.as_bytes());
    let (t, v1) = header.split_once(",v1=").unwrap();
    let upper = format!("{t},v1={}", v1.to_uppercase());
    assert_eq!(
        answer(request(&upper, KNOWN_BODY)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refuses_a_missing_empty_repeated_or_non_ascii_header() {
    answer(without_header(signed(), "shippo-auth-signature"))
        .await
        .assert_reason("missing_proof");
    answer(with_header(signed(), "shippo-auth-signature", ""))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "is not t=<unix seconds>,v1=<hex>");
    let mut repeated = signed();
    let value = repeated.headers()["shippo-auth-signature"].clone();
    repeated
        .headers_mut()
        .append("shippo-auth-signature", value);
    answer(repeated)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "appears more than once");
    let mut non_ascii = signed();
    non_ascii.headers_mut().insert(
        "shippo-auth-signature",
        axum::http::HeaderValue::from_bytes(b"t=1,v1=caf\xc3\xa9").unwrap(),
    );
    answer(non_ascii)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "is not visible ASCII");
}

#[tokio::test]
async fn refuses_a_malformed_header_naming_what_is_wrong() {
    let hex = "0".repeat(64);
    for (value, details) in [
        (format!("v1={hex}"), "has no t=<unix seconds>"),
        ("t=1700000000".to_owned(), "has no v1=<hex> signature"),
        (format!("t=1,t=2,v1={hex}"), "holds t more than once"),
        (
            format!("t=1700000000,{hex}"),
            "is not t=<unix seconds>,v1=<hex>",
        ),
        (
            format!("t=2024-01-02,v1={hex}"),
            "has a t that is not unix seconds",
        ),
        (format!("t=-1,v1={hex}"), "has a t that is not unix seconds"),
        (
            "t=1700000000,v1=abc123".to_owned(),
            "(6 characters; 64 hex digits expected)",
        ),
        (
            format!("t=1700000000,v1={}", "zz".repeat(32)),
            "is not a hex HMAC-SHA256",
        ),
        (
            format!("t=1700000000,v1={}", "MDAw".repeat(11)),
            "is not a hex HMAC-SHA256",
        ),
        (
            format!("t=1700000000{}", format!(",v1={hex}").repeat(9)),
            "too many v1",
        ),
    ] {
        let answer = answer(with_header(signed(), "shippo-auth-signature", &value)).await;
        answer.assert_refused(StatusCode::UNAUTHORIZED, details);
        answer.assert_reason("malformed_proof");
    }
}

#[tokio::test]
async fn refuses_a_truncated_signature() {
    let header = shippo_signature(SECRET, now(), KNOWN_BODY.as_bytes());
    for cut in [1, 2, 32] {
        let answer = answer(request(&header[..header.len() - cut], KNOWN_BODY)).await;
        answer.assert_refused(StatusCode::UNAUTHORIZED, "is not a hex HMAC-SHA256");
    }
}

#[tokio::test]
async fn refuses_a_signature_made_with_another_secret() {
    let answer = answer(Webhook::shippo("DELIVERED").sign("another")).await;
    answer.assert_refused(
        StatusCode::UNAUTHORIZED,
        "no v1 signature matches a configured secret",
    );
    answer.assert_reason("signature_mismatch");
}

#[tokio::test]
async fn refuses_the_body_or_t_changed_after_signing() {
    let t = now();
    let header = shippo_signature(SECRET, t, KNOWN_BODY.as_bytes());
    let mut flipped = KNOWN_BODY.as_bytes().to_vec();
    flipped[90] ^= 0x01;
    let moved = header.replace(&format!("t={t}"), &format!("t={}", t - 1));
    for request in [
        with_body(request(&header, KNOWN_BODY), flipped),
        with_body(
            request(&header, KNOWN_BODY),
            KNOWN_BODY.replace("DELIVERED\"", "RETURNED\""),
        ),
        request_with(&moved),
    ] {
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "matches a configured secret");
    }
}

fn request_with(header: &str) -> Request<Body> {
    request(header, KNOWN_BODY)
}

#[tokio::test]
async fn refuses_the_same_json_re_serialized() {
    let header = shippo_signature(SECRET, now(), KNOWN_BODY.as_bytes());
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(KNOWN_BODY).unwrap(),
    )
    .unwrap();
    answer(request(&header, &pretty))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches a configured secret");
}

#[tokio::test]
async fn refuses_a_signature_over_the_body_alone() {
    let body_only = shipment_webhooks::testing::goshiip_signature(SECRET, KNOWN_BODY.as_bytes());
    let header = format!("t={},v1={body_only}", now());
    answer(request(&header, KNOWN_BODY))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches a configured secret");
}

#[tokio::test]
async fn rotation_accepts_any_v1_and_names_the_secret_that_matched() {
    let t = now();
    let good = shippo_signature(SECRET, t, KNOWN_BODY.as_bytes());
    let wrong = shippo_signature("previous", t, KNOWN_BODY.as_bytes());
    let (_, wrong_v1) = wrong.split_once(",v1=").unwrap();
    let both = format!("{good},v1={wrong_v1},v0=ignored");
    assert_eq!(
        answer(request(&both, KNOWN_BODY)).await.status,
        StatusCode::OK
    );

    let app = app(ShippoSignature::new(SECRET).with_secret("old", "previous"));
    let answer = send(&app, Webhook::shippo("TRANSIT").sign("previous")).await;
    assert_eq!(answer.json["secret"], "old");
}

#[test]
fn debug_never_shows_a_secret() {
    let debug = format!(
        "{:?}",
        ShippoSignature::new(SECRET).with_secret("next", "next_secret")
    );
    assert!(
        debug.contains("primary") && debug.contains("next"),
        "{debug}"
    );
    assert!(
        !debug.contains("secretkey") && !debug.contains("next_secret"),
        "{debug}"
    );
}

#[tokio::test]
async fn refuses_a_stale_or_future_t_with_the_default_window() {
    for (offset, details) in [
        (-301, "accepts webhooks up to 300 s old"),
        (301, "ahead of this server's clock; at most 300 s"),
    ] {
        let answer = answer(known_at(now() + offset)).await;
        answer.assert_refused(StatusCode::UNAUTHORIZED, details);
        answer.assert_reason("stale");
    }
    for offset in [-240, 0, 240] {
        assert_eq!(
            answer(known_at(now() + offset)).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn the_window_is_configurable() {
    let app = app(ShippoSignature::new(SECRET)
        .max_age(Duration::from_secs(900))
        .max_future_skew(Duration::from_secs(5)));
    assert_eq!(
        send(&app, known_at(now() - 800)).await.status,
        StatusCode::OK
    );
    send(&app, known_at(now() + 60))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "at most 5 s is accepted");
}

#[tokio::test]
async fn the_window_is_checked_only_once_the_signature_holds() {
    let forged = request(
        &shippo_signature("forger", now() - 3600, KNOWN_BODY.as_bytes()),
        KNOWN_BODY,
    );
    answer(forged).await.assert_reason("signature_mismatch");
}

#[tokio::test]
async fn refuses_a_verified_body_that_is_not_the_shape() {
    for (body, details) in [
        (
            "event=track_updated",
            "the body: expected value at line 1 column 1",
        ),
        (r#"{"event":"track_updated"}"#, "missing field `data`"),
        (
            r#"{"event":"track_updated","data":{"tracking_number":"1"}}"#,
            "missing field `tracking_status`",
        ),
        (
            r#"{"event":"track_updated","data":{"tracking_status":{"status":"TRANSIT"}}}"#,
            "no tracking_number nor object_id",
        ),
        (
            r#"{"data":{"tracking_number":"1","tracking_status":{"status":"TRANSIT","status_date":"07/23/2016"}}}"#,
            "the body, at data: status_date: \"07/23/2016\" is not an RFC 3339 date-time",
        ),
    ] {
        let answer = answer(request(
            &shippo_signature(SECRET, now(), body.as_bytes()),
            body,
        ))
        .await;
        answer.assert_refused(StatusCode::BAD_REQUEST, details);
    }
}

#[tokio::test]
async fn reads_the_signature_from_a_configured_header() {
    let name = HeaderName::from_static("x-shippo-signature");
    let app = app(ShippoSignature::new(SECRET).signature_header(name.clone()));
    let moved = Webhook::shippo("TRANSIT")
        .signature_header(name)
        .sign(SECRET);
    assert_eq!(send(&app, moved).await.status, StatusCode::OK);
    send(&app, signed()).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-shippo-signature header is missing",
    );
    assert_eq!(
        ShippoSignature::new(SECRET)
            .try_signature_header("x:signature")
            .unwrap_err(),
        ConfigError::InvalidHeaderName {
            name: "x:signature".to_owned()
        }
    );
}

#[test]
fn a_retry_signed_at_another_time_has_the_same_dedup_key() {
    let layer = ShippoSignature::new(SECRET);
    let key = |t: i64| {
        let mut headers = shipment_webhooks::http::HeaderMap::new();
        headers.insert(
            "shippo-auth-signature",
            shippo_signature(SECRET, t, KNOWN_BODY.as_bytes())
                .parse()
                .unwrap(),
        );
        match layer.verify(&headers, KNOWN_BODY).unwrap() {
            Verified::Webhook(webhook) => webhook.dedup_key(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(key(now()), key(now() - 30));
}

#[tokio::test]
async fn the_typed_payload_is_decoded_only_when_a_handler_asks_for_it() {
    let webhook = Webhook::shippo("DELIVERED").field("/test", "yes");
    let event_only = axum::Router::new().route(
        "/webhooks/shippo",
        axum::routing::post(|event: shipment_webhooks::ShipmentEvent| async move { event.id })
            .layer(ShippoSignature::new(SECRET)),
    );
    let response = tower::ServiceExt::oneshot(event_only, webhook.sign(SECRET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    answer(webhook.sign(SECRET)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at test: invalid type: string",
    );
}

#[tokio::test]
async fn refuses_a_body_over_the_limit() {
    let app = app(ShippoSignature::new(SECRET).body_limit(64));
    send(&app, signed())
        .await
        .assert_refused(StatusCode::PAYLOAD_TOO_LARGE, "64");
}

#[tokio::test]
async fn passes_on_a_batch_event_whose_data_is_text() {
    // `shippo-javascript-sdk` `docs/models/components/webhookpayloadbatch.md`:
    // `data` is "a string containing the batch object ID, of the form
    // 'batch {batchId} (created|processing complete)'".
    for (event, data) in [
        (
            "batch_created",
            "batch 5ef63c54f5bf45d3b1f8b3ec38ab3f8e created",
        ),
        (
            "batch_purchased",
            "batch 5ef63c54f5bf45d3b1f8b3ec38ab3f8e processing complete",
        ),
    ] {
        let body = json!({"event": event, "test": false, "data": data}).to_string();
        let answer_ = answer(request(
            &shippo_signature(SECRET, now(), body.as_bytes()),
            &body,
        ))
        .await;
        assert_eq!(answer_.status, StatusCode::OK, "{event}: {}", answer_.json);
        assert_eq!(
            answer_.json["event"],
            json!({
                "provider": "shippo", "id": "5ef63c54f5bf45d3b1f8b3ec38ab3f8e", "status": "other",
                "raw_status": event, "timestamp": null, "event_id": null,
            })
        );
        assert_eq!(answer_.json["payload"]["data"], data, "{event}");
    }
}
