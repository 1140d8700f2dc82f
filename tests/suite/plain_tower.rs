//! Verifying without axum: each layer's `verify` call, and a layer in front
//! of a `tower::service_fn` served by plain hyper on 127.0.0.1.

use std::convert::Infallible;

use crate::common::{PROVIDERS, with_body};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use shipment_webhooks::bytes::Bytes;
use shipment_webhooks::http::Response;
use shipment_webhooks::testing::{
    SHIPENGINE_DEMO_KEY_ID, SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, shipengine_demo_jwks,
};
use shipment_webhooks::{
    AfterShipEvent, AfterShipSignature, Body, EasyPostEvent, EasyPostSignature, GoShiipEvent,
    GoShiipSignature, KosmoEvent, KosmoSignature, KourierBearer, KourierEvent, Provider,
    SendcloudEvent, SendcloudSignature, ShipBobEvent, ShipBobSignature, ShipEngineEvent,
    ShipEngineSignature, ShipmondoEvent, ShipmondoJwt, ShippoEvent, ShippoSignature, Verified,
    VerifiedWebhook, WebhookRejection,
};
use tower::{Layer, ServiceBuilder, ServiceExt};

const SECRET: &str = "a-webhook-secret-of-thirty-two-bytes!";
/// ShipBob's secrets are Standard Webhooks', `whsec_` and base64.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The secret `provider`'s layer is configured with.
fn secret(provider: Provider) -> &'static str {
    match provider {
        Provider::ShipBob => WHSEC,
        // Its layer verifies with the demo JWKS.
        Provider::ShipEngine => SHIPENGINE_DEMO_PRIVATE_KEY,
        _ => SECRET,
    }
}

/// A secret, or private key, the layer was not configured with.
fn forger(provider: Provider) -> &'static str {
    match provider {
        Provider::ShipEngine => include_str!("../fixtures/shipengine/other-private-key.pem"),
        _ => "another-secret-of-32-bytes-or-more",
    }
}

fn shipengine() -> ShipEngineSignature {
    ShipEngineSignature::from_jwks(shipengine_demo_jwks()).expect("the demo JWKS")
}

/// `request`'s headers and body, as a server that is not Tower has them.
async fn head_and_body(request: Request<axum::body::Body>) -> (HeaderMap, Bytes) {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.headers, body)
}

/// `provider`'s layer's own `verify`: the webhook, or its refusal.
fn verify(
    provider: Provider,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<VerifiedWebhook, WebhookRejection> {
    let verified = match provider {
        Provider::Kosmo => KosmoSignature::new(SECRET).verify(headers, body),
        Provider::Kourier => KourierBearer::new(SECRET).verify(headers, body),
        Provider::Shipmondo => ShipmondoJwt::new(SECRET).verify(headers, body),
        Provider::GoShiip => GoShiipSignature::new(SECRET).verify(headers, body),
        Provider::EasyPost => EasyPostSignature::new(SECRET).verify(headers, body),
        Provider::AfterShip => AfterShipSignature::new(SECRET).verify(headers, body),
        Provider::Sendcloud => SendcloudSignature::new(SECRET).verify(headers, body),
        Provider::Shippo => ShippoSignature::new(SECRET).verify(headers, body),
        Provider::ShipBob => ShipBobSignature::new(WHSEC).verify(headers, body),
        Provider::ShipEngine => shipengine().verify(headers, body),
        other => unreachable!("no layer for {other}"),
    };
    match verified? {
        Verified::Webhook(webhook) => Ok(webhook),
        other => panic!("not a webhook: {other:?}"),
    }
}

#[tokio::test]
async fn each_layer_verifies_headers_and_a_body_without_a_framework() {
    for provider in PROVIDERS {
        let (headers, body) =
            head_and_body(Webhook::sample(provider, "delivered").sign(secret(provider))).await;
        let verified = verify(provider, &headers, body.clone()).expect("a signed webhook");
        assert_eq!(verified.event().provider, provider);
        let label = match provider {
            Provider::ShipEngine => SHIPENGINE_DEMO_KEY_ID,
            _ => "primary",
        };
        assert_eq!(verified.secret().label(), label);
        let typed = match provider {
            Provider::Kosmo => verified.payload::<KosmoEvent>().map(|p| json!(p)),
            Provider::Kourier => verified.payload::<KourierEvent>().map(|p| json!(p)),
            Provider::Shipmondo => verified.payload::<ShipmondoEvent>().map(|p| json!(p)),
            Provider::GoShiip => verified.payload::<GoShiipEvent>().map(|p| json!(p)),
            Provider::EasyPost => verified.payload::<EasyPostEvent>().map(|p| json!(p)),
            Provider::AfterShip => verified.payload::<AfterShipEvent>().map(|p| json!(p)),
            Provider::Sendcloud => verified.payload::<SendcloudEvent>().map(|p| json!(p)),
            Provider::Shippo => verified.payload::<ShippoEvent>().map(|p| json!(p)),
            Provider::ShipBob => verified.payload::<ShipBobEvent>().map(|p| json!(p)),
            Provider::ShipEngine => verified.payload::<ShipEngineEvent>().map(|p| json!(p)),
            other => unreachable!("no payload for {other}"),
        };
        assert!(typed.is_ok(), "{provider}: {typed:?}");
        if provider != Provider::Shipmondo {
            assert_eq!(verified.json(), &body, "the body as received");
        }

        // Another provider's payload is the programmer's mistake: 500.
        let wrong = if provider == Provider::GoShiip {
            verified.payload::<KosmoEvent>().map(|_| ())
        } else {
            verified.payload::<GoShiipEvent>().map(|_| ())
        };
        assert_eq!(
            wrong.unwrap_err().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );

        let forged =
            head_and_body(Webhook::sample(provider, "delivered").sign(forger(provider))).await;
        let refused = verify(provider, &forged.0, forged.1).unwrap_err();
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "{provider}: {refused}"
        );
    }
}

#[tokio::test]
async fn the_dedup_key_is_the_sha256_of_what_the_provider_signed() {
    for provider in PROVIDERS {
        let webhook = Webhook::sample(provider, "delivered");
        let (headers, body) = head_and_body(webhook.clone().sign(secret(provider))).await;
        let verified = verify(provider, &headers, body.clone()).expect("a signed webhook");
        let payload = webhook.payload();
        let signed = match provider {
            Provider::Kosmo => ["eventId", "orderId", "timestamp"]
                .map(|name| payload[name].as_str().expect("a signed field"))
                .concat()
                .into_bytes(),
            Provider::Shipmondo => {
                let envelope: Value = serde_json::from_slice(&body).expect("JSON");
                envelope["data"]
                    .as_str()
                    .expect("a JWT")
                    .as_bytes()
                    .to_vec()
            }
            // EasyPost's event id (`evt_…`): a retry's delivery fields may change.
            Provider::EasyPost => payload["id"]
                .as_str()
                .expect("an event id")
                .as_bytes()
                .to_vec(),
            // Its id and body, not the attempt's timestamp: a retry is a duplicate.
            Provider::ShipBob => [headers["webhook-id"].as_bytes(), b".", &body].concat(),
            // Its body, not `t` (nor ShipEngine's tracking webhook's signed
            // time): a retry signed again is a duplicate.
            // Kourier signs nothing: its body is its key.
            Provider::Shippo
            | Provider::ShipEngine
            | Provider::GoShiip
            | Provider::Kourier
            | Provider::AfterShip
            | Provider::Sendcloud => body.to_vec(),
            other => unreachable!("no signed bytes for {other}"),
        };
        assert_eq!(
            verified.dedup_key().as_bytes(),
            &hmac_sha256::Hash::hash(&signed),
            "{provider}"
        );
    }
}

#[tokio::test]
async fn verify_refuses_exactly_as_the_layer_does() {
    for provider in PROVIDERS {
        let signed = || Webhook::sample(provider, "delivered").sign(secret(provider));
        let requests = [
            signed(),
            Webhook::sample(provider, "delivered").sign(forger(provider)),
            with_body(signed(), "not json"),
            with_body(signed(), vec![b' '; 2 * 1024 * 1024]),
            crate::common::without_header(
                signed(),
                crate::common::proof_header(provider).unwrap_or("x"),
            ),
        ];
        for request in requests {
            let (headers, body) = head_and_body(request).await;
            let direct = verify(provider, &headers, body.clone());
            let mut request = Request::new(axum::body::Body::from(body));
            *request.headers_mut() = headers;
            let layered = layer_answer(provider, request).await;
            match direct {
                Ok(_) => assert_eq!(layered.0, StatusCode::OK, "{provider}: {}", layered.1),
                Err(rejection) => {
                    assert_eq!(layered.0, rejection.status(), "{provider}: {}", layered.1);
                    assert_eq!(layered.1["details"], rejection.details(), "{provider}");
                }
            }
        }
    }
}

/// What `provider`'s layer answers to `request` in front of a service that answers 200.
async fn layer_answer(
    provider: Provider,
    request: Request<axum::body::Body>,
) -> (StatusCode, Value) {
    let ok = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(axum::body::Body::from("{}")))
    });
    let response = match provider {
        Provider::Kosmo => KosmoSignature::new(SECRET).layer(ok).oneshot(request).await,
        Provider::Kourier => KourierBearer::new(SECRET).layer(ok).oneshot(request).await,
        Provider::Shipmondo => ShipmondoJwt::new(SECRET).layer(ok).oneshot(request).await,
        Provider::GoShiip => {
            GoShiipSignature::new(SECRET)
                .layer(ok)
                .oneshot(request)
                .await
        }
        Provider::EasyPost => {
            EasyPostSignature::new(SECRET)
                .layer(ok)
                .oneshot(request)
                .await
        }
        Provider::AfterShip => {
            AfterShipSignature::new(SECRET)
                .layer(ok)
                .oneshot(request)
                .await
        }
        Provider::Sendcloud => {
            SendcloudSignature::new(SECRET)
                .layer(ok)
                .oneshot(request)
                .await
        }
        Provider::Shippo => {
            ShippoSignature::new(SECRET)
                .layer(ok)
                .oneshot(request)
                .await
        }
        Provider::ShipBob => {
            ShipBobSignature::new(WHSEC)
                .layer(ok)
                .oneshot(request)
                .await
        }
        Provider::ShipEngine => shipengine().layer(ok).oneshot(request).await,
        other => unreachable!("no layer for {other}"),
    }
    .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn shipmondos_verify_tells_a_connection_test_apart() {
    let (headers, body) = head_and_body(Webhook::shipmondo_connection_test().sign(SECRET)).await;
    match ShipmondoJwt::new(SECRET).verify(&headers, body).unwrap() {
        Verified::ConnectionTest(test) => assert_eq!(test.webhook.as_deref(), Some("Webhook1")),
        other => panic!("not a connection test: {other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_answers_in_any_body_type() {
    let (headers, body) = head_and_body(Webhook::goshiip("Delivered").sign("wrong")).await;
    let rejection = GoShiipSignature::new(SECRET)
        .verify(&headers, body)
        .unwrap_err();
    let response: Response<Full<Bytes>> = rejection.to_response();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "unauthorized");
}

#[tokio::test]
async fn a_layer_in_front_of_a_service_fn_served_by_plain_hyper() {
    async fn on_webhook(request: Request<Body>) -> Result<Response<Full<Bytes>>, Infallible> {
        let verified = request
            .extensions()
            .get::<VerifiedWebhook>()
            .expect("verified");
        let answer = json!({"event": verified.event(), "secret": verified.secret().label()});
        Ok(Response::new(Full::new(Bytes::from(answer.to_string()))))
    }
    let service = ServiceBuilder::new()
        .layer(GoShiipSignature::new(SECRET))
        .service(tower::service_fn(on_webhook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let send = |secret: &str| {
        let request = Webhook::goshiip("Delivered")
            .uri(format!("http://{address}/any/path").parse().unwrap())
            .sign(secret);
        let client = client.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let response = client
                .request(Request::from_parts(parts, Full::new(body)))
                .await
                .unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&body).unwrap())
        }
    };
    let (status, json) = send(SECRET).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["event"]["id"], "5lqijs7rm9n0");
    assert_eq!(json["secret"], "primary");
    let (status, json) = send("wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "unauthorized");
}
