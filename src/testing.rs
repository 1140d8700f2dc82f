//! Build webhook requests exactly as each provider sends them, to test
//! handlers without the provider. Needs the `testing` feature (a
//! dev-dependency with `features = ["testing"]`).
//!
//! A [`Webhook`] starts from a realistic sample of one provider's payload in
//! a given status; change any field with [`field`](Webhook::field) or
//! [`without`](Webhook::without), then [`sign`](Webhook::sign) it with the
//! secret your layer is configured with (or another one, to see it refused).
//!
//! ```
//! use axum::{Router, http::StatusCode, routing::post};
//! use shipment_webhooks::{KosmoSignature, ShipmentEvent, ShipmentStatus, testing::Webhook};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! async fn on_event(event: ShipmentEvent) -> StatusCode {
//!     assert_eq!(event.status, ShipmentStatus::PickedUp);
//!     StatusCode::OK
//! }
//! let secret = "whk_test_secret";
//! let app = Router::new().route("/webhooks/kosmo", post(on_event).route_layer(KosmoSignature::new(secret)));
//!
//! let request = Webhook::kosmo("PICKED UP").field("/orderId", "SG-42").sign(secret);
//! let response = app.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let forged = Webhook::kosmo("DELIVERED").sign("whk_not_the_secret");
//! assert_eq!(app.oneshot(forged).await.unwrap().status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

use axum_core::body::Body;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[cfg(feature = "inbox")]
use crate::VerifiedWebhook;
use crate::json::optional_id;
use crate::proof::HmacSha256;
use crate::{Provider, Verified, WebhookRejection, WebhookSecret};
use crate::{
    aftership, easypost, goshiip, kosmo, sendcloud, shipbob, shipengine, shipmondo, shippo,
    standard_webhooks,
};

/// Kosmo's signature: base64 HMAC-SHA256 of `event_id + order_id + timestamp`.
pub fn kosmo_signature(
    secret: impl WebhookSecret,
    event_id: &str,
    order_id: &str,
    timestamp: &str,
) -> String {
    STANDARD.encode(hmac(secret, [event_id, order_id, timestamp].concat()))
}

/// GoShiip's signature: hex HMAC-SHA256 of the body.
pub fn goshiip_signature(secret: impl WebhookSecret, body: &[u8]) -> String {
    hex::encode(hmac(secret, body))
}

/// EasyPost's signature header value: `hmac-sha256-hex=` and the hex
/// HMAC-SHA256 of the body, keyed with the secret in Unicode NFKD (as
/// EasyPost's SDKs do; a secret that is not UTF-8 as its bytes).
pub fn easypost_signature(secret: impl WebhookSecret, body: &[u8]) -> String {
    use unicode_normalization::UnicodeNormalization;
    let secret = secret.secret_bytes();
    let tag = match std::str::from_utf8(secret) {
        Ok(text) => hmac(text.nfkd().collect::<String>().as_bytes(), body),
        Err(_) => hmac(secret, body),
    };
    format!("{}{}", easypost::SIGNATURE_PREFIX, hex::encode(tag))
}

/// AfterShip's signature: base64 HMAC-SHA256 of the body.
pub fn aftership_signature(secret: impl WebhookSecret, body: &[u8]) -> String {
    STANDARD.encode(hmac(secret, body))
}

/// Sendcloud's signature: hex HMAC-SHA256 of the body.
pub fn sendcloud_signature(secret: impl WebhookSecret, body: &[u8]) -> String {
    hex::encode(hmac(secret, body))
}

/// Shipmondo's token: an HS256 JWT whose payload is `payload_json` as a JSON
/// string, the way Shipmondo encodes it.
pub fn shipmondo_jwt(key: impl WebhookSecret, payload_json: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
    let claims = serde_json::to_vec(payload_json).expect("a string always serializes");
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    let signature = URL_SAFE_NO_PAD.encode(hmac(key, signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// Shippo's `Shippo-Auth-Signature` value as integrations read it:
/// `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn shippo_signature(secret: impl WebhookSecret, t: i64, body: &[u8]) -> String {
    let signed = [format!("{t}.").as_bytes(), body].concat();
    format!("t={t},v1={}", hex::encode(hmac(secret, signed)))
}

/// A Standard Webhooks `webhook-signature` entry (ShipBob's):
/// `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
/// decoded bytes of `secret` (`whsec_<base64>`, the prefix optional). A
/// secret that is not base64 is used as it is, to show it refused.
pub fn standard_webhooks_signature(
    secret: impl WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let secret = secret.secret_bytes();
    let key =
        standard_webhooks::decode_secret("primary", secret).unwrap_or_else(|_| secret.to_vec());
    let signed = [format!("{id}.{timestamp}.").as_bytes(), body].concat();
    format!("v1,{}", STANDARD.encode(hmac(key, signed)))
}

/// The private half of the demo key pair [`shipengine_demo_jwks`] publishes,
/// a PKCS#8 PEM: what [`Webhook::sign`] takes for ShipEngine. A demo key,
/// public in this crate's source: never trust it outside tests and demos.
pub const SHIPENGINE_DEMO_PRIVATE_KEY: &str = shipengine::demo::PRIVATE_KEY;

/// The `kid` of the demo key in [`shipengine_demo_jwks`], which
/// [`Webhook::shipengine`] names unless told otherwise.
pub const SHIPENGINE_DEMO_KEY_ID: &str = shipengine::demo::KID;

/// A JWKS with one 2048-bit RSA key, [`SHIPENGINE_DEMO_KEY_ID`], whose private
/// half is [`SHIPENGINE_DEMO_PRIVATE_KEY`]: for
/// [`ShipEngineSignature::from_jwks`](crate::ShipEngineSignature::from_jwks)
/// in tests and demos.
pub fn shipengine_demo_jwks() -> &'static str {
    shipengine::demo::JWKS
}

/// ShipEngine's signature: base64 RSASSA-PKCS1-v1_5 SHA-256 of
/// `"<timestamp>.<body>"`, with `private_key`, an RSA private key as a
/// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
///
/// # Panics
///
/// If `private_key` is not one.
pub fn shipengine_signature(
    private_key: impl WebhookSecret,
    timestamp: &str,
    body: &[u8],
) -> String {
    use sha2::{Digest, Sha256};

    let pem = std::str::from_utf8(private_key.secret_bytes()).unwrap_or_default();
    let key = rsa_key_from_pkcs8_pem(pem).unwrap_or_else(|| {
        panic!("a ShipEngine signing key must be an RSA private key as a PKCS#8 PEM")
    });
    let digest = Sha256::new()
        .chain_update(timestamp.as_bytes())
        .chain_update(b".")
        .chain_update(body)
        .finalize();
    let signature = key
        .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
        .expect("an RSA key signs a SHA-256 digest");
    STANDARD.encode(signature)
}

/// An RSA private key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`),
/// its DER read here rather than by RSA's `encoding` feature, whose six
/// crates would be most of what `testing` adds to a first build. A signing
/// kit's reader, not a DER validator: it takes `rsaEncryption` keys (what
/// `openssl genpkey -algorithm RSA` writes) and reads `n`, `e`, `d`, `p` and
/// `q`, which `from_components` checks against each other, as `rsa`'s own
/// decoder does; it is laxer about encodings (non-minimal lengths, trailing
/// bytes), which no key that signs changes.
fn rsa_key_from_pkcs8_pem(pem: &str) -> Option<rsa::PrivateKey> {
    /// The DER of the OID 1.2.840.113549.1.1.1, `rsaEncryption`.
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    let base64: String = pem
        .trim()
        .strip_prefix("-----BEGIN PRIVATE KEY-----")?
        .strip_suffix("-----END PRIVATE KEY-----")?
        .split_whitespace()
        .collect();
    let der = STANDARD.decode(base64).ok()?;
    // PrivateKeyInfo: SEQUENCE { version, algorithm, privateKey OCTET STRING }
    let (info, _) = der_element(&der, 0x30)?;
    let (_, rest) = der_element(info, 0x02)?;
    let (algorithm, rest) = der_element(rest, 0x30)?;
    if !algorithm.starts_with(RSA_ENCRYPTION) {
        return None;
    }
    let (key, _) = der_element(rest, 0x04)?;
    // RSAPrivateKey: SEQUENCE { version 0 (two primes), n, e, d, p, q, ... }
    let (key, _) = der_element(key, 0x30)?;
    let (version, mut rest) = der_element(key, 0x02)?;
    if version != [0] {
        return None;
    }
    let mut integers = [&[][..]; 5];
    for integer in &mut integers {
        let (bytes, next) = der_element(rest, 0x02)?;
        // Unsigned: without the zero bytes that keep a high bit positive.
        let start = bytes
            .iter()
            .position(|&byte| byte != 0)
            .unwrap_or(bytes.len());
        *integer = &bytes[start..];
        rest = next;
    }
    let [n, e, d, p, q] = integers;
    let bits = |bytes: &[u8]| u32::try_from(bytes.len()).ok()?.checked_mul(8);
    let uint = |bytes: &[u8], bits| rsa::BoxedUint::from_be_slice(bytes, bits).ok();
    let e = uint(e, bits(e)?)?;
    let bits = bits(n)?;
    let primes = vec![uint(p, bits)?, uint(q, bits)?];
    rsa::PrivateKey::from_components(uint(n, bits)?, e, uint(d, bits)?, primes).ok()
}

/// The contents of the DER element `input` starts with, if its tag is `tag`,
/// and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, rest) = rest.split_first()?;
    let (length, rest) = match length {
        0..=0x7f => (usize::from(length), rest),
        // The long form: the length in the next 1 to 4 bytes.
        0x81..=0x84 => {
            let (bytes, rest) = rest.split_at_checked(usize::from(length & 0x7f))?;
            let length = bytes
                .iter()
                .fold(0, |length, &byte| length << 8 | usize::from(byte));
            (length, rest)
        }
        _ => return None,
    };
    rest.split_at_checked(length)
}

/// HMAC-SHA256 with any key, even an empty one, to show it refused.
fn hmac(key: impl WebhookSecret, message: impl AsRef<[u8]>) -> Vec<u8> {
    let mut mac =
        HmacSha256::new_from_slice(key.secret_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message.as_ref());
    mac.finalize().into_bytes().to_vec()
}

/// A webhook as a provider would send it, to sign into a request.
///
/// The payload is JSON you can change anywhere by [JSON pointer]; for
/// Shipmondo it is the JWT's payload (`{"webhook", "data", "url"}`), and the
/// `SMD-*` headers are set too.
///
/// [JSON pointer]: https://www.rfc-editor.org/rfc/rfc6901
#[derive(Debug, Clone)]
pub struct Webhook {
    provider: Provider,
    uri: Uri,
    headers: HeaderMap,
    signature_header: Option<HeaderName>,
    payload: Value,
    sent_at: Option<OffsetDateTime>,
}

impl Webhook {
    fn new(provider: Provider, payload: Value) -> Self {
        let uri = Uri::try_from(format!("/webhooks/{provider}")).expect("a valid path");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self {
            provider,
            uri,
            headers,
            signature_header: None,
            payload,
            sent_at: None,
        }
    }

    /// A sample of `provider`'s webhook in `status` (what that provider calls
    /// it). For Shipmondo, an `Orders` webhook with that `order_status`. For
    /// Sendcloud, which numbers its statuses, a parcel status id as text
    /// (`"11"`), or a name of this crate's vocabulary (`delivered`, 11; see
    /// [`sendcloud_status_id`]); any other text is id 1337, "Unknown status".
    pub fn sample(provider: Provider, status: &str) -> Self {
        match provider {
            Provider::Kosmo => Self::kosmo(status),
            Provider::Kourier => Self::kourier(status),
            Provider::Shipmondo => Self::shipmondo_order(status),
            Provider::GoShiip => Self::goshiip(status),
            Provider::EasyPost => Self::easypost(status),
            Provider::AfterShip => Self::aftership(status),
            Provider::Sendcloud => Self::sendcloud(sendcloud_status_id(status)),
            Provider::Shippo => Self::shippo(status),
            Provider::ShipBob => Self::shipbob(status),
            Provider::ShipEngine => Self::shipengine(status),
        }
    }

    /// A Kosmo order update in `status` (`ASSIGNED`, `PICKED UP`, `DELIVERED`...),
    /// with the ids and time of Kosmo's own signature example.
    pub fn kosmo(status: &str) -> Self {
        Self::new(
            Provider::Kosmo,
            json!({
                "eventId": "9ddafe4f-010b-43e9-a0b4-baad0c46d9de",
                "orderId": "SG-19ALqYm4s6P",
                "timestamp": "2023-02-23T04:22:15Z",
                "status": status,
                "stops": [
                    {"type": "PICKUP", "address": "1 Raffles Place, Singapore 048616"},
                    {"type": "DROPOFF", "address": "8 Marina View, Singapore 018960"}
                ]
            }),
        )
    }

    /// A Kourier delivery event in `status` (`created`, `in_transit`,
    /// `delivered`, `cancelled`...), with the matching `event`.
    pub fn kourier(status: &str) -> Self {
        let event = match status {
            "created" => "delivery.created",
            "cancelled" => "delivery.cancelled",
            _ => "delivery.updated",
        };
        Self::new(
            Provider::Kourier,
            json!({
                "event": event,
                "delivery_id": "abc123",
                "status": status,
                "timestamp": "2024-09-14T14:30:00Z"
            }),
        )
    }

    /// A Shipmondo `Orders` webhook with `order_status` (`open`, `sent`...),
    /// shaped like the sales order on Shipmondo's resources-and-actions page.
    pub fn shipmondo_order(order_status: &str) -> Self {
        Self::shipmondo(
            "Orders",
            "status_update",
            json!({
                "id": 119175,
                "order_id": "2042",
                "ordered_at": "2021-02-22T11:41:08.000+01:00",
                "order_status": order_status,
                "fulfillment_status": "unfulfilled",
                "created_at": "2021-02-22T11:41:09.541+01:00",
                "updated_at": "2021-02-23T09:12:40.233+01:00"
            }),
        )
    }

    /// A Shipmondo `Shipments` webhook for `action` (`create`, `cancel`).
    pub fn shipmondo_shipment(action: &str) -> Self {
        Self::shipmondo(
            "Shipments",
            action,
            json!({
                "id": 3405958,
                "carrier_code": "gls",
                "product_code": "GLSDK_SD",
                "pkg_no": "00000000000",
                "reference": "Order 2042",
                "order_id": "2042",
                "created_at": "2021-02-23T09:12:40.233+01:00",
                "updated_at": "2021-02-23T09:12:41.001+01:00"
            }),
        )
    }

    /// A Shipmondo `Shipment Monitor` webhook with `current_status`
    /// (`EN_ROUTE`, `AVAILABLE_FOR_DELIVERY`, `DELIVERED`...), shaped like
    /// Shipmondo's Shipment Monitor Status: no `id`, the shipment's `shipment_id`.
    pub fn shipmondo_monitor(current_status: &str) -> Self {
        Self::shipmondo(
            "Shipment Monitor",
            "latest",
            json!({
                "shipment_id": 3405958,
                "current_state": "PROGRESSING",
                "current_status": current_status,
                "current_status_text": "Forsendelsen er ankommet til distributionscenter",
                "current_status_registered_at": "2021-02-24T08:25:44.557+01:00",
                "location": "Taulov Pakkecenter",
                "carrier_code": "gls",
                "carrier_track_id": "00157128520000003116"
            }),
        )
    }

    /// The connection test Shipmondo sends when a webhook is created:
    /// `{"action": "connection_test", "webhook", "url"}`, no `data`, no `SMD-*` headers.
    pub fn shipmondo_connection_test() -> Self {
        Self::new(
            Provider::Shipmondo,
            json!({
                "action": "connection_test",
                "webhook": "Webhook1",
                "url": "https://example.com/webhook"
            }),
        )
    }

    /// `SMD-Resource-Id` is set when signing, from `data.id` or
    /// `data.shipment_id`, unless set with [`header`](Self::header).
    fn shipmondo(resource_type: &str, action: &str, data: Value) -> Self {
        let mut webhook = Self::new(
            Provider::Shipmondo,
            json!({"webhook": "Webhook1", "data": data, "url": "https://example.com/webhook"}),
        );
        for (name, value) in [
            (shipmondo::RESOURCE_TYPE_HEADER, resource_type),
            (shipmondo::WEBHOOK_ID_HEADER, "1234"),
            (shipmondo::ACTION_HEADER, action),
            (shipmondo::USER_HEADER, "Webshop API"),
        ] {
            webhook = webhook.header(name, value);
        }
        webhook
    }

    /// A GoShiip shipment update in `status` (`Pending`, `In Progress`,
    /// `Picked Up`, `Delivered`), shaped like GoShiip's sample.
    pub fn goshiip(status: &str) -> Self {
        Self::new(
            Provider::GoShiip,
            json!({
                "shipment": {
                    "data": {
                        "destination": "David Ola Ojeniyi St, Ibadan, Nigeria",
                        "origin": "1 Kayode Otitoju St, Lekki Phase I 106104, Lekki, Nigeria",
                        "reference": "5lqijs7rm9n0",
                        "id": "565",
                        "status": status,
                        "extra": "pending,In progress,picked up,delivered."
                    },
                    "carrier": "DHL"
                }
            }),
        )
    }

    /// An EasyPost `tracker.updated` event whose tracker is in `status`
    /// (`pre_transit`, `in_transit`, `delivered`...), shaped like EasyPost's
    /// own fixture (`EasyPost/examples` `official/fixtures/event-body.json`),
    /// with one tracking detail.
    pub fn easypost(status: &str) -> Self {
        Self::new(
            Provider::EasyPost,
            json!({
                "description": "tracker.updated",
                "mode": "production",
                "previous_attributes": {"status": "in_transit"},
                "created_at": "2024-08-02T19:26:52.000Z",
                "pending_urls": ["https://example.com/easypost"],
                "completed_urls": [],
                "updated_at": "2024-08-02T19:26:52.000Z",
                "id": "evt_1",
                "user_id": "user_1",
                "status": "pending",
                "object": "Event",
                "result": {
                    "id": "trk_1",
                    "object": "Tracker",
                    "mode": "production",
                    "tracking_code": "1",
                    "status": status,
                    "status_detail": "arrived_at_facility",
                    "created_at": "2024-07-31T14:45:27Z",
                    "updated_at": "2024-08-02T19:26:51Z",
                    "carrier": "FedEx",
                    "tracking_details": [{
                        "object": "TrackingDetail",
                        "message": "Arrived at FedEx location",
                        "status": "in_transit",
                        "status_detail": "arrived_at_facility",
                        "datetime": "2024-08-02T18:50:00Z",
                        "source": "FedEx"
                    }],
                    "public_url": "https://track.easypost.com/1"
                }
            }),
        )
    }

    /// An AfterShip `tracking_update` whose tracking has `tag` (`InTransit`,
    /// `Delivered`, `Exception`...), shaped like AfterShip's documented
    /// sample; no `msg.updated_at`, so its time is `ts`.
    pub fn aftership(tag: &str) -> Self {
        Self::new(
            Provider::AfterShip,
            json!({
                "event": "tracking_update",
                "event_id": "94dadd60-ed26-46d0-aa52-3ced925a50ff",
                "is_tracking_first_tag": true,
                "msg": {
                    "id": "00000000000000000000000000000000",
                    "tracking_number": "0000000000000000",
                    "slug": "usps",
                    "tag": tag,
                    "subtag": format!("{tag}_001"),
                    "subtag_message": tag,
                    "title": "0000000000000000",
                    "order_number": "ORD-1001",
                    "checkpoints": [{
                        "checkpoint_time": "2021-01-14T00:52:00",
                        "message": "Departed Shipping Partner Facility, USPS Awaiting Item",
                        "slug": "usps",
                        "tag": "InTransit",
                        "subtag": "InTransit_001"
                    }]
                },
                "ts": 1712741696
            }),
        )
    }

    /// A Sendcloud `parcel_status_changed` whose parcel has status `id`
    /// (`11` delivered, `12` awaiting customer pickup...) and its message,
    /// shaped like Sendcloud's documented sample.
    pub fn sendcloud(status_id: i64) -> Self {
        let message = SENDCLOUD_MESSAGES
            .iter()
            .find(|(id, _)| *id == status_id)
            .map_or(
                "Unknown status - check carrier track & trace page for more insights",
                |(_, message)| *message,
            );
        Self::new(
            Provider::Sendcloud,
            json!({
                "action": "parcel_status_changed",
                "timestamp": 1525271885993_i64,
                "carrier_status_change_timestamp": 1525271885000_i64,
                "parcel": {
                    "id": 1,
                    "name": "Mr Bob",
                    "company_name": "Sendcloud",
                    "address": "Stadhuisplein 10",
                    "city": "Eindhoven",
                    "postal_code": "5611 EM",
                    "email": "contact@sendcloud.com",
                    "date_created": "2019-02-03T06:48:07",
                    "tracking_number": "3SYZXG132912330",
                    "weight": "2.000",
                    "status": {"id": status_id, "message": message},
                    "data": {},
                    "country": {"iso_3": "NLD", "iso_2": "NL", "name": "Netherlands"},
                    "shipment": {"id": 1, "name": "PostNL Standard"},
                    "order_number": "ORD12334",
                    "shipment_uuid": "87e18823-016b-479b-b9e0-c5c0c4065452"
                }
            }),
        )
    }

    /// What Sendcloud's "test webhook" button sends: `{"action": "test_webhook",
    /// "timestamp"}` (only its `action` is documented), a connection test.
    pub fn sendcloud_test_webhook() -> Self {
        Self::new(
            Provider::Sendcloud,
            json!({"action": sendcloud::TEST_WEBHOOK, "timestamp": 1525271885993_i64}),
        )
    }

    /// A Shippo `track_updated` webhook whose Track is in `status`
    /// (`PRE_TRANSIT`, `TRANSIT`, `DELIVERED`, `RETURNED`, `FAILURE`,
    /// `UNKNOWN`), shaped like the Track of Shippo's SDK docs
    /// (`shippo-javascript-sdk` `docs/models/components/track.md`).
    pub fn shippo(status: &str) -> Self {
        Self::new(
            Provider::Shippo,
            json!({
                "event": "track_updated",
                "test": false,
                "data": {
                    "carrier": "usps",
                    "tracking_number": "9205590164917312751089",
                    "metadata": "Order 000123",
                    "eta": null,
                    "original_eta": "2021-07-23T00:00:00Z",
                    "servicelevel": {"token": "usps_priority_express", "name": "Priority Mail Express"},
                    "address_from": {"city": "Las Vegas", "state": "NV", "zip": "89101", "country": "US"},
                    "address_to": {"city": "Las Vegas", "state": "NV", "zip": "89101", "country": "US"},
                    "tracking_status": {
                        "object_created": "2016-07-23T20:35:26.129Z",
                        "object_updated": "2016-07-23T20:35:26.129Z",
                        "object_id": "ce48ff3d52a34e91b77aa98370182624",
                        "status": status,
                        "status_details": "Your shipment has been delivered at the destination mailbox.",
                        "status_date": "2016-07-23T13:03:00Z",
                        "location": {"city": "Las Vegas", "state": "NV", "zip": "89101", "country": "US"}
                    },
                    "tracking_history": [],
                    "messages": []
                }
            }),
        )
    }

    /// A ShipBob webhook with the body `status` (`LabelCreated`,
    /// `InTransit`, `Delivered`...), shaped like ShipBob's logistics sample
    /// (an `order_id`, no `shipment_id`), with topic
    /// `order.shipment.tracking.updated` and the `webhook-id` of ShipBob's
    /// example headers. `webhook-timestamp` is set when signing.
    pub fn shipbob(status: &str) -> Self {
        Self::new(
            Provider::ShipBob,
            json!({
                "event_time": "2025-10-23T15:55:09.3614767Z",
                "order_id": 100000001,
                "reference_id": "TEST101",
                "status": status,
                "tracking": {
                    "carrier": "USPS",
                    "carrier_service": "ParcelSelect",
                    "tracking_id": "9261290306529427911297",
                    "tracking_url": "https://tools.usps.com/go/TrackConfirmAction!input.action?tRef=qt&tLc=0&tLabels=9261290306529427911297"
                }
            }),
        )
        .header(shipbob::TOPIC_HEADER, "order.shipment.tracking.updated")
        .header(standard_webhooks::ID_HEADER, "msg_31eW7bWRi16lL0Ajjik68kfyeUh")
    }

    /// A ShipStation API v2 tracking webhook with `status_code` (`NY`, `AC`,
    /// `IT`, `DE`, `SP`, `AT`, `EX`, `UN`), shaped like ShipStation's
    /// webhook schema sample (`TRACK_EVENT_V2`, no `events` yet). Signing
    /// sets `x-shipengine-rsa-sha256-key-id` to [`SHIPENGINE_DEMO_KEY_ID`]
    /// and `x-shipengine-timestamp` to the current time unless set with
    /// [`header`](Self::header) or [`at`](Self::at).
    pub fn shipengine(status_code: &str) -> Self {
        let description = match status_code {
            "NY" => "Not Yet In System",
            "AC" => "Accepted",
            "IT" => "In Transit",
            "DE" => "Delivered",
            "SP" => "Delivered To Collection Location",
            "AT" => "Delivery Attempt",
            "EX" => "Exception",
            _ => "Unknown",
        };
        Self::new(
            Provider::ShipEngine,
            json!({
                "resource_url": "https://api.shipstation.com/v2/labels/se-1234567890/track",
                "resource_type": "TRACK_EVENT_V2",
                "data": {
                    "tracking_number": "1Z0000000000000000",
                    "tracking_url": "http://wwwapps.ups.com/WebTracking/processRequest?HTMLVersion=5.0&Requester=NES&AgreeToTermsAndConditions=yes&loc=en_US&tracknum=1Z0000000000000000",
                    "status_code": status_code,
                    "status_detail_code": null,
                    "status_detail_description": null,
                    "carrier_code": "ups",
                    "carrier_id": 3,
                    "carrier_detail_code": "MP",
                    "status_description": description,
                    "carrier_status_code": "M",
                    "carrier_status_description": "Shipper created a label, UPS has not received the package yet.",
                    "ship_date": null,
                    "estimated_delivery_date": "2026-04-30T00:00:00",
                    "actual_delivery_date": null,
                    "exception_description": null,
                    "events": []
                }
            }),
        )
    }

    /// Sets the payload field at `pointer` (`/orderId`, `/shipment/data/reference`,
    /// `/data/order_status`) to `value`, adding it if absent.
    ///
    /// # Panics
    ///
    /// If the pointer's parent is not a JSON object in the payload.
    #[must_use]
    pub fn field(mut self, pointer: &str, value: impl Into<Value>) -> Self {
        let (parent, key) = self.parent(pointer);
        parent.insert(key, value.into());
        self
    }

    /// Removes the payload field at `pointer`.
    ///
    /// # Panics
    ///
    /// If the pointer's parent is not a JSON object in the payload.
    #[must_use]
    pub fn without(mut self, pointer: &str) -> Self {
        let (parent, key) = self.parent(pointer);
        parent.remove(&key);
        self
    }

    fn parent(&mut self, pointer: &str) -> (&mut serde_json::Map<String, Value>, String) {
        let (parent, key) = pointer
            .rsplit_once('/')
            .unwrap_or_else(|| panic!("{pointer:?} is not a JSON pointer"));
        let key = key.replace("~1", "/").replace("~0", "~");
        let parent = self
            .payload
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{parent:?} is not an object in the payload"));
        (parent, key)
    }

    /// Sets a header (replacing one of that name).
    ///
    /// # Panics
    ///
    /// If `value` is not a valid header value.
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        self.headers.insert(name, header_value(value));
        self
    }

    /// Puts the proof (Kosmo's, GoShiip's, EasyPost's, AfterShip's or
    /// Sendcloud's signature, Kourier's token) in
    /// header `name` instead of the provider's, for a layer configured with another one
    /// ([`KosmoSignature::signature_header`](crate::KosmoSignature::signature_header)).
    #[must_use]
    pub fn signature_header(mut self, name: HeaderName) -> Self {
        self.signature_header = Some(name);
        self
    }

    /// Sets where the request goes (default `/webhooks/<provider>`); an
    /// absolute URL to send it over the network.
    #[must_use]
    pub fn uri(mut self, uri: Uri) -> Self {
        self.uri = uri;
        self
    }

    /// The provider whose webhook this is.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The payload (for Shipmondo, the JWT's payload).
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// The JSON payload as the provider serializes it.
    pub fn payload_json(&self) -> String {
        self.payload.to_string()
    }

    /// Stamps the webhook with `time` where the provider signs a time:
    /// Kosmo's and Kourier's `timestamp`, a Shipmondo monitor's
    /// `current_status_registered_at` or another resource's `updated_at`,
    /// EasyPost's `result.updated_at`, AfterShip's `ts` (unix seconds) and
    /// `msg.updated_at` if there is one, Sendcloud's `timestamp` (epoch
    /// milliseconds), ShipEngine's `x-shipengine-timestamp` header (and its
    /// newest `data.events[].occurred_at`, if it has events). GoShiip sends no
    /// time, so its webhooks are unchanged. For Shippo, the Track's
    /// `tracking_status.status_date`; for ShipBob, the body's `event_time`:
    /// the event's own time, by which the inbox orders events. The time of
    /// the delivery attempt they also sign is [`sent_at`](Self::sent_at)'s.
    ///
    /// The samples are stamped in the past (Kosmo's in 2023), which a layer
    /// with a replay window ([`KosmoSignature::max_age`](crate::KosmoSignature::max_age))
    /// refuses: stamp them [`now`](Self::now).
    #[must_use]
    pub fn at(self, time: OffsetDateTime) -> Self {
        let text = time.format(&Rfc3339).expect("a time this crate can format");
        let pointer = match self.provider {
            Provider::AfterShip => {
                let stamped = self.field("/ts", time.unix_timestamp());
                return match stamped.payload.pointer("/msg/updated_at") {
                    Some(_) => stamped.field("/msg/updated_at", text),
                    None => stamped,
                };
            }
            Provider::Sendcloud => {
                let millis = time.unix_timestamp_nanos() / 1_000_000;
                let millis = i64::try_from(millis).expect("a time this crate can format");
                return self.field("/timestamp", millis);
            }
            Provider::EasyPost if self.payload["result"].is_object() => "/result/updated_at",
            // Only a tracker's event has a time.
            Provider::EasyPost => return self,
            Provider::Shippo => "/data/tracking_status/status_date",
            Provider::ShipBob => "/event_time",
            Provider::Shipmondo if self.payload.pointer("/data/current_status").is_some() => {
                "/data/current_status_registered_at"
            }
            Provider::Shipmondo if self.payload["data"].is_object() => "/data/updated_at",
            Provider::Kosmo | Provider::Kourier => "/timestamp",
            // The signed header, and the newest carrier event's time if any.
            Provider::ShipEngine => {
                let mut stamped = self.header(shipengine::TIMESTAMP_HEADER, &text);
                let events = stamped
                    .payload
                    .pointer("/data/events")
                    .and_then(Value::as_array);
                if let Some(last) = events.and_then(|events| events.len().checked_sub(1)) {
                    stamped = stamped.field(&format!("/data/events/{last}/occurred_at"), text);
                }
                return stamped;
            }
            // GoShiip signs no time; a Shipmondo connection test has no `data`.
            Provider::Shipmondo | Provider::GoShiip => return self,
        };
        let parent = pointer.rsplit_once('/').map_or("", |(parent, _)| parent);
        if !self.payload.pointer(parent).is_some_and(Value::is_object) {
            // A payload without the object the time goes in (a Shippo
            // Transaction's bare status word): nothing to stamp.
            return self;
        }
        self.field(pointer, text)
    }

    /// Signs the webhook as a delivery attempt made at `time`, where the
    /// provider signs one apart from the event's time: Shippo's `t` and
    /// ShipBob's `webhook-timestamp` (which [`header`](Self::header) can also
    /// set). Unset, they are the time of [`sign`](Self::sign), which their
    /// layers' 5-minute windows accept; a time further away shows a stale
    /// or future attempt refused. Other providers' webhooks are unchanged.
    #[must_use]
    pub fn sent_at(mut self, time: OffsetDateTime) -> Self {
        self.sent_at = Some(time);
        self.headers.remove(standard_webhooks::TIMESTAMP_HEADER);
        self
    }

    /// Stamps the webhook with the current time, to the second: see [`at`](Self::at).
    #[must_use]
    pub fn now(self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.at(now.replace_nanosecond(0).unwrap_or(now))
    }

    /// The POST request the provider would send, proved with `secret` (Kosmo's
    /// secret token, Kourier's token, Shipmondo's key, GoShiip's, EasyPost's,
    /// AfterShip's or Sendcloud's secret,
    /// Shippo's HMAC secret, ShipBob's `whsec_` secret,
    /// ShipEngine's RSA private key as a PKCS#8 PEM such as
    /// [`SHIPENGINE_DEMO_PRIVATE_KEY`]), of any of the types
    /// the layers take. ShipBob's `webhook-timestamp` is kept if set with
    /// [`header`](Self::header).
    ///
    /// # Panics
    ///
    /// If a Kourier token or a Shipmondo `data.id` is not a valid header
    /// value, or a ShipEngine key is not a PKCS#8 PEM RSA private key.
    pub fn sign(&self, secret: impl WebhookSecret) -> Request<Body> {
        let (headers, body) = self.signed(secret);
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        request
    }

    /// The headers and body [`sign`](Self::sign) puts in its request.
    fn signed(&self, secret: impl WebhookSecret) -> (HeaderMap, String) {
        let secret = secret.secret_bytes();
        let json = self.payload_json();
        let mut headers = self.headers.clone();
        let (proof, body) = match self.provider {
            Provider::Kosmo => {
                let field = |name: &str| self.payload[name].as_str().unwrap_or_default();
                let signature = kosmo_signature(
                    secret,
                    field("eventId"),
                    field("orderId"),
                    field("timestamp"),
                );
                (Some((kosmo::DEFAULT_SIGNATURE_HEADER, signature)), json)
            }
            Provider::Kourier => {
                let token = String::from_utf8_lossy(secret);
                (Some((AUTHORIZATION, format!("Bearer {token}"))), json)
            }
            Provider::Shipmondo => {
                // As Shipmondo does, name the object the payload holds.
                let data = &self.payload["data"];
                let id = ["id", "shipment_id"]
                    .into_iter()
                    .find_map(|key| optional_id(&data[key]).ok().flatten());
                if let (false, Some(id)) = (headers.contains_key(shipmondo::RESOURCE_ID_HEADER), id)
                {
                    headers.insert(shipmondo::RESOURCE_ID_HEADER, header_value(&id));
                }
                (
                    None,
                    json!({"data": shipmondo_jwt(secret, &json)}).to_string(),
                )
            }
            Provider::GoShiip => {
                let signature = goshiip_signature(secret, json.as_bytes());
                (Some((goshiip::SIGNATURE_HEADER, signature)), json)
            }
            Provider::EasyPost => {
                let signature = easypost_signature(secret, json.as_bytes());
                (Some((easypost::SIGNATURE_HEADER, signature)), json)
            }
            Provider::AfterShip => {
                let signature = aftership_signature(secret, json.as_bytes());
                (Some((aftership::SIGNATURE_HEADER, signature)), json)
            }
            Provider::Sendcloud => {
                let signature = sendcloud_signature(secret, json.as_bytes());
                (Some((sendcloud::SIGNATURE_HEADER, signature)), json)
            }
            Provider::Shippo => {
                let t = self.sent_at.unwrap_or_else(OffsetDateTime::now_utc);
                let signature = shippo_signature(secret, t.unix_timestamp(), json.as_bytes());
                (Some((shippo::DEFAULT_SIGNATURE_HEADER, signature)), json)
            }
            Provider::ShipBob => {
                let header = |name| {
                    headers
                        .get(name)
                        .and_then(|value: &HeaderValue| value.to_str().ok())
                        .map(str::to_owned)
                };
                let timestamp = header(standard_webhooks::TIMESTAMP_HEADER)
                    .and_then(|text| text.parse().ok())
                    .unwrap_or_else(|| {
                        self.sent_at
                            .unwrap_or_else(OffsetDateTime::now_utc)
                            .unix_timestamp()
                    });
                let id = header(standard_webhooks::ID_HEADER).unwrap_or_default();
                headers.insert(
                    standard_webhooks::TIMESTAMP_HEADER,
                    header_value(&timestamp.to_string()),
                );
                let signature =
                    standard_webhooks_signature(secret, &id, timestamp, json.as_bytes());
                (Some((standard_webhooks::SIGNATURE_HEADER, signature)), json)
            }
            Provider::ShipEngine => {
                if !headers.contains_key(shipengine::KEY_ID_HEADER) {
                    headers.insert(
                        shipengine::KEY_ID_HEADER,
                        HeaderValue::from_static(SHIPENGINE_DEMO_KEY_ID),
                    );
                }
                if !headers.contains_key(shipengine::TIMESTAMP_HEADER) {
                    let now = OffsetDateTime::now_utc();
                    let now = now.replace_nanosecond(0).unwrap_or(now);
                    let text = now.format(&Rfc3339).expect("a time this crate can format");
                    headers.insert(shipengine::TIMESTAMP_HEADER, header_value(&text));
                }
                let timestamp = headers[shipengine::TIMESTAMP_HEADER].as_bytes();
                let timestamp = String::from_utf8_lossy(timestamp);
                let signature = shipengine_signature(secret, &timestamp, json.as_bytes());
                (Some((shipengine::SIGNATURE_HEADER, signature)), json)
            }
        };
        if let Some((name, proof)) = proof {
            let name = self.signature_header.clone().unwrap_or(name);
            headers.insert(name, header_value(&proof));
        }
        (headers, body)
    }

    /// Signs it with a test secret and verifies it with its provider's
    /// layer, as built with that secret and with no replay window (any
    /// event or send time passes): the
    /// [verified webhook](crate::VerifiedWebhook) a layer in front of your
    /// handler would hand on. Kosmo's `eventId` need not be a UUID;
    /// a ShipEngine webhook is signed with the demo key
    /// ([`SHIPENGINE_DEMO_PRIVATE_KEY`]) and verified with its JWKS.
    ///
    /// # Errors
    ///
    /// The layer's refusal where the webhook is not one it accepts: a
    /// payload it cannot read, a required field removed, a proof put in
    /// another header ([`signature_header`](Self::signature_header)), a
    /// ShipEngine key id other than the demo key's.
    ///
    /// # Panics
    ///
    /// As [`sign`](Self::sign) does.
    pub fn verify(&self) -> Result<Verified, WebhookRejection> {
        let far = std::time::Duration::from_secs(100 * 365 * 24 * 60 * 60);
        match self.provider {
            Provider::Kosmo => {
                let (headers, body) = self.signed(TEST_SECRET);
                crate::KosmoSignature::new(TEST_SECRET)
                    .any_event_id()
                    .max_future_skew(far)
                    .verify(&headers, body)
            }
            Provider::Kourier => {
                let (headers, body) = self.signed(TEST_SECRET);
                crate::KourierBearer::new(TEST_SECRET).verify(&headers, body)
            }
            Provider::Shipmondo => {
                let (headers, body) = self.signed(TEST_SECRET);
                crate::ShipmondoJwt::new(TEST_SECRET).verify(&headers, body)
            }
            Provider::GoShiip => {
                let (headers, body) = self.signed(TEST_SECRET);
                crate::GoShiipSignature::new(TEST_SECRET).verify(&headers, body)
            }
            Provider::EasyPost => {
                let (headers, body) = self.signed(TEST_SECRET);
                crate::EasyPostSignature::new(TEST_SECRET).verify(&headers, body)
            }
            Provider::AfterShip => {
                let (headers, body) = self.signed(TEST_SECRET);
                crate::AfterShipSignature::new(TEST_SECRET).verify(&headers, body)
            }
            Provider::Sendcloud => {
                let (headers, body) = self.signed(TEST_SECRET);
                crate::SendcloudSignature::new(TEST_SECRET).verify(&headers, body)
            }
            Provider::Shippo => {
                let (headers, body) = self.signed(TEST_SECRET);
                crate::ShippoSignature::new(TEST_SECRET)
                    .max_age(far)
                    .max_future_skew(far)
                    .verify(&headers, body)
            }
            Provider::ShipBob => {
                let (headers, body) = self.signed(TEST_STANDARD_WEBHOOKS_SECRET);
                crate::ShipBobSignature::new(TEST_STANDARD_WEBHOOKS_SECRET)
                    .max_age(far)
                    .max_future_skew(far)
                    .verify(&headers, body)
            }
            Provider::ShipEngine => {
                let (headers, body) = self.signed(SHIPENGINE_DEMO_PRIVATE_KEY);
                crate::ShipEngineSignature::from_jwks(shipengine_demo_jwks())
                    .expect("the demo JWKS is a JWKS")
                    .max_age(far)
                    .max_future_skew(far)
                    .verify(&headers, body)
            }
        }
    }
}

/// What [`Webhook::verify`] signs with and its layers check.
const TEST_SECRET: &str = "shipment-webhooks-testing-secret";
/// ShipBob's: a Standard Webhooks `whsec_` secret.
const TEST_STANDARD_WEBHOOKS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A [`Delivery`](crate::inbox::Delivery) as a worker would hand it to its
/// handler, without an inbox: to unit-test a handler by calling it.
///
/// It carries a real [`VerifiedWebhook`], made by verifying a signed
/// testing-kit request ([`Webhook::verify`]) or given as one a layer's
/// `verify` returned, so its event, typed
/// [`payload`](crate::inbox::Delivery::payload), JSON and
/// [`dedup_key`](crate::inbox::Delivery::dedup_key) are what the worker
/// would see (the dedup key of a provider that signs with its proof in it,
/// Shipmondo's JWT, is that of the kit's secret, not of yours: build from
/// what your layer verifies, [`from_verified`](Self::from_verified), to get
/// that). Its id, attempt, endpoint and time of receipt are yours to set.
///
/// ```
/// use shipment_webhooks::inbox::{BoxError, Delivery};
/// use shipment_webhooks::testing::{DeliveryBuilder, Webhook};
/// use shipment_webhooks::{KosmoEvent, ShipmentStatus};
///
/// async fn handle(delivery: Delivery) -> Result<(), BoxError> {
///     let kosmo: KosmoEvent = delivery.payload()?;
///     if delivery.attempt() > 3 && kosmo.status == "DELIVERED" {
///         return Err("gave up notifying the customer".into());
///     }
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let webhook = Webhook::kosmo("DELIVERED").field("/orderId", "SG-42");
/// let delivery = DeliveryBuilder::new(&webhook).attempt(4).build();
/// assert_eq!(delivery.event().id, "SG-42");
/// assert_eq!(delivery.event().status, ShipmentStatus::Delivered);
/// assert!(handle(delivery).await.is_err());
/// # }
/// ```
///
/// [`Delivery::mark_done_in`](crate::inbox::Delivery::mark_done_in) on
/// such a delivery writes nothing, as there is no inbox row to mark, and
/// returns `Ok(true)`: the handler's own writes in the transaction commit as
/// they would under a worker.
///
/// Needs the `inbox` feature.
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
#[derive(Debug, Clone)]
#[must_use]
pub struct DeliveryBuilder {
    webhook: VerifiedWebhook,
    id: i64,
    attempt: u32,
    endpoint: String,
    received_at: OffsetDateTime,
}

#[cfg(feature = "inbox")]
impl DeliveryBuilder {
    /// A delivery of `webhook`, signed and verified by [`Webhook::verify`]:
    /// id 1, attempt 1, received now on the webhook's path
    /// (`/webhooks/<provider>` unless set with [`Webhook::uri`]).
    ///
    /// # Panics
    ///
    /// If its provider's layer refuses it (see [`Webhook::verify`]), or it
    /// is a connection test, which no inbox stores: use
    /// [`from_verified`](Self::from_verified) with what your own layer
    /// verifies to test those paths.
    pub fn new(webhook: &Webhook) -> Self {
        let verified = webhook
            .verify()
            .unwrap_or_else(|rejection| panic!("its layer refuses the webhook: {rejection}"));
        let verified = verified
            .into_webhook()
            .unwrap_or_else(|| panic!("a connection test is no delivery: no inbox stores one"));
        Self::from_verified(verified).endpoint(webhook.uri.path())
    }

    /// A delivery of a webhook your layer verified (its `verify`, or a
    /// [`VerifiedWebhook`] an axum handler received): id 1, attempt 1,
    /// received now on `/webhooks/<provider>`.
    pub fn from_verified(webhook: VerifiedWebhook) -> Self {
        let endpoint = format!("/webhooks/{}", webhook.event().provider);
        Self {
            webhook,
            id: 1,
            attempt: 1,
            endpoint,
            received_at: OffsetDateTime::now_utc(),
        }
    }

    /// Its id in the inbox ([`Delivery::id`](crate::inbox::Delivery::id)).
    pub fn id(mut self, id: i64) -> Self {
        self.id = id;
        self
    }

    /// Which attempt it is, from 1 (at least 1).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    /// The endpoint it was received on.
    pub fn endpoint(mut self, endpoint: &str) -> Self {
        endpoint.clone_into(&mut self.endpoint);
        self
    }

    /// When it was received.
    pub fn received_at(mut self, time: OffsetDateTime) -> Self {
        self.received_at = time;
        self
    }

    /// The delivery, as a handler receives it.
    pub fn build(self) -> crate::inbox::Delivery {
        crate::inbox::Delivery::for_test(
            self.webhook,
            self.id,
            self.attempt,
            self.endpoint,
            self.received_at,
        )
    }
}

/// Sendcloud's parcel status ids and their messages (`Webador/sendcloud`
/// `src/Model/Parcel.php`, `white-nl/commerce-sendcloud` `ParcelStatus.php`).
const SENDCLOUD_MESSAGES: [(i64, &str); 35] = [
    (999, "No label"),
    (1000, "Ready to send"),
    (1001, "Being announced"),
    (1002, "Announcement failed"),
    (1, "Announced"),
    (13, "Announced: not collected"),
    (15, "Error collecting"),
    (22, "Shipment picked up by driver"),
    (3, "En route to sorting center"),
    (4, "Delivery delayed"),
    (5, "Sorted"),
    (6, "Not sorted"),
    (7, "Being sorted"),
    (62989, "At Customs"),
    (62990, "At sorting centre"),
    (91, "Parcel en route"),
    (92, "Driver en route"),
    (8, "Delivery attempt failed"),
    (80, "Unable to deliver"),
    (62996, "Exception"),
    (62997, "Address invalid"),
    (62993, "Delivery method changed"),
    (62994, "Delivery date changed"),
    (62995, "Delivery address changed"),
    (12, "Awaiting customer pickup"),
    (11, "Delivered"),
    (93, "Shipment collected by customer"),
    (62991, "Refused by recipient"),
    (62992, "Returned to sender"),
    (1999, "Cancellation requested"),
    (2001, "Submitting cancellation request"),
    (2000, "Cancelled"),
    (1998, "Cancelled upstream"),
    (94, "Parcel cancellation failed."),
    (
        1337,
        "Unknown status - check carrier track & trace page for more insights",
    ),
];

/// The Sendcloud parcel status id for `status`: its digits, or a name of
/// this crate's vocabulary (`created` 1000, `processing` 1001,
/// `ready_for_pickup` 1, `picked_up` 22, `in_transit` 3, `out_for_delivery`
/// 92, `at_pickup_point` 12, `delivered` 11, `failed` 8, `on_hold` 15,
/// `returned` 62992, `cancelled` 2000); 1337 ("Unknown status") for any other.
pub fn sendcloud_status_id(status: &str) -> i64 {
    if let Ok(id) = status.trim().parse() {
        return id;
    }
    match status
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
        .as_str()
    {
        "created" => 1000,
        "processing" => 1001,
        "ready_for_pickup" => 1,
        "picked_up" => 22,
        "in_transit" => 3,
        "out_for_delivery" => 92,
        "at_pickup_point" => 12,
        "delivered" => 11,
        "failed" => 8,
        "on_hold" => 15,
        "returned" => 62992,
        "cancelled" | "canceled" => 2000,
        _ => 1337,
    }
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| panic!("{value:?} is not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        br#"{"resource_url":"https://api.shipengine.com/v1/tracking?carrier_code=usps"}"#;

    /// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024`: its
    /// integers' lengths take one byte of long form, the demo key's two.
    const KEY_1024: &str = "-----BEGIN PRIVATE KEY-----
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBANQRNRto6m96yNi1
OWR23+vBFF5tA24xqFkHOi6fvP5nZCr7avE1wi8mfj/68J7TQMIZdLO5fE6hlDzV
iw9WTJTM/NS33L6o3iNDNYr58IydCWw8kZpyxeUa8RN2BWQeFpzgjYGrTX7SVPKI
yGywPAM2NLWhQ/X0h+F/jHCGlgrLAgMBAAECgYAZwrFZ0AfSXO7y7Ci5nHsc70pj
IgjtpNiXX/pgWYUivjp7wii+flJFWf6yFPCPyoeuTFtRzbFc9+HC9gm7ZjdND1CZ
q6tPIUkVzOAB6JjxcqcOPie+txDTgU+KM3+udR4WmfRhWTUuTKff334g20FWAxJQ
MzDKui3Jjgh4VKIRyQJBAPlgMfpW2/UXAKL1EdviVc/t/g5JZf2SuhV9thCdsp/G
Am5/ypP/iXdOoYMeQ8RHIvzZsAVQVZtJNMwl/VGqFHcCQQDZs06DWiBsk2ym8lbR
n6hcF5MvusBgw0732M2Owy5Eo+X6+khjd4VTn36LVx6u+yuFpzFLRUZoNpyg0BLD
6PVNAkEAlc6t9196n4+D+GEUq20ac+DawCZjuKMOWp68Ytr5VXYUO+FVBvd500xP
Rn9F4oGBiTgUv/x0kOa3avRfa1GrHQJAFyEw303NEhwbuCUZSk5PQfGTRsfttpop
orWbKWbdXJeZULAUztSdCsRwWneYH/k5p4qa9ydWEq5yt7dDtyLiJQJBAMq68TKw
JqshJz7ZVR1o3DRWUcbpW97sHPb8BpnY3tvA1AY7UolphqEN+EAMvi7/X7LiLct8
ceoP7VTRDaG2fm0=
-----END PRIVATE KEY-----";

    /// The signatures OpenSSL made of `"1700000000." + BODY` with the same
    /// keys (`openssl dgst -sha256 -sign key.pem | base64`): it read each
    /// PEM as the signer must.
    #[test]
    fn signs_as_openssl_does_with_the_same_pkcs8_key() {
        assert_eq!(
            shipengine_signature(SHIPENGINE_DEMO_PRIVATE_KEY, "1700000000", BODY),
            "caIzHkCeIzX3PddmALlUvgSVPgMuyOQrjnzuKJBkhCS00KK2oAmCWx3/HCsJilY013IC46Pcj6iWJO71cexcU7dO/Pn15vQlZyFUdijwB3rOPf7mYQWR/FpqrPwUra0FOoWWi9qKpJ9c14oUUTWGlzHBkGdV9jWyGQB+sX0m88hzXIAR+iO4xl6meaDNKRcdgeWSiRST2+nE+KGNGBD3vUsZfvUbmeIDlJrCzrHRmCVCfNPHXS5m6OY+L/nP9zMm1iROK2FqZ+4FwA6yyL4roH63aX5A0hPP+gQGiFqa1x52Kd4+dd7i7hWAD9cSSufqLwcvUvJsFw2oDRYDpTXz9A=="
        );
        assert_eq!(
            shipengine_signature(KEY_1024, "1700000000", BODY),
            "FcUUwCbNijAEMloJh6HUMlnmv/NA9MgNm2L51Sj4g20EmwX7qRs21dYstPIoLhfGqLX+LM1NKcBMDgvZb81u7yUq61YQhVX+b4SR2lz0ky84Eq1WyjR0uS0r8Wh84h34CrR42puvD8jVfPLnShL2XFxskiVWUorlvaSVTgaK3Kk="
        );
    }

    #[test]
    fn reads_no_key_but_an_rsa_pkcs8_pem() {
        let ec = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2aKeRb1ZLT7WtM+A
P11vv2yhAIVYmNq2eOrHKA4KWVuhRANCAATBDSS1RxtrlfX5XCpDTSsqj2xv87H1
a46cZEGgAIVClgwW5AkfxxQswZ1l9+lB2xz4y/MIGsZcfb552M7ZTuGJ
-----END PRIVATE KEY-----";
        let pkcs1_label = KEY_1024.replace("PRIVATE KEY", "RSA PRIVATE KEY");
        let body: Vec<&str> = KEY_1024.lines().collect();
        let truncated = [&body[..body.len() - 3], &body[body.len() - 1..]]
            .concat()
            .join("\n");
        let another_modulus = KEY_1024.replace("6m96yNi1", "6m96yNi2");
        for (what, pem) in [
            ("an EC key", ec),
            ("PKCS#1's label", &pkcs1_label),
            ("truncated", &truncated),
            ("a modulus not the primes' product", &another_modulus),
            ("empty", ""),
            (
                "no base64",
                "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----",
            ),
        ] {
            assert!(rsa_key_from_pkcs8_pem(pem).is_none(), "{what}");
        }
    }

    #[test]
    fn der_lengths_in_short_and_long_form_never_overrun() {
        assert_eq!(
            der_element(&[0x02, 0x01, 7, 9], 0x02),
            Some((&[7][..], &[9][..]))
        );
        let long = [&[0x04, 0x81, 0x80][..], &[1; 0x80]].concat();
        assert_eq!(der_element(&long, 0x04), Some((&[1; 0x80][..], &[][..])));
        let bad: [&[u8]; 7] = [
            &[0x02, 0x01],    // cut before the contents
            &[0x02, 0x02, 7], // shorter than its length
            &[0x02, 0x80, 7], // indefinite length: not DER
            &[0x02, 0x85, 1, 1, 1, 1, 1],
            &[0x02, 0x84, 0xff, 0xff, 0xff, 0xff, 7], // past the end
            &[0x30, 0x01, 7],                         // another tag
            &[],
        ];
        for bad in bad {
            assert_eq!(der_element(bad, 0x02), None, "{bad:?}");
        }
    }
}
