//! Property tests, through a real Router: for every provider, what is signed
//! verifies, and what is changed or cut after signing is refused.

use crate::common::{Answer, PROVIDERS, echo_app, proof_header, send, with_body, with_header};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};
use shipment_webhooks::testing::{
    SHIPENGINE_DEMO_KEY_ID, SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, goshiip_signature,
    shipengine_demo_jwks, shipmondo_jwt,
};
use shipment_webhooks::{
    AfterShipEvent, AfterShipSignature, EasyPostEvent, EasyPostSignature, GoShiipEvent,
    GoShiipSignature, KosmoEvent, KosmoSignature, KourierBearer, KourierEvent, Provider,
    SendcloudEvent, SendcloudSignature, ShipBobEvent, ShipBobSignature, ShipEngineEvent,
    ShipEngineSignature, ShipmondoEvent, ShipmondoJwt, ShippoEvent, ShippoSignature,
};

thread_local! {
    // Proptest cases are sync: one runtime per test thread serves all its cases.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
}

/// `provider`'s route behind its layer, configured with `keys` as `(label,
/// secret)`; the first goes to `new`, so its label is `primary` whatever it says.
fn app(provider: Provider, keys: &[(String, String)]) -> Router {
    let ((_, first), rest) = keys.split_first().expect("at least one secret");
    let path = format!("/webhooks/{provider}");
    macro_rules! layer {
        ($layer:ident) => {
            rest.iter()
                .fold($layer::new(first), |layer, (label, secret)| {
                    layer.with_secret(label.as_str(), secret)
                })
        };
    }
    match provider {
        Provider::Kosmo => echo_app::<_, KosmoEvent>(&path, layer!(KosmoSignature)),
        Provider::Kourier => echo_app::<_, KourierEvent>(&path, layer!(KourierBearer)),
        Provider::Shipmondo => echo_app::<_, ShipmondoEvent>(&path, layer!(ShipmondoJwt)),
        Provider::GoShiip => echo_app::<_, GoShiipEvent>(&path, layer!(GoShiipSignature)),
        Provider::EasyPost => echo_app::<_, EasyPostEvent>(&path, layer!(EasyPostSignature)),
        Provider::AfterShip => echo_app::<_, AfterShipEvent>(&path, layer!(AfterShipSignature)),
        Provider::Sendcloud => echo_app::<_, SendcloudEvent>(&path, layer!(SendcloudSignature)),
        Provider::Shippo => echo_app::<_, ShippoEvent>(&path, layer!(ShippoSignature)),
        Provider::ShipBob => echo_app::<_, ShipBobEvent>(&path, layer!(ShipBobSignature)),
        // ShipEngine's keys are RSA key pairs, not generated per case: the
        // demo key is its only secret here (see `secret`).
        Provider::ShipEngine => {
            assert!(
                keys.iter()
                    .all(|(_, key)| key == SHIPENGINE_DEMO_PRIVATE_KEY)
            );
            let layer = ShipEngineSignature::from_jwks(shipengine_demo_jwks()).expect("demo JWKS");
            echo_app::<_, ShipEngineEvent>(&path, layer)
        }
        other => unreachable!("no layer for {other}"),
    }
}

fn app_with(provider: Provider, secret: &str) -> Router {
    app(provider, &[("primary".to_owned(), secret.to_owned())])
}

fn call(app: &Router, request: Request<Body>) -> Answer {
    RUNTIME.with(|runtime| runtime.block_on(send(app, request)))
}

/// Flips bit `bit` (0 is the lowest) of the byte `byte` picks in `bytes`.
fn flip(bytes: &mut [u8], byte: Index, bit: u32) {
    bytes[byte.index(bytes.len())] ^= 1 << bit;
}

/// Every (byte, bit) of `len` bytes.
fn every_bit(len: usize) -> impl Iterator<Item = (usize, u32)> {
    (0..len).flat_map(|at| (0..8).map(move |bit| (at, bit)))
}

/// `bytes` as a JSON string, escaped where JSON needs it; bytes that are not
/// UTF-8 are written as they are, as a bit flipped on the way would leave them.
fn json_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for chunk in bytes.utf8_chunks() {
        let escaped = serde_json::to_string(chunk.valid()).expect("a str serializes");
        out.extend_from_slice(&escaped.as_bytes()[1..escaped.len() - 1]);
        out.extend_from_slice(chunk.invalid());
    }
    out.push(b'"');
    out
}

/// `webhook` signed with `secret`, its proof as sent (the signature header's
/// value, the whole `Authorization` value, or Shipmondo's token) passed through
/// `mangle`. `None` if the result cannot be a header value (a control
/// character), so cannot be sent at all.
fn sign_mangled(
    webhook: &Webhook,
    secret: &str,
    mangle: impl FnOnce(&mut Vec<u8>),
) -> Option<Request<Body>> {
    let mut request = webhook.sign(secret);
    match proof_header(webhook.provider()) {
        Some(name) => {
            let mut proof = request.headers()[name].as_bytes().to_vec();
            mangle(&mut proof);
            let value = HeaderValue::from_bytes(&proof).ok()?;
            request.headers_mut().insert(name, value);
            Some(request)
        }
        None => {
            // The same token `sign` put in the body.
            let mut token = shipmondo_jwt(secret, &webhook.payload_json()).into_bytes();
            mangle(&mut token);
            let body = [&b"{\"data\":"[..], &json_string(&token), b"}"].concat();
            Some(with_body(request, body))
        }
    }
}

/// Any text, with what JSON must escape (quotes, backslashes, control
/// characters) and non-ASCII characters up to U+10FFFF common.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r#"["\\/a-z0-9 \t\n\x00\x7fé€😀\x{10FFFF}]{0,16}"#,
    ]
}

/// An RFC 3339 date-time, with or without a fraction, in UTC or at an offset.
fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
}

fn timestamp() -> impl Strategy<Value = String> {
    let offset = prop_oneof![
        Just("Z".to_owned()),
        (prop_oneof![Just('+'), Just('-')], 0..24u8, 0..60u8)
            .prop_map(|(sign, hours, minutes)| format!("{sign}{hours:02}:{minutes:02}")),
    ];
    let date = (1970..=2100u16, 1..=12u8, 1..=28u8);
    let time = (0..24u8, 0..60u8, 0..60u8, prop::option::of("[0-9]{1,9}"));
    (date, time, offset).prop_map(|((y, mo, d), (h, mi, s, fraction), offset)| {
        let fraction = fraction.map(|digits| format!(".{digits}"));
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}{offset}",
            fraction.unwrap_or_default()
        )
    })
}

/// A secret `provider`'s layer accepts.
fn secret(provider: Provider) -> BoxedStrategy<String> {
    match provider {
        // Sent as `Authorization: Bearer <token>`: visible ASCII.
        Provider::Kourier => "[!-~]{1,64}".boxed(),
        // HS256 keys must be at least as long as the hash (RFC 7518 §3.2).
        Provider::Shipmondo => "\\PC{32,64}".boxed(),
        // `whsec_` and the base64 of the key's bytes, as Standard Webhooks issues them.
        Provider::ShipBob => prop::collection::vec(any::<u8>(), 1..64)
            .prop_map(|key| {
                use base64::Engine;
                format!(
                    "whsec_{}",
                    base64::engine::general_purpose::STANDARD.encode(key)
                )
            })
            .boxed(),
        // An RSA private key: generating one per case would take seconds.
        Provider::ShipEngine => Just(SHIPENGINE_DEMO_PRIVATE_KEY.to_owned()).boxed(),
        _ => "\\PC{1,64}".boxed(),
    }
}

fn provider() -> impl Strategy<Value = Provider> {
    prop::sample::select(PROVIDERS.to_vec())
}

/// A `provider` webhook whose id, status and other fields are arbitrary.
fn webhook(provider: Provider) -> BoxedStrategy<Webhook> {
    match provider {
        // Kosmo's event ids are UUIDs (the layer refuses others); the order
        // id must not be empty.
        Provider::Kosmo => (
            uuid(),
            text().prop_filter("an order id", |id| !id.is_empty()),
            timestamp(),
            text(),
        )
            .prop_map(|(event_id, order_id, timestamp, status)| {
                Webhook::kosmo(&status)
                    .field("/eventId", event_id)
                    .field("/orderId", order_id)
                    .field("/timestamp", timestamp)
            })
            .boxed(),
        Provider::Kourier => (text(), text(), prop::option::of(timestamp()))
            .prop_map(|(id, status, timestamp)| {
                let webhook = Webhook::kourier(&status).field("/delivery_id", id);
                match timestamp {
                    Some(timestamp) => webhook.field("/timestamp", timestamp),
                    None => webhook.without("/timestamp"),
                }
            })
            .boxed(),
        Provider::Shipmondo => {
            // Shipmondo's ids are numbers; strings are accepted too. `sign`
            // copies the id into the SMD-Resource-Id header, hence ASCII.
            let id = prop_oneof![
                any::<u64>().prop_map(Value::from),
                "[0-9A-Za-z-]{1,12}".prop_map(Value::from),
            ];
            (id, text(), text(), text())
                .prop_map(|(id, status, order_id, name)| {
                    Webhook::shipmondo_order(&status)
                        .field("/data/id", id)
                        .field("/data/order_id", order_id)
                        .field("/webhook", name)
                })
                .boxed()
        }
        Provider::GoShiip => {
            let extras = prop::collection::btree_map("x-[a-z]{1,8}", text(), 0..3);
            (text(), text(), text(), extras)
                .prop_map(|(reference, status, extra, extras)| {
                    let webhook = Webhook::goshiip(&status)
                        .field("/shipment/data/reference", reference)
                        .field("/shipment/data/extra", extra);
                    extras.into_iter().fold(webhook, |webhook, (key, value)| {
                        webhook.field(&format!("/{key}"), value)
                    })
                })
                .boxed()
        }
        Provider::EasyPost => (text(), text(), text(), timestamp())
            .prop_map(|(event_id, tracker_id, status, updated_at)| {
                Webhook::easypost(&status)
                    .field("/id", event_id)
                    .field("/result/id", tracker_id)
                    .field("/result/updated_at", updated_at)
            })
            .boxed(),
        Provider::AfterShip => (text(), text(), text(), any::<u32>())
            .prop_map(|(event_id, tracking_number, tag, ts)| {
                Webhook::aftership(&tag)
                    .field("/event_id", event_id)
                    .field("/msg/tracking_number", tracking_number)
                    .field("/ts", ts)
            })
            .boxed(),
        Provider::Sendcloud => {
            // Sendcloud's parcel ids are numbers; strings are accepted too.
            let id = prop_oneof![
                any::<u64>().prop_map(Value::from),
                text().prop_map(Value::from)
            ];
            (id, any::<i64>(), text(), 0..4_102_444_800_000_i64)
                .prop_map(|(id, status_id, message, timestamp)| {
                    Webhook::sendcloud(status_id)
                        .field("/parcel/id", id)
                        .field("/parcel/status/message", message)
                        .field("/timestamp", timestamp)
                })
                .boxed()
        }
        // A tracking number names the shipment: an empty one is refused.
        Provider::Shippo => (
            text().prop_filter("a tracking number", |id| !id.is_empty()),
            text(),
        )
            .prop_map(|(number, status)| {
                Webhook::shippo(&status).field("/data/tracking_number", number)
            })
            .boxed(),
        Provider::ShipBob => {
            let id = prop_oneof![
                any::<u64>().prop_map(Value::from),
                text().prop_map(Value::from)
            ];
            (id, text())
                .prop_map(|(id, status)| Webhook::shipbob(&status).field("/order_id", id))
                .boxed()
        }
        Provider::ShipEngine => {
            let extras = prop::collection::btree_map("x-[a-z]{1,8}", text(), 0..3);
            let number = text().prop_filter("a tracking number", |number| !number.is_empty());
            (number, text(), text(), extras)
                .prop_map(|(number, status, description, extras)| {
                    let webhook = Webhook::shipengine(&status)
                        .field("/data/tracking_number", number)
                        .field("/data/status_description", description);
                    extras.into_iter().fold(webhook, |webhook, (key, value)| {
                        webhook.field(&format!("/data/{key}"), value)
                    })
                })
                .boxed()
        }
        other => unreachable!("no webhook for {other}"),
    }
}

/// A provider, one of its webhooks and a secret to sign it with.
fn signed_webhook() -> impl Strategy<Value = (Provider, Webhook, String)> {
    provider().prop_flat_map(|provider| (Just(provider), webhook(provider), secret(provider)))
}

/// Where `provider`'s payload holds the event's id and its status.
fn id_and_status(provider: Provider) -> (&'static str, &'static str) {
    match provider {
        Provider::Kosmo => ("/orderId", "/status"),
        Provider::Kourier => ("/delivery_id", "/status"),
        Provider::Shipmondo => ("/data/id", "/data/order_status"),
        Provider::GoShiip => ("/shipment/data/reference", "/shipment/data/status"),
        Provider::EasyPost => ("/result/id", "/result/status"),
        Provider::AfterShip => ("/msg/tracking_number", "/msg/tag"),
        Provider::Sendcloud => ("/parcel/id", "/parcel/status/message"),
        Provider::Shippo => ("/data/tracking_number", "/data/tracking_status/status"),
        Provider::ShipBob => ("/order_id", "/status"),
        Provider::ShipEngine => ("/data/tracking_number", "/data/status_code"),
        other => unreachable!("no payload for {other}"),
    }
}

/// A provider; 1 to 4 distinct secrets for it as `(label, secret)` with
/// distinct labels, the first `primary`; and a secret that may be none of them.
fn keyring() -> impl Strategy<Value = (Provider, Vec<(String, String)>, String)> {
    // ShipEngine's keys are a JWKS's, named by kid, not labelled secrets:
    // see shipengine::rotation_names_the_key_that_matched.
    let labelled = PROVIDERS.into_iter().filter(|p| *p != Provider::ShipEngine);
    prop::sample::select(labelled.collect::<Vec<_>>())
        .prop_flat_map(|provider| {
            let secrets = prop::collection::btree_set(secret(provider), 1..=4);
            (Just(provider), secrets, secret(provider))
        })
        .prop_flat_map(|(provider, secrets, outsider)| {
            let label = "\\PC{1,16}".prop_filter("`primary` is the first's", |l| l != "primary");
            let labels = prop::collection::btree_set(label, secrets.len() - 1);
            (Just(provider), Just(secrets), labels, Just(outsider))
        })
        .prop_map(|(provider, secrets, labels, outsider)| {
            let labels = std::iter::once("primary".to_owned()).chain(labels);
            (provider, labels.zip(secrets).collect(), outsider)
        })
}

/// The Kosmo body with these signed fields, written as they are even if a
/// flipped bit left them invalid UTF-8.
fn kosmo_body(signed: &[Vec<u8>; 3], status: &str) -> Vec<u8> {
    let [event_id, order_id, timestamp] = signed.each_ref().map(|field| json_string(field));
    let status = serde_json::to_vec(status).expect("a str serializes");
    [
        &b"{\"eventId\":"[..],
        &event_id,
        b",\"orderId\":",
        &order_id,
        b",\"timestamp\":",
        &timestamp,
        b",\"status\":",
        &status,
        b"}",
    ]
    .concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_provider_accepts_what_it_signed((provider, webhook, secret) in signed_webhook()) {
        let answer = call(&app_with(provider, &secret), webhook.sign(&secret));
        prop_assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        let (id, status) = id_and_status(provider);
        // Shipmondo's numeric ids become text.
        let id = match webhook.payload().pointer(id).expect("the payload has an id") {
            Value::String(id) => id.clone(),
            number => number.to_string(),
        };
        prop_assert_eq!(&answer.json["event"]["id"], &id);
        prop_assert_eq!(
            Some(&answer.json["event"]["raw_status"]),
            webhook.payload().pointer(status)
        );
        // ShipEngine names the key that matched by its kid.
        let label = if provider == Provider::ShipEngine { SHIPENGINE_DEMO_KEY_ID } else { "primary" };
        prop_assert_eq!(&answer.json["secret"], label);
    }

    #[test]
    fn goshiip_verifies_the_bytes_as_sent_however_formatted(
        webhook in webhook(Provider::GoShiip),
        secret in secret(Provider::GoShiip),
    ) {
        // The same JSON, pretty-printed, then signed as sent.
        let body = serde_json::to_string_pretty(webhook.payload()).expect("JSON serializes");
        let signature = goshiip_signature(&secret, body.as_bytes());
        let request = with_body(webhook.sign(&secret), body.clone());
        let request = with_header(request, "x-signature", &signature);
        let answer = call(&app_with(Provider::GoShiip, &secret), request);
        prop_assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        prop_assert_eq!(&answer.json["body_len"], &json!(body.len()));
        prop_assert_eq!(&answer.json["payload"], webhook.payload());
    }

    #[test]
    fn goshiip_refuses_a_body_with_one_bit_flipped(
        webhook in webhook(Provider::GoShiip),
        secret in secret(Provider::GoShiip),
        byte in any::<Index>(),
        bit in 0..8u32,
    ) {
        let app = app_with(Provider::GoShiip, &secret);
        prop_assert_eq!(call(&app, webhook.sign(&secret)).status, StatusCode::OK);
        let mut body = webhook.payload_json().into_bytes();
        flip(&mut body, byte, bit);
        // The signature is checked before the body is parsed, so even a body
        // the flip left invalid UTF-8 or JSON is a 401.
        let answer = call(&app, with_body(webhook.sign(&secret), body));
        prop_assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.json);
    }

    #[test]
    fn kosmo_refuses_a_signed_field_with_one_bit_flipped(
        webhook in webhook(Provider::Kosmo),
        secret in secret(Provider::Kosmo),
        byte in any::<Index>(),
        bit in 0..8u32,
    ) {
        let app = app_with(Provider::Kosmo, &secret);
        let field = |name: &str| webhook.payload()[name].as_str().expect("a string");
        let signed_field = |name| field(name).as_bytes().to_vec();
        let mut signed = ["eventId", "orderId", "timestamp"].map(signed_field);
        let status = field("status");

        let control = with_body(webhook.sign(&secret), kosmo_body(&signed, status));
        prop_assert_eq!(call(&app, control).status, StatusCode::OK);

        // One bit of eventId + orderId + timestamp, in whichever field holds it.
        let mut at = byte.index(signed.iter().map(Vec::len).sum());
        for field in &mut signed {
            if at < field.len() {
                field[at] ^= 1 << bit;
                break;
            }
            at -= field.len();
        }
        let utf8 = signed.iter().all(|field| std::str::from_utf8(field).is_ok());
        let answer = call(&app, with_body(webhook.sign(&secret), kosmo_body(&signed, status)));
        // Still text: the JSON holds and the signature no longer does (401).
        // No longer UTF-8: the body is not JSON, refused before the signature (400).
        let expected = if utf8 { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
        prop_assert_eq!(answer.status, expected, "{}", answer.json);
    }

    #[test]
    fn kourier_refuses_a_token_with_one_bit_flipped(
        webhook in webhook(Provider::Kourier),
        secret in secret(Provider::Kourier),
        byte in any::<Index>(),
        bit in 0..8u32,
    ) {
        // Only the token's bits: the scheme `Bearer` is case-insensitive.
        let flip_token = |value: &mut Vec<u8>| flip(&mut value["Bearer ".len()..], byte, bit);
        let Some(request) = sign_mangled(&webhook, &secret, flip_token) else {
            return Err(TestCaseError::reject("a control character cannot be sent in a header"));
        };
        let answer = call(&app_with(Provider::Kourier, &secret), request);
        prop_assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.json);
        prop_assert_eq!(&answer.headers["www-authenticate"], "Bearer");
    }

    #[test]
    fn shipmondo_refuses_a_token_with_one_bit_flipped(
        webhook in webhook(Provider::Shipmondo),
        secret in secret(Provider::Shipmondo),
        byte in any::<Index>(),
        bit in 0..8u32,
    ) {
        let request = sign_mangled(&webhook, &secret, |token| flip(token, byte, bit));
        let request = request.expect("a body takes any bytes");
        let answer = call(&app_with(Provider::Shipmondo, &secret), request);
        // The token is ASCII: flipping bit 7 leaves a byte that is not UTF-8, so
        // the body is not JSON (400); any other flip leaves a token whose
        // structure, base64url or signature fails (401).
        let expected = if bit == 7 { StatusCode::BAD_REQUEST } else { StatusCode::UNAUTHORIZED };
        prop_assert_eq!(answer.status, expected, "{}", answer.json);
    }

    #[test]
    fn every_provider_refuses_an_empty_or_truncated_proof(
        (provider, webhook, secret) in signed_webhook(),
        cut in prop_oneof![1 => Just(None), 3 => any::<Index>().prop_map(Some)],
    ) {
        let app = app_with(provider, &secret);
        let control = sign_mangled(&webhook, &secret, |_| ()).expect("the proof as signed");
        prop_assert_eq!(call(&app, control).status, StatusCode::OK);

        // Empty, or a strict prefix of the proof as sent.
        let truncate = |proof: &mut Vec<u8>| {
            proof.truncate(cut.map_or(0, |cut| cut.index(proof.len())));
        };
        let mut kept = 0;
        let request = sign_mangled(&webhook, &secret, |proof| {
            truncate(proof);
            kept = proof.len();
        });
        let answer = call(&app, request.expect("a prefix of a header value is one"));
        // ShipBob's signature without its final `=` is its unpadded form, accepted.
        let unpadded = provider == Provider::ShipBob && kept == "v1,".len() + 43;
        let expected = if unpadded { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        prop_assert_eq!(answer.status, expected, "{}", answer.json);
    }

    #[test]
    fn every_provider_accepts_each_configured_secret_and_no_other(
        (provider, keys, outsider) in keyring(),
        signer in any::<Index>(),
    ) {
        prop_assume!(keys.iter().all(|(_, secret)| *secret != outsider));
        let app = app(provider, &keys);
        let webhook = Webhook::sample(provider, "delivered");
        let (label, secret) = signer.get(&keys);
        let answer = call(&app, webhook.sign(secret));
        prop_assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        prop_assert_eq!(&answer.json["secret"], label.as_str());

        let answer = call(&app, webhook.sign(&outsider));
        prop_assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.json);
    }
}

proptest! {
    // Each case signs with RSA: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn shipengine_refuses_a_signed_time_or_body_with_one_bit_flipped(
        webhook in webhook(Provider::ShipEngine),
        byte in any::<Index>(),
        bit in 0..8u32,
        in_time in any::<bool>(),
    ) {
        let secret = SHIPENGINE_DEMO_PRIVATE_KEY;
        let app = app_with(Provider::ShipEngine, secret);
        let request = webhook.clone().now().sign(secret);
        let time = request.headers()["x-shipengine-timestamp"].as_bytes().to_vec();
        prop_assert_eq!(call(&app, request).status, StatusCode::OK);

        let stamped = webhook.now();
        let signed = stamped.sign(secret);
        let request = if in_time {
            let mut time = time;
            flip(&mut time, byte, bit);
            // A control character cannot be sent in a header at all.
            let Ok(value) = HeaderValue::from_bytes(&time) else { return Ok(()) };
            let mut request = signed;
            request.headers_mut().insert("x-shipengine-timestamp", value);
            request
        } else {
            // The body `sign` sent.
            let mut body = stamped.payload_json().into_bytes();
            flip(&mut body, byte, bit);
            with_body(signed, body)
        };
        let answer = call(&app, request);
        prop_assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.json);
    }
}

proptest! {
    // Each case tries every bit of the signature, so fewer cases.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn kosmo_refuses_its_signature_with_any_one_bit_flipped(
        webhook in webhook(Provider::Kosmo),
        secret in secret(Provider::Kosmo),
    ) {
        let app = app_with(Provider::Kosmo, &secret);
        let signed = webhook.sign(&secret);
        for (at, bit) in every_bit(signed.headers()["x-kosmo-signature"].len()) {
            let flipped = sign_mangled(&webhook, &secret, |signature| signature[at] ^= 1 << bit);
            // A control character cannot be sent in a header at all.
            let Some(request) = flipped else { continue };
            // Base64 is case-sensitive, and STANDARD refuses a final character
            // whose unused low bits are not zero (a lenient decoder would read
            // some of these flips as the same tag).
            let answer = call(&app, request);
            let (status, json) = (answer.status, answer.json);
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED, "byte {} bit {}: {}", at, bit, json);
        }
    }

    #[test]
    fn goshiip_refuses_its_signature_with_any_one_bit_flipped_but_a_letters_case(
        webhook in webhook(Provider::GoShiip),
        secret in secret(Provider::GoShiip),
    ) {
        let app = app_with(Provider::GoShiip, &secret);
        let signature = goshiip_signature(&secret, webhook.payload_json().as_bytes());
        for (at, bit) in every_bit(signature.len()) {
            let flipped = sign_mangled(&webhook, &secret, |signature| signature[at] ^= 1 << bit);
            let Some(request) = flipped else { continue };
            // Hex is case-insensitive: bit 5 turns `a`-`f` into `A`-`F`, the same tag.
            let same_tag = matches!(signature.as_bytes()[at], b'a'..=b'f') && bit == 5;
            let expected = if same_tag { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
            let answer = call(&app, request);
            prop_assert_eq!(answer.status, expected, "byte {} bit {}: {}", at, bit, answer.json);
        }
    }
}

// Events through a queue: whatever a `ShipmentEvent` holds, its JSON brings it back.

use shipment_webhooks::{ShipmentEvent, ShipmentStatus};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The names of the named statuses, as JSON writes them.
const STATUS_NAMES: [&str; 13] = [
    "created",
    "processing",
    "ready_for_pickup",
    "assigned",
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "at_pickup_point",
    "delivered",
    "failed",
    "cancelled",
    "returned",
    "on_hold",
];

/// Any status: a named one, or `Other` of any text. `Other`'s text may be a
/// vocabulary word or `other` itself: the crate makes `Other("delivered")`
/// where a Shipmondo payload has no status and its unsigned `SMD-Action`
/// header says `delivered`, and `Other("<event name>")` from a Kourier event
/// without a status, so the round trip must hold for those too.
fn shipment_status() -> impl Strategy<Value = ShipmentStatus> {
    let words = prop::sample::select([&STATUS_NAMES[..], &["other"]].concat());
    prop_oneof![
        prop::sample::select(STATUS_NAMES.to_vec())
            .prop_map(|name| name.parse().expect("parsing never fails")),
        text().prop_map(ShipmentStatus::Other),
        words.prop_map(|word| ShipmentStatus::Other(word.to_owned())),
    ]
}

/// Any date-time RFC 3339 can write: years 0000 to 9999, whole seconds,
/// milliseconds or nanoseconds, in UTC or at an offset of up to ±23:59.
fn offset_date_time() -> impl Strategy<Value = OffsetDateTime> {
    let first = Date::from_calendar_date(0, Month::January, 1).expect("a date");
    let last = Date::from_calendar_date(9999, Month::December, 31).expect("a date");
    let day = first.to_julian_day()..=last.to_julian_day();
    let nanosecond = prop_oneof![
        Just(0),
        (0..1000u32).prop_map(|millis| millis * 1_000_000),
        0..1_000_000_000u32,
    ];
    let time = (0..24u8, 0..60u8, 0..60u8, nanosecond);
    let offset = prop_oneof![Just(0), -(23 * 60 + 59)..=(23 * 60 + 59i32)];
    (day, time, offset).prop_map(|(day, (h, m, s, ns), offset_minutes)| {
        let date = Date::from_julian_day(day).expect("a day in range");
        let time = Time::from_hms_nano(h, m, s, ns).expect("a time of day");
        let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).expect("an offset");
        PrimitiveDateTime::new(date, time).assume_offset(offset)
    })
}

/// Any event, made as workers and tests make them.
fn shipment_event() -> impl Strategy<Value = ShipmentEvent> {
    let event_id = prop::option::of(prop_oneof![uuid(), text()]);
    (
        provider(),
        text(),
        shipment_status(),
        prop::option::of(text()),
        prop::option::of(offset_date_time()),
        event_id,
    )
        .prop_map(|(provider, id, status, raw_status, timestamp, event_id)| {
            let mut event = ShipmentEvent::new(provider, id, status);
            if let Some(raw_status) = raw_status {
                event = event.with_raw_status(raw_status);
            }
            if let Some(timestamp) = timestamp {
                event = event.with_timestamp(timestamp);
            }
            if let Some(event_id) = event_id {
                event = event.with_event_id(event_id);
            }
            event
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_event_round_trips_through_json(event in shipment_event()) {
        let json = serde_json::to_string(&event).expect("an event serializes");
        let back: ShipmentEvent = serde_json::from_str(&json).expect("its JSON deserializes");
        prop_assert_eq!(&back, &event, "{}", json);
        // `==` compares timestamps as instants: the offset and digits too.
        let exact = |event: &ShipmentEvent| event.timestamp.map(|t| (t.offset(), t.nanosecond()));
        prop_assert_eq!(exact(&back), exact(&event), "{}", json);
        prop_assert_eq!(serde_json::to_string(&back).expect("serializes"), json);

        // Through a `Value` too, whose strings arrive owned.
        let value = serde_json::to_value(&event).expect("an event serializes");
        let back: ShipmentEvent = serde_json::from_value(value).expect("its value deserializes");
        prop_assert_eq!(&back, &event);
        prop_assert_eq!(exact(&back), exact(&event));
    }

    #[test]
    fn a_status_alone_round_trips_but_for_other_s_text(status in shipment_status()) {
        let json = serde_json::to_string(&status).expect("a status serializes");
        let back: ShipmentStatus = serde_json::from_str(&json).expect("its JSON deserializes");
        let parsed: ShipmentStatus = status.as_str().parse().expect("parsing never fails");
        prop_assert_eq!(&back, &parsed);
        match status {
            ShipmentStatus::Other(_) => {
                prop_assert_eq!(back, ShipmentStatus::Other("other".to_owned()));
            }
            named => prop_assert_eq!(back, named),
        }
    }
}
