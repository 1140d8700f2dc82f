//! Kourier: arbitrary headers and body through `KourierBearer`; a request
//! passes only with exactly one `Authorization: Bearer <token>` naming a
//! configured token.
#![no_main]

use std::sync::LazyLock;

use http::header::AUTHORIZATION;
use libfuzzer_sys::fuzz_target;
use shipment_webhooks::{KourierBearer, KourierEvent, Provider};
use shipment_webhooks_fuzz::{BODY_LIMIT, Input, SECRETS, flip, only_header, send};

static LAYER: LazyLock<KourierBearer> = LazyLock::new(|| {
    KourierBearer::new(SECRETS[0])
        .with_secret("previous", SECRETS[1])
        .body_limit(BODY_LIMIT)
});

/// RFC 6750's `Bearer 1*SP token`, the scheme in any case.
fn names_a_token(authorization: &str) -> bool {
    let Some((scheme, token)) = authorization.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && SECRETS.contains(&token.trim_start_matches(' '))
}

fuzz_target!(|data: &[u8]| {
    let Some(mut input) = Input::parse(data) else {
        return;
    };
    if let Some(secret) = input.secret {
        let mut token = secret.as_bytes().to_vec();
        if let Some(at) = input.flip {
            flip(&mut token, at);
        }
        input.set_header(AUTHORIZATION, &[b"Bearer ", &token[..]].concat());
    }
    if send::<_, KourierEvent>(&*LAYER, Provider::Kourier, &input).is_some() {
        let holds = only_header(&input.headers, "authorization").is_some_and(names_a_token);
        assert!(holds, "accepted a request without a configured token");
    }
});
