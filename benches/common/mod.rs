//! The signed webhooks the benchmark and the instruction gauge send: each
//! provider's sample padded with its own kind of bulk (Kosmo stops, order
//! lines, GoShiip history) to a given size.

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shipment_webhooks::testing::Webhook;

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
