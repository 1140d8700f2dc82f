//! The load benchmark's target (`benches/load.sh`): the same server with a bare
//! route and a verified one, so both are measured under the same settings.
//!
//! `POST /bare` reads the body as `Bytes` and answers 200; `POST /webhooks/goshiip`
//! verifies GoShiip's signature (secret `GOSHIIP_WEBHOOK_SECRET`, else
//! `your_secret_key`) and answers 200 to the handler's `ShipmentEvent`.
//! Listens on 127.0.0.1:$PORT (default 3001) with $WORKERS runtime threads (default 1).

use axum::{Router, body::Bytes, http::StatusCode, routing::post};
use shipment_webhooks::{GoShiipSignature, ShipmentEvent};

async fn bare(_body: Bytes) -> StatusCode {
    StatusCode::OK
}

async fn verified(_event: ShipmentEvent) -> StatusCode {
    StatusCode::OK
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT").map_or(Ok(3001), |port| port.parse())?;
    let workers: usize = std::env::var("WORKERS").map_or(Ok(1), |workers| workers.parse())?;
    let secret =
        std::env::var("GOSHIIP_WEBHOOK_SECRET").unwrap_or_else(|_| "your_secret_key".into());
    let app = Router::new().route("/bare", post(bare)).route(
        "/webhooks/goshiip",
        post(verified).route_layer(GoShiipSignature::new(secret)),
    );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            axum::serve(listener, app).await
        })?;
    Ok(())
}
