//! ShipEngine: arbitrary headers and body through `ShipEngineSignature`; a
//! request passes only if `x-shipengine-rsa-sha256-signature` is an
//! RSA-SHA256 (PKCS#1 v1.5) signature, by the key its key id names, over
//! `x-shipengine-timestamp`, a `.` and the body as received, checked here
//! with the `rsa` crate directly, not through this crate.
//!
//! The two keys of the layer's JWKS are the testing kit's demo key and the
//! test suite's other key, standing for [`SECRETS`]' two: flags bit 2 picks
//! which signs. The window is open, so inputs reproduce whatever the clock.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};
use shipment_webhooks::{Provider, ShipEngineEvent, ShipEngineSignature};
use shipment_webhooks_fuzz::{BODY_LIMIT, Input, SECRETS, flip, only_header, send};

/// The keys, by kid, in the order of [`SECRETS`].
static KEYS: LazyLock<[(&str, PrivateKey); 2]> = LazyLock::new(|| {
    let key = |pem| PrivateKey::from_pkcs8_pem(pem).expect("a PKCS#8 RSA key");
    [
        (
            "shipment-webhooks-demo",
            key(include_str!("../../src/shipengine/demo-private-key.pem")),
        ),
        (
            "shipment-webhooks-other",
            key(include_str!(
                "../../tests/fixtures/shipengine/other-private-key.pem"
            )),
        ),
    ]
});

static LAYER: LazyLock<ShipEngineSignature> = LazyLock::new(|| {
    let demo: serde_json::Value =
        serde_json::from_str(include_str!("../../src/shipengine/demo-jwks.json")).unwrap();
    let other: serde_json::Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/shipengine/other-jwks.json"
    ))
    .unwrap();
    let jwks = serde_json::json!({"keys": [demo["keys"][0], other["keys"][0]]});
    let forever = Duration::from_secs(1 << 40);
    ShipEngineSignature::from_jwks(&jwks.to_string())
        .expect("two RSA keys")
        .max_age(forever)
        .max_future_skew(forever)
        .body_limit(BODY_LIMIT)
});

const SIGNATURE: HeaderName = HeaderName::from_static("x-shipengine-rsa-sha256-signature");
const KEY_ID: HeaderName = HeaderName::from_static("x-shipengine-rsa-sha256-key-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-shipengine-timestamp");

fn digest(timestamp: &[u8], body: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update(timestamp)
        .chain_update(b".")
        .chain_update(body)
        .finalize()
        .to_vec()
}

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        let (kid, key) = &KEYS[usize::from(secret != SECRETS[0])];
        // The input's own timestamp if it has one, else a fixed one.
        let timestamp = only_header(&input.headers, "x-shipengine-timestamp")
            .unwrap_or("2026-12-07T19:00:00Z")
            .to_owned();
        let signature = key
            .sign(
                Pkcs1v15Sign::new::<Sha256>(),
                &digest(timestamp.as_bytes(), &input.body),
            )
            .expect("an RSA key signs");
        input.set_header(TIMESTAMP, timestamp.as_bytes());
        input.set_header(KEY_ID, kid.as_bytes());
        input.set_header(SIGNATURE, STANDARD.encode(signature).as_bytes());
        if let Some(at) = input.flip {
            flip(&mut input.body, at);
        }
    }
    if send::<_, ShipEngineEvent>(&*LAYER, Provider::ShipEngine, &input).is_some() {
        let headers = &input.headers;
        let public = only_header(headers, "x-shipengine-rsa-sha256-key-id").and_then(|kid| {
            KEYS.iter()
                .find(|(name, _)| *name == kid)
                .map(|(_, key)| key.to_public_key())
        });
        let holds = match (
            public,
            only_header(headers, "x-shipengine-timestamp"),
            only_header(headers, "x-shipengine-rsa-sha256-signature")
                .and_then(|signature| STANDARD.decode(signature).ok()),
        ) {
            (Some(public), Some(timestamp), Some(signature)) => public
                .verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &digest(timestamp.as_bytes(), &input.body),
                    &signature,
                )
                .is_ok(),
            _ => false,
        };
        assert!(holds, "accepted a request its signature does not cover");
    }
});
