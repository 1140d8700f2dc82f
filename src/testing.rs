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
use crate::{goshiip, kosmo, shipbob, shipmondo, shippo, standard_webhooks};

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
    /// it). For Shipmondo, an `Orders` webhook with that `order_status`.
    pub fn sample(provider: Provider, status: &str) -> Self {
        match provider {
            Provider::Kosmo => Self::kosmo(status),
            Provider::Kourier => Self::kourier(status),
            Provider::Shipmondo => Self::shipmondo_order(status),
            Provider::GoShiip => Self::goshiip(status),
            Provider::Shippo => Self::shippo(status),
            Provider::ShipBob => Self::shipbob(status),
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
    /// `current_status_registered_at` or another resource's `updated_at`.
    /// GoShiip sends no time, so its webhooks are unchanged. For Shippo, the
    /// Track's `tracking_status.status_date`; for ShipBob, the body's
    /// `event_time`: the event's own time, by which the inbox orders events.
    /// The time of the delivery attempt they also sign is
    /// [`sent_at`](Self::sent_at)'s.
    ///
    /// The samples are stamped in the past (Kosmo's in 2023), which a layer
    /// with a replay window ([`KosmoSignature::max_age`](crate::KosmoSignature::max_age))
    /// refuses: stamp them [`now`](Self::now).
    #[must_use]
    pub fn at(self, time: OffsetDateTime) -> Self {
        let text = time.format(&Rfc3339).expect("a time this crate can format");
        let pointer = match self.provider {
            Provider::Shippo => "/data/tracking_status/status_date",
            Provider::ShipBob => "/event_time",
            Provider::Shipmondo if self.payload.pointer("/data/current_status").is_some() => {
                "/data/current_status_registered_at"
            }
            Provider::Shipmondo if self.payload["data"].is_object() => "/data/updated_at",
            Provider::Kosmo | Provider::Kourier => "/timestamp",
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
    /// secret token, Kourier's token, Shipmondo's key, GoShiip's secret,
    /// Shippo's HMAC secret, ShipBob's `whsec_` secret), of any of the types
    /// the layers take. ShipBob's `webhook-timestamp` is kept if set with
    /// [`header`](Self::header).
    ///
    /// # Panics
    ///
    /// If a Kourier token or a Shipmondo `data.id` is not a valid header value.
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
