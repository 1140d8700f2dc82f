//! Sendcloud: arbitrary headers and body through `SendcloudSignature`; a
//! request passes (to the handler, or answered as a `test_webhook`) only if
//! `Sendcloud-Signature` is the hex HMAC of the body as received.
#![no_main]

use std::sync::LazyLock;

use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use shipment_webhooks::{Provider, SendcloudEvent, SendcloudSignature};
use shipment_webhooks_fuzz::{
    BODY_LIMIT, Input, SECRETS, flip, hmac, only_header, send, signed_by_a_secret,
};

static LAYER: LazyLock<SendcloudSignature> = LazyLock::new(|| {
    SendcloudSignature::new(SECRETS[0])
        .with_secret("previous", SECRETS[1])
        .body_limit(BODY_LIMIT)
});

const SIGNATURE: HeaderName = HeaderName::from_static("sendcloud-signature");

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        let signature = hex::encode(hmac(secret, &[&input.body]));
        input.set_header(SIGNATURE, signature.as_bytes());
        if let Some(at) = input.flip {
            flip(&mut input.body, at);
        }
    }
    if send::<_, SendcloudEvent>(&*LAYER, Provider::Sendcloud, &input).is_some() {
        let holds = only_header(&input.headers, "sendcloud-signature")
            .and_then(|signature| hex::decode(signature).ok())
            .is_some_and(|tag| signed_by_a_secret(&[&input.body], &tag));
        assert!(holds, "accepted a body its signature does not cover");
    }
});
