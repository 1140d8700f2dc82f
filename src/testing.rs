//! Build webhook requests exactly as each provider sends them, to test
//! handlers without the provider.
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

use crate::Provider;
use crate::WebhookSecret;
use crate::json::optional_id;
use crate::proof::HmacSha256;
use crate::{goshiip, kosmo, shipengine, shipmondo};

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

/// Shipmondo's token: an HS256 JWT whose payload is `payload_json` as a JSON
/// string, the way Shipmondo encodes it.
pub fn shipmondo_jwt(key: impl WebhookSecret, payload_json: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
    let claims = serde_json::to_vec(payload_json).expect("a string always serializes");
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    let signature = URL_SAFE_NO_PAD.encode(hmac(key, signed.as_bytes()));
    format!("{signed}.{signature}")
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
    use rsa::pkcs8::DecodePrivateKey;
    use sha2::{Digest, Sha256};

    let pem = std::str::from_utf8(private_key.secret_bytes()).unwrap_or_default();
    let key = rsa::PrivateKey::from_pkcs8_pem(pem).unwrap_or_else(|_| {
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
        }
    }

    /// A sample of `provider`'s webhook in `status` (what that provider calls
    /// it). For Shipmondo, an `Orders` webhook with that `order_status`.
    pub fn sample(provider: Provider, status: &str) -> Self {
        match provider {
            Provider::Kosmo => Self::kosmo(status),
            Provider::Kourier => Self::kourier(status),
            Provider::Shipmondo => Self::shipmondo_order(status),
            Provider::GoShiip => Self::goshiip(status),
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

    /// Puts the proof (Kosmo's or GoShiip's signature, Kourier's token) in
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
    /// ShipEngine's `x-shipengine-timestamp` header (and its newest
    /// `data.events[].occurred_at`, if it has events).
    /// GoShiip sends no time, so its webhooks are unchanged.
    ///
    /// The samples are stamped in the past (Kosmo's in 2023), which a layer
    /// with a replay window ([`KosmoSignature::max_age`](crate::KosmoSignature::max_age))
    /// refuses: stamp them [`now`](Self::now).
    #[must_use]
    pub fn at(self, time: OffsetDateTime) -> Self {
        let text = time.format(&Rfc3339).expect("a time this crate can format");
        let pointer = match self.provider {
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
        self.field(pointer, text)
    }

    /// Stamps the webhook with the current time, to the second: see [`at`](Self::at).
    #[must_use]
    pub fn now(self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.at(now.replace_nanosecond(0).unwrap_or(now))
    }

    /// The POST request the provider would send, proved with `secret` (Kosmo's
    /// secret token, Kourier's token, Shipmondo's key, GoShiip's secret,
    /// ShipEngine's RSA private key as a PKCS#8 PEM such as
    /// [`SHIPENGINE_DEMO_PRIVATE_KEY`]), of any of the types the layers take.
    ///
    /// # Panics
    ///
    /// If a Kourier token or a Shipmondo `data.id` is not a valid header
    /// value, or a ShipEngine key is not a PKCS#8 PEM RSA private key.
    pub fn sign(&self, secret: impl WebhookSecret) -> Request<Body> {
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
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        request
    }
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| panic!("{value:?} is not a valid header value"))
}
