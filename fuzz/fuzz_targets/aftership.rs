//! AfterShip: arbitrary headers and body through `AfterShipSignature`; a
//! request passes only if `aftership-hmac-sha256` is the canonical standard
//! base64 HMAC of the body as received.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use shipment_webhooks::{AfterShipEvent, AfterShipSignature, Provider};
use shipment_webhooks_fuzz::{
    BODY_LIMIT, Input, SECRETS, flip, hmac, only_header, send, signed_by_a_secret,
};

static LAYER: LazyLock<AfterShipSignature> = LazyLock::new(|| {
    AfterShipSignature::new(SECRETS[0])
        .with_secret("previous", SECRETS[1])
        .body_limit(BODY_LIMIT)
});

const SIGNATURE: HeaderName = HeaderName::from_static("aftership-hmac-sha256");

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        let signature = STANDARD.encode(hmac(secret, &[&input.body]));
        input.set_header(SIGNATURE, signature.as_bytes());
        if let Some(at) = input.flip {
            flip(&mut input.body, at);
        }
    }
    if send::<_, AfterShipEvent>(&*LAYER, Provider::AfterShip, &input).is_some() {
        let holds = only_header(&input.headers, "aftership-hmac-sha256")
            .and_then(|signature| STANDARD.decode(signature).ok())
            .is_some_and(|tag| signed_by_a_secret(&[&input.body], &tag));
        assert!(holds, "accepted a body its signature does not cover");
    }
});
