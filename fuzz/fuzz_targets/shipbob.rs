//! ShipBob (Standard Webhooks): arbitrary headers and body through
//! `ShipBobSignature`; a request passes only if `webhook-timestamp` is within
//! 5 minutes of now and a `v1` entry of `webhook-signature` is the base64
//! HMAC of `"<webhook-id>.<webhook-timestamp>.<body>"` as received.
#![no_main]

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use shipment_webhooks::{Provider, ShipBobEvent, ShipBobSignature};
use shipment_webhooks_fuzz::{
    BODY_LIMIT, Input, SECRETS, flip, hmac, only_header, send, signed_by_a_secret,
};

/// The fuzz secrets as Standard Webhooks issues secrets: `whsec_` and base64.
fn whsec(secret: &str) -> String {
    format!("whsec_{}", STANDARD.encode(secret))
}

static LAYER: LazyLock<ShipBobSignature> = LazyLock::new(|| {
    ShipBobSignature::new(whsec(SECRETS[0]))
        .with_secret("previous", whsec(SECRETS[1]))
        .body_limit(BODY_LIMIT)
});

const ID: HeaderName = HeaderName::from_static("webhook-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |since| since.as_secs() as i64)
}

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        let id = only_header(&input.headers, "webhook-id")
            .unwrap_or("msg_fuzz")
            .to_owned();
        let t = now().to_string();
        let tag = hmac(
            secret,
            &[id.as_bytes(), b".", t.as_bytes(), b".", &input.body],
        );
        input.set_header(ID, id.as_bytes());
        input.set_header(TIMESTAMP, t.as_bytes());
        input.set_header(SIGNATURE, format!("v1,{}", STANDARD.encode(tag)).as_bytes());
        if let Some(at) = input.flip {
            flip(&mut input.body, at);
        }
    }
    if send::<_, ShipBobEvent>(&*LAYER, Provider::ShipBob, &input).is_some() {
        let header = |name| {
            only_header(&input.headers, name)
                .unwrap_or_else(|| panic!("accepted without exactly one {name}"))
        };
        let (id, t) = (header("webhook-id"), header("webhook-timestamp"));
        assert!(
            !id.is_empty() && !id.contains('.'),
            "accepted the id {id:?}"
        );
        let seconds: i64 = t
            .parse()
            .expect("accepted a timestamp that is not a number");
        assert!(
            (now() - seconds).abs() <= 301,
            "accepted a time outside the window"
        );
        let signed = [id.as_bytes(), b".", t.as_bytes(), b".", &input.body];
        let holds = header("webhook-signature")
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|tag| {
                STANDARD
                    .decode(tag)
                    .or_else(|_| STANDARD_NO_PAD.decode(tag))
                    .ok()
            })
            .any(|tag| signed_by_a_secret(&signed, &tag));
        assert!(holds, "accepted a body its signature does not cover");
    }
});
