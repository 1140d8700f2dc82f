//! ShipEngine / ShipStation API v2: base64 RSA-SHA256 (PKCS#1 v1.5) of
//! `"<timestamp>.<body>"`, the key named by its `kid` in a JWKS, through a real Router.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{Answer, echo_app, send, with_body, with_header, without_header};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use serde_json::json;
use shipment_webhooks::testing::{
    SHIPENGINE_DEMO_KEY_ID, SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, shipengine_demo_jwks,
    shipengine_signature,
};
use shipment_webhooks::time::{Duration as TimeDuration, OffsetDateTime};
use shipment_webhooks::{ConfigError, ShipEngineEvent, ShipEngineSignature, Verified};

const SIGNATURE: &str = "x-shipengine-rsa-sha256-signature";
const KEY_ID: &str = "x-shipengine-rsa-sha256-key-id";
const TIMESTAMP: &str = "x-shipengine-timestamp";

const OTHER_KEY: &str = include_str!("../fixtures/shipengine/other-private-key.pem");
const OTHER_JWKS: &str = include_str!("../fixtures/shipengine/other-jwks.json");
const OTHER_KID: &str = "shipment-webhooks-other";
const SHORT_KEY: &str = include_str!("../fixtures/shipengine/short-private-key.pem");
const SHORT_JWKS: &str = include_str!("../fixtures/shipengine/short-rsa-jwks.json");
const EC_JWKS: &str = include_str!("../fixtures/shipengine/ec-only-jwks.json");

// A ShipEngine-era tracking webhook, and its signature by the demo key made
// by OpenSSL, not this crate:
// `printf %s "$KNOWN_TIME.$KNOWN_BODY" | openssl dgst -sha256 -sign demo-private-key.pem | base64 -w0`
const KNOWN_TIME: &str = "2026-12-07T19:00:00Z";
const KNOWN_BODY: &str = r#"{"resource_url":"https://api.shipengine.com/v1/labels/se-28529731/track","resource_type":"API_TRACK","data":{"tracking_number":"1Z932R800392060079","status_code":"DE","status_description":"Delivered","carrier_code":"ups","events":[{"occurred_at":"2026-12-07T18:40:00Z","description":"DELIVERED"}]}}"#;
const KNOWN_SIGNATURE: &str = "hUEA+WtFMwUIo4IhePxZ9q8EVCLVAX9AyhjlemfBj8xmgvoizb+eLg7+znVFN3zjduyuPl4ScO58qxjAWHjxdxgZP14C1rsHRnMP5wJ1q+VFTGgD3BwGhN8UQ46MNsNUD5yI+8R6EdHhmw++ZBZPMD95XJZ7BQfsVmDWgI0As1S+xDvVbakC5G6wzJEOaKz/uWHkYkqeEIHZyuhaZdKlCfaAY/yiKAtL28cbQIkn7EeW8p4dQYqjyvLf3q95K7PsY2u9ARQ2Oz5k9pZiXWMxc3Ja0s+2uP4PaaWP7UI6HIQjabejd7M+/alePBIo/RpyxQNilM/WJY7JWBRRivtmYg==";

fn layer() -> ShipEngineSignature {
    ShipEngineSignature::from_jwks(shipengine_demo_jwks()).expect("the demo JWKS")
}

/// A JWKS with the demo key and the other one.
fn both_keys() -> String {
    let mut demo: serde_json::Value = serde_json::from_str(shipengine_demo_jwks()).unwrap();
    let other: serde_json::Value = serde_json::from_str(OTHER_JWKS).unwrap();
    demo["keys"]
        .as_array_mut()
        .unwrap()
        .push(other["keys"][0].clone());
    demo.to_string()
}

async fn answer_with(layer: ShipEngineSignature, request: Request<Body>) -> Answer {
    let app = echo_app::<_, ShipEngineEvent>("/webhooks/shipengine", layer);
    send(&app, request).await
}

async fn answer(request: Request<Body>) -> Answer {
    answer_with(layer(), request).await
}

fn signed(status: &str) -> Request<Body> {
    Webhook::shipengine(status).sign(SHIPENGINE_DEMO_PRIVATE_KEY)
}

fn known_request(signature: &str) -> Request<Body> {
    Request::post("/webhooks/shipengine")
        .header("content-type", "application/json")
        .header(SIGNATURE, signature)
        .header(KEY_ID, SHIPENGINE_DEMO_KEY_ID)
        .header(TIMESTAMP, KNOWN_TIME)
        .body(Body::from(KNOWN_BODY))
        .unwrap()
}

/// The layer with a window wide enough for the known answer's fixed time.
fn any_time() -> ShipEngineSignature {
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    layer().max_age(century).max_future_skew(century)
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&shipment_webhooks::time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn signer_matches_openssl_byte_for_byte() {
    // PKCS#1 v1.5 signatures are deterministic: the same key and bytes give OpenSSL's.
    assert_eq!(
        shipengine_signature(
            SHIPENGINE_DEMO_PRIVATE_KEY,
            KNOWN_TIME,
            KNOWN_BODY.as_bytes()
        ),
        KNOWN_SIGNATURE
    );
}

#[tokio::test]
async fn verifies_openssls_signature_over_timestamp_dot_body() {
    let answer = answer_with(any_time(), known_request(KNOWN_SIGNATURE)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "shipengine", "id": "1Z932R800392060079", "status": "delivered",
            "raw_status": "DE", "timestamp": "2026-12-07T18:40:00Z", "event_id": null,
        })
    );
    assert_eq!(answer.json["secret"], SHIPENGINE_DEMO_KEY_ID);
    assert_eq!(answer.json["payload"]["resource_type"], "API_TRACK");
    assert_eq!(answer.json["body_len"], KNOWN_BODY.len());
}

#[tokio::test]
async fn maps_each_documented_status_of_the_sample() {
    for (code, status) in [
        ("NY", "created"),
        ("AC", "picked_up"),
        ("IT", "in_transit"),
        ("DE", "delivered"),
        ("SP", "at_pickup_point"),
        ("AT", "failed"),
        ("EX", "failed"),
        ("UN", "other"),
    ] {
        let answer = answer(signed(code)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["event"]["status"], status, "{code}");
        assert_eq!(answer.json["event"]["raw_status"], code);
        assert_eq!(answer.json["event"]["id"], "1Z0000000000000000");
        assert_eq!(answer.json["payload"]["data"]["carrier_code"], "ups");
    }
}

#[tokio::test]
async fn the_timestamp_is_the_newest_carrier_event_else_the_signed_time() {
    let sent = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let answer_at = |webhook: Webhook| async move {
        let answer = answer(webhook.sign(SHIPENGINE_DEMO_PRIVATE_KEY)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        answer.json["event"]["timestamp"].clone()
    };
    let no_events = Webhook::shipengine("NY").at(sent);
    assert_eq!(answer_at(no_events).await, rfc3339(sent));
    let events = Webhook::shipengine("IT")
        .field(
            "/data/events",
            json!([
                {"occurred_at": "2026-04-28T09:00:00Z", "description": "ORIGIN SCAN"},
                {"occurred_at": "2026-04-29T11:30:00Z", "description": "DEPARTURE SCAN"},
                {"occurred_at": null, "description": "NO TIME"},
            ]),
        )
        .header(TIMESTAMP.parse().unwrap(), &rfc3339(sent));
    assert_eq!(answer_at(events).await, "2026-04-29T11:30:00Z");
}

#[tokio::test]
async fn other_resource_types_are_verified_and_passed_on() {
    let request = Webhook::shipengine("DE")
        .field("/resource_type", "API_BATCH")
        .field(
            "/resource_url",
            "https://api.shipengine.com/v1/batches/se-1013119",
        )
        .field("/data", json!({}))
        .sign(SHIPENGINE_DEMO_PRIVATE_KEY);
    let answer = answer(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"]["id"],
        "https://api.shipengine.com/v1/batches/se-1013119"
    );
    assert_eq!(answer.json["event"]["status"], "other");
    assert_eq!(answer.json["event"]["raw_status"], "API_BATCH");
}

#[tokio::test]
async fn rotation_names_the_key_that_matched() {
    let layer = ShipEngineSignature::from_jwks(&both_keys()).unwrap();
    let other = Webhook::shipengine("IT")
        .header(KEY_ID.parse().unwrap(), OTHER_KID)
        .sign(OTHER_KEY);
    let answer = answer_with(layer.clone(), other).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["secret"], OTHER_KID);
    let demo = answer_with(layer, signed("IT")).await;
    assert_eq!(demo.json["secret"], SHIPENGINE_DEMO_KEY_ID);
}

#[test]
fn debug_never_shows_a_secret() {
    let debug = format!(
        "{:?}",
        ShipEngineSignature::from_jwks(&both_keys()).unwrap()
    );
    // The keys are public; Debug names them by kid only, and holds no private key.
    assert!(
        debug.contains(SHIPENGINE_DEMO_KEY_ID) && debug.contains(OTHER_KID),
        "{debug}"
    );
    let modulus = &shipengine_demo_jwks().split("\"n\": \"").nth(1).unwrap()[..40];
    assert!(!debug.contains(modulus), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
}

#[tokio::test]
async fn the_typed_payload_reads_the_tracking_record() {
    let app = axum::Router::new().route(
        "/webhooks/shipengine",
        axum::routing::post(|payload: ShipEngineEvent| async move {
            format!(
                "{:?} {:?} {:?} {:?}",
                payload.tracking_number(),
                payload.carrier_code(),
                payload.status_code(),
                payload.status_description()
            )
        })
        .layer(layer()),
    );
    let response = tower::ServiceExt::oneshot(app, signed("SP")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(
        body,
        r#"Some("1Z0000000000000000") Some("ups") Some("SP") Some("Delivered To Collection Location")"#
    );
}

#[tokio::test]
async fn refuses_each_missing_header() {
    for header in [SIGNATURE, KEY_ID, TIMESTAMP] {
        let answer = answer(without_header(signed("DE"), header)).await;
        answer.assert_refused(
            StatusCode::UNAUTHORIZED,
            &format!("the {header} header is missing"),
        );
        answer.assert_reason("missing_proof");
    }
}

#[tokio::test]
async fn refuses_each_repeated_header() {
    for header in [SIGNATURE, KEY_ID, TIMESTAMP] {
        let mut request = signed("DE");
        let value = request.headers()[header].clone();
        request.headers_mut().append(header, value);
        answer(request).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            &format!("the {header} header appears more than once"),
        );
    }
}

#[tokio::test]
async fn refuses_headers_that_are_not_visible_ascii() {
    for header in [SIGNATURE, KEY_ID, TIMESTAMP] {
        let mut request = signed("DE");
        request.headers_mut().insert(
            header,
            axum::http::HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        );
        answer(request).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            &format!("the {header} header is not visible ASCII"),
        );
    }
}

#[tokio::test]
async fn refuses_empty_headers() {
    for (header, details) in [
        (
            SIGNATURE,
            "decodes to 0 bytes; key \"shipment-webhooks-demo\"'s signatures are 256",
        ),
        (KEY_ID, "the x-shipengine-rsa-sha256-key-id header is empty"),
        (
            TIMESTAMP,
            "the x-shipengine-timestamp header \"\" is not an ISO 8601",
        ),
    ] {
        let answer = answer(with_header(signed("DE"), header, "")).await;
        answer.assert_refused(StatusCode::UNAUTHORIZED, details);
        answer.assert_reason("malformed_proof");
    }
}

#[tokio::test]
async fn refuses_base64url_unpadded_and_non_canonical_signatures() {
    let request = signed("DE");
    let signature = request.headers()[SIGNATURE].to_str().unwrap().to_owned();
    let bytes = STANDARD.decode(&signature).unwrap();
    let url = URL_SAFE.encode(&bytes);
    assert_ne!(url, signature, "the demo signature has a + or /");
    // 256 bytes: four unused low bits in the last digit before `==`.
    let head = signature.strip_suffix("==").expect("256 bytes end in ==");
    let non_canonical = crate::common::set_unused_bits(
        head,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        4,
    ) + "==";
    for variant in [
        url,
        STANDARD_NO_PAD.encode(&bytes),
        non_canonical,
        format!(" {signature}"),
    ] {
        let answer = answer(with_header(signed("DE"), SIGNATURE, &variant)).await;
        answer.assert_refused(StatusCode::UNAUTHORIZED, "is not standard, padded base64");
        answer.assert_reason("malformed_proof");
    }
}

#[tokio::test]
async fn refuses_a_truncated_or_overlong_signature() {
    let request = signed("DE");
    let signature = request.headers()[SIGNATURE].to_str().unwrap().to_owned();
    let bytes = STANDARD.decode(&signature).unwrap();
    let truncated = STANDARD.encode(&bytes[..255]);
    answer(with_header(signed("DE"), SIGNATURE, &truncated))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "decodes to 255 bytes");
    let huge = "A".repeat(4096);
    answer(with_header(signed("DE"), SIGNATURE, &huge))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "is 4096 characters long");
}

#[tokio::test]
async fn refuses_a_signature_by_another_rsa_key() {
    // The demo key's id, another key's signature.
    let answer = answer(Webhook::shipengine("DE").sign(OTHER_KEY)).await;
    answer.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the signature does not verify with the key its key id names",
    );
    answer.assert_reason("signature_mismatch");
}

#[tokio::test]
async fn refuses_an_unknown_key_id() {
    let request = Webhook::shipengine("DE")
        .header(KEY_ID.parse().unwrap(), OTHER_KID)
        .sign(OTHER_KEY);
    let answer = answer(request).await;
    answer.assert_refused(
        StatusCode::UNAUTHORIZED,
        "names key \"shipment-webhooks-other\", which is not in the JWKS",
    );
    answer.assert_reason("signature_mismatch");
}

#[tokio::test]
async fn refuses_a_signature_over_the_body_alone() {
    let body = Webhook::shipengine("DE").payload_json();
    // The signer signs `"<timestamp>.<body>"`: splitting the body at its first
    // `.` makes it sign exactly the body's bytes, without the time.
    let (before, after) = body.split_once('.').expect("the sample has a dot");
    let over_body = shipengine_signature(SHIPENGINE_DEMO_PRIVATE_KEY, before, after.as_bytes());
    let request = with_header(signed("DE"), SIGNATURE, &over_body);
    let answer = answer(request).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "does not verify");
    answer.assert_reason("signature_mismatch");
}

#[tokio::test]
async fn refuses_a_changed_timestamp_or_body() {
    let request = signed("DE");
    let time = request.headers()[TIMESTAMP].to_str().unwrap().to_owned();
    let moved = time.replace('Z', "+00:00");
    answer(with_header(signed("DE"), TIMESTAMP, &moved))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "does not verify");
    let body = Webhook::shipengine("DE").payload_json();
    for index in [0, body.len() / 2, body.len() - 1] {
        let mut changed = body.as_bytes().to_vec();
        changed[index] ^= 0x01;
        answer(with_body(signed("DE"), changed))
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "does not verify");
    }
}

#[tokio::test]
async fn refuses_the_same_json_re_serialized() {
    let pretty = serde_json::to_string_pretty(Webhook::shipengine("DE").payload()).unwrap();
    answer(with_body(signed("DE"), pretty))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "does not verify");
}

#[tokio::test]
async fn refuses_stale_and_future_timestamps_by_default() {
    let now = OffsetDateTime::now_utc();
    for (minutes, accepted, details) in [
        (-4, true, ""),
        (4, true, ""),
        (
            -6,
            false,
            "s old; this endpoint accepts webhooks up to 300 s old",
        ),
        (
            6,
            false,
            "s ahead of this server's clock; at most 300 s is accepted",
        ),
    ] {
        let request = Webhook::shipengine("DE")
            .at(now + TimeDuration::minutes(minutes))
            .sign(SHIPENGINE_DEMO_PRIVATE_KEY);
        let answer = answer(request).await;
        if accepted {
            assert_eq!(answer.status, StatusCode::OK, "{minutes}: {}", answer.json);
        } else {
            answer.assert_refused(StatusCode::UNAUTHORIZED, details);
            answer.assert_reason("stale");
        }
    }
    // Configurable both ways.
    let old = Webhook::shipengine("DE")
        .at(now - TimeDuration::minutes(30))
        .sign(SHIPENGINE_DEMO_PRIVATE_KEY);
    let wide = layer().max_age(Duration::from_secs(3600));
    assert_eq!(answer_with(wide, old).await.status, StatusCode::OK);
    let ahead = Webhook::shipengine("DE")
        .at(now + TimeDuration::minutes(2))
        .sign(SHIPENGINE_DEMO_PRIVATE_KEY);
    let strict = layer().max_future_skew(Duration::from_secs(60));
    answer_with(strict, ahead).await.assert_reason("stale");
}

#[tokio::test]
async fn the_window_is_checked_only_once_the_signature_holds() {
    let stale = Webhook::shipengine("DE")
        .at(OffsetDateTime::now_utc() - TimeDuration::hours(1))
        .sign(OTHER_KEY);
    answer(stale).await.assert_reason("signature_mismatch");
}

#[tokio::test]
async fn reads_epoch_and_offsetless_timestamps_signing_them_as_sent() {
    let now = OffsetDateTime::now_utc();
    for text in [
        now.unix_timestamp().to_string(),
        (now.unix_timestamp() * 1000).to_string(),
        rfc3339(now.replace_nanosecond(0).unwrap())
            .trim_end_matches('Z')
            .to_owned(),
    ] {
        let request = Webhook::shipengine("DE")
            .header(TIMESTAMP.parse().unwrap(), &text)
            .sign(SHIPENGINE_DEMO_PRIVATE_KEY);
        let answer = answer(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{text}: {}", answer.json);
    }
}

#[tokio::test]
async fn refuses_a_timestamp_in_no_known_format() {
    let request = Webhook::shipengine("DE")
        .header(TIMESTAMP.parse().unwrap(), "Mon, 07 Dec 2026 19:00:00 GMT")
        .sign(SHIPENGINE_DEMO_PRIVATE_KEY);
    let answer = answer(request).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "is not an ISO 8601 date-time");
    answer.assert_reason("malformed_proof");
}

#[tokio::test]
async fn refuses_a_verified_tracking_webhook_without_its_fields() {
    for (field, details) in [
        (
            "/data/tracking_number",
            "the body, at data: missing field `tracking_number`",
        ),
        (
            "/data/status_code",
            "the body, at data: missing field `status_code`",
        ),
        ("/resource_type", "missing field `resource_type`"),
    ] {
        let request = Webhook::shipengine("DE")
            .without(field)
            .sign(SHIPENGINE_DEMO_PRIVATE_KEY);
        answer(request)
            .await
            .assert_refused(StatusCode::BAD_REQUEST, details);
    }
    let empty = Webhook::shipengine("DE")
        .field("/data/tracking_number", "")
        .sign(SHIPENGINE_DEMO_PRIVATE_KEY);
    answer(empty).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at data: `tracking_number` is empty",
    );
}

#[tokio::test]
async fn refuses_a_verified_body_that_is_not_json() {
    let body = "status_code=DE&tracking_number=1Z";
    let time = rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).unwrap());
    let request = Request::post("/webhooks/shipengine")
        .header(
            SIGNATURE,
            shipengine_signature(SHIPENGINE_DEMO_PRIVATE_KEY, &time, body.as_bytes()),
        )
        .header(KEY_ID, SHIPENGINE_DEMO_KEY_ID)
        .header(TIMESTAMP, &time)
        .body(Body::from(body))
        .unwrap();
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body: expected value at line 1 column 1",
    );
}

#[tokio::test]
async fn refuses_a_body_over_the_limit() {
    let answer = answer_with(layer().body_limit(64), signed("DE")).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.json
    );
}

#[test]
fn refuses_a_jwks_with_no_usable_rsa_key() {
    for (jwks, details) in [
        (EC_JWKS, "key \"ec-key\" is of type \"EC\", not RSA"),
        (
            SHORT_JWKS,
            "key \"short-key\" is 1024 bits; at least 2048 are required",
        ),
        (r#"{"keys": []}"#, "it holds no key"),
        ("not json", "not a JWKS"),
        (
            r#"{"keys": [{"kty": "RSA", "kid": "k", "n": "!!", "e": "AQAB"}]}"#,
            "key \"k\"'s n is not base64url",
        ),
        (
            r#"{"keys": [{"kty": "RSA", "kid": "k", "use": "enc", "n": "AQAB", "e": "AQAB"}]}"#,
            "is for \"enc\", not signatures",
        ),
    ] {
        match ShipEngineSignature::from_jwks(jwks) {
            Err(ConfigError::InvalidKeySet { details: actual }) => {
                assert!(
                    actual.contains(details),
                    "{actual:?} should contain {details:?}"
                );
            }
            other => panic!("{jwks}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn skips_ec_and_short_keys_beside_a_usable_one() {
    let mut jwks: serde_json::Value = serde_json::from_str(shipengine_demo_jwks()).unwrap();
    for extra in [EC_JWKS, SHORT_JWKS] {
        let extra: serde_json::Value = serde_json::from_str(extra).unwrap();
        jwks["keys"]
            .as_array_mut()
            .unwrap()
            .push(extra["keys"][0].clone());
    }
    let layer = ShipEngineSignature::from_jwks(&jwks.to_string()).unwrap();
    assert_eq!(
        answer_with(layer.clone(), signed("DE")).await.status,
        StatusCode::OK
    );
    let short = Webhook::shipengine("DE")
        .header(KEY_ID.parse().unwrap(), "short-key")
        .sign(SHORT_KEY);
    answer_with(layer, short).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "names key \"short-key\", which is not in the JWKS",
    );
}

#[tokio::test]
async fn reads_the_jwks_from_a_file() {
    let path = std::env::temp_dir().join(format!("shipengine-jwks-{}.json", std::process::id()));
    std::fs::write(&path, shipengine_demo_jwks()).unwrap();
    let layer = ShipEngineSignature::from_jwks_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        answer_with(layer, signed("DE")).await.status,
        StatusCode::OK
    );
    let missing = ShipEngineSignature::from_jwks_file(&path).unwrap_err();
    assert!(missing.to_string().contains("cannot be read"), "{missing}");
}

/// A lookup serving `jwks`, counting its calls.
fn counting_lookup(
    jwks: String,
) -> (
    Arc<AtomicUsize>,
    impl Fn() -> std::future::Ready<Result<String, std::io::Error>> + Send + Sync + 'static,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    (calls, move || {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(jwks.clone()))
    })
}

#[tokio::test]
async fn a_lookup_is_called_for_the_first_key_and_an_unknown_one_once_per_interval() {
    let (calls, lookup) = counting_lookup(shipengine_demo_jwks().to_owned());
    let layer = ShipEngineSignature::from_lookup(lookup);
    let app = echo_app::<_, ShipEngineEvent>("/webhooks/shipengine", layer);
    assert_eq!(send(&app, signed("DE")).await.status, StatusCode::OK);
    assert_eq!(send(&app, signed("IT")).await.status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the known key is cached");
    let forged = || {
        Webhook::shipengine("DE")
            .header(KEY_ID.parse().unwrap(), OTHER_KID)
            .sign(OTHER_KEY)
    };
    // Within the interval: refused without a lookup.
    for _ in 0..3 {
        send(&app, forged())
            .await
            .assert_reason("signature_mismatch");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // With no interval, each unknown key id looks up once, then is refused.
    let (calls, lookup) = counting_lookup(shipengine_demo_jwks().to_owned());
    let layer = ShipEngineSignature::from_lookup(lookup).refresh_interval(Duration::ZERO);
    let app = echo_app::<_, ShipEngineEvent>("/webhooks/shipengine", layer);
    send(&app, forged())
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "which is not in the JWKS");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn keys_looked_up_at_start_up_need_no_lookup_per_request() {
    let (calls, lookup) = counting_lookup(shipengine_demo_jwks().to_owned());
    let layer = ShipEngineSignature::from_lookup(lookup);
    layer.refresh_keys().await.expect("the demo JWKS");
    let app = echo_app::<_, ShipEngineEvent>("/webhooks/shipengine", layer);
    assert_eq!(send(&app, signed("DE")).await.status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let failing =
        ShipEngineSignature::from_lookup(|| async { Ok::<_, std::io::Error>(EC_JWKS.to_owned()) });
    let error = failing.refresh_keys().await.unwrap_err();
    assert!(error.to_string().contains("no usable RSA key"), "{error}");
}

#[tokio::test]
async fn a_key_published_later_is_found_by_one_refresh() {
    let (calls, lookup) = counting_lookup(both_keys());
    let layer = layer().refresh_with(lookup);
    let app = echo_app::<_, ShipEngineEvent>("/webhooks/shipengine", layer);
    assert_eq!(send(&app, signed("DE")).await.status, StatusCode::OK);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the supplied key needs no lookup"
    );
    let rotated = Webhook::shipengine("DE")
        .header(KEY_ID.parse().unwrap(), OTHER_KID)
        .sign(OTHER_KEY);
    let answer = send(&app, rotated).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["secret"], OTHER_KID);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_lookup_is_503_and_keeps_the_old_keys() {
    let layer = layer()
        .refresh_interval(Duration::ZERO)
        .refresh_with(|| async { Err::<String, _>(std::io::Error::other("JWKS down")) });
    let app = echo_app::<_, ShipEngineEvent>("/webhooks/shipengine", layer.clone());
    let rotated = Webhook::shipengine("DE")
        .header(KEY_ID.parse().unwrap(), OTHER_KID)
        .sign(OTHER_KEY);
    let answer = send(&app, rotated).await;
    answer.assert_refused(StatusCode::SERVICE_UNAVAILABLE, "could not be looked up");
    answer.assert_reason("lookup_failed");
    assert_eq!(send(&app, signed("DE")).await.status, StatusCode::OK);
    // A lookup returning no usable key keeps them too.
    let ec_only = layer.refresh_with(|| async { Ok::<_, std::io::Error>(EC_JWKS.to_owned()) });
    let app = echo_app::<_, ShipEngineEvent>("/webhooks/shipengine", ec_only);
    let rotated = Webhook::shipengine("DE")
        .header(KEY_ID.parse().unwrap(), OTHER_KID)
        .sign(OTHER_KEY);
    send(&app, rotated).await.assert_reason("lookup_failed");
    assert_eq!(send(&app, signed("DE")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn verify_without_a_framework_and_verify_async_with_a_lookup() {
    let request = signed("DE");
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let verified = layer().verify(&parts.headers, body.clone()).unwrap();
    let Verified::Webhook(webhook) = verified else {
        panic!("a webhook")
    };
    assert_eq!(webhook.event().id, "1Z0000000000000000");

    let (calls, lookup) = counting_lookup(shipengine_demo_jwks().to_owned());
    let lazy = ShipEngineSignature::from_lookup(lookup);
    let refused = lazy.verify(&parts.headers, body.clone()).unwrap_err();
    assert_eq!(refused.kind().as_str(), "signature_mismatch");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "verify never looks up");
    assert!(lazy.verify_async(&parts.headers, body).await.is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_retry_signed_at_another_time_has_the_same_dedup_key() {
    // "Webhook delivery will be attempted 3 times with a 2 hour delay":
    // each attempt is signed anew, at its own time, over the same body.
    let time = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let dedup = |webhook: Webhook| {
        let (parts, body) = webhook.sign(SHIPENGINE_DEMO_PRIVATE_KEY).into_parts();
        async move {
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let Verified::Webhook(webhook) = layer().verify(&parts.headers, body).unwrap() else {
                panic!("a webhook")
            };
            webhook.dedup_key()
        }
    };
    let first = dedup(Webhook::shipengine("DE").at(time)).await;
    let retry = Webhook::shipengine("DE").at(time).header(
        TIMESTAMP.parse().unwrap(),
        &fmt_time(time - TimeDuration::minutes(4)),
    );
    assert_eq!(first, dedup(retry).await);
    assert_ne!(first, dedup(Webhook::shipengine("IT").at(time)).await);
}

fn fmt_time(time: OffsetDateTime) -> String {
    time.format(&shipment_webhooks::time::format_description::well_known::Rfc3339)
        .unwrap()
}
