//! The signed webhooks the benchmark and the instruction gauge send: each
//! provider's sample padded with its own kind of bulk (Kosmo stops, order
//! lines, GoShiip history) to a given size.

use std::borrow::Cow;
use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::FutureExt;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shipment_webhooks::testing::Webhook;
use subtle::ConstantTimeEq;

pub const SECRET: &str = "a-benchmark-secret-of-32-bytes!!";

/// `webhook` with items appended to the array at `pointer` until its signed
/// body reaches `size` bytes.
fn grow(webhook: Webhook, pointer: &str, item: Value, size: usize) -> Webhook {
    let mut items = Vec::new();
    loop {
        let candidate = webhook.clone().field(pointer, Value::Array(items.clone()));
        if body_of(&candidate).len() >= size {
            return candidate;
        }
        items.push(item.clone());
    }
}

/// The body `webhook` is sent with, signed with [`SECRET`].
pub fn body_of(webhook: &Webhook) -> Bytes {
    let body = webhook.sign(SECRET).into_body();
    body.collect()
        .now_or_never()
        .expect("a full body")
        .expect("infallible")
        .to_bytes()
}

/// Each provider's webhook of about `size` bytes.
pub fn samples(size: usize) -> [(&'static str, Webhook); 4] {
    let stop = json!({"type": "DROPOFF", "status": "PENDING", "address": "8 Marina View, Singapore 018960", "contact": {"name": "Ana Lim", "phone": "+65 8123 4567"}});
    let line = json!({"sku": "TSHIRT-M-BLK", "name": "T-shirt, black, M", "quantity": 2, "unit_price": "129.00", "vat": "32.25"});
    let history = json!({"status": "In Progress", "at": "2025-05-01T09:30:00Z", "location": "Lekki hub, Lagos"});
    [
        (
            "kosmo",
            grow(Webhook::kosmo("PICKED UP"), "/stops", stop, size),
        ),
        (
            "kourier",
            grow(Webhook::kourier("in_transit"), "/items", line.clone(), size),
        ),
        (
            "shipmondo",
            grow(
                Webhook::shipmondo_order("sent"),
                "/data/order_lines",
                line,
                size,
            ),
        ),
        (
            "goshiip",
            grow(
                Webhook::goshiip("In Progress"),
                "/shipment/history",
                history,
                size,
            ),
        ),
    ]
}

// The fields each layer decodes into its `ShipmentEvent`, as the reference decodes them.
#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
#[serde(rename_all = "camelCase")]
struct KosmoFields<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct KourierFields<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    delivery_id: Cow<'a, str>,
    // Not `Option<Cow<str>>`, which serde always copies (serde-rs/serde#1497).
    status: Option<&'a str>,
    timestamp: Option<&'a str>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct ShipmondoFields<'a> {
    #[serde(borrow)]
    data: ShipmondoData<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct ShipmondoData<'a> {
    id: u64,
    #[serde(borrow)]
    order_status: Cow<'a, str>,
    #[serde(borrow)]
    updated_at: Cow<'a, str>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct GoShiipFields<'a> {
    #[serde(borrow)]
    shipment: GoShiipShipment<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct GoShiipShipment<'a> {
    #[serde(borrow)]
    data: GoShiipData<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct GoShiipData<'a> {
    #[serde(borrow)]
    reference: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ShipmondoEnvelope<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes it, never read")]
struct JwsHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
}

/// Decodes the event's fields from `body`, as `provider`'s layer must. For
/// Shipmondo that is its format's whole chain: the envelope, the JWT's
/// header and payload from base64, and the payload's JSON string unescaped.
pub fn decode_fields(provider: &str, body: &[u8]) {
    match provider {
        "kosmo" => drop(black_box(
            serde_json::from_slice::<KosmoFields<'_>>(body).unwrap(),
        )),
        "kourier" => drop(black_box(
            serde_json::from_slice::<KourierFields<'_>>(body).unwrap(),
        )),
        "shipmondo" => {
            let envelope: ShipmondoEnvelope<'_> = serde_json::from_slice(body).unwrap();
            let mut segments = envelope.data.split('.');
            let (Some(header), Some(payload)) = (segments.next(), segments.next()) else {
                panic!("a JWT");
            };
            let header = URL_SAFE_NO_PAD.decode(header).unwrap();
            drop(black_box(
                serde_json::from_slice::<JwsHeader<'_>>(&header).unwrap(),
            ));
            let payload = URL_SAFE_NO_PAD.decode(payload).unwrap();
            // Shipmondo's payload is a JSON string holding the JSON.
            let claims: String = serde_json::from_slice(&payload).unwrap();
            drop(black_box(
                serde_json::from_str::<ShipmondoFields<'_>>(&claims).unwrap(),
            ));
        }
        _ => drop(black_box(
            serde_json::from_slice::<GoShiipFields<'_>>(body).unwrap(),
        )),
    }
}

/// One HMAC of what a provider signs, the hashing no layer can avoid (for
/// Kourier, which signs nothing, the token's SHA-256 digest compared in
/// constant time, as `KourierBearer` compares tokens).
pub struct Reference {
    kourier: bool,
    key: Hmac<Sha256>,
    token: [u8; 32],
    message: Vec<u8>,
}

impl Reference {
    pub fn new(provider: &str, webhook: &Webhook, body: &Bytes) -> Self {
        Self {
            kourier: provider == "kourier",
            key: Hmac::new_from_slice(SECRET.as_bytes()).expect("any key length"),
            token: Sha256::digest(SECRET.as_bytes()).into(),
            message: signed(provider, webhook, body),
        }
    }

    pub fn hmac(&self) {
        if self.kourier {
            let received = Sha256::digest(black_box(SECRET.as_bytes()));
            assert!(bool::from(received.ct_eq(&self.token)));
        } else {
            let mut mac = self.key.clone();
            mac.update(black_box(&self.message));
            black_box(mac.finalize());
        }
    }
}

/// What `provider` signs in `webhook`'s request whose body is `body`.
fn signed(provider: &str, webhook: &Webhook, body: &Bytes) -> Vec<u8> {
    let payload = webhook.payload();
    match provider {
        "kosmo" => ["eventId", "orderId", "timestamp"]
            .map(|name| payload[name].as_str().expect("a signed field"))
            .concat()
            .into_bytes(),
        "shipmondo" => {
            let envelope: serde_json::Value = serde_json::from_slice(body).expect("JSON");
            let token = envelope["data"].as_str().expect("a token");
            let (signed, _) = token.rsplit_once('.').expect("a JWT");
            signed.as_bytes().to_vec()
        }
        _ => body.to_vec(),
    }
}
