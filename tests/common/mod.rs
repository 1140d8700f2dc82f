//! What every test file needs: a router that echoes what the layer verified,
//! and a way to send it a request and read the answer.
#![allow(dead_code, unreachable_pub)]

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use shipment_webhooks::{MatchedSecret, Provider, ShipmentEvent};
use tower::Layer;
use tower::ServiceExt;

/// A route at `/webhooks/<provider>` behind `layer` whose handler answers with
/// the event, the matched secret's label, the typed payload `P` and the body's length.
pub fn echo_app<L, P>(path: &str, layer: L) -> Router
where
    L: Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<
            Request<Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request<Body>>>::Future: Send + 'static,
    P: FromRequestParts<()> + Serialize + Send + 'static,
{
    async fn echo<P: Serialize>(
        event: ShipmentEvent,
        secret: MatchedSecret,
        payload: P,
        body: Bytes,
    ) -> Json<Value> {
        Json(json!({
            "event": event,
            "secret": secret.label(),
            "payload": payload,
            "body_len": body.len(),
        }))
    }
    Router::new().route(path, post(echo::<P>).route_layer(layer))
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("a router never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the answer is readable");
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("the answer is JSON: {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        headers,
        json,
    }
}

impl Answer {
    /// Asserts a refusal whose `reason` (its `RejectionKind`) is `reason`.
    #[track_caller]
    pub fn assert_reason(&self, reason: &str) {
        assert_eq!(self.json["reason"], reason, "{}", self.json);
    }

    /// Asserts a refusal with `status` whose `details` contain `details`.
    #[track_caller]
    pub fn assert_refused(&self, status: StatusCode, details: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(
            self.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        let expected_error = match status.as_u16() {
            401 => "unauthorized",
            413 => "payload too large",
            500 => "missing webhook layer",
            503 => "service unavailable",
            _ => "invalid payload",
        };
        assert_eq!(self.json["error"], expected_error, "{}", self.json);
        let actual = self.json["details"].as_str().expect("details is a string");
        assert!(
            actual.contains(details),
            "details {actual:?} should contain {details:?}"
        );
    }
}

/// `request` with its body replaced by `body`, headers untouched.
pub fn with_body(request: Request<Body>, body: impl Into<Bytes>) -> Request<Body> {
    let (mut parts, _) = request.into_parts();
    parts.headers.remove("content-length");
    Request::from_parts(parts, Body::from(body.into()))
}

/// `request` with header `name` set to `value`.
pub fn with_header(mut request: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert(name, value.parse().expect("a valid header value"));
    request
}

/// `request` without header `name`.
pub fn without_header(mut request: Request<Body>, name: &str) -> Request<Body> {
    request.headers_mut().remove(name);
    request
}

pub const PROVIDERS: [Provider; 10] = [
    Provider::Kosmo,
    Provider::Kourier,
    Provider::Shipmondo,
    Provider::GoShiip,
    Provider::EasyPost,
    Provider::AfterShip,
    Provider::Sendcloud,
    Provider::Shippo,
    Provider::ShipBob,
    Provider::ShipEngine,
];

/// The header carrying `provider`'s proof; Shipmondo's is the token in the body.
pub fn proof_header(provider: Provider) -> Option<&'static str> {
    match provider {
        Provider::Kosmo => Some("x-kosmo-signature"),
        Provider::Kourier => Some("authorization"),
        Provider::GoShiip => Some("x-signature"),
        Provider::EasyPost => Some("x-hmac-signature"),
        Provider::AfterShip => Some("aftership-hmac-sha256"),
        Provider::Sendcloud => Some("sendcloud-signature"),
        Provider::Shippo => Some("shippo-auth-signature"),
        Provider::ShipBob => Some("webhook-signature"),
        Provider::ShipEngine => Some("x-shipengine-rsa-sha256-signature"),
        Provider::Shipmondo => None,
        other => unreachable!("no proof header for {other}"),
    }
}

/// `encoded` (base64 of `alphabet`) with its last character's `bits` unused
/// low bits set: a strict decoder refuses it, a lenient one reads the same bytes.
pub fn set_unused_bits(encoded: &str, alphabet: &[u8], bits: u32) -> String {
    let (head, last) = encoded.split_at(encoded.len() - 1);
    let index = alphabet
        .iter()
        .position(|&c| c == last.as_bytes()[0])
        .expect("a character of the alphabet");
    format!("{head}{}", alphabet[index | ((1 << bits) - 1)] as char)
}

/// Serves `app` on 127.0.0.1 until the test ends, for tests of what crosses a socket.
pub async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// Runs `run` on a runtime and a thread of their own, then drops the
/// runtime with whatever it spawned still running: a crash, as far as
/// anything that runtime held can tell (a worker's leases, its connections).
pub fn crash_after<F>(run: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(run());
    })
    .join()
    .expect("the crashed runtime's thread");
}
