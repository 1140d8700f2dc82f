//! Secrets as users hold them, configuration refused without a panic, and
//! test webhooks stamped with any time.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{PROVIDERS, echo_app, send};
use axum::http::StatusCode;
use secrecy::{SecretSlice, SecretString};
use shipment_webhooks::testing::{SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, shipengine_demo_jwks};
use shipment_webhooks::{
    ConfigError, GoShiipEvent, GoShiipSignature, KosmoEvent, KosmoSignature, KourierBearer,
    KourierEvent, Provider, ShipEngineEvent, ShipEngineSignature, ShipmondoEvent, ShipmondoJwt,
    WebhookSecret,
};
use time::OffsetDateTime;

const SECRET: &str = "a-webhook-secret-of-thirty-two-bytes!";

/// A router for `provider` whose layer is built with `secret`; ShipEngine's
/// verifies with the demo JWKS (its secret is the private key that signs).
fn app_with(provider: Provider, secret: impl WebhookSecret) -> axum::Router {
    let path = format!("/webhooks/{provider}");
    match provider {
        Provider::Kosmo => echo_app::<_, KosmoEvent>(&path, KosmoSignature::new(secret)),
        Provider::Kourier => echo_app::<_, KourierEvent>(&path, KourierBearer::new(secret)),
        Provider::Shipmondo => echo_app::<_, ShipmondoEvent>(&path, ShipmondoJwt::new(secret)),
        Provider::GoShiip => echo_app::<_, GoShiipEvent>(&path, GoShiipSignature::new(secret)),
        Provider::ShipEngine => echo_app::<_, ShipEngineEvent>(&path, shipengine_any_time()),
        other => unreachable!("no layer for {other}"),
    }
}

/// ShipEngine's layer with the demo JWKS and a window wide enough for any
/// sample's time: its signed time is refused outside five minutes by default.
fn shipengine_any_time() -> ShipEngineSignature {
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    ShipEngineSignature::from_jwks(shipengine_demo_jwks())
        .expect("the demo JWKS")
        .max_age(century)
        .max_future_skew(century)
}

/// What signs `provider`'s samples here: ShipEngine's private key, or [`SECRET`].
fn signing_secret(provider: Provider) -> &'static str {
    match provider {
        Provider::ShipEngine => SHIPENGINE_DEMO_PRIVATE_KEY,
        _ => SECRET,
    }
}

#[tokio::test]
async fn every_constructor_and_signer_takes_the_secret_types_users_hold() {
    for provider in PROVIDERS {
        let secret: &'static str = signing_secret(provider);
        let secrets: Vec<Box<dyn Fn() -> Box<dyn WebhookSecret>>> = vec![
            Box::new(move || Box::new(secret)),
            Box::new(move || Box::new(secret.to_owned())),
            Box::new(move || Box::new(secret.as_bytes())),
            Box::new(move || Box::new(secret.as_bytes().to_vec())),
            Box::new(move || Box::new(Box::<str>::from(secret))),
            Box::new(move || Box::new(Arc::<str>::from(secret))),
            Box::new(move || Box::new(Cow::Borrowed(secret))),
            Box::new(move || Box::new(SecretString::from(secret))),
            Box::new(move || Box::new(SecretSlice::from(secret.as_bytes().to_vec()))),
        ];
        for secret in &secrets {
            let app = app_with(provider, &*secret());
            let request = Webhook::sample(provider, "delivered").sign(&*secret());
            let answer = send(&app, request).await;
            assert_eq!(answer.status, StatusCode::OK, "{provider}: {}", answer.json);
        }
    }
}

#[test]
fn try_constructors_refuse_bad_secrets_with_an_error() {
    let empty = |label: &str| ConfigError::EmptySecret {
        label: label.into(),
    };
    assert_eq!(KosmoSignature::try_new("").unwrap_err(), empty("primary"));
    assert_eq!(
        KourierBearer::try_new(Vec::new()).unwrap_err(),
        empty("primary")
    );
    assert_eq!(
        GoShiipSignature::try_new(String::new()).unwrap_err(),
        empty("primary")
    );
    assert_eq!(
        ShipmondoJwt::try_allowing_short_keys("").unwrap_err(),
        empty("primary")
    );
    assert_eq!(
        ShipmondoJwt::try_new("short").unwrap_err(),
        ConfigError::ShortKey {
            label: "primary".into(),
            min_len: 32
        }
    );
    let rotated = KosmoSignature::new(SECRET).try_with_secret("next", "");
    assert_eq!(rotated.unwrap_err(), empty("next"));
    let short = ShipmondoJwt::new(SECRET).try_with_secret("next", "short");
    assert_eq!(
        short.unwrap_err(),
        ConfigError::ShortKey {
            label: "next".into(),
            min_len: 32
        }
    );
    assert!(
        ShipmondoJwt::try_allowing_short_keys("short")
            .and_then(|layer| layer.try_with_secret("old", "shorter"))
            .is_ok()
    );
}

#[test]
fn a_label_given_twice_is_refused() {
    let duplicate = |label: &str| ConfigError::DuplicateLabel {
        label: label.into(),
    };
    let kosmo = KosmoSignature::new(SECRET).try_with_secret("primary", "other");
    assert_eq!(kosmo.unwrap_err(), duplicate("primary"));
    let kourier = KourierBearer::new(SECRET)
        .with_secret("old", "token-1")
        .try_with_secret("old", "token-2");
    assert_eq!(kourier.unwrap_err(), duplicate("old"));
    let goshiip = GoShiipSignature::new(SECRET)
        .with_secret("old", "a")
        .try_with_secret("old", "b");
    assert_eq!(goshiip.unwrap_err(), duplicate("old"));
    let shipmondo = ShipmondoJwt::new(SECRET)
        .with_secret("old", SECRET.repeat(2))
        .try_with_secret("old", SECRET.repeat(3));
    assert_eq!(shipmondo.unwrap_err(), duplicate("old"));

    let panic =
        std::panic::catch_unwind(|| GoShiipSignature::new(SECRET).with_secret("primary", "b"))
            .expect_err("the panicking twin panics");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains(r#"two webhook secrets are labelled "primary""#),
        "{message}"
    );
}

#[test]
fn config_errors_never_show_the_secret_or_its_length() {
    let errors = [
        ShipmondoJwt::try_new("a-short-key").unwrap_err(),
        KosmoSignature::new(SECRET)
            .try_with_secret("primary", "a-short-key")
            .unwrap_err(),
    ];
    for error in errors {
        let message = error.to_string();
        assert!(
            !message.contains("a-short-key") && !message.contains("11"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn samples_stamped_now_pass_a_replay_window() {
    let app = echo_app::<_, KosmoEvent>(
        "/webhooks/kosmo",
        KosmoSignature::new(SECRET).max_age(Duration::from_secs(300)),
    );
    let stale = send(&app, Webhook::kosmo("DELIVERED").sign(SECRET)).await;
    stale.assert_refused(StatusCode::UNAUTHORIZED, "s old");
    let fresh = send(&app, Webhook::kosmo("DELIVERED").now().sign(SECRET)).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.json);
}

#[tokio::test]
async fn samples_can_be_stamped_with_any_time() {
    let time = OffsetDateTime::parse(
        "2026-06-19T17:07:11.233+02:00",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    for provider in PROVIDERS {
        for webhook in [
            Webhook::sample(provider, "delivered"),
            Webhook::shipmondo_monitor("DELIVERED"),
            Webhook::shipmondo_shipment("create"),
        ] {
            if webhook.provider() != provider {
                continue;
            }
            let app = app_with(provider, SECRET);
            let answer = send(&app, webhook.at(time).sign(signing_secret(provider))).await;
            assert_eq!(answer.status, StatusCode::OK, "{provider}: {}", answer.json);
            let expected = match provider {
                Provider::GoShiip => serde_json::Value::Null,
                _ => "2026-06-19T17:07:11.233+02:00".into(),
            };
            assert_eq!(answer.json["event"]["timestamp"], expected, "{provider}");
        }
    }
}
