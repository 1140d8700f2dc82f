//! Fire a correctly signed, realistic webhook at a local endpoint, as the
//! provider would, and show what it answered.
//!
//! ```text
//! cargo run --example send -- <kosmo|kourier|shipmondo|goshiip> <url> [--status S] [--secret S] [--forge]
//! ```
//!
//! The secret defaults to the provider's variable (KOSMO_WEBHOOK_SECRET,
//! KOURIER_WEBHOOK_TOKEN, SHIPMONDO_WEBHOOK_KEY, GOSHIIP_WEBHOOK_SECRET), else
//! the demo value `cargo run --example server` uses. `--forge` signs with a
//! wrong secret to check that the endpoint refuses it. Exits 0 when the
//! endpoint did what it should (2xx for a real webhook, refusal for a forged
//! one), 1 when not, 2 on a usage error. Plain `http://` only: for local
//! endpoints, no tunnel needed.

use std::process::ExitCode;
use std::time::Instant;

use axum::body::Body;
use axum::http::Uri;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use shipment_webhooks::Provider;
use shipment_webhooks::testing::Webhook;

const USAGE: &str =
    "usage: send <kosmo|kourier|shipmondo|goshiip> <url> [--status S] [--secret S] [--forge]";

struct Args {
    provider: Provider,
    url: Uri,
    status: Option<String>,
    secret: Option<String>,
    forge: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let provider = match args.next().as_deref() {
        Some("kosmo") => Provider::Kosmo,
        Some("kourier") => Provider::Kourier,
        Some("shipmondo") => Provider::Shipmondo,
        Some("goshiip") => Provider::GoShiip,
        Some(other) => return Err(format!("unknown provider {other:?}")),
        None => return Err("missing the provider".into()),
    };
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
        forge: false,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--status" => parsed.status = Some(args.next().ok_or("--status needs a value")?),
            "--secret" => parsed.secret = Some(args.next().ok_or("--secret needs a value")?),
            "--forge" => parsed.forge = true,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(parsed)
}

/// The provider's secret variable, the demo value `examples/server.rs` falls back to, and a usual status.
fn defaults(provider: Provider) -> (&'static str, &'static str, &'static str) {
    match provider {
        Provider::Kosmo => (
            "KOSMO_WEBHOOK_SECRET",
            "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm",
            "DELIVERED",
        ),
        Provider::Kourier => ("KOURIER_WEBHOOK_TOKEN", "demo-kourier-token", "delivered"),
        Provider::Shipmondo => ("SHIPMONDO_WEBHOOK_KEY", "demo-shipmondo-key", "sent"),
        _ => ("GOSHIIP_WEBHOOK_SECRET", "your_secret_key", "Delivered"),
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
    let (var, demo, usual_status) = defaults(args.provider);
    let status = args.status.as_deref().unwrap_or(usual_status);
    let (secret, source) = match (args.secret, std::env::var(var)) {
        (Some(secret), _) => (secret, "--secret".to_owned()),
        (None, Ok(secret)) => (secret, var.to_owned()),
        (None, Err(_)) => (demo.to_owned(), "the demo secret".to_owned()),
    };
    let (secret, proof) = if args.forge {
        (
            format!("forged-{secret}"),
            "a WRONG secret: it must be refused".to_owned(),
        )
    } else {
        (secret, source)
    };

    println!(
        "→ POST {} ({} webhook, status {status:?}, signed with {proof})",
        args.url, args.provider
    );
    let request = Webhook::sample(args.provider, status)
        .uri(args.url)
        .sign(&secret);
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let started = Instant::now();
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(error) => {
            println!("✗ no answer: {error} (is the server running?)");
            return ExitCode::FAILURE;
        }
    };
    let elapsed = started.elapsed();
    let answer = response.status();
    let body = match response.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            println!("✗ {answer}, but the body could not be read: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("← {answer} in {} ms", elapsed.as_millis());
    println!("  {}", String::from_utf8_lossy(&body));
    match (args.forge, answer.is_success()) {
        (false, true) => println!("✓ accepted"),
        (true, false) => println!("✓ refused, as a forged webhook should be"),
        (false, false) => {
            println!("✗ the endpoint refused a correctly signed webhook");
            return ExitCode::FAILURE;
        }
        (true, true) => {
            println!("✗ the endpoint ACCEPTED a forged webhook");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
