//! Shipmondo: arbitrary headers and body through `ShipmondoJwt`; a request
//! passes only if the body's `data` is an HS256 JWT, without `crit`, signed
//! with a configured key. Signing here makes the body the JWT's payload.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use shipment_webhooks::{Provider, ShipmondoEvent, ShipmondoJwt};
use shipment_webhooks_fuzz::{BODY_LIMIT, Input, SECRETS, flip, hmac, send, shipmondo_token_holds};

static LAYER: LazyLock<ShipmondoJwt> = LazyLock::new(|| {
    ShipmondoJwt::new(SECRETS[0])
        .with_secret("previous", SECRETS[1])
        .body_limit(BODY_LIMIT)
});

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(&input.body)
        );
        let signature = URL_SAFE_NO_PAD.encode(hmac(secret, &[signed.as_bytes()]));
        let mut token = format!("{signed}.{signature}").into_bytes();
        if let Some(at) = input.flip {
            flip(&mut token, at);
        }
        input.body = [&br#"{"data":""#[..], &token, br#""}"#].concat();
    }
    if send::<_, ShipmondoEvent>(&*LAYER, Provider::Shipmondo, &input).is_some() {
        assert!(
            shipmondo_token_holds(&input.body),
            "accepted a token that does not hold"
        );
    }
});
