//! The load benchmark's target (`benches/load.sh`): one server with a bare
//! route, a hand-written reference and the verified route, so all three are
//! measured under the same settings.
//!
//! - `POST /bare` reads the body as `Bytes` and answers 200.
//! - `POST /reference` does by hand only what any GoShiip receiver must: the
//!   HMAC-SHA256 of the body checked against the hex `X-Signature`, and the
//!   event's two fields decoded from the JSON; 200, else 401 or 400.
//! - `POST /webhooks/goshiip` verifies GoShiip's signature with this crate and
//!   answers 200 to the handler's `ShipmentEvent`.
//!
//! The secret is `GOSHIIP_WEBHOOK_SECRET`, else `your_secret_key`. Listens on
//! 127.0.0.1:$PORT (default 3001) with $WORKERS runtime threads (default 1).

use std::borrow::Cow;

use axum::extract::{Request, State};
use axum::{Router, body::Bytes, http::StatusCode, routing::post};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use shipment_webhooks::{GoShiipSignature, ShipmentEvent};

async fn bare(_body: Bytes) -> StatusCode {
    StatusCode::OK
}

/// The fields GoShiip's event is made of: `shipment.data.reference` and `.status`.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    shipment: Shipment<'a>,
}

#[derive(Deserialize)]
struct Shipment<'a> {
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    reference: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

async fn reference(State(key): State<Hmac<Sha256>>, request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    let Some(tag) = parts
        .headers
        .get("x-signature")
        .and_then(|tag| hex::decode(tag.as_bytes()).ok())
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE;
    };
    let mut mac = key;
    mac.update(&body);
    if mac.verify_slice(&tag).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<Fields<'_>>(&body) {
        Ok(Fields {
            shipment: Shipment {
                data: Data { reference, status },
            },
        }) => {
            std::hint::black_box((reference, status));
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn verified(_event: ShipmentEvent) -> StatusCode {
    StatusCode::OK
}

/// `$name` parsed, `default` when unset; an error naming the variable.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}={value:?} is not a valid value for {name}")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = setting("PORT", 3001)?;
    let workers: usize = setting("WORKERS", 1)?;
    if workers == 0 {
        return Err("WORKERS=0: a runtime needs at least one thread".into());
    }
    let secret =
        std::env::var("GOSHIIP_WEBHOOK_SECRET").unwrap_or_else(|_| "your_secret_key".into());
    let key = Hmac::<Sha256>::new_from_slice(secret.as_bytes())?;
    let app = Router::new()
        .route("/bare", post(bare))
        .route("/reference", post(reference).with_state(key))
        .route(
            "/webhooks/goshiip",
            post(verified).route_layer(GoShiipSignature::new(secret)),
        );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|error| format!("127.0.0.1:{port} (PORT): {error}"))?;
            axum::serve(listener, app)
                .await
                .map_err(|error| error.to_string())
        })?;
    Ok(())
}
