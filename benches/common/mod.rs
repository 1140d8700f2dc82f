//! The signed webhooks the benchmark and the instruction gauge send: each
//! provider's sample padded with its own kind of bulk (Kosmo stops, order
//! lines, GoShiip history, EasyPost tracking details, AfterShip checkpoints,
//! Sendcloud parcel items, ShipEngine carrier events) to a given size.

use std::borrow::Cow;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::{Body, HttpBody};
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::FutureExt;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shipment_webhooks::testing::{SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, shipengine_demo_jwks};
use shipment_webhooks::{Provider, ShipEngineSignature, ShipmentEvent, ShipmentStatus};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tower::{Layer, Service};

pub const SECRET: &str = "a-benchmark-secret-of-32-bytes!!";

/// [`SECRET`] as a Standard Webhooks secret (ShipBob's): `whsec_` and its
/// base64, whose decoded key is [`SECRET`]'s bytes, as the signer reads it.
pub fn whsec() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SECRET)
    )
}

/// A window wide enough for any run: Shippo's and ShipBob's layers refuse
/// a delivery attempt signed 5 minutes ago by default, and a run reuses the
/// headers it signed at its start.
pub const ANY_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What signs `provider`'s webhooks: [`SECRET`], or ShipEngine's demo
/// private key, whose JWKS its layer verifies with.
pub fn signing_key(provider: &str) -> &'static str {
    match provider {
        "shipengine" => SHIPENGINE_DEMO_PRIVATE_KEY,
        _ => SECRET,
    }
}

/// ShipEngine's layer: the demo JWKS, and a window of a day, so that a
/// sample signed when the run began stays fresh however long it runs (the
/// window is checked all the same).
pub fn shipengine_layer() -> ShipEngineSignature {
    let day = std::time::Duration::from_secs(24 * 3600);
    ShipEngineSignature::from_jwks(shipengine_demo_jwks())
        .expect("the demo JWKS")
        .max_age(day)
        .max_future_skew(day)
}

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

/// The body `webhook` is sent with, signed with its [`signing_key`].
pub fn body_of(webhook: &Webhook) -> Bytes {
    let body = webhook
        .sign(signing_key(webhook.provider().as_str()))
        .into_body();
    body.collect()
        .now_or_never()
        .expect("a full body")
        .expect("infallible")
        .to_bytes()
}

/// Each provider's webhook of about `size` bytes.
pub fn samples(size: usize) -> [(&'static str, Webhook); 10] {
    let stop = json!({"type": "DROPOFF", "status": "PENDING", "address": "8 Marina View, Singapore 018960", "contact": {"name": "Ana Lim", "phone": "+65 8123 4567"}});
    let line = json!({"sku": "TSHIRT-M-BLK", "name": "T-shirt, black, M", "quantity": 2, "unit_price": "129.00", "vat": "32.25"});
    let history = json!({"status": "In Progress", "at": "2025-05-01T09:30:00Z", "location": "Lekki hub, Lagos"});
    let detail = json!({"object": "TrackingDetail", "message": "Arrived at FedEx location", "status": "in_transit", "status_detail": "arrived_at_facility", "datetime": "2024-08-02T18:50:00Z", "source": "FedEx"});
    let checkpoint = json!({"checkpoint_time": "2021-01-14T00:52:00", "message": "Departed Shipping Partner Facility", "slug": "usps", "tag": "InTransit", "subtag": "InTransit_001"});
    let item = json!({"description": "T-shirt, black, M", "quantity": 2, "weight": "0.200", "value": "129.00", "sku": "TSHIRT-M-BLK"});
    let track = json!({"status": "TRANSIT", "status_details": "Departed USPS facility", "status_date": "2016-07-22T08:10:00Z", "location": {"city": "Las Vegas", "state": "NV", "zip": "89101", "country": "US"}});
    let event = json!({"occurred_at": "2026-04-28T09:00:00Z", "carrier_occurred_at": "2026-04-28T05:00:00", "description": "DEPARTURE SCAN", "city_locality": "Louisville", "state_province": "KY", "postal_code": "40209", "country_code": "US", "status_code": "IT"});
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
        (
            "easypost",
            grow(
                Webhook::easypost("in_transit"),
                "/result/tracking_details",
                detail,
                size,
            ),
        ),
        (
            "aftership",
            grow(
                Webhook::aftership("InTransit"),
                "/msg/checkpoints",
                checkpoint,
                size,
            ),
        ),
        (
            "sendcloud",
            grow(Webhook::sendcloud(3), "/parcel/parcel_items", item, size),
        ),
        (
            "shippo",
            grow(
                Webhook::shippo("TRANSIT"),
                "/data/tracking_history",
                track,
                size,
            ),
        ),
        (
            "shipbob",
            grow(
                Webhook::shipbob("InTransit"),
                "/line_items",
                line_item(),
                size,
            ),
        ),
        (
            "shipengine",
            // Its signed time fixed now, so every request is signed alike.
            grow(Webhook::shipengine("IT").now(), "/data/events", event, size),
        ),
    ]
}

/// An order line as ShipBob's could be (its payloads are not published).
fn line_item() -> Value {
    json!({"sku": "TSHIRT-M-BLK", "name": "T-shirt, black, M", "quantity": 2, "lot": null})
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
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct EasyPostFields<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    description: Cow<'a, str>,
    #[serde(borrow)]
    result: EasyPostResult<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct EasyPostResult<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    updated_at: Cow<'a, str>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct AfterShipFields<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    ts: i64,
    #[serde(borrow)]
    msg: AfterShipMsg<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct AfterShipMsg<'a> {
    #[serde(borrow)]
    tracking_number: Cow<'a, str>,
    #[serde(borrow)]
    tag: Cow<'a, str>,
    subtag: Option<&'a str>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct SendcloudFields<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    timestamp: i64,
    #[serde(borrow)]
    parcel: SendcloudParcel<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct SendcloudParcel<'a> {
    id: u64,
    #[serde(borrow)]
    status: SendcloudStatus<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct SendcloudStatus<'a> {
    id: i64,
    message: Option<&'a str>,
}

#[derive(Deserialize)]
struct ShippoFields<'a> {
    #[serde(borrow)]
    data: ShippoData<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct ShippoData<'a> {
    #[serde(borrow)]
    tracking_number: Cow<'a, str>,
    #[serde(borrow)]
    tracking_status: ShippoStatus<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct ShippoStatus<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    status_date: Cow<'a, str>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct ShipBobFields<'a> {
    order_id: u64,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    event_time: Cow<'a, str>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct ShipEngineFields<'a> {
    #[serde(borrow)]
    resource_url: Option<&'a str>,
    #[serde(borrow)]
    resource_type: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ShipEngineTrack<'a> {
    #[serde(borrow)]
    data: ShipEngineData<'a>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "decoded as the layer decodes them, never read")]
struct ShipEngineData<'a> {
    #[serde(borrow)]
    tracking_number: Cow<'a, str>,
    #[serde(borrow)]
    status_code: Cow<'a, str>,
    #[serde(borrow)]
    events: Vec<ShipEngineEventTime<'a>>,
}

#[derive(Deserialize)]
struct ShipEngineEventTime<'a> {
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
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

/// The event's time, as its `OffsetDateTime`.
fn time(text: &str) {
    black_box(OffsetDateTime::parse(text, &Rfc3339).unwrap());
}

/// Decodes the event's fields from `body`, as `provider`'s layer must: its
/// time too, where the event has one. For Shipmondo that is its format's
/// whole chain: the envelope, the JWT's header and payload from base64, and
/// the payload's JSON string unescaped.
pub fn decode_fields(provider: &str, body: &[u8]) {
    match provider {
        "kosmo" => {
            let fields: KosmoFields<'_> = serde_json::from_slice(body).unwrap();
            time(&fields.timestamp);
            drop(black_box(fields));
        }
        "kourier" => {
            let fields: KourierFields<'_> = serde_json::from_slice(body).unwrap();
            time(fields.timestamp.unwrap());
            drop(black_box(fields));
        }
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
            let fields: ShipmondoFields<'_> = serde_json::from_str(&claims).unwrap();
            time(&fields.data.updated_at);
            drop(black_box(fields));
        }
        "shipengine" => {
            // As the layer: the resource type, then a tracking record's fields.
            drop(black_box(
                serde_json::from_slice::<ShipEngineFields<'_>>(body).unwrap(),
            ));
            let track: ShipEngineTrack<'_> = serde_json::from_slice(body).unwrap();
            for event in &track.data.events {
                time(&event.occurred_at);
            }
            drop(black_box(track));
        }
        "shippo" => {
            let fields: ShippoFields<'_> = serde_json::from_slice(body).unwrap();
            time(&fields.data.tracking_status.status_date);
            drop(black_box(fields));
        }
        "shipbob" => {
            let fields: ShipBobFields<'_> = serde_json::from_slice(body).unwrap();
            time(&fields.event_time);
            drop(black_box(fields));
        }
        "goshiip" => drop(black_box(
            serde_json::from_slice::<GoShiipFields<'_>>(body).unwrap(),
        )),
        "easypost" => {
            let fields: EasyPostFields<'_> = serde_json::from_slice(body).unwrap();
            time(&fields.result.updated_at);
            drop(black_box(fields));
        }
        "aftership" => {
            let fields: AfterShipFields<'_> = serde_json::from_slice(body).unwrap();
            black_box(OffsetDateTime::from_unix_timestamp(fields.ts).unwrap());
            drop(black_box(fields));
        }
        "sendcloud" => {
            let fields: SendcloudFields<'_> = serde_json::from_slice(body).unwrap();
            let nanos = i128::from(fields.timestamp) * 1_000_000;
            black_box(OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap());
            drop(black_box(fields));
        }
        other => panic!("no fields for {other}"),
    }
}

/// One HMAC of what a provider signs, the hashing no layer can avoid (for
/// Kourier, which signs nothing, the token's SHA-256 digest compared in
/// constant time, with the cheapest such compare; for ShipEngine, the
/// RSA-SHA256 verification of its signature with the demo public key).
pub struct Reference {
    provider: &'static str,
    // Decided once: `hmac` runs in the timed loops.
    kourier: bool,
    key: Hmac<Sha256>,
    token: [u8; 32],
    message: Vec<u8>,
    /// ShipEngine's public key and signature.
    rsa: Option<(rsa::PublicKey, Vec<u8>)>,
}

impl Reference {
    pub fn new(provider: &'static str, webhook: &Webhook, body: &Bytes) -> Self {
        Self {
            provider,
            kourier: provider == "kourier",
            key: Hmac::new_from_slice(SECRET.as_bytes()).expect("any key length"),
            token: Sha256::digest(SECRET.as_bytes()).into(),
            message: signed(provider, webhook, body),
            rsa: (provider == "shipengine").then(|| shipengine_key_and_signature(webhook)),
        }
    }

    /// All the work no layer can avoid for the request whose body is `body`:
    /// the HMAC, then the event's fields.
    pub fn work(&self, body: &[u8]) {
        self.hmac();
        decode_fields(self.provider, body);
    }

    pub fn hmac(&self) {
        if let Some((key, signature)) = &self.rsa {
            let digest = Sha256::digest(black_box(&self.message));
            key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                .expect("the demo key's signature");
        } else if self.kourier {
            let received: [u8; 32] = Sha256::digest(black_box(SECRET.as_bytes())).into();
            assert!(words_equal(&received, &self.token));
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
        // Each signs its body (EasyPost's key is the secret in NFKD: this
        // ASCII secret itself); EasyPost's dedup key is its event id, which
        // costs no hashing of the body.
        "goshiip" | "easypost" | "aftership" | "sendcloud" | "kourier" => body.to_vec(),
        // The attempt's time and separators around the body, as signed.
        "shippo" => [&b"1700000000."[..], body].concat(),
        "shipbob" => [&b"msg_31eW7bWRi16lL0Ajjik68kfyeUh.1700000000."[..], body].concat(),
        // The signed time as sent, a `.`, the body.
        "shipengine" => {
            let request = webhook.sign(signing_key(provider));
            let time = &request.headers()["x-shipengine-timestamp"];
            [time.as_bytes(), b".", body].concat()
        }
        other => panic!("no signed bytes for {other}"),
    }
}

/// The demo public key, and the signature of `webhook` as sent.
fn shipengine_key_and_signature(webhook: &Webhook) -> (rsa::PublicKey, Vec<u8>) {
    use rsa::BoxedUint;
    let jwks: Value = serde_json::from_str(shipengine_demo_jwks()).expect("the demo JWKS");
    let number = |field: &str| {
        let text = jwks["keys"][0][field].as_str().expect("an RSA key");
        BoxedUint::from_be_slice_vartime(&URL_SAFE_NO_PAD.decode(text).expect("base64url"))
    };
    let key = rsa::PublicKey::new(number("n"), number("e")).expect("an RSA key");
    let request = webhook.sign(signing_key("shipengine"));
    let signature = &request.headers()["x-shipengine-rsa-sha256-signature"];
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature.as_bytes())
        .expect("base64");
    (key, signature)
}

/// Two digests compared in constant time, a word at a time: the cheapest
/// such compare, where `subtle` goes byte by byte.
fn words_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let (a, b) = (a.as_chunks::<8>().0, b.as_chunks::<8>().0);
    let difference = a.iter().zip(b).fold(0, |difference, (a, b)| {
        difference | (u64::from_ne_bytes(*a) ^ u64::from_ne_bytes(*b))
    });
    bool::from(difference.ct_eq(&0))
}

/// The floor under any layer that keeps this crate's API, to measure ours
/// against: what a layer does that hands the handler a record with a
/// `ShipmentEvent`, with no proof, field or header to check. It takes the
/// service polled ready and leaves a clone (the Tower rule), reads a body
/// of one frame, records an event of two owned strings, the secret's label
/// and the JSON in the extensions, lifts axum's `DefaultBodyLimit` to its
/// own, and calls the handler with the body it read. No tracing, no
/// checks: `floor - bare` is the least any such layer costs. Given a
/// [`Reference`], it also does that reference's work on the body it read,
/// as a layer must: then `floor - (bare + reference)` is the least "own"
/// cost any layer can measure.
#[derive(Clone)]
pub struct Floor<S> {
    inner: S,
    label: Arc<str>,
    reference: Option<Arc<Reference>>,
}

/// The layer of [`Floor`], doing `reference`'s work on each body if given.
#[derive(Clone, Default)]
pub struct FloorLayer {
    pub reference: Option<Arc<Reference>>,
}

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;

    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            label: Arc::from("primary"),
            reference: self.reference.clone(),
        }
    }
}

/// What [`Floor`] records, as a layer's `VerifiedWebhook` holds it.
#[derive(Clone)]
#[expect(dead_code, reason = "held as a layer's record is, never read")]
pub struct FloorRecord {
    event: ShipmentEvent,
    label: Arc<str>,
    json: Bytes,
}

impl<S, B> Service<Request<B>> for Floor<S>
where
    S: Service<Request<Body>> + Clone + Unpin,
    S::Future: Unpin,
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = FloorFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        FloorFuture::Reading {
            body,
            read: Bytes::new(),
            pending: Some((parts, inner, Arc::clone(&self.label))),
            reference: self.reference.clone(),
        }
    }
}

/// The response future of [`Floor`]; the request's head stays unboxed, as
/// in the layers' future.
#[expect(
    clippy::large_enum_variant,
    reason = "boxing would cost the floor an allocation"
)]
pub enum FloorFuture<S: Service<Request<Body>>, B> {
    Reading {
        body: B,
        read: Bytes,
        pending: Option<(Parts, S, Arc<str>)>,
        reference: Option<Arc<Reference>>,
    },
    Calling(S::Future),
}

impl<S, B> Future for FloorFuture<S, B>
where
    S: Service<Request<Body>> + Unpin,
    S::Future: Unpin,
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let (body, read, pending, reference) = match &mut *self {
                Self::Calling(future) => return Pin::new(future).poll(cx),
                Self::Reading {
                    body,
                    read,
                    pending,
                    reference,
                } => (body, read, pending, reference),
            };
            if let Some(frame) = ready!(Pin::new(body).poll_frame(cx)) {
                if let Ok(data) = frame.expect("a body").into_data() {
                    assert!(read.is_empty(), "the benches send bodies of one frame");
                    *read = data;
                }
                continue;
            }
            let (mut parts, mut inner, label) = pending.take().expect("polled after completion");
            let json = std::mem::take(read);
            if let Some(reference) = reference {
                reference.work(&json);
            }
            let event = ShipmentEvent::new(
                Provider::GoShiip,
                "5lqijs7rm9n0",
                ShipmentStatus::Processing,
            );
            parts.extensions.insert(FloorRecord {
                event,
                label,
                json: json.clone(),
            });
            let mut request = Request::from_parts(parts, Body::from(json));
            DefaultBodyLimit::max(1024 * 1024).apply(&mut request);
            *self = Self::Calling(inner.call(request));
        }
    }
}
