//! EasyPost: arbitrary headers and body through `EasyPostSignature`; a
//! request passes only if `X-Hmac-Signature` is `hmac-sha256-hex=` and the hex
//! HMAC of the body as received (the fuzz secrets are ASCII, so their NFKD
//! form is themselves).
#![no_main]

use std::sync::LazyLock;

use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use shipment_webhooks::{EasyPostEvent, EasyPostSignature, Provider};
use shipment_webhooks_fuzz::{
    BODY_LIMIT, Input, SECRETS, flip, hmac, only_header, send, signed_by_a_secret,
};

static LAYER: LazyLock<EasyPostSignature> = LazyLock::new(|| {
    EasyPostSignature::new(SECRETS[0])
        .with_secret("previous", SECRETS[1])
        .body_limit(BODY_LIMIT)
});

const SIGNATURE: HeaderName = HeaderName::from_static("x-hmac-signature");

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        let signature = format!(
            "hmac-sha256-hex={}",
            hex::encode(hmac(secret, &[&input.body]))
        );
        input.set_header(SIGNATURE, signature.as_bytes());
        if let Some(at) = input.flip {
            flip(&mut input.body, at);
        }
    }
    if send::<_, EasyPostEvent>(&*LAYER, Provider::EasyPost, &input).is_some() {
        let holds = only_header(&input.headers, "x-hmac-signature")
            .and_then(|value| value.strip_prefix("hmac-sha256-hex="))
            .and_then(|signature| hex::decode(signature).ok())
            .is_some_and(|tag| signed_by_a_secret(&[&input.body], &tag));
        assert!(holds, "accepted a body its signature does not cover");
    }
});
