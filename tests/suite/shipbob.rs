//! ShipBob: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64>` over `id.timestamp.body`), through a real Router.

use std::time::Duration;

use crate::common::{Answer, echo_app, send, with_body, with_header, without_header};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use shipment_webhooks::http::HeaderMap;
use shipment_webhooks::testing::{Webhook, standard_webhooks_signature};
use shipment_webhooks::{ConfigError, ShipBobEvent, ShipBobSignature, Verified};
use time::OffsetDateTime;

/// ShipBob's example secret, the Standard Webhooks test vector's.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// ShipBob's one published body (logistics), as its page prints it.
const PAGE_SAMPLE: &str = r#"{"event_time":"2025-10-23T15:55:09.3614767Z","order_id":100000001,"reference_id":"TEST101","status":"LabelCreated","tracking":{"carrier":"USPS","carrier_service":"ParcelSelect","tracking_id":"9261290306529427911297","tracking_url":"https://tools.usps.com/go/TrackConfirmAction!input.action?tRef=qt&tLc=0&tLabels=9261290306529427911297"}}"#;
const ID: &str = "msg_31eW7bWRi16lL0Ajjik68kfyeUh";

fn app(layer: ShipBobSignature) -> axum::Router {
    echo_app::<_, ShipBobEvent>("/webhooks/shipbob", layer)
}

async fn answer(request: Request<Body>) -> Answer {
    send(&app(ShipBobSignature::new(SECRET)), request).await
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The page's sample, signed with `SECRET` at `timestamp` under `ID`.
fn sample_at(timestamp: i64) -> Request<Body> {
    let signature = standard_webhooks_signature(SECRET, ID, timestamp, PAGE_SAMPLE.as_bytes());
    Request::post("/webhooks/shipbob")
        .header("content-type", "application/json")
        .header("x-webhook-topic", "order.shipment.tracking_received")
        .header("webhook-id", ID)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(Body::from(PAGE_SAMPLE))
        .unwrap()
}

fn signed() -> Request<Body> {
    Webhook::shipbob("InTransit").sign(SECRET)
}

fn headers_of(request: &Request<Body>) -> HeaderMap {
    request.headers().clone()
}

#[test]
fn signer_matches_the_standard_webhooks_test_vectors() {
    // libraries/javascript/src/webhook.test.ts "sign function works", and
    // libraries/rust/src/lib.rs test_sign.
    assert_eq!(
        standard_webhooks_signature(
            SECRET,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    assert_eq!(
        standard_webhooks_signature(
            OTHER,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#
        ),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[tokio::test]
async fn verifies_the_exact_bytes_of_the_pages_sample() {
    let answer = answer(sample_at(now())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "shipbob", "id": "100000001", "status": "created",
            "raw_status": "LabelCreated", "timestamp": "2025-10-23T15:55:09.3614767Z",
            "event_id": ID,
        })
    );
    assert_eq!(answer.json["payload"]["tracking"]["carrier"], "USPS");
    assert_eq!(answer.json["payload"]["order_id"], "100000001");
    assert_eq!(answer.json["body_len"], PAGE_SAMPLE.len());
}

#[tokio::test]
async fn accepts_the_signature_without_its_base64_padding() {
    // The example of ShipBob's headers (api-evangelist/shipbob's AsyncAPI) is
    // 43 characters, without the final `=`.
    let request = sample_at(now());
    let padded = request.headers()["webhook-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(padded.ends_with('='));
    let request = with_header(request, "webhook-signature", &padded[..padded.len() - 1]);
    assert_eq!(answer(request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn refuses_padding_and_encoding_variants_that_are_not_the_signature() {
    let padded = standard_webhooks_signature(SECRET, ID, now(), PAGE_SAMPLE.as_bytes());
    let unpadded = &padded[3..padded.len() - 1];
    // The same bytes with an unused low bit set, and in the URL-safe alphabet.
    let loose = crate::common::set_unused_bits(
        unpadded,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        2,
    );
    let url_safe = padded.replace('+', "-").replace('/', "_");
    for variant in [
        format!("v1,{loose}"),
        format!("v1,{loose}="),
        format!("{padded}="),
        format!("v1,{}", url_safe.trim_start_matches("v1,")),
    ] {
        if variant == padded {
            continue;
        }
        let request = with_header(sample_at(now()), "webhook-signature", &variant);
        let answer = answer(request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{variant}");
        answer.assert_reason("malformed_proof");
    }
}

#[tokio::test]
async fn rotation_accepts_any_v1_entry_and_ignores_other_versions() {
    let good = standard_webhooks_signature(SECRET, ID, now(), PAGE_SAMPLE.as_bytes());
    // The fixture of libraries/javascript's "multi sig" test beside a valid one.
    let header = format!(
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== {good}"
    );
    let request = with_header(sample_at(now()), "webhook-signature", &header);
    assert_eq!(answer(request).await.status, StatusCode::OK);

    let without_good = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,abc";
    let request = with_header(sample_at(now()), "webhook-signature", without_good);
    answer(request)
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches a configured secret");
}

#[tokio::test]
async fn rotation_names_the_secret_that_matched() {
    let app = app(ShipBobSignature::new(SECRET).with_secret("old", OTHER));
    let answer = send(&app, Webhook::shipbob("InTransit").sign(OTHER)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["secret"], "old");
    let answer = send(&app, Webhook::shipbob("InTransit").sign(SECRET)).await;
    assert_eq!(answer.json["secret"], "primary");
}

#[test]
fn debug_never_shows_a_secret() {
    let debug = format!(
        "{:?}",
        ShipBobSignature::new(SECRET).with_secret("next", OTHER)
    );
    assert!(
        debug.contains("primary") && debug.contains("next"),
        "{debug}"
    );
    assert!(
        !debug.contains("whsec_") && !debug.contains("MfKQ9r8G") && !debug.contains("C2FVsBQI"),
        "{debug}"
    );
}

#[test]
fn refuses_secrets_that_are_not_whsec_base64() {
    assert!(matches!(
        ShipBobSignature::try_new("whsec_not base64!"),
        Err(ConfigError::MalformedSecret { .. })
    ));
    assert!(matches!(
        ShipBobSignature::try_new("whsec_"),
        Err(ConfigError::EmptySecret { .. })
    ));
    let error = ShipBobSignature::new(SECRET)
        .try_with_secret("next", "whsec_%%%")
        .unwrap_err();
    assert!(error.to_string().contains("\"next\""), "{error}");
    // Without the prefix, the base64 is read as the reference library reads it.
    let app = app(ShipBobSignature::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    let request = Webhook::shipbob("Delivered").sign(SECRET);
    let app_answer = futures_lite(send(&app, request));
    assert_eq!(app_answer.status, StatusCode::OK);
}

/// Runs `future` on a runtime of its own, for the few sync tests that send.
fn futures_lite<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[tokio::test]
async fn refuses_each_missing_header() {
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let answer = answer(without_header(signed(), name)).await;
        answer.assert_refused(
            StatusCode::UNAUTHORIZED,
            &format!("the {name} header is missing"),
        );
        answer.assert_reason("missing_proof");
    }
}

#[tokio::test]
async fn refuses_each_header_repeated() {
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut request = signed();
        let value = request.headers()[name].clone();
        request.headers_mut().append(name, value);
        answer(request).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            &format!("the {name} header appears more than once"),
        );
    }
}

#[tokio::test]
async fn refuses_headers_that_are_not_visible_ascii() {
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut request = signed();
        request.headers_mut().insert(
            name,
            axum::http::HeaderValue::from_bytes(b"v1,caf\xc3\xa9").unwrap(),
        );
        answer(request).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            &format!("the {name} header is not visible ASCII"),
        );
    }
}

#[tokio::test]
async fn refuses_an_empty_or_malformed_signature_header() {
    let cases = [
        ("", "holds no v1 signature"),
        (
            "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw",
            "holds no v1 signature",
        ),
        ("v1", "is not <version>,<signature>"),
        (
            "v1,dawfeoifkpqwoekfpqoekf",
            "(22 characters; 44, or 43 without padding)",
        ),
        // libraries/csharp's tampered value: one character changed, 43 long.
        (
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",
            "is not base64 of an HMAC-SHA256",
        ),
        ("v1,", "(0 characters"),
    ];
    for (value, details) in cases {
        let answer = answer(with_header(signed(), "webhook-signature", value)).await;
        answer.assert_refused(StatusCode::UNAUTHORIZED, details);
        answer.assert_reason("malformed_proof");
    }
}

#[tokio::test]
async fn refuses_a_truncated_signature() {
    let request = signed();
    let full = request.headers()["webhook-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    // One character less is the unpadded form, accepted; any more is not.
    for cut in [2, 3, 10] {
        let request = with_header(signed(), "webhook-signature", &full[..full.len() - cut]);
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "is not base64 of an HMAC-SHA256");
    }
}

#[tokio::test]
async fn refuses_more_signatures_than_it_reads() {
    let request = signed();
    let one = request.headers()["webhook-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    let many = [one.as_str(); 9].join(" ");
    answer(with_header(signed(), "webhook-signature", &many))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "holds more than 8 signatures");
}

#[tokio::test]
async fn refuses_a_malformed_timestamp_or_id() {
    for (name, value, details) in [
        ("webhook-timestamp", "", "is not unix seconds"),
        (
            "webhook-timestamp",
            "2025-10-23T15:55:09Z",
            "is not unix seconds",
        ),
        ("webhook-timestamp", "-1614265330", "is not unix seconds"),
        (
            "webhook-timestamp",
            "1614265330000000",
            "is not unix seconds",
        ),
        ("webhook-id", "", "is empty or holds a `.`"),
        ("webhook-id", "msg.1614265330", "is empty or holds a `.`"),
    ] {
        let answer = answer(with_header(signed(), name, value)).await;
        answer.assert_refused(StatusCode::UNAUTHORIZED, details);
        answer.assert_reason("malformed_proof");
    }
}

#[tokio::test]
async fn refuses_a_signature_made_with_another_secret() {
    let answer = answer(Webhook::shipbob("Delivered").sign(OTHER)).await;
    answer.assert_refused(
        StatusCode::UNAUTHORIZED,
        "no v1 signature of the webhook-signature header matches a configured secret",
    );
    answer.assert_reason("signature_mismatch");
}

#[tokio::test]
async fn refuses_any_signed_piece_changed_after_signing() {
    let at = now();
    let mut body = PAGE_SAMPLE.as_bytes().to_vec();
    body[PAGE_SAMPLE.len() / 2] ^= 0x01;
    for request in [
        with_header(
            sample_at(at),
            "webhook-id",
            "msg_31eW7bWRi16lL0Ajjik68kfyeUi",
        ),
        with_header(sample_at(at), "webhook-timestamp", &(at - 1).to_string()),
        with_body(sample_at(at), body),
        with_body(
            sample_at(at),
            PAGE_SAMPLE.replace("LabelCreated", "Delivered"),
        ),
    ] {
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "matches a configured secret");
    }
}

#[tokio::test]
async fn refuses_the_same_json_re_serialized() {
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(PAGE_SAMPLE).unwrap(),
    )
    .unwrap();
    answer(with_body(sample_at(now()), pretty))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "matches a configured secret");
}

#[tokio::test]
async fn refuses_a_signature_over_the_body_alone() {
    // What a sender signing only the body (no id, no timestamp) would send.
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let hex = shipment_webhooks::testing::goshiip_signature(&key[..], PAGE_SAMPLE.as_bytes());
    let raw = base64::engine::general_purpose::STANDARD.encode(hex::decode(hex).unwrap());
    answer(with_header(
        sample_at(now()),
        "webhook-signature",
        &format!("v1,{raw}"),
    ))
    .await
    .assert_refused(StatusCode::UNAUTHORIZED, "matches a configured secret");
}

#[tokio::test]
async fn refuses_a_stale_or_future_timestamp_with_the_default_window() {
    for (offset, details) in [
        (-301, "accepts webhooks up to 300 s old"),
        (-3600, "accepts webhooks up to 300 s old"),
        (301, "ahead of this server's clock; at most 300 s"),
    ] {
        let answer = answer(sample_at(now() + offset)).await;
        answer.assert_refused(StatusCode::UNAUTHORIZED, details);
        answer.assert_reason("stale");
    }
    for offset in [-240, 0, 240] {
        assert_eq!(
            answer(sample_at(now() + offset)).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn the_window_is_configurable() {
    let app = app(ShipBobSignature::new(SECRET)
        .max_age(Duration::from_secs(3600))
        .max_future_skew(Duration::from_secs(10)));
    assert_eq!(
        send(&app, sample_at(now() - 1800)).await.status,
        StatusCode::OK
    );
    send(&app, sample_at(now() + 60))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "at most 10 s is accepted");
}

#[tokio::test]
async fn the_window_is_checked_only_once_the_signature_holds() {
    let stale = now() - 3600;
    let forged = Webhook::shipbob("Delivered")
        .header(
            shipment_webhooks::standard_webhooks::TIMESTAMP_HEADER,
            &stale.to_string(),
        )
        .sign(OTHER);
    let answer = answer(forged).await;
    answer.assert_reason("signature_mismatch");
}

#[tokio::test]
async fn the_status_comes_from_the_signed_body_before_the_unsigned_topic() {
    let request = with_header(
        Webhook::shipbob("InTransit").sign(SECRET),
        "x-webhook-topic",
        "order.shipment.delivered",
    );
    let answer = answer(request).await;
    assert_eq!(
        answer.json["event"]["status"], "in_transit",
        "{}",
        answer.json
    );
    assert_eq!(answer.json["event"]["raw_status"], "InTransit");
}

#[tokio::test]
async fn the_topic_names_the_status_when_the_body_has_none() {
    for (topic, status) in [
        ("order.shipped", "in_transit"),
        ("order.shipment.delivered", "delivered"),
        ("order.shipment.exception", "on_hold"),
        ("order.shipment.on_hold", "on_hold"),
        ("order.shipment.cancelled", "cancelled"),
        ("order.shipment.tracking.updated", "other"),
    ] {
        let request = Webhook::shipbob("x")
            .without("/status")
            .header(shipment_webhooks::shipbob::TOPIC_HEADER, topic)
            .sign(SECRET);
        let answer = answer(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], status, "{topic}");
        assert_eq!(answer.json["event"]["raw_status"], topic);
    }
    let request = Webhook::shipbob("x").without("/status").sign(SECRET);
    let request = without_header(request, "x-webhook-topic");
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body has no status and the request no x-webhook-topic header",
    );
}

#[tokio::test]
async fn names_the_shipment_before_the_order_and_refuses_neither() {
    let request = Webhook::shipbob("Delivered")
        .field("/shipment_id", 987654)
        .sign(SECRET);
    let answer_ = answer(request).await;
    assert_eq!(answer_.json["event"]["id"], "987654", "{}", answer_.json);

    let request = Webhook::shipbob("Delivered")
        .without("/order_id")
        .sign(SECRET);
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body has neither shipment_id nor order_id",
    );
}

#[tokio::test]
async fn the_event_time_is_the_bodys_and_must_be_rfc_3339() {
    let request = Webhook::shipbob("Delivered")
        .without("/event_time")
        .sign(SECRET);
    let answer_ = answer(request).await;
    assert_eq!(answer_.status, StatusCode::OK);
    assert_eq!(answer_.json["event"]["timestamp"], json!(null));

    let request = Webhook::shipbob("Delivered")
        .field("/event_time", "23/10/2025")
        .sign(SECRET);
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body's event_time: \"23/10/2025\" is not an RFC 3339 date-time",
    );
}

#[tokio::test]
async fn refuses_a_verified_body_that_is_not_a_json_object() {
    let at = now();
    for body in ["order=1", "[1]", ""] {
        let signature = standard_webhooks_signature(SECRET, ID, at, body.as_bytes());
        let request = with_header(
            with_body(sample_at(at), body),
            "webhook-signature",
            &signature,
        );
        let answer = answer(request).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.json
        );
        answer.assert_reason("invalid_payload");
    }
}

#[test]
fn a_retry_signed_at_another_time_has_the_same_dedup_key() {
    let layer = ShipBobSignature::new(SECRET);
    let key = |request: Request<Body>| {
        let headers = headers_of(&request);
        let body = futures_lite(axum::body::to_bytes(request.into_body(), usize::MAX)).unwrap();
        match layer.verify(&headers, body).unwrap() {
            Verified::Webhook(webhook) => webhook.dedup_key(),
            other => panic!("{other:?}"),
        }
    };
    let at = now();
    assert_eq!(key(sample_at(at)), key(sample_at(at - 60)));
    let other_id = with_header(sample_at(at), "webhook-id", "msg_other");
    let other_id = with_header(
        other_id,
        "webhook-signature",
        &standard_webhooks_signature(SECRET, "msg_other", at, PAGE_SAMPLE.as_bytes()),
    );
    assert_ne!(key(sample_at(at)), key(other_id));
}

#[tokio::test]
async fn legacy_unsigned_subscriptions_are_refused_as_missing_proof() {
    let request = Request::post("/webhooks/shipbob")
        .header("shipbob-topic", "order_shipped")
        .header("shipbob-subscription-id", "1234")
        .body(Body::from(PAGE_SAMPLE))
        .unwrap();
    answer(request).await.assert_reason("missing_proof");
}

#[tokio::test]
async fn the_typed_payload_is_decoded_only_when_a_handler_asks_for_it() {
    let webhook = Webhook::shipbob("Delivered").field("/tracking", 7);
    let event_only = axum::Router::new().route(
        "/webhooks/shipbob",
        axum::routing::post(|event: shipment_webhooks::ShipmentEvent| async move { event.id })
            .layer(ShipBobSignature::new(SECRET)),
    );
    let response = tower::ServiceExt::oneshot(event_only, webhook.sign(SECRET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    answer(webhook.sign(SECRET)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at tracking: invalid type: integer `7`",
    );
}

#[tokio::test]
async fn refuses_a_body_over_the_limit() {
    let app = app(ShipBobSignature::new(SECRET).body_limit(64));
    send(&app, signed())
        .await
        .assert_refused(StatusCode::PAYLOAD_TOO_LARGE, "64");
}

#[tokio::test]
async fn the_kit_signs_an_attempt_at_the_time_given_to_sent_at() {
    let at = |minutes| OffsetDateTime::now_utc() - time::Duration::minutes(minutes);
    let recent = Webhook::shipbob("Delivered").sent_at(at(1)).sign(SECRET);
    assert_eq!(answer(recent).await.status, StatusCode::OK);
    let old = Webhook::shipbob("Delivered").sent_at(at(10)).sign(SECRET);
    answer(old).await.assert_reason("stale");
    let shippo = send(
        &echo_app::<_, shipment_webhooks::ShippoEvent>(
            "/webhooks/shippo",
            shipment_webhooks::ShippoSignature::new("secretkey"),
        ),
        Webhook::shippo("TRANSIT").sent_at(at(10)).sign("secretkey"),
    )
    .await;
    shippo.assert_reason("stale");
}

#[tokio::test]
async fn passes_on_returns_receiving_and_billing_events_as_other() {
    // ShipBob's webhooks page lists `return.*`, `wro.*` and `billing.*`
    // topics beside the `order.*` ones (also the third-party AsyncAPI file).
    // Their bodies are no shipment's: refused, ShipBob would retry them for
    // days and then disable the endpoint; read as one, a return's
    // `Completed` would move its order to `in_transit`.
    for (topic, body) in [
        (
            "billing.charge.created",
            json!({"id": 5551, "amount": 2.5, "invoice_type": "Shipping"}),
        ),
        (
            "return.completed",
            json!({"id": 778, "order_id": 100000001, "status": "Completed"}),
        ),
        ("wro.completed", json!({"id": 42, "status": "Completed"})),
        // Whatever its fields are, none is a shipment's (a route taking
        // `ShipBobEvent` would refuse this shape with 400; this one does not).
        (
            "return.updated",
            json!({"id": 779, "status": {"id": 2, "name": "Arrived"}, "shipment_id": 1.5}),
        ),
    ] {
        let body = body.to_string();
        let t = now();
        let request = Request::post("/webhooks/shipbob")
            .header("content-type", "application/json")
            .header("x-webhook-topic", topic)
            .header("webhook-id", ID)
            .header("webhook-timestamp", t.to_string())
            .header(
                "webhook-signature",
                standard_webhooks_signature(SECRET, ID, t, body.as_bytes()),
            )
            .body(Body::from(body))
            .unwrap();
        let event_only = axum::Router::new().route(
            "/webhooks/shipbob",
            axum::routing::post(|event: shipment_webhooks::ShipmentEvent| async move {
                axum::Json(json!({ "event": event }))
            })
            .layer(ShipBobSignature::new(SECRET)),
        );
        let answer = send(&event_only, request).await;
        assert_eq!(answer.status, StatusCode::OK, "{topic}: {}", answer.json);
        assert_eq!(
            answer.json["event"],
            json!({
                "provider": "shipbob", "id": ID, "status": "other", "raw_status": topic,
                "timestamp": null, "event_id": ID,
            }),
            "{topic}"
        );
    }
}
