//! Kourier: `Authorization: Bearer <token>`, through a real Router.

use crate::common::{Answer, echo_app, send, with_body, with_header, without_header};
use axum::http::{HeaderName, StatusCode};
use serde_json::json;
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{ConfigError, KourierBearer, KourierEvent};

const TOKEN: &str = "WEBHOOK_SECRET_TOKEN";

async fn answer(request: axum::http::Request<axum::body::Body>) -> Answer {
    let app = echo_app::<_, KourierEvent>("/webhooks/kourier", KourierBearer::new(TOKEN));
    send(&app, request).await
}

#[tokio::test]
async fn accepts_the_example_payload_from_kouriers_page() {
    let answer = answer(Webhook::kourier("in_transit").sign(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["event"],
        json!({
            "provider": "kourier", "id": "abc123", "status": "in_transit", "raw_status": "in_transit",
            "timestamp": "2024-09-14T14:30:00Z", "event_id": null,
        })
    );
    assert_eq!(answer.json["payload"]["event"], "delivery.updated");
}

#[tokio::test]
async fn a_cancelled_event_is_cancelled_whatever_its_status() {
    let request = Webhook::kourier("in_transit")
        .field("/event", "delivery.cancelled")
        .field("/reason", "customer")
        .sign(TOKEN);
    let answer = answer(request).await;
    assert_eq!(answer.json["event"]["status"], "cancelled");
    assert_eq!(answer.json["payload"]["reason"], "customer");
}

#[tokio::test]
async fn the_scheme_is_case_insensitive_and_may_be_followed_by_several_spaces() {
    for header in [
        "bearer WEBHOOK_SECRET_TOKEN",
        "BEARER WEBHOOK_SECRET_TOKEN",
        "Bearer   WEBHOOK_SECRET_TOKEN",
    ] {
        let request = with_header(
            Webhook::kourier("delivered").sign(TOKEN),
            "authorization",
            header,
        );
        assert_eq!(answer(request).await.status, StatusCode::OK, "{header}");
    }
}

async fn assert_refused_with_challenge(
    request: axum::http::Request<axum::body::Body>,
    details: &str,
) {
    let answer = answer(request).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, details);
    assert_eq!(answer.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn refuses_a_request_without_authorization() {
    let request = without_header(Webhook::kourier("delivered").sign(TOKEN), "authorization");
    assert_refused_with_challenge(request, "the authorization header is missing").await;
}

#[tokio::test]
async fn refuses_another_scheme() {
    let request = with_header(
        Webhook::kourier("delivered").sign(TOKEN),
        "authorization",
        "Basic V0VCSE9PSw==",
    );
    assert_refused_with_challenge(request, "the authorization scheme is not Bearer").await;
}

#[tokio::test]
async fn refuses_a_scheme_without_a_token() {
    for header in ["Bearer", "Bearer "] {
        let request = with_header(
            Webhook::kourier("delivered").sign(TOKEN),
            "authorization",
            header,
        );
        assert_refused_with_challenge(request, "the authorization header").await;
    }
}

#[tokio::test]
async fn refuses_a_wrong_token_and_near_misses() {
    for token in [
        "WEBHOOK_SECRET_TOKEM",
        "webhook_secret_token",
        "WEBHOOK_SECRET_TOKEN2",
        "WEBHOOK",
    ] {
        let request = Webhook::kourier("delivered").sign(token);
        assert_refused_with_challenge(request, "the bearer token matches no configured token")
            .await;
    }
}

#[tokio::test]
async fn refuses_two_authorization_headers() {
    let mut request = Webhook::kourier("delivered").sign(TOKEN);
    request.headers_mut().append(
        "authorization",
        "Bearer WEBHOOK_SECRET_TOKEN".parse().unwrap(),
    );
    assert_refused_with_challenge(request, "appears more than once").await;
}

#[tokio::test]
async fn refuses_a_verified_body_without_a_delivery_id() {
    let request = Webhook::kourier("delivered")
        .without("/delivery_id")
        .sign(TOKEN);
    let answer = answer(request).await;
    answer.assert_refused(StatusCode::BAD_REQUEST, "missing field `delivery_id`");
    assert!(answer.headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn refuses_a_verified_body_that_is_not_json() {
    let request = with_body(Webhook::kourier("delivered").sign(TOKEN), "{\"event\":");
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at event: EOF while parsing a value",
    );
}

#[tokio::test]
async fn refuses_a_timestamp_that_is_not_rfc_3339_or_not_a_string() {
    let request = Webhook::kourier("delivered")
        .field("/timestamp", "14/09/2024")
        .sign(TOKEN);
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "timestamp: \"14/09/2024\" is not an RFC 3339 date-time",
    );
    let request = Webhook::kourier("delivered")
        .field("/timestamp", 1726324200)
        .sign(TOKEN);
    answer(request).await.assert_refused(
        StatusCode::BAD_REQUEST,
        "the body, at timestamp: invalid type: integer",
    );
}

#[tokio::test]
async fn refuses_a_wrong_token_without_reading_the_body() {
    // A body that never ends: reading it would answer 413, not 401.
    let endless = futures_util::stream::repeat_with(|| {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(&[b'a'; 1024]))
    });
    let (parts, _) = Webhook::kourier("delivered").sign("guessed").into_parts();
    let request = axum::http::Request::from_parts(parts, axum::body::Body::from_stream(endless));
    assert_refused_with_challenge(request, "matches no configured token").await;
}

#[tokio::test]
async fn accepts_a_rotated_token_and_names_it() {
    let layer = KourierBearer::new(TOKEN).with_secret("new", "NEW_TOKEN");
    let app = echo_app::<_, KourierEvent>("/webhooks/kourier", layer);
    let answer = send(&app, Webhook::kourier("delivered").sign("NEW_TOKEN")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["secret"], "new");
}

#[test]
fn debug_never_shows_a_token() {
    let debug = format!("{:?}", KourierBearer::new(TOKEN));
    assert!(!debug.contains("WEBHOOK"), "{debug}");
}

#[tokio::test]
async fn reads_the_token_from_another_header_with_another_scheme_or_none() {
    let in_header = |scheme: Option<&str>| {
        let layer = KourierBearer::new(TOKEN)
            .token_header(HeaderName::from_static("x-kourier-token"), scheme);
        echo_app::<_, KourierEvent>("/webhooks/kourier", layer)
    };
    let request = |value: &str| {
        let signed = without_header(Webhook::kourier("delivered").sign(TOKEN), "authorization");
        with_header(signed, "x-kourier-token", value)
    };

    let bare = in_header(None);
    let answer = send(&bare, request(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let answer = send(&bare, request(&format!("Bearer {TOKEN}"))).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "matches no configured token");
    // Only `Authorization: Bearer` gets a Bearer challenge.
    assert!(!answer.headers.contains_key("www-authenticate"));
    send(&bare, Webhook::kourier("delivered").sign(TOKEN))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "the x-kourier-token header is missing",
        );

    let token_scheme = in_header(Some("Token"));
    let answer = send(&token_scheme, request(&format!("token {TOKEN}"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    send(&token_scheme, request(&format!("Bearer {TOKEN}")))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "the x-kourier-token scheme is not Token",
        );
    send(&token_scheme, request("Token ")).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-kourier-token header has an empty token",
    );
}

#[test]
fn a_scheme_no_request_could_carry_is_refused_at_start_up() {
    for scheme in ["Bearer ", "", "Bea rer", "Bearer\t"] {
        let panic = std::panic::catch_unwind(|| {
            KourierBearer::new(TOKEN).token_header(HeaderName::from_static("x-token"), Some(scheme))
        })
        .expect_err("an impossible scheme panics");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains("a token scheme must be an HTTP token"),
            "{message}"
        );
        let refused = KourierBearer::new(TOKEN).try_token_header("x-token", Some(scheme));
        assert_eq!(
            refused.unwrap_err(),
            ConfigError::InvalidScheme {
                scheme: scheme.to_owned()
            }
        );
    }
}

#[test]
fn a_header_name_read_at_run_time_is_checked() {
    let refused = KourierBearer::new(TOKEN).try_token_header("x token", None);
    assert_eq!(
        refused.unwrap_err(),
        ConfigError::InvalidHeaderName {
            name: "x token".to_owned()
        }
    );
    assert!(
        KourierBearer::new(TOKEN)
            .try_token_header("X-Token", None)
            .is_ok()
    );
}
