//! `ShipmentEvent`, `ShipmentStatus` and `Provider` through JSON and back, as
//! a queue between a handler and a worker carries them: losslessly, `Other`
//! statuses and timestamps' offsets and nanoseconds included.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::common::send;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use shipment_webhooks::testing::{SHIPENGINE_DEMO_PRIVATE_KEY, Webhook, shipengine_demo_jwks};
use shipment_webhooks::{
    AfterShipSignature, EasyPostSignature, GoShiipSignature, KosmoSignature, KourierBearer,
    Provider, SendcloudSignature, ShipBobSignature, ShipEngineSignature, ShipmentEvent,
    ShipmentStatus, ShipmondoJwt, ShippoSignature,
};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

const SECRET: &str = "a-webhook-secret-of-at-least-32-bytes";

/// Every named status and its name in JSON.
const NAMED: [(ShipmentStatus, &str); 13] = [
    (ShipmentStatus::Created, "created"),
    (ShipmentStatus::Processing, "processing"),
    (ShipmentStatus::ReadyForPickup, "ready_for_pickup"),
    (ShipmentStatus::Assigned, "assigned"),
    (ShipmentStatus::PickedUp, "picked_up"),
    (ShipmentStatus::InTransit, "in_transit"),
    (ShipmentStatus::OutForDelivery, "out_for_delivery"),
    (ShipmentStatus::AtPickupPoint, "at_pickup_point"),
    (ShipmentStatus::Delivered, "delivered"),
    (ShipmentStatus::Failed, "failed"),
    (ShipmentStatus::Cancelled, "cancelled"),
    (ShipmentStatus::Returned, "returned"),
    (ShipmentStatus::OnHold, "on_hold"),
];

fn other(text: &str) -> ShipmentStatus {
    ShipmentStatus::Other(text.to_owned())
}

fn rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).expect("an RFC 3339 date-time")
}

/// `event` serialized, then deserialized; asserts the JSON is stable and the
/// timestamp's offset and nanoseconds survived (`==` compares instants only).
#[track_caller]
fn round_trip(event: &ShipmentEvent) -> ShipmentEvent {
    let json = serde_json::to_string(event).expect("an event serializes");
    let back: ShipmentEvent = serde_json::from_str(&json).expect("its JSON deserializes");
    assert_eq!(&back, event, "{json}");
    assert_eq!(
        back.timestamp.map(|t| (t.offset(), t.nanosecond())),
        event.timestamp.map(|t| (t.offset(), t.nanosecond())),
        "{json}"
    );
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    back
}

#[test]
fn the_json_of_an_event_is_unchanged() {
    let event = ShipmentEvent::new(Provider::Kosmo, "SG-19ALqYm4s6P", other("DRIVER LOST"))
        .with_timestamp(rfc3339("2023-02-23T04:22:15Z"))
        .with_event_id("9ddafe4f-010b-43e9-a0b4-baad0c46d9de");
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"provider":"kosmo","id":"SG-19ALqYm4s6P","status":"other","raw_status":"DRIVER LOST","timestamp":"2023-02-23T04:22:15Z","event_id":"9ddafe4f-010b-43e9-a0b4-baad0c46d9de"}"#
    );
    let bare = ShipmentEvent::new(Provider::GoShiip, "5lqijs7rm9n0", ShipmentStatus::PickedUp)
        .with_raw_status("Picked Up");
    assert_eq!(
        serde_json::to_value(&bare).unwrap(),
        json!({
            "provider": "goshiip", "id": "5lqijs7rm9n0", "status": "picked_up",
            "raw_status": "Picked Up", "timestamp": null, "event_id": null,
        })
    );
}

#[test]
fn every_named_status_round_trips_alone_and_in_an_event() {
    for (status, name) in NAMED {
        assert_eq!(status.as_str(), name);
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{name}\"")
        );
        let back: ShipmentStatus = serde_json::from_str(&format!("\"{name}\"")).unwrap();
        assert_eq!(back, status);
        assert_eq!(name.parse(), Ok(status.clone()));

        let event = ShipmentEvent::new(Provider::Kourier, "abc123", status.clone());
        assert_eq!(event.raw_status, name);
        assert_eq!(round_trip(&event).status, status);
        // A provider's own word in `raw_status` does not change a named status.
        let event = event.with_raw_status(name.to_uppercase().replace('_', " "));
        assert_eq!(round_trip(&event).status, status);
    }
}

#[test]
fn other_round_trips_in_an_event_and_is_other_alone() {
    let lost = ShipmentEvent::new(Provider::Kosmo, "SG-42", other("DRIVER LOST"));
    assert_eq!(lost.raw_status, "DRIVER LOST");
    assert_eq!(round_trip(&lost).status, other("DRIVER LOST"));

    // Alone, one vocabulary: `other`, whose text is the event's raw status.
    let json = serde_json::to_string(&other("DRIVER LOST")).unwrap();
    assert_eq!(json, r#""other""#);
    let alone: ShipmentStatus = serde_json::from_str(&json).unwrap();
    assert_eq!(alone, other("other"));

    // Shipmondo's `SMD-Action` fallback and Kourier's event name can make
    // `Other` of a vocabulary word, and even of `other`: still lossless.
    for text in ["delivered", "other", "", " picked_up "] {
        let event = ShipmentEvent::new(Provider::Shipmondo, "3405958", other(text));
        assert_eq!(round_trip(&event).status, other(text));
    }
}

#[test]
fn with_raw_status_keeps_an_other_status_its_text() {
    let event =
        ShipmentEvent::new(Provider::Kosmo, "SG-42", other("LOST")).with_raw_status("DRIVER LOST");
    assert_eq!(event.status, other("DRIVER LOST"));
    round_trip(&event);
}

#[test]
fn an_other_or_unknown_status_name_comes_back_as_the_raw_status() {
    let event: ShipmentEvent = serde_json::from_value(json!({
        "provider": "kosmo", "id": "SG-42", "status": "other", "raw_status": "DRIVER LOST",
        "timestamp": null, "event_id": null,
    }))
    .unwrap();
    assert_eq!(event.status, other("DRIVER LOST"));

    // A name a later version may add reads as a status this one does not know.
    let event: ShipmentEvent = serde_json::from_value(json!({
        "provider": "kosmo", "id": "SG-42", "status": "returned_to_sender",
        "raw_status": "RTS", "timestamp": null, "event_id": null,
    }))
    .unwrap();
    assert_eq!(event.status, other("RTS"));
}

#[test]
fn a_timestamp_keeps_its_offset_and_nanoseconds() {
    for text in [
        "2023-02-23T06:22:15.123456789+02:00",
        "2023-02-23T06:22:15.000000001-09:30",
        "2021-02-23T09:12:40.233+01:00",
        "2023-02-23T04:22:15.1Z",
        "0000-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59.999999999-23:59",
    ] {
        let timestamp = rfc3339(text);
        let event = ShipmentEvent::new(Provider::Kosmo, "SG-42", ShipmentStatus::Delivered)
            .with_timestamp(timestamp);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["timestamp"], text);
        let back = round_trip(&event).timestamp.unwrap();
        assert_eq!(back.offset(), timestamp.offset(), "{text}");
        assert_eq!(back.nanosecond(), timestamp.nanosecond(), "{text}");
    }
    let nanos = rfc3339("2023-02-23T06:22:15.123456789+02:00");
    assert_eq!(nanos.offset(), UtcOffset::from_hms(2, 0, 0).unwrap());
    assert_eq!(nanos.nanosecond(), 123_456_789);
}

#[test]
fn a_timestamp_rfc_3339_cannot_write_is_an_error_not_a_wrong_time() {
    let noon = Time::from_hms(12, 0, 0).unwrap();
    let date = Date::from_calendar_date(2023, Month::February, 23).unwrap();
    // An offset with seconds (RFC 3339 offsets have none), and a year before 0000.
    let with_seconds = PrimitiveDateTime::new(date, noon)
        .assume_offset(UtcOffset::from_hms(1, 0, 30).expect("an offset with seconds"));
    let before_zero = PrimitiveDateTime::new(
        Date::from_calendar_date(-1, Month::January, 1).unwrap(),
        noon,
    )
    .assume_utc();
    for (timestamp, component) in [(with_seconds, "offset_second"), (before_zero, "year")] {
        let event = ShipmentEvent::new(Provider::Kosmo, "SG-42", ShipmentStatus::Delivered)
            .with_timestamp(timestamp);
        let error = serde_json::to_string(&event).expect_err("RFC 3339 cannot write it");
        assert!(error.to_string().contains(component), "{error}");
    }
}

#[test]
fn timestamp_and_event_id_may_be_null_or_absent() {
    let expected = ShipmentEvent::new(Provider::GoShiip, "5lqijs7rm9n0", ShipmentStatus::PickedUp)
        .with_raw_status("Picked Up");
    for json in [
        json!({"provider": "goshiip", "id": "5lqijs7rm9n0", "status": "picked_up",
               "raw_status": "Picked Up", "timestamp": null, "event_id": null}),
        json!({"provider": "goshiip", "id": "5lqijs7rm9n0", "status": "picked_up",
               "raw_status": "Picked Up"}),
        json!({"provider": "goshiip", "id": "5lqijs7rm9n0", "status": "picked_up",
               "raw_status": "Picked Up", "added_later": true}),
    ] {
        let event: ShipmentEvent = serde_json::from_value(json.clone()).expect("an event");
        assert_eq!(event, expected, "{json}");
        assert_eq!(event.timestamp, None);
        assert_eq!(event.event_id, None);
    }
}

#[test]
fn bad_json_is_refused_with_what_is_wrong() {
    let refused = |json: serde_json::Value| {
        serde_json::from_str::<ShipmentEvent>(&json.to_string())
            .expect_err("not an event")
            .to_string()
    };
    let event = json!({
        "provider": "kosmo", "id": "SG-42", "status": "delivered", "raw_status": "DELIVERED",
        "timestamp": "2023-02-23T04:22:15Z", "event_id": null,
    });
    let with = |field: &str, value: serde_json::Value| {
        let mut event = event.clone();
        event[field] = value;
        event
    };
    let without = |field: &str| {
        let mut event = event.clone();
        event.as_object_mut().unwrap().remove(field);
        event
    };

    let error = refused(with("provider", json!("dhl")));
    assert!(
        error.contains(
            "unknown variant `dhl`, expected one of `kosmo`, `kourier`, `shipmondo`, `goshiip`, \
             `easypost`, `aftership`, `sendcloud`, \
             `shippo`, `shipbob`"
        ),
        "{error}"
    );
    // JSON holds exactly what was written; `FromStr` is the lenient one.
    assert!(refused(with("provider", json!("Kosmo"))).contains("unknown variant `Kosmo`"));
    for field in ["provider", "id", "status", "raw_status"] {
        let error = refused(without(field));
        assert!(
            error.contains(&format!("missing field `{field}`")),
            "{error}"
        );
    }
    let error = refused(with("status", json!(3)));
    assert!(error.contains("expected a shipment status name"), "{error}");
    let error = refused(with("timestamp", json!("2023-02-23 04:22:15")));
    assert!(
        error.contains(r#"timestamp "2023-02-23 04:22:15" is not an RFC 3339 date-time"#),
        "{error}"
    );
    let error = refused(json!("kosmo SG-42 delivered"));
    assert!(error.contains("expected a ShipmentEvent"), "{error}");
}

#[test]
fn status_and_provider_parse_from_their_names() {
    for (status, name) in NAMED {
        assert_eq!(name.parse::<ShipmentStatus>(), Ok(status));
    }
    // Parsing never fails, and does not normalize: anything else is `Other`.
    for text in ["other", "PICKED UP", "Delivered", "canceled", ""] {
        assert_eq!(text.parse::<ShipmentStatus>(), Ok(other(text)));
    }

    for provider in [
        Provider::Kosmo,
        Provider::Kourier,
        Provider::Shipmondo,
        Provider::GoShiip,
        Provider::EasyPost,
        Provider::AfterShip,
        Provider::Sendcloud,
        Provider::Shippo,
        Provider::ShipBob,
        Provider::ShipEngine,
    ] {
        let name = provider.as_str();
        assert_eq!(name.parse(), Ok(provider));
        assert_eq!(name.to_uppercase().parse(), Ok(provider));
        let json = serde_json::to_string(&provider).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), provider);
    }
    let error = "dhl".parse::<Provider>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown provider \"dhl\": expected kosmo, kourier, shipmondo, goshiip, easypost, \
         aftership, sendcloud, shippo, shipbob or shipengine"
    );
}

#[test]
fn equal_events_hash_alike() {
    let event = ShipmentEvent::new(Provider::Kosmo, "SG-42", other("DRIVER LOST"))
        .with_timestamp(rfc3339("2023-02-23T06:22:15.5+02:00"));
    let back = round_trip(&event);
    let delivered = ShipmentEvent::new(Provider::Kosmo, "SG-42", ShipmentStatus::Delivered);
    let seen: HashSet<_> = [event, back, delivered].into_iter().collect();
    assert_eq!(seen.len(), 2);
}

/// ShipBob's secrets are `whsec_` and base64.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A router with every provider's layer whose handler records the event it
/// extracted and answers with it as JSON.
fn app(seen: Arc<Mutex<Vec<ShipmentEvent>>>) -> Router {
    async fn echo(
        State(seen): State<Arc<Mutex<Vec<ShipmentEvent>>>>,
        event: ShipmentEvent,
    ) -> Json<ShipmentEvent> {
        seen.lock().unwrap().push(event.clone());
        Json(event)
    }
    Router::new()
        .route(
            "/webhooks/kosmo",
            post(echo).route_layer(KosmoSignature::new(SECRET)),
        )
        .route(
            "/webhooks/kourier",
            post(echo).route_layer(KourierBearer::new(SECRET)),
        )
        .route(
            "/webhooks/shipmondo",
            post(echo).route_layer(ShipmondoJwt::new(SECRET)),
        )
        .route(
            "/webhooks/goshiip",
            post(echo).route_layer(GoShiipSignature::new(SECRET)),
        )
        .route(
            "/webhooks/easypost",
            post(echo).route_layer(EasyPostSignature::new(SECRET)),
        )
        .route(
            "/webhooks/aftership",
            post(echo).route_layer(AfterShipSignature::new(SECRET)),
        )
        .route(
            "/webhooks/sendcloud",
            post(echo).route_layer(SendcloudSignature::new(SECRET)),
        )
        .route(
            "/webhooks/shippo",
            post(echo).route_layer(ShippoSignature::new(SECRET)),
        )
        .route(
            "/webhooks/shipbob",
            post(echo).route_layer(ShipBobSignature::new(WHSEC)),
        )
        .route(
            "/webhooks/shipengine",
            post(echo).route_layer(
                ShipEngineSignature::from_jwks(shipengine_demo_jwks()).expect("the demo JWKS"),
            ),
        )
        .with_state(seen)
}

#[tokio::test]
async fn every_provider_s_event_comes_back_from_its_json_as_the_layer_made_it() {
    let webhooks = [
        (Webhook::kosmo("PICKED UP"), ShipmentStatus::PickedUp),
        (Webhook::kosmo("DRIVER LOST"), other("DRIVER LOST")),
        (
            Webhook::kosmo("COMPLETED").field("/timestamp", "2023-02-23T12:22:15.123456789+08:00"),
            ShipmentStatus::Delivered,
        ),
        (Webhook::kourier("in_transit"), ShipmentStatus::InTransit),
        (Webhook::kourier("lost_in_space"), other("lost_in_space")),
        (
            Webhook::kourier("in_transit").without("/status"),
            other("delivery.updated"),
        ),
        (Webhook::shipmondo_order("sent"), ShipmentStatus::InTransit),
        (Webhook::shipmondo_order("archived"), other("archived")),
        (
            Webhook::shipmondo_shipment("cancel"),
            ShipmentStatus::Cancelled,
        ),
        // No signed status: the action header's `delivered` is not trusted.
        (Webhook::shipmondo_shipment("delivered"), other("delivered")),
        (Webhook::shipmondo_monitor("UNKNOWN"), other("UNKNOWN")),
        (Webhook::goshiip("Picked Up"), ShipmentStatus::PickedUp),
        (Webhook::goshiip("Lost"), other("Lost")),
        (
            Webhook::easypost("available_for_pickup"),
            ShipmentStatus::AtPickupPoint,
        ),
        (Webhook::easypost("error"), other("error")),
        (
            Webhook::easypost("delivered")
                .field("/result/updated_at", "2024-08-02T19:26:51.5-04:00"),
            ShipmentStatus::Delivered,
        ),
        (
            Webhook::easypost("in_transit").field("/description", "refund.successful"),
            other("refund.successful"),
        ),
        (
            Webhook::aftership("OutForDelivery"),
            ShipmentStatus::OutForDelivery,
        ),
        (Webhook::aftership("Expired"), other("Expired")),
        (
            Webhook::aftership("Exception").field("/msg/subtag", "Exception_011"),
            ShipmentStatus::Returned,
        ),
        (Webhook::sendcloud(12), ShipmentStatus::AtPickupPoint),
        (
            Webhook::sendcloud(1337),
            other("Unknown status - check carrier track & trace page for more insights"),
        ),
        (
            Webhook::sendcloud_test_webhook().field("/action", "integration_updated"),
            other("integration_updated"),
        ),
        (Webhook::shippo("TRANSIT"), ShipmentStatus::InTransit),
        (Webhook::shippo("UNKNOWN"), other("UNKNOWN")),
        (
            Webhook::shipbob("OutForDelivery"),
            ShipmentStatus::OutForDelivery,
        ),
        (Webhook::shipbob("ImportReview"), other("ImportReview")),
        (Webhook::shipengine("SP"), ShipmentStatus::AtPickupPoint),
        (Webhook::shipengine("UN"), other("UN")),
        (
            Webhook::shipengine("DE").field(
                "/data/events",
                json!([{"occurred_at": "2026-04-29T11:30:00.1234567+02:00"}]),
            ),
            ShipmentStatus::Delivered,
        ),
    ];
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app(seen.clone());
    for (webhook, status) in webhooks {
        let key = match webhook.provider() {
            Provider::ShipBob => WHSEC,
            Provider::ShipEngine => SHIPENGINE_DEMO_PRIVATE_KEY,
            _ => SECRET,
        };
        let answer = send(&app, webhook.sign(key)).await;
        let text = answer.json.to_string();
        assert_eq!(answer.status, StatusCode::OK, "{text}");
        let extracted = seen.lock().unwrap().pop().expect("the handler ran");
        assert_eq!(extracted.provider, webhook.provider());
        assert_eq!(extracted.status, status, "{text}");

        let back: ShipmentEvent =
            serde_json::from_value(answer.json).expect("the answer is an event");
        assert_eq!(back, extracted, "{text}");
        assert_eq!(
            back.timestamp.map(|t| (t.offset(), t.nanosecond())),
            extracted.timestamp.map(|t| (t.offset(), t.nanosecond())),
            "{text}"
        );
        round_trip(&extracted);
    }
}

#[tokio::test]
async fn an_event_from_a_body_is_not_a_verified_one() {
    // Deserializing makes an event; only a layer makes one a handler can extract.
    async fn handler(event: ShipmentEvent) -> Json<ShipmentEvent> {
        Json(event)
    }
    let app = Router::new().route("/webhooks/kosmo", post(handler));
    let event = ShipmentEvent::new(Provider::Kosmo, "SG-42", ShipmentStatus::Delivered);
    let request = Request::post("/webhooks/kosmo")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&event).unwrap()))
        .unwrap();
    send(&app, request).await.assert_refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ShipmentEvent can only be extracted on a route layered with",
    );
}
