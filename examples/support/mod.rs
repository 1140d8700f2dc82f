//! What the example servers share: logging, every provider's secret (and
//! ShipEngine's JWKS) from the environment, and the port.

mod port;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Logs to stderr: `RUST_LOG=shipment_webhooks=trace,info` and the like; no
/// regex, so no regex engine to build.
pub fn init_tracing() {
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|filter| filter.parse().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("shipment_webhooks", tracing::Level::DEBUG)
        });
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();
}

/// The providers' secrets, from KOSMO_WEBHOOK_SECRET, KOURIER_WEBHOOK_TOKEN,
/// SHIPMONDO_WEBHOOK_KEY, GOSHIIP_WEBHOOK_SECRET, EASYPOST_WEBHOOK_SECRET,
/// AFTERSHIP_WEBHOOK_SECRET, SENDCLOUD_WEBHOOK_SECRET, SHIPPO_WEBHOOK_SECRET
/// and SHIPBOB_WEBHOOK_SECRET (a `whsec_` secret), and ShipEngine's public
/// keys, from the JWKS file SHIPENGINE_JWKS names.
pub struct Secrets {
    pub kosmo: String,
    pub kourier: String,
    pub shipmondo: String,
    pub goshiip: String,
    pub easypost: String,
    pub aftership: String,
    pub sendcloud: String,
    pub shippo: String,
    pub shipbob: String,
    /// ShipEngine's JWKS, as text.
    pub shipengine_jwks: String,
}

impl Secrets {
    /// Each from its variable, or a demo value (with a warning) where unset.
    /// The Kosmo, GoShiip, EasyPost, Sendcloud and ShipBob demo values are the
    /// ones in those providers' own docs (ShipBob's is the Standard Webhooks
    /// test vector's).
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            kosmo: secret(
                "KOSMO_WEBHOOK_SECRET",
                "whk_UAzxUOOZOrtwVc9t4k8k5wbanrsGIbm",
            )?,
            kourier: secret("KOURIER_WEBHOOK_TOKEN", "demo-kourier-token")?,
            shipmondo: secret(
                "SHIPMONDO_WEBHOOK_KEY",
                "demo-shipmondo-key-change-me-in-prod",
            )?,
            goshiip: secret("GOSHIIP_WEBHOOK_SECRET", "your_secret_key")?,
            easypost: secret("EASYPOST_WEBHOOK_SECRET", "A1B2C3")?,
            aftership: secret("AFTERSHIP_WEBHOOK_SECRET", "demo-aftership-secret")?,
            sendcloud: secret("SENDCLOUD_WEBHOOK_SECRET", "secretkey")?,
            shippo: secret("SHIPPO_WEBHOOK_SECRET", "demo-shippo-secret")?,
            shipbob: secret(
                "SHIPBOB_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            )?,
            shipengine_jwks: shipengine_jwks()?,
        })
    }
}

/// The JWKS in the file SHIPENGINE_JWKS names (save
/// https://api.shipengine.com/jwks there), or the testing kit's demo JWKS,
/// whose private key `cargo run --example send -- shipengine` signs with.
fn shipengine_jwks() -> Result<String, String> {
    match std::env::var("SHIPENGINE_JWKS") {
        Ok(path) if path.is_empty() => Err("SHIPENGINE_JWKS is set but empty".into()),
        Ok(path) => std::fs::read_to_string(&path)
            .map_err(|error| format!("SHIPENGINE_JWKS: {path} cannot be read: {error}")),
        Err(std::env::VarError::NotPresent) => {
            tracing::warn!(
                "SHIPENGINE_JWKS is not set: using the DEMO key pair's JWKS, whose private key \
                 is public in the testing kit; never use it in production"
            );
            Ok(shipment_webhooks::testing::shipengine_demo_jwks().to_owned())
        }
        Err(std::env::VarError::NotUnicode(_)) => Err("SHIPENGINE_JWKS is not UTF-8".into()),
    }
}

/// The secret in `var`, or `demo` (with a warning) where `var` is not set at all.
fn secret(var: &str, demo: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(secret) if secret.is_empty() => Err(format!("{var} is set but empty")),
        Ok(secret) => Ok(secret),
        Err(std::env::VarError::NotPresent) => {
            tracing::warn!(
                "{var} is not set: using the DEMO value {demo:?}; never use it in production"
            );
            Ok(demo.to_owned())
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{var} is not UTF-8")),
    }
}

/// A listener on 127.0.0.1:$PORT (default 3000); a port in use is an error
/// that names it and `PORT`.
pub async fn listen() -> Result<tokio::net::TcpListener, Box<dyn std::error::Error>> {
    let listener = port::bind(port::port()?).await?;
    tracing::info!(
        "listening on http://{}/webhooks/{{kosmo,kourier,shipmondo,goshiip,easypost,aftership,sendcloud,shippo,shipbob,shipengine}}",
        listener.local_addr()?
    );
    Ok(listener)
}

/// Resolves on Ctrl-C (or SIGTERM, as container runtimes stop processes).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
