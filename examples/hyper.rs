//! A webhook endpoint with no axum at all: hyper 1, hyper-util and a
//! `tower::service_fn`. `cargo run --example hyper`, then, from another
//! terminal, `cargo run --example send -- goshiip http://127.0.0.1:3000/webhooks/goshiip`.
//!
//! The layer reads and checks the body, then calls the service with the
//! verified bytes and a `VerifiedWebhook` in the request's extensions;
//! refusals it answers itself, in the service's response body type.

#[path = "support/port.rs"]
mod port;

use std::convert::Infallible;

use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use shipment_webhooks::bytes::Bytes;
use shipment_webhooks::http::{Request, Response};
use shipment_webhooks::{Body, GoShiipSignature, VerifiedWebhook};
use tower::ServiceBuilder;

async fn on_webhook(request: Request<Body>) -> Result<Response<Full<Bytes>>, Infallible> {
    let event = request
        .extensions()
        .get::<VerifiedWebhook>()
        .expect("the layer passes on verified webhooks only")
        .event();
    println!("{} {} is now {}", event.provider, event.id, event.status);
    Ok(Response::new(Full::new(Bytes::from_static(b"{}"))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret =
        std::env::var("GOSHIIP_WEBHOOK_SECRET").unwrap_or_else(|_| "your_secret_key".into());
    let port = port::port()?;
    let service = ServiceBuilder::new()
        .layer(GoShiipSignature::new(secret))
        .service(tower::service_fn(on_webhook));
    let listener = port::bind(port).await?;
    println!("GoShiip webhooks on http://127.0.0.1:{port}/ (any path)");
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection failed: {error}");
            }
        });
    }
}
