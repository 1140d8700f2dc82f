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
    AfterShipEvent, AfterShipSignature, ConfigError, EasyPostEvent, EasyPostSignature,
    GoShiipEvent, GoShiipSignature, KosmoEvent, KosmoSignature, KourierBearer, KourierEvent,
    Provider, SendcloudEvent, SendcloudSignature, ShipBobEvent, ShipBobSignature, ShipEngineEvent,
    ShipEngineSignature, ShipmondoEvent, ShipmondoJwt, ShippoEvent, ShippoSignature, WebhookSecret,
};
use time::OffsetDateTime;

const SECRET: &str = "a-webhook-secret-of-thirty-two-bytes!";
/// Standard Webhooks secrets are `whsec_` and base64.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `SECRET`, or a secret in the form `provider` issues them (for
/// ShipEngine, the private key that signs: its layer takes the demo JWKS).
fn secret(provider: Provider) -> &'static str {
    match provider {
        Provider::ShipBob => WHSEC,
        Provider::ShipEngine => SHIPENGINE_DEMO_PRIVATE_KEY,
        _ => SECRET,
    }
}

/// Wide enough for a sample stamped at any time: Shippo and ShipBob refuse
/// a signed time 5 minutes away by default.
const ANY_AGE: Duration = Duration::from_secs(200 * 365 * 86_400);

/// A router for `provider` whose layer is built with `secret`; ShipEngine's
/// verifies with the demo JWKS (its secret is the private key that signs).
fn app_with(provider: Provider, secret: impl WebhookSecret) -> axum::Router {
    let path = format!("/webhooks/{provider}");
    match provider {
        Provider::Kosmo => echo_app::<_, KosmoEvent>(&path, KosmoSignature::new(secret)),
        Provider::Kourier => echo_app::<_, KourierEvent>(&path, KourierBearer::new(secret)),
        Provider::Shipmondo => echo_app::<_, ShipmondoEvent>(&path, ShipmondoJwt::new(secret)),
        Provider::GoShiip => echo_app::<_, GoShiipEvent>(&path, GoShiipSignature::new(secret)),
        Provider::EasyPost => echo_app::<_, EasyPostEvent>(&path, EasyPostSignature::new(secret)),
        Provider::AfterShip => {
            echo_app::<_, AfterShipEvent>(&path, AfterShipSignature::new(secret))
        }
        Provider::Sendcloud => {
            echo_app::<_, SendcloudEvent>(&path, SendcloudSignature::new(secret))
        }
        Provider::Shippo => echo_app::<_, ShippoEvent>(
            &path,
            ShippoSignature::new(secret)
                .max_age(ANY_AGE)
                .max_future_skew(ANY_AGE),
        ),
        Provider::ShipBob => echo_app::<_, ShipBobEvent>(
            &path,
            ShipBobSignature::new(secret)
                .max_age(ANY_AGE)
                .max_future_skew(ANY_AGE),
        ),
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

#[tokio::test]
async fn every_constructor_and_signer_takes_the_secret_types_users_hold() {
    fn secrets(secret: &'static str) -> Vec<Box<dyn Fn() -> Box<dyn WebhookSecret>>> {
        vec![
            Box::new(move || Box::new(secret)),
            Box::new(move || Box::new(secret.to_owned())),
            Box::new(move || Box::new(secret.as_bytes())),
            Box::new(move || Box::new(secret.as_bytes().to_vec())),
            Box::new(move || Box::new(Box::<str>::from(secret))),
            Box::new(move || Box::new(Arc::<str>::from(secret))),
            Box::new(move || Box::new(Cow::Borrowed(secret))),
            Box::new(move || Box::new(SecretString::from(secret))),
            Box::new(move || Box::new(SecretSlice::from(secret.as_bytes().to_vec()))),
        ]
    }
    for provider in PROVIDERS {
        for secret in &secrets(secret(provider)) {
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
        EasyPostSignature::try_new("").unwrap_err(),
        empty("primary")
    );
    assert_eq!(
        AfterShipSignature::try_new("").unwrap_err(),
        empty("primary")
    );
    assert_eq!(
        SendcloudSignature::try_new("").unwrap_err(),
        empty("primary")
    );
    // The platforms' own short secrets are accepted: no minimum is documented.
    for short in ["A1B2C3", "secretkey", "x"] {
        assert!(EasyPostSignature::try_new(short).is_ok());
        assert!(AfterShipSignature::try_new(short).is_ok());
        assert!(SendcloudSignature::try_new(short).is_ok());
    }
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
            let app = app_with(provider, secret(provider));
            let answer = send(&app, webhook.at(time).sign(secret(provider))).await;
            assert_eq!(answer.status, StatusCode::OK, "{provider}: {}", answer.json);
            let expected = match provider {
                Provider::GoShiip => serde_json::Value::Null,
                // Unix seconds.
                Provider::AfterShip => "2026-06-19T15:07:11Z".into(),
                // Epoch milliseconds.
                Provider::Sendcloud => "2026-06-19T15:07:11.233Z".into(),
                _ => "2026-06-19T17:07:11.233+02:00".into(),
            };
            assert_eq!(answer.json["event"]["timestamp"], expected, "{provider}");
        }
    }
}
