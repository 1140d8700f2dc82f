//! Shipmondo's JWT path: arbitrary JWT headers and payloads, signed with a
//! configured key or not, in Shipmondo's envelope and headers. Input: the
//! JWT header's JSON, a blank line, the payload (flags bit 3: sent as a JSON
//! string holding it, as Shipmondo does). Unsigned, the bytes after the
//! blank line are the token itself.
#![no_main]

use std::sync::LazyLock;

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use shipment_webhooks::shipmondo::{ACTION_HEADER, RESOURCE_ID_HEADER, RESOURCE_TYPE_HEADER};
use shipment_webhooks::{Provider, ShipmondoEvent, ShipmondoJwt};
use shipment_webhooks_fuzz::{
    BODY_LIMIT, Input, Parts, SECRETS, flip, hs256_token, send, shipmondo_token_holds,
};

static LAYER: LazyLock<ShipmondoJwt> = LazyLock::new(|| {
    ShipmondoJwt::new(SECRETS[0])
        .with_secret("previous", SECRETS[1])
        .body_limit(BODY_LIMIT)
});

fuzz_target!(|data: &[u8]| {
    let Some(parts) = Parts::split(data) else {
        return;
    };
    let token = match parts.secret() {
        Some(secret) => {
            let payload = if parts.flags & 8 == 8 {
                serde_json::to_vec(&String::from_utf8_lossy(parts.body)).expect("a string")
            } else {
                parts.body.to_vec()
            };
            let mut token = hs256_token(secret, parts.head, &payload);
            if let Some(at) = parts.flip() {
                flip(&mut token, at);
            }
            token
        }
        None => parts.body.to_vec(),
    };
    let Ok(token) = String::from_utf8(token) else {
        return;
    };
    let mut input = Input {
        secret: None,
        flip: None,
        frame: parts.frame(),
        headers: HeaderMap::new(),
        body: serde_json::to_vec(&serde_json::json!({ "data": token })).expect("a JSON object"),
    };
    input.set_header(RESOURCE_TYPE_HEADER, b"Orders");
    input.set_header(RESOURCE_ID_HEADER, b"119175");
    input.set_header(ACTION_HEADER, b"update");
    if send::<_, ShipmondoEvent>(&*LAYER, Provider::Shipmondo, &input).is_some() {
        assert!(
            shipmondo_token_holds(&input.body),
            "accepted a token that does not hold"
        );
    }
});
