//! Fire a correctly signed, realistic webhook at a local endpoint, as the
//! provider would, and show what it answered.
//!
//! ```text
//! cargo run --example send -- <kosmo|kourier|shipmondo|goshiip|easypost|aftership|sendcloud|shippo|shipbob|shipengine> <url>
//!     [--status S] [--secret S] [--forge] [--resource orders|shipments|monitor]
//!     [--twice] [--older-after-newer]
//! ```
//!
//! For an endpoint with an inbox (`cargo run --example inbox`): `--twice`
//! sends the same webhook twice, as a provider retrying does, and the inbox
//! answers the second `duplicate`; `--older-after-newer` sends the webhook
//! stamped now, then an earlier status of the same shipment stamped a minute
//! before, as Kosmo's out-of-order deliveries do, and the inbox's worker
//! marks the older one `superseded` instead of handling it. Shippo and ShipBob
//! sign each delivery attempt at the time it is sent; `--older-after-newer`
//! stamps the event's own time in the body (`status_date`, `event_time`).
//!
//! For ShipEngine, `--status` is a `status_code` (`DE` by default, `IT`,
//! `SP`...); the webhook is signed with an RSA private key (a PKCS#8 PEM,
//! `--secret` or SHIPENGINE_PRIVATE_KEY; by default the testing kit's demo
//! key, whose JWKS `cargo run --example server` verifies with when
//! SHIPENGINE_JWKS is unset), stamped with the current time, and `--forge`
//! changes one character of the signature.
//!
//! For Shipmondo, `--resource` picks an `Orders` webhook (the default, its
//! `order_status`), a `Shipments` one (its action, `create` or `cancel`) or a
//! `Shipment Monitor` one (its `current_status`, such as `EN_ROUTE`). For
//! Sendcloud, `--status` is a parcel status id (`11`) or a status name
//! (`delivered`).
//!
//! The secret defaults to the provider's variable (KOSMO_WEBHOOK_SECRET,
//! KOURIER_WEBHOOK_TOKEN, SHIPMONDO_WEBHOOK_KEY, GOSHIIP_WEBHOOK_SECRET,
//! EASYPOST_WEBHOOK_SECRET, AFTERSHIP_WEBHOOK_SECRET, SENDCLOUD_WEBHOOK_SECRET,
//! SHIPPO_WEBHOOK_SECRET, SHIPBOB_WEBHOOK_SECRET,
//! SHIPENGINE_PRIVATE_KEY), else
//! the demo value `cargo run --example server` uses. `--forge` signs with a
//! wrong secret to check that the endpoint refuses it. Exits 0 when the
//! endpoint did what it should (2xx for a real webhook, refusal for a forged
//! one) within the provider's deadline (Shipmondo 3 s, EasyPost 7 s as
//! integrations report it, Shippo 3 s as
//! integrators report it, ShipBob 15 s, the others 30 s), 1
//! when not, 2 on a usage error. Plain `http://` only: for local endpoints,
//! no tunnel needed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Uri;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use shipment_webhooks::Provider;
use shipment_webhooks::testing::{SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, sendcloud_status_id};

const USAGE: &str = "usage: send <kosmo|kourier|shipmondo|goshiip|easypost|aftership|sendcloud|shippo|shipbob|shipengine> <url> \
     [--status S] [--secret S] [--forge] \
     [--resource orders|shipments|monitor] [--twice] [--older-after-newer]";

struct Args {
    provider: Provider,
    url: Uri,
    status: Option<String>,
    secret: Option<String>,
    resource: String,
    forge: bool,
    twice: bool,
    older_after_newer: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let provider: Provider = args
        .next()
        .ok_or("missing the provider")?
        .parse()
        .map_err(|error: shipment_webhooks::UnknownProvider| error.to_string())?;
    let url = args.next().ok_or("missing the URL")?;
    let url: Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    if url.scheme_str() != Some("http") {
        return Err(format!("{url} is not an http:// URL"));
    }
    let mut parsed = Args {
        provider,
        url,
        status: None,
        secret: None,
        resource: "orders".into(),
        forge: false,
        twice: false,
        older_after_newer: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--status" => parsed.status = Some(value()?),
            "--secret" => {
                let secret = value()?;
                if secret.is_empty() {
                    return Err("--secret must not be empty".into());
                }
                parsed.secret = Some(secret);
            }
            "--resource" => parsed.resource = value()?,
            "--forge" => parsed.forge = true,
            "--twice" => parsed.twice = true,
            "--older-after-newer" => parsed.older_after_newer = true,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(parsed)
}

/// The provider's secret variable and the demo value `examples/server.rs` falls back to.
fn secret_source(provider: Provider) -> (&'static str, &'static str) {
    match provider {
        Provider::Kosmo => (
            "KOSMO_WEBHOOK_SECRET",
            "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm",
        ),
        Provider::Kourier => ("KOURIER_WEBHOOK_TOKEN", "demo-kourier-token"),
        Provider::Shipmondo => (
            "SHIPMONDO_WEBHOOK_KEY",
            "demo-shipmondo-key-change-me-in-prod",
        ),
        Provider::GoShiip => ("GOSHIIP_WEBHOOK_SECRET", "your_secret_key"),
        Provider::EasyPost => ("EASYPOST_WEBHOOK_SECRET", "A1B2C3"),
        Provider::AfterShip => ("AFTERSHIP_WEBHOOK_SECRET", "demo-aftership-secret"),
        Provider::Sendcloud => ("SENDCLOUD_WEBHOOK_SECRET", "secretkey"),
        Provider::Shippo => ("SHIPPO_WEBHOOK_SECRET", "demo-shippo-secret"),
        Provider::ShipBob => (
            "SHIPBOB_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        // The private key signs; the server verifies with its public half.
        Provider::ShipEngine => ("SHIPENGINE_PRIVATE_KEY", SHIPENGINE_DEMO_PRIVATE_KEY),
        other => unreachable!("no secret for {other}"),
    }
}

/// A realistic webhook, in `status` or a usual one.
fn webhook(args: &Args) -> Result<Webhook, String> {
    let status = args.status.as_deref();
    Ok(match (args.provider, args.resource.as_str()) {
        (Provider::Kosmo, _) => Webhook::kosmo(status.unwrap_or("DELIVERED")),
        (Provider::Kourier, _) => Webhook::kourier(status.unwrap_or("delivered")),
        (Provider::Shipmondo, "orders") => Webhook::shipmondo_order(status.unwrap_or("sent")),
        (Provider::Shipmondo, "shipments") => {
            Webhook::shipmondo_shipment(status.unwrap_or("create"))
        }
        (Provider::Shipmondo, "monitor") => {
            Webhook::shipmondo_monitor(status.unwrap_or("EN_ROUTE"))
        }
        (Provider::Shipmondo, other) => {
            return Err(format!("unknown Shipmondo resource {other:?}"));
        }
        (Provider::GoShiip, _) => Webhook::goshiip(status.unwrap_or("Delivered")),
        (Provider::EasyPost, _) => Webhook::easypost(status.unwrap_or("delivered")),
        (Provider::AfterShip, _) => Webhook::aftership(status.unwrap_or("Delivered")),
        (Provider::Sendcloud, _) => {
            Webhook::sendcloud(sendcloud_status_id(status.unwrap_or("delivered")))
        }
        (Provider::Shippo, _) => Webhook::shippo(status.unwrap_or("DELIVERED")),
        (Provider::ShipBob, _) => Webhook::shipbob(status.unwrap_or("Delivered")),
        (Provider::ShipEngine, _) => Webhook::shipengine(status.unwrap_or("DE")),
        (other, _) => return Err(format!("no webhook for {other}")),
    })
}

/// What to send, in order: the webhook; again (`--twice`); or stamped now,
/// then an earlier status of the same shipment stamped a minute before
/// (`--older-after-newer`).
fn deliveries(args: &Args, webhook: Webhook) -> Vec<Webhook> {
    if args.twice {
        // ShipEngine signs the send time: a retry as sent keeps the same one.
        let webhook = match args.provider {
            Provider::ShipEngine => webhook.now(),
            _ => webhook,
        };
        return vec![webhook.clone(), webhook];
    }
    if !args.older_after_newer {
        return vec![webhook];
    }
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let earlier = match args.provider {
        Provider::Kosmo => "PICKED UP",
        Provider::Kourier => "picked_up",
        Provider::Shipmondo => "processing",
        Provider::EasyPost => "in_transit",
        Provider::AfterShip => "InTransit",
        // Sendcloud's "En route to sorting center".
        Provider::Sendcloud => "3",
        Provider::Shippo => "TRANSIT",
        Provider::ShipBob => "InTransit",
        Provider::ShipEngine => "IT",
        _ => "Picked Up",
    };
    let older = match (args.provider, args.resource.as_str()) {
        (Provider::Kosmo, _) => webhook
            .clone()
            .field("/status", earlier)
            .field("/eventId", "0b7e4f4c-27a5-4b8e-9d9f-6f2a0c1e5a11"),
        (Provider::Kourier, _) => webhook.clone().field("/status", earlier),
        (Provider::Shipmondo, "orders") => webhook.clone().field("/data/order_status", earlier),
        (Provider::Shipmondo, _) => webhook.clone(),
        // Another event: EasyPost's dedup key is its event id.
        (Provider::EasyPost, _) => webhook
            .clone()
            .field("/result/status", earlier)
            .field("/id", format!("evt_older_{}", now.unix_timestamp())),
        (Provider::AfterShip, _) => webhook
            .clone()
            .field("/msg/tag", earlier)
            .field("/event_id", "0b7e4f4c-27a5-4b8e-9d9f-6f2a0c1e5a11"),
        (Provider::Sendcloud, _) => Webhook::sendcloud(sendcloud_status_id(earlier)),
        (Provider::Shippo, _) => webhook
            .clone()
            .field("/data/tracking_status/status", earlier),
        // Another message: its own `webhook-id`.
        (Provider::ShipBob, _) => webhook.clone().field("/status", earlier).header(
            shipment_webhooks::standard_webhooks::ID_HEADER,
            "msg_older0000000000000000000",
        ),
        (Provider::ShipEngine, _) => webhook.clone().field("/data/status_code", earlier),
        _ => webhook.clone().field("/shipment/data/status", earlier),
    };
    // Each EasyPost event has an id of its own, which is its dedup key: the
    // newer one is a new event too, not a retry of one sent before.
    let newer = match args.provider {
        Provider::EasyPost => webhook.field("/id", format!("evt_newer_{}", now.unix_timestamp())),
        _ => webhook,
    };
    vec![newer.at(now), older.at(now - Duration::from_secs(60))]
}

/// How long the provider waits for an answer before it gives up.
fn deadline(provider: Provider) -> Duration {
    match provider {
        Provider::Shipmondo => Duration::from_secs(3),
        // Reported by integrations, not in EasyPost's own pages.
        Provider::EasyPost => Duration::from_secs(7),
        // Integrators report 3 s; Shippo's pages say nothing.
        Provider::Shippo => Duration::from_secs(3),
        // The 15-second response window of api-evangelist/shipbob's asyncapi.
        Provider::ShipBob => Duration::from_secs(15),
        // ShipEngine documents no deadline: the others' 30 s.
        Provider::ShipEngine => Duration::from_secs(30),
        _ => Duration::from_secs(30),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let webhook = match webhook(&args) {
        Ok(webhook) => webhook,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (var, demo) = secret_source(args.provider);
    let (secret, source) = match (&args.secret, std::env::var(var)) {
        (Some(secret), _) => (secret.clone(), "--secret".to_owned()),
        (None, Ok(secret)) if !secret.is_empty() => (secret, var.to_owned()),
        _ => (demo.to_owned(), "the demo secret".to_owned()),
    };
    let (secret, proof) = if args.forge && args.provider == Provider::ShipEngine {
        (
            secret,
            "the key, one signature character then changed: it must be refused".to_owned(),
        )
    } else if args.forge {
        (
            format!("forged-{secret}"),
            "a WRONG secret: it must be refused".to_owned(),
        )
    } else {
        (secret, source)
    };

    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    for webhook in deliveries(&args, webhook) {
        println!(
            "→ POST {} ({} webhook, {}, signed with {proof})",
            args.url,
            args.provider,
            webhook.payload_json()
        );
        let mut request = webhook.uri(args.url.clone()).sign(&secret);
        if args.forge && args.provider == Provider::ShipEngine {
            forge_shipengine(&mut request);
        }
        if let Err(code) = deliver(&client, request, args.provider, args.forge).await {
            return code;
        }
    }
    ExitCode::SUCCESS
}

/// Changes one character in the middle of ShipEngine's signature.
fn forge_shipengine(request: &mut axum::http::Request<Body>) {
    let name = shipment_webhooks::shipengine::SIGNATURE_HEADER;
    let Some(signature) = request.headers().get(&name) else {
        return;
    };
    let mut forged = signature.as_bytes().to_vec();
    let middle = forged.len() / 2;
    forged[middle] = if forged[middle] == b'A' { b'B' } else { b'A' };
    if let Ok(value) = axum::http::HeaderValue::from_bytes(&forged) {
        request.headers_mut().insert(name, value);
    }
}

/// Sends `request` and says whether the answer is what it should be.
async fn deliver(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Body>,
    request: axum::http::Request<Body>,
    provider: Provider,
    forge: bool,
) -> Result<(), ExitCode> {
    let started = Instant::now();
    let deadline = deadline(provider);
    let response = match tokio::time::timeout(deadline, client.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            println!("✗ no answer: {error} (is the server running?)");
            return Err(ExitCode::FAILURE);
        }
        Err(_) => {
            println!(
                "✗ no answer within {} s: {provider} would give up",
                deadline.as_secs(),
            );
            return Err(ExitCode::FAILURE);
        }
    };
    let elapsed = started.elapsed();
    let answer = response.status();
    let body = match response.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            println!("✗ {answer}, but the body could not be read: {error}");
            return Err(ExitCode::FAILURE);
        }
    };
    println!("← {answer} in {} ms", elapsed.as_millis());
    println!("  {}", String::from_utf8_lossy(&body));
    match (forge, answer.is_success()) {
        (false, true) => println!("✓ accepted"),
        (true, false) => println!("✓ refused, as a forged webhook should be"),
        (false, false) => {
            println!("✗ the endpoint refused a correctly signed webhook");
            return Err(ExitCode::FAILURE);
        }
        (true, true) => {
            println!("✗ the endpoint ACCEPTED a forged webhook");
            return Err(ExitCode::FAILURE);
        }
    }
    Ok(())
}
