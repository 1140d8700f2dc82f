//! Shipmondo: arbitrary headers and body through `ShipmondoJwt`; a request
//! passes only if the body's `data` is an HS256 JWT, without `crit`, signed
//! with a configured key. Signing here makes the body the JWT's payload.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use shipment_webhooks::{Provider, ShipmondoEvent, ShipmondoJwt};
use shipment_webhooks_fuzz::{
    BODY_LIMIT, Input, SECRETS, flip, hs256_token, send, shipmondo_token_holds,
};

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
        let mut token = hs256_token(secret, br#"{"alg":"HS256"}"#, &input.body);
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
