//! Kosmo: arbitrary headers and body through `KosmoSignature`; a request
//! passes only if `X-Kosmo-Signature` is the base64 HMAC of the body's
//! `eventId + orderId + timestamp`.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use shipment_webhooks::kosmo::DEFAULT_SIGNATURE_HEADER;
use shipment_webhooks::{KosmoEvent, KosmoSignature, Provider};
use shipment_webhooks_fuzz::{
    BODY_LIMIT, Input, SECRETS, flip, hmac, only_header, send, signed_by_a_secret,
};

static LAYER: LazyLock<KosmoSignature> = LazyLock::new(|| {
    KosmoSignature::new(SECRETS[0])
        .with_secret("previous", SECRETS[1])
        .body_limit(BODY_LIMIT)
});

/// `eventId`, `orderId` and `timestamp`, if the body is an object with all
/// three as strings; other fields are skipped, as the layer skips them.
fn signed_fields(body: &[u8]) -> Option<[String; 3]> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Signed {
        event_id: String,
        order_id: String,
        timestamp: String,
    }
    let signed: Signed = serde_json::from_slice(body).ok()?;
    Some([signed.event_id, signed.order_id, signed.timestamp])
}

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        if let Some(fields) = signed_fields(&input.body) {
            let tag = hmac(secret, &fields.each_ref().map(|field| field.as_bytes()));
            input.set_header(DEFAULT_SIGNATURE_HEADER, STANDARD.encode(tag).as_bytes());
        }
        if let Some(at) = input.flip {
            flip(&mut input.body, at);
        }
    }
    if send::<_, KosmoEvent>(&*LAYER, Provider::Kosmo, &input).is_some() {
        let holds = only_header(&input.headers, "x-kosmo-signature")
            .and_then(|signature| STANDARD.decode(signature).ok())
            .zip(signed_fields(&input.body))
            .is_some_and(|(tag, fields)| {
                signed_by_a_secret(&fields.each_ref().map(|field| field.as_bytes()), &tag)
            });
        assert!(holds, "accepted fields their signature does not cover");
    }
});
