//! Shippo: arbitrary headers and body through `ShippoSignature`; a request
//! passes only if `Shippo-Auth-Signature` holds a `t` within 5 minutes of
//! now and a `v1` that is the hex HMAC of `"<t>.<body>"` as received.
#![no_main]

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use shipment_webhooks::{Provider, ShippoEvent, ShippoSignature};
use shipment_webhooks_fuzz::{
    BODY_LIMIT, Input, SECRETS, flip, hmac, only_header, send, signed_by_a_secret,
};

static LAYER: LazyLock<ShippoSignature> = LazyLock::new(|| {
    ShippoSignature::new(SECRETS[0])
        .with_secret("previous", SECRETS[1])
        .body_limit(BODY_LIMIT)
});

const SIGNATURE: HeaderName = HeaderName::from_static("shippo-auth-signature");

fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |since| since.as_secs() as i64)
}

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        let t = now().to_string();
        let tag = hmac(secret, &[t.as_bytes(), b".", &input.body]);
        let signature = format!("t={t},v1={}", hex::encode(tag));
        input.set_header(SIGNATURE, signature.as_bytes());
        if let Some(at) = input.flip {
            flip(&mut input.body, at);
        }
    }
    if send::<_, ShippoEvent>(&*LAYER, Provider::Shippo, &input).is_some() {
        // Read without the crate: comma-separated `key=value`, one `t`, any `v1`.
        let header = only_header(&input.headers, "shippo-auth-signature")
            .expect("accepted without exactly one visible-ASCII signature header");
        let items: Vec<(&str, &str)> = header
            .split(',')
            .filter_map(|item| item.trim().split_once('='))
            .collect();
        let ts: Vec<&str> = items
            .iter()
            .filter(|(k, _)| *k == "t")
            .map(|(_, v)| *v)
            .collect();
        let [t] = ts[..] else {
            panic!("accepted without exactly one t: {header:?}");
        };
        let seconds: i64 = t.parse().expect("accepted a t that is not a number");
        assert!(
            (now() - seconds).abs() <= 301,
            "accepted a t outside the window"
        );
        let holds = items
            .iter()
            .filter(|(k, _)| *k == "v1")
            .filter_map(|(_, v)| hex::decode(v).ok())
            .any(|tag| signed_by_a_secret(&[t.as_bytes(), b".", &input.body], &tag));
        assert!(holds, "accepted a body its signature does not cover");
    }
});
