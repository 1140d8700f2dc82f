//! Every bad input in docs/reliability.md's table, each row a test here (or
//! in a provider's test file, as the table says), across the providers.
//! Routes take only `ShipmentEvent` unless a row is about typed payloads, so
//! what is tested is the layer's own answer.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{
    Answer, PROVIDERS, proof_header, send, serve, set_unused_bits, with_body, with_header,
    without_header,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use shipment_webhooks::testing::{
    SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, aftership_signature, easypost_signature,
    goshiip_signature, kosmo_signature, sendcloud_signature, shipengine_demo_jwks, shipmondo_jwt,
};
use shipment_webhooks::{
    AfterShipSignature, EasyPostSignature, GoShiipEvent, GoShiipSignature, KosmoSignature,
    KourierBearer, Provider, SendcloudSignature, ShipBobSignature, ShipEngineSignature,
    ShipmentEvent, ShipmondoEvent, ShipmondoJwt, ShippoSignature,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower_http::timeout::RequestBodyTimeoutLayer;

fn secret(provider: Provider) -> &'static str {
    match provider {
        Provider::Kosmo => "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm",
        Provider::Kourier => "a-kourier-token",
        Provider::Shipmondo => "a-shipmondo-webhook-key-of-32-bytes!",
        Provider::GoShiip => "your_secret_key",
        Provider::EasyPost => "A1B2C3",
        Provider::AfterShip => "an-aftership-webhook-secret",
        Provider::Sendcloud => "secretkey",
        Provider::Shippo => "secretkey",
        Provider::ShipBob => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        Provider::ShipEngine => SHIPENGINE_DEMO_PRIVATE_KEY,
        _ => unreachable!("a provider this file does not know"),
    }
}

/// The providers whose proof is in a header.
const HEADER_PROOFS: [Provider; 9] = [
    Provider::Kosmo,
    Provider::Kourier,
    Provider::GoShiip,
    Provider::EasyPost,
    Provider::AfterShip,
    Provider::Sendcloud,
    Provider::Shippo,
    Provider::ShipBob,
    Provider::ShipEngine,
];

/// Whether `provider` signs the body's bytes, so that any change to them is
/// a signature mismatch (the others sign fields, a token, or nothing of it).
fn signs_the_body(provider: Provider) -> bool {
    matches!(
        provider,
        Provider::GoShiip | Provider::EasyPost | Provider::AfterShip | Provider::Sendcloud
    )
}

/// A request of `provider`, which signs the body, whose `body` carries a valid signature.
fn body_signed(provider: Provider, body: impl Into<Vec<u8>>) -> Request<Body> {
    let body = body.into();
    let secret = secret(provider);
    let signature = match provider {
        Provider::GoShiip => goshiip_signature(secret, &body),
        Provider::EasyPost => easypost_signature(secret, &body),
        Provider::AfterShip => aftership_signature(secret, &body),
        Provider::Sendcloud => sendcloud_signature(secret, &body),
        _ => unreachable!("{provider} does not sign the body"),
    };
    let header = proof_header(provider).unwrap();
    with_header(with_body(signed(provider), body), header, &signature)
}

/// A secret (for ShipEngine, a private key) that is not `provider`'s.
fn wrong_secret(provider: Provider) -> &'static str {
    match provider {
        Provider::ShipEngine => include_str!("../fixtures/shipengine/other-private-key.pem"),
        _ => "another secret",
    }
}

/// The layers, each on `/webhooks/<provider>` with a handler that takes
/// only `ShipmentEvent`, refusing bodies over `limit`.
fn app(limit: usize) -> Router {
    async fn on_event(event: ShipmentEvent) -> Json<ShipmentEvent> {
        Json(event)
    }
    let route = |provider| match provider {
        Provider::Kosmo => {
            post(on_event).layer(KosmoSignature::new(secret(provider)).body_limit(limit))
        }
        Provider::Kourier => {
            post(on_event).layer(KourierBearer::new(secret(provider)).body_limit(limit))
        }
        Provider::Shipmondo => {
            post(on_event).layer(ShipmondoJwt::new(secret(provider)).body_limit(limit))
        }
        Provider::GoShiip => {
            post(on_event).layer(GoShiipSignature::new(secret(provider)).body_limit(limit))
        }
        Provider::EasyPost => {
            post(on_event).layer(EasyPostSignature::new(secret(provider)).body_limit(limit))
        }
        Provider::AfterShip => {
            post(on_event).layer(AfterShipSignature::new(secret(provider)).body_limit(limit))
        }
        Provider::Sendcloud => {
            post(on_event).layer(SendcloudSignature::new(secret(provider)).body_limit(limit))
        }
        Provider::Shippo => {
            post(on_event).layer(ShippoSignature::new(secret(provider)).body_limit(limit))
        }
        Provider::ShipBob => {
            post(on_event).layer(ShipBobSignature::new(secret(provider)).body_limit(limit))
        }
        Provider::ShipEngine => post(on_event).layer(
            ShipEngineSignature::from_jwks(shipengine_demo_jwks())
                .expect("the demo JWKS")
                .body_limit(limit),
        ),
        other => unreachable!("no layer for {other}"),
    };
    PROVIDERS
        .into_iter()
        .fold(Router::new(), |router, provider| {
            router.route(&format!("/webhooks/{provider}"), route(provider))
        })
}

async fn answer(request: Request<Body>) -> Answer {
    send(&app(1024 * 1024), request).await
}

fn sample(provider: Provider) -> Webhook {
    let status = match provider {
        Provider::Kosmo => "DELIVERED",
        Provider::Shipmondo => "sent",
        Provider::GoShiip => "Delivered",
        Provider::AfterShip => "Delivered",
        Provider::Sendcloud => "11",
        Provider::Shippo => "DELIVERED",
        Provider::ShipBob => "Delivered",
        Provider::ShipEngine => "DE",
        _ => "delivered",
    };
    Webhook::sample(provider, status)
}

fn signed(provider: Provider) -> Request<Body> {
    sample(provider).sign(secret(provider))
}

async fn body_json(request: Request<Body>) -> (Request<Body>, Value) {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap();
    (Request::from_parts(parts, Body::from(bytes)), json)
}

/// A signed Shipmondo request whose token `change` rewrote.
async fn shipmondo_token(change: impl FnOnce(&str) -> String) -> Request<Body> {
    let (request, json) = body_json(signed(Provider::Shipmondo)).await;
    let token = change(json["data"].as_str().unwrap());
    with_body(request, json!({ "data": token }).to_string())
}

/// A GoShiip request whose `body` carries a valid signature.
fn goshiip_signed(body: impl Into<Vec<u8>>) -> Request<Body> {
    let body = body.into();
    let signature = goshiip_signature(secret(Provider::GoShiip), &body);
    with_header(
        with_body(signed(Provider::GoShiip), body),
        "x-signature",
        &signature,
    )
}

/// A Kosmo request with `body`, signed over these fields.
fn kosmo_signed(body: impl Into<Vec<u8>>, fields: [&str; 3]) -> Request<Body> {
    let [event_id, order_id, timestamp] = fields;
    let signature = kosmo_signature(secret(Provider::Kosmo), event_id, order_id, timestamp);
    with_header(
        with_body(signed(Provider::Kosmo), body.into()),
        "x-kosmo-signature",
        &signature,
    )
}

/// Asserts a refusal; Kourier's 401s also challenge for a bearer token.
#[track_caller]
fn assert_refused(provider: Provider, answer: &Answer, status: StatusCode, details: &str) {
    answer.assert_refused(status, details);
    if provider == Provider::Kourier && status == StatusCode::UNAUTHORIZED {
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn the_untouched_requests_pass() {
    // Every row below changes one of these; each must pass as it is.
    for provider in PROVIDERS {
        let answer = answer(signed(provider)).await;
        assert_eq!(answer.status, StatusCode::OK, "{provider}: {}", answer.json);
    }
}

#[tokio::test]
async fn missing_proof() {
    for provider in HEADER_PROOFS {
        let header = proof_header(provider).unwrap();
        let answer = answer(without_header(signed(provider), header)).await;
        assert_refused(provider, &answer, StatusCode::UNAUTHORIZED, "is missing");
        // Refused before the body was read.
        assert_eq!(answer.headers["connection"], "close", "{provider}");
    }
    let answer = answer(with_body(signed(Provider::Shipmondo), "{}")).await;
    answer.assert_refused(StatusCode::BAD_REQUEST, "missing field `data`");
}

#[tokio::test]
async fn each_refusal_names_its_reason() {
    for provider in HEADER_PROOFS {
        let header = proof_header(provider).unwrap();
        let missing = answer(without_header(signed(provider), header)).await;
        missing.assert_reason("missing_proof");
        let malformed = answer(with_header(signed(provider), header, "not a proof")).await;
        malformed.assert_reason("malformed_proof");
        let wrong = answer(sample(provider).sign(wrong_secret(provider))).await;
        wrong.assert_reason("signature_mismatch");
    }
    let malformed = answer(shipmondo_token(|_| "a.b".to_owned()).await).await;
    malformed.assert_reason("malformed_proof");
    let wrong = sample(Provider::Shipmondo).sign("another key, also of at least 32 bytes");
    answer(wrong).await.assert_reason("signature_mismatch");
    for provider in PROVIDERS {
        let not_json = answer(with_body(signed(provider), "hello")).await;
        let expected = match provider {
            // A signature over the body is checked first.
            provider if proof_covers_the_body(provider) => "signature_mismatch",
            _ => "invalid_payload",
        };
        not_json.assert_reason(expected);
        let too_large = send(&app(64), signed(provider)).await;
        too_large.assert_reason("too_large");
    }
    let replay_window = crate::common::echo_app::<_, shipment_webhooks::KosmoEvent>(
        "/webhooks/kosmo",
        KosmoSignature::new(secret(Provider::Kosmo)).max_age(Duration::from_secs(60)),
    );
    // The sample is stamped in 2023.
    let stale = send(&replay_window, signed(Provider::Kosmo)).await;
    stale.assert_refused(StatusCode::UNAUTHORIZED, "s old");
    stale.assert_reason("stale");
}

#[tokio::test]
async fn empty_proof() {
    for provider in HEADER_PROOFS {
        let header = proof_header(provider).unwrap();
        let answer = answer(with_header(signed(provider), header, "")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{provider}");
        assert_refused(provider, &answer, StatusCode::UNAUTHORIZED, "");
    }
    let answer = answer(shipmondo_token(|_| String::new()).await).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "three dot-separated parts");
}

#[tokio::test]
async fn duplicate_proof() {
    for provider in HEADER_PROOFS {
        let mut request = signed(provider);
        let header = proof_header(provider).unwrap();
        let value = request.headers()[header].clone();
        request.headers_mut().append(header, value);
        let answer = answer(request).await;
        assert_refused(
            provider,
            &answer,
            StatusCode::UNAUTHORIZED,
            "more than once",
        );
    }
    let (request, json) = body_json(signed(Provider::Shipmondo)).await;
    let token = json["data"].as_str().unwrap();
    let twice = format!(r#"{{"data":"{token}","data":"{token}"}}"#);
    answer(with_body(request, twice))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "duplicate field `data`");
}

#[tokio::test]
async fn proof_header_not_visible_ascii() {
    for provider in HEADER_PROOFS {
        let mut request = signed(provider);
        let header = proof_header(provider).unwrap();
        let value = axum::http::HeaderValue::from_bytes(b"Bearer caf\xe9").unwrap();
        request.headers_mut().insert(header, value);
        let answer = answer(request).await;
        assert_refused(
            provider,
            &answer,
            StatusCode::UNAUTHORIZED,
            "not visible ASCII",
        );
    }
}

#[tokio::test]
async fn wrong_scheme() {
    let token = secret(Provider::Kourier);
    for authorization in [
        format!("Basic {token}"),
        format!("Token {token}"),
        format!("Bearer{token}"),
        "Bearer".to_owned(),
        token.to_owned(),
    ] {
        let request = with_header(signed(Provider::Kourier), "authorization", &authorization);
        let answer = answer(request).await;
        assert_refused(Provider::Kourier, &answer, StatusCode::UNAUTHORIZED, "");
    }
    for provider in [
        Provider::Kosmo,
        Provider::GoShiip,
        Provider::EasyPost,
        Provider::AfterShip,
        Provider::Sendcloud,
        Provider::ShipEngine,
    ] {
        let mut request = signed(provider);
        let header = proof_header(provider).unwrap();
        let prefixed = format!("sha256={}", request.headers()[header].to_str().unwrap());
        request = with_header(request, header, &prefixed);
        assert_eq!(
            answer(request).await.status,
            StatusCode::UNAUTHORIZED,
            "{provider}"
        );
    }
    // Shipmondo's "scheme" is the JWT's algorithm: see shipmondo::refuses_any_algorithm_but_hs256.
}

#[tokio::test]
async fn truncated_proof() {
    // ShipBob's is cut in shipbob::refuses_a_truncated_signature: one
    // character less is its unpadded form, which it accepts.
    for provider in HEADER_PROOFS
        .into_iter()
        .filter(|&p| p != Provider::ShipBob)
    {
        let request = signed(provider);
        let header = proof_header(provider).unwrap();
        let proof = request.headers()[header].to_str().unwrap().to_owned();
        for cut in [1, 2, proof.len() / 2] {
            let request = with_header(signed(provider), header, &proof[..proof.len() - cut]);
            let answer = answer(request).await;
            assert_refused(provider, &answer, StatusCode::UNAUTHORIZED, "");
        }
    }
    for cut in [1, 2, 43] {
        let request = shipmondo_token(|token| token[..token.len() - cut].to_owned()).await;
        answer(request)
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "");
    }
}

#[tokio::test]
async fn non_canonical_encodings() {
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for provider in [Provider::Kosmo, Provider::AfterShip] {
        let header = proof_header(provider).unwrap();
        let request = signed(provider);
        let signature = request.headers()[header].to_str().unwrap().to_owned();
        let data = signature.trim_end_matches('=');
        // 32 bytes are 43 characters and one '=': the 43rd holds 2 unused bits.
        for variant in [
            format!("{}=", set_unused_bits(data, BASE64, 2)),
            data.to_owned(),
            data.replace('+', "-").replace('/', "_") + "=",
            format!("{signature}="),
            format!(" {signature}"),
        ] {
            if variant == signature {
                continue;
            }
            let request = with_header(signed(provider), header, &variant);
            answer(request)
                .await
                .assert_refused(StatusCode::UNAUTHORIZED, header);
        }
    }

    // Hex has no unused bits; upper case spells the same bytes and is accepted.
    for provider in [Provider::GoShiip, Provider::EasyPost, Provider::Sendcloud] {
        let header = proof_header(provider).unwrap();
        let request = signed(provider);
        let proof = request.headers()[header].to_str().unwrap().to_owned();
        // EasyPost's prefix is part of its proof, in lower case.
        let (prefix, digits) = proof.split_at(proof.rfind('=').map_or(0, |at| at + 1));
        let upper = format!("{prefix}{}", digits.to_uppercase());
        let answer_upper = answer(with_header(request, header, &upper)).await;
        assert_eq!(answer_upper.status, StatusCode::OK, "{provider}");
        let spaced = format!("{proof} ");
        answer(with_header(signed(provider), header, &spaced))
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "65 characters");
    }

    // Shipmondo: see shipmondo::refuses_malformed_tokens (padding, unused bits).
}

/// Whether `provider`'s proof covers the body's bytes, alone or with a time.
fn proof_covers_the_body(provider: Provider) -> bool {
    signs_the_body(provider)
        || matches!(
            provider,
            Provider::Shippo | Provider::ShipBob | Provider::ShipEngine
        )
}

#[tokio::test]
async fn re_serialized_body() {
    for provider in PROVIDERS {
        let (request, json) = body_json(signed(provider)).await;
        let pretty = serde_json::to_vec_pretty(&json).unwrap();
        let answer = answer(with_body(request, pretty)).await;
        if provider == Provider::ShipEngine {
            // ShipEngine signs the bytes too.
            answer.assert_refused(StatusCode::UNAUTHORIZED, "does not verify");
        } else if proof_covers_the_body(provider) {
            // These sign the bytes; the others sign fields or nothing of the body.
            answer.assert_refused(StatusCode::UNAUTHORIZED, "configured secret");
            answer.assert_reason("signature_mismatch");
        } else {
            assert_eq!(answer.status, StatusCode::OK, "{provider}: {}", answer.json);
        }
    }
}

#[tokio::test]
async fn byte_order_mark() {
    for provider in PROVIDERS {
        let (request, json) = body_json(signed(provider)).await;
        let body = [&b"\xEF\xBB\xBF"[..], json.to_string().as_bytes()].concat();
        let answer = answer(with_body(request, body)).await;
        if provider == Provider::ShipEngine {
            answer.assert_refused(StatusCode::UNAUTHORIZED, "does not verify");
        } else if proof_covers_the_body(provider) {
            answer.assert_reason("signature_mismatch");
        } else {
            answer.assert_refused(StatusCode::BAD_REQUEST, "expected value at line 1 column 1");
        }
    }
    // Signed with the mark, it still is not JSON.
    answer(goshiip_signed([&b"\xEF\xBB\xBF"[..], b"{}"].concat()))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "expected value at line 1 column 1");
}

#[tokio::test]
async fn not_json() {
    for body in [&b""[..], b"hello", b"{\"shipment\":", b"null", b"\"text\""] {
        for provider in [Provider::Kosmo, Provider::Kourier, Provider::Shipmondo] {
            let answer = answer(with_body(signed(provider), body)).await;
            answer.assert_refused(StatusCode::BAD_REQUEST, "the body");
        }
        for provider in PROVIDERS.into_iter().filter(|&p| signs_the_body(p)) {
            let answer = answer(body_signed(provider, body)).await;
            answer.assert_refused(StatusCode::BAD_REQUEST, "the body");
        }
    }
}

#[tokio::test]
async fn json_array_instead_of_object() {
    let kosmo = json!(["e-1", "SG-1", "2023-02-23T04:22:15Z", "DELIVERED"]).to_string();
    let request = kosmo_signed(kosmo, ["e-1", "SG-1", "2023-02-23T04:22:15Z"]);
    answer(request)
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "expected a JSON object");
    let kourier = json!(["delivery.updated", "abc123", "delivered"]).to_string();
    answer(with_body(signed(Provider::Kourier), kourier))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "expected a JSON object");
    let goshiip = json!({"shipment": {"data": ["5lqijs7rm9n0", "Delivered"]}}).to_string();
    answer(goshiip_signed(goshiip)).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "at shipment.data: invalid type: sequence",
    );
    for provider in [Provider::EasyPost, Provider::AfterShip, Provider::Sendcloud] {
        let array = json!(["evt_1", "trk_1", "delivered"]).to_string();
        answer(body_signed(provider, array))
            .await
            .assert_refused(StatusCode::BAD_REQUEST, "expected a JSON object");
    }
    // Shipmondo's payload: see shipmondo::refuses_a_verified_payload_that_is_not_shipmondos_shape.
}

#[tokio::test]
async fn non_utf8_in_a_field_the_event_reads() {
    // Kosmo's signed fields are read before the signature is checked.
    let body = [
        &br#"{"eventId":"e-1","orderId":"SG-"#[..],
        b"\xFF",
        br#"","timestamp":"2023-02-23T04:22:15Z","status":"DELIVERED"}"#,
    ]
    .concat();
    answer(kosmo_signed(
        body,
        ["e-1", "SG-\u{FFFD}", "2023-02-23T04:22:15Z"],
    ))
    .await
    .assert_refused(StatusCode::BAD_REQUEST, "invalid unicode code point");
    let body = b"{\"shipment\":{\"data\":{\"reference\":\"caf\xE9\",\"status\":\"Delivered\"}}}";
    answer(goshiip_signed(&body[..]))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "invalid unicode code point");
    for (provider, body) in [
        (
            Provider::EasyPost,
            &b"{\"id\":\"evt_\xFF\",\"description\":\"tracker.updated\"}"[..],
        ),
        (
            Provider::AfterShip,
            b"{\"event_id\":\"e\xFF\",\"msg\":{\"tracking_number\":\"1\",\"tag\":\"Delivered\"}}",
        ),
        (
            Provider::Sendcloud,
            b"{\"action\":\"parcel_status_changed\xFF\"}",
        ),
    ] {
        answer(body_signed(provider, body))
            .await
            .assert_refused(StatusCode::BAD_REQUEST, "invalid unicode code point");
    }
}

fn typed_goshiip() -> Router {
    crate::common::echo_app::<_, GoShiipEvent>(
        "/webhooks/goshiip",
        GoShiipSignature::new(secret(Provider::GoShiip)),
    )
}

#[tokio::test]
async fn non_utf8_in_a_field_the_event_skips() {
    // serde_json does not check UTF-8 in values it skips: a route taking only
    // the event accepts it, as the sender signed it; the typed payload refuses it.
    let body = b"{\"shipment\":{\"data\":{\"reference\":\"r-1\",\"status\":\"Delivered\",\"note\":\"caf\xE9\"}}}";
    let answer_event = answer(goshiip_signed(&body[..])).await;
    assert_eq!(answer_event.status, StatusCode::OK, "{}", answer_event.json);
    send(&typed_goshiip(), goshiip_signed(&body[..]))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "invalid unicode code point");
}

#[tokio::test]
async fn non_utf8_smd_header() {
    // A Shipmondo user's name may be Latin-1; it is read lossily, never refused.
    let typed = crate::common::echo_app::<_, ShipmondoEvent>(
        "/webhooks/shipmondo",
        ShipmondoJwt::new(secret(Provider::Shipmondo)),
    );
    let mut request = signed(Provider::Shipmondo);
    let user = axum::http::HeaderValue::from_bytes(b"Ren\xe9").unwrap();
    request.headers_mut().insert("smd-user", user);
    let answer = send(&typed, request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["payload"]["headers"]["user"], "Ren\u{FFFD}");
}

#[tokio::test]
async fn deep_json_nesting() {
    // serde_json skips values without recursing and reads them with a depth
    // limit of 128: the stack is safe either way.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let goshiip = format!(
        r#"{{"shipment":{{"data":{{"reference":"r-1","status":"Delivered","nested":{deep}}}}}}}"#
    );
    let answer_event = answer(goshiip_signed(goshiip.clone())).await;
    assert_eq!(answer_event.status, StatusCode::OK, "{}", answer_event.json);
    send(&typed_goshiip(), goshiip_signed(goshiip))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "recursion limit exceeded");
    let kosmo =
        format!(r#"{{"eventId":{deep},"orderId":"SG-1","timestamp":"2023-02-23T04:22:15Z"}}"#);
    answer(with_body(signed(Provider::Kosmo), kosmo))
        .await
        .assert_refused(
            StatusCode::BAD_REQUEST,
            "the body, at eventId: invalid type: sequence",
        );
}

#[tokio::test]
async fn huge_numbers() {
    // An id that would be rounded is refused: two ids must never become one.
    for id in ["18446744073709551616", "1e300"] {
        let payload = sample(Provider::Shipmondo).field("/data/id", json!(null));
        let json = payload.payload_json().replace("null", id);
        let token = shipmondo_jwt(secret(Provider::Shipmondo), &json);
        let request = with_body(
            signed(Provider::Shipmondo),
            json!({ "data": token }).to_string(),
        );
        answer(request)
            .await
            .assert_refused(StatusCode::BAD_REQUEST, "not an integer of at most 64 bits");
    }
    let big = r#"{"shipment":{"data":{"reference":"r-1","status":"Delivered","id":123456789012345678901234567890}}}"#;
    let typed = typed_goshiip();
    send(&typed, goshiip_signed(big))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "not an integer of at most 64 bits");
    // A number beyond f64 in a skipped field is skipped, in a typed one refused.
    let huge = r#"{"shipment":{"data":{"reference":"r-1","status":"Delivered","weight":1e400}}}"#;
    assert_eq!(answer(goshiip_signed(huge)).await.status, StatusCode::OK);
    send(&typed, goshiip_signed(huge))
        .await
        .assert_refused(StatusCode::BAD_REQUEST, "number out of range");
}

#[tokio::test]
async fn declared_length_over_the_cap() {
    let app = app(1024);
    for provider in PROVIDERS {
        let request = with_body(signed(provider), vec![b' '; 2048]);
        let answer = send(&app, request).await;
        assert_refused(
            provider,
            &answer,
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit of 1024",
        );
        // The rest of the body is never read, so the connection cannot be reused.
        assert_eq!(answer.headers["connection"], "close");
    }
    // Kourier checks its token first: an unauthenticated sender learns nothing more.
    let request = without_header(
        with_body(signed(Provider::Kourier), vec![b' '; 2048]),
        "authorization",
    );
    let answer = send(&app, request).await;
    assert_refused(
        Provider::Kourier,
        &answer,
        StatusCode::UNAUTHORIZED,
        "missing",
    );
    assert_eq!(answer.headers["connection"], "close");
}

/// A connection to `address` on which the request line and headers of a
/// signed `provider` request were sent, with `framing` (`Content-Length: n`
/// or `Transfer-Encoding: chunked`), and none of its body yet.
async fn send_head(address: SocketAddr, provider: Provider, framing: &str) -> TcpStream {
    let request = signed(provider);
    let mut head =
        format!("POST /webhooks/{provider} HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\n");
    for (name, value) in request.headers() {
        if name != "content-length" {
            head += &format!("{name}: {}\r\n", value.to_str().unwrap());
        }
    }
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all((head + "\r\n").as_bytes()).await.unwrap();
    stream
}

/// Reads an HTTP/1.1 response to its end: its status, whether it says
/// `connection: close`, and its JSON body.
async fn read_response(stream: &mut TcpStream) -> (u16, bool, Value) {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes));
    read.await.expect("the server answers").ok();
    let text = String::from_utf8_lossy(&bytes);
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let closes = head.to_ascii_lowercase().contains("\r\nconnection: close");
    (
        status,
        closes,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn chunked_body_over_the_cap() {
    let address = serve(app(4096)).await;
    for provider in PROVIDERS {
        let mut stream = send_head(address, provider, "Transfer-Encoding: chunked").await;
        // The server may answer and close before all chunks are sent.
        for _ in 0..8 {
            let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        let (status, closes, json) = read_response(&mut stream).await;
        assert_eq!(status, 413, "{provider}: {json}");
        assert_eq!(json["error"], "payload too large");
        assert!(
            closes,
            "{provider}: a 413 mid-body must close the connection"
        );
    }
}

#[tokio::test]
async fn body_cut_short() {
    let address = serve(app(4096)).await;
    for provider in PROVIDERS {
        let mut stream = send_head(address, provider, "Content-Length: 100").await;
        stream.write_all(b"{\"half\":").await.unwrap();
        stream.shutdown().await.unwrap();
        let (status, _, json) = read_response(&mut stream).await;
        assert_eq!(status, 400, "{provider}: {json}");
        assert_eq!(json["error"], "unreadable body");
    }
}

#[tokio::test]
async fn slow_body() {
    // The layers wait for the body as long as the server lets them; bound that
    // with tower-http's RequestBodyTimeoutLayer, as the README advises.
    let app = app(4096).layer(RequestBodyTimeoutLayer::new(Duration::from_millis(200)));
    let address = serve(app).await;
    for provider in PROVIDERS {
        let mut stream = send_head(address, provider, "Content-Length: 100").await;
        stream.write_all(b"{\"slow\":").await.unwrap();
        let (status, _, json) = read_response(&mut stream).await;
        assert_eq!(status, 400, "{provider}: {json}");
        assert_eq!(json["error"], "unreadable body");
        let details = json["details"].as_str().unwrap();
        assert!(details.contains("timeout"), "{details}");
    }
}

#[test]
fn every_row_of_the_table_is_a_test() {
    let docs = include_str!("../../docs/reliability.md");
    let table = docs
        .split_once("## Bad inputs")
        .expect("docs/reliability.md has a Bad inputs section")
        .1;
    let files = [
        ("bad_inputs", include_str!("bad_inputs.rs")),
        ("kosmo", include_str!("kosmo.rs")),
        ("kourier", include_str!("kourier.rs")),
        ("shipmondo", include_str!("shipmondo.rs")),
        ("goshiip", include_str!("goshiip.rs")),
        ("easypost", include_str!("easypost.rs")),
        ("aftership", include_str!("aftership.rs")),
        ("sendcloud", include_str!("sendcloud.rs")),
        ("shippo", include_str!("shippo.rs")),
        ("shipbob", include_str!("shipbob.rs")),
        ("standard_webhooks", include_str!("standard_webhooks.rs")),
        ("shipengine", include_str!("shipengine.rs")),
        ("layer", include_str!("layer.rs")),
        ("axum_fit", include_str!("axum_fit.rs")),
        ("examples", include_str!("examples.rs")),
        ("tenant", include_str!("tenant.rs")),
        ("memory", include_str!("../../benches/memory.rs")),
        ("stores", include_str!("../inbox/stores.rs")),
        ("crash", include_str!("../inbox/crash.rs")),
        ("faults", include_str!("../inbox/faults.rs")),
        ("schema", include_str!("../inbox/schema.rs")),
        ("your_handler", include_str!("your_handler.rs")),
        ("send", include_str!("../../examples/send.rs")),
        ("metrics", include_str!("../metrics.rs")),
        ("trace", include_str!("../trace.rs")),
        ("cli", include_str!("../cli.rs")),
        ("admin", include_str!("../inbox/admin.rs")),
        ("browser", include_str!("../inbox/browser.rs")),
    ];
    let mut named = Vec::new();
    for cell in table.split('`').skip(1).step_by(2) {
        let Some((file, test)) = cell.split_once("::") else {
            continue;
        };
        let (_, source) = files
            .iter()
            .find(|(name, _)| *name == file)
            .unwrap_or_else(|| {
                panic!("the table names tests/suite/{file}.rs, which this test does not read")
            });
        // Tests in a module (those behind a feature) are indented.
        let source: String = source
            .lines()
            .map(str::trim_start)
            .collect::<Vec<_>>()
            .join("\n");
        // PostgreSQL's tests are ignored unless a database is given.
        let needs_postgres =
            "#[cfg_attr(not(postgres_tests), ignore = \"needs SHIPMENT_WEBHOOKS_TEST_POSTGRES\")]";
        let is_test = |attribute: &str, signature: &str| {
            source.contains(&format!("{attribute}\n{signature} {test}("))
                || source.contains(&format!(
                    "{attribute}\n{needs_postgres}\n{signature} {test}("
                ))
        };
        // The inbox suite's tests run once per store, generated from these.
        let per_store = (file == "stores" || file == "admin")
            && source.contains(&format!("async fn {test}(backend: Backend)"))
            && source
                .split_once("every_store!(")
                .and_then(|(_, list)| list.split_once(");"))
                .is_some_and(|(list, _)| list.split(',').any(|name| name.trim() == test));
        assert!(
            is_test("#[tokio::test]", "async fn")
                || is_test(
                    "#[tokio::test(flavor = \"multi_thread\", worker_threads = 2)]",
                    "async fn"
                )
                || is_test("#[test]", "fn")
                || per_store,
            "the table names {file}::{test}, which is not a test there"
        );
        named.push(cell.to_owned());
    }
    let ours = include_str!("bad_inputs.rs");
    for rest in ours.split("#[tokio::test]\nasync fn ").skip(1) {
        let name = format!("bad_inputs::{}", rest.split_once('(').unwrap().0);
        assert!(
            named.contains(&name),
            "{name} is not in docs/reliability.md's table"
        );
    }
}

#[tokio::test]
async fn whitespace_around_a_proof_over_tcp() {
    // In-process a proof with surrounding blanks is refused
    // (`non_canonical_encodings`); on the wire hyper trims the optional
    // whitespace around a field value (RFC 9110, 5.5) before any layer sees
    // it, so the same request is accepted.
    let address = serve(app(1024 * 1024)).await;
    for provider in HEADER_PROOFS {
        let (parts, body) = signed(provider).into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let proof = proof_header(provider).unwrap();
        let mut head = format!(
            "POST /webhooks/{provider} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        for (name, value) in &parts.headers {
            let value = value.to_str().unwrap();
            match name.as_str() {
                name if name == proof => head += &format!("{name}: \t {value} \t\r\n"),
                _ => head += &format!("{name}: {value}\r\n"),
            }
        }
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all((head + "\r\n").as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let (status, _, json) = read_response(&mut stream).await;
        assert_eq!(status, 200, "{provider}: {json}");
        assert_eq!(json["provider"], provider.as_str());
    }
}
