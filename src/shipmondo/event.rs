//! What Shipmondo's payload says: the typed [`ShipmondoEvent`], and the
//! [`ShipmentEvent`] made from its signed fields.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ShipmondoHeaders;
use crate::event::{STATUS_KEY_LEN, status_key};
use crate::extract::typed_payload;
use crate::json::{object_or_json_string, optional_id, optional_str, parse_json};
use crate::{
    Provider, ShipmentEvent, ShipmentStatus, TypedPayload, VerifiedWebhook, WebhookRejection,
};

/// A verified Shipmondo webhook: its headers and the JWT's decoded payload.
///
/// Take it as a handler argument behind [`ShipmondoJwt`](super::ShipmondoJwt): it is decoded from
/// the verified payload then, and refused with 400 if it is not this shape.
///
/// Payload fields this crate does not model are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShipmondoEvent {
    /// The five `SMD-*` headers (not signed).
    #[serde(skip_deserializing)]
    pub headers: ShipmondoHeaders,
    /// The name of the webhook that sent the message.
    #[serde(default)]
    pub webhook: Option<String>,
    /// The resource as Shipmondo's API returns it (an order, a shipment...),
    /// sent as an object or as a string holding one.
    #[serde(deserialize_with = "object_or_json_string")]
    pub data: Map<String, Value>,
    /// The URL the message was sent to.
    #[serde(default)]
    pub url: Option<String>,
    /// Every other payload field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypedPayload for ShipmondoEvent {
    const PROVIDER: Provider = Provider::Shipmondo;
    const NAME: &'static str = "ShipmondoEvent";
    const LAYER: &'static str = "ShipmondoJwt";

    fn decode(verified: &VerifiedWebhook) -> Result<Self, WebhookRejection> {
        let mut payload: Self = parse_json("the JWT payload", verified.json())?;
        payload.headers = ShipmondoHeaders::from_kept(verified.headers());
        Ok(payload)
    }
}

typed_payload!(ShipmondoEvent);

impl ShipmondoEvent {
    /// The shop's own order number (`data.order_id`, such as `"000000011"`)
    /// of an `Orders` webhook: the number a shop looks its order up by.
    /// The event's `id` is Shipmondo's number for the order.
    pub fn order_id(&self) -> Option<&str> {
        self.data.get("order_id").and_then(Value::as_str)
    }
}

/// The fields a [`ShipmentEvent`] is made of, from the JWT's payload, and
/// those of a connection test.
#[derive(Deserialize)]
pub(super) struct ShipmondoFields<'a> {
    #[serde(default, deserialize_with = "optional_data")]
    pub(super) data: Option<DataFields>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    pub(super) action: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    pub(super) webhook: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_str")]
    pub(super) url: Option<Cow<'a, str>>,
}

/// `data`, an object or a string holding one; absent or `null` is `None`.
fn optional_data<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DataFields>, D::Error> {
    #[derive(Deserialize)]
    struct Data(#[serde(deserialize_with = "object_or_json_string")] DataFields);
    Option::<Data>::deserialize(deserializer).map(|data| data.map(|Data(fields)| fields))
}

/// The resource's fields the event is made of. Owned, since `data` may be
/// a string holding the object.
#[derive(Deserialize)]
pub(super) struct DataFields {
    #[serde(default, deserialize_with = "optional_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    shipment_id: Option<String>,
    // Shipmondo's own example pads this key with a space.
    #[serde(default, alias = "order_status ")]
    order_status: Option<String>,
    #[serde(default)]
    current_status: Option<String>,
    #[serde(default)]
    current_status_registered_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

/// The shipment scope of an order's id: Shipmondo numbers orders apart from
/// shipments. Part of the inbox's stored shipment keys: never change it.
const ORDER_SCOPE: &str = "order";

impl DataFields {
    /// What the event's id numbers, from the signed payload: an order (it has
    /// `order_status`) is scoped apart; a shipment, and a Shipment Monitor's
    /// `shipment_id`, which names one, are not. The unsigned
    /// `SMD-Resource-Type` is never read, so that a captured token replayed
    /// with another type cannot escape its shipment's latest wins.
    pub(super) fn shipment_scope(&self) -> Option<&'static str> {
        self.order_status.is_some().then_some(ORDER_SCOPE)
    }

    /// The event, from the signed payload; the unsigned `SMD-Action` gives
    /// the status only where the payload has none.
    pub(super) fn into_event(
        self,
        resource_id: Option<&str>,
        action: Option<&str>,
    ) -> Result<ShipmentEvent, WebhookRejection> {
        let id = self.id()?;
        if let Some(header) = resource_id
            && header != id
        {
            tracing::debug!(
                header,
                signed = id,
                "SMD-Resource-Id differs from the signed id; using the signed one"
            );
        }
        let timestamp = self.timestamp();
        let (status, raw_status) = self.status(action.unwrap_or_default());
        Ok(ShipmentEvent {
            provider: Provider::Shipmondo,
            id,
            status,
            raw_status,
            timestamp,
            event_id: None,
        })
    }

    /// Whether the resource is a Shipment Monitor: its status is
    /// `current_status`. The id, the status and the time follow this one answer.
    fn is_monitor(&self) -> bool {
        self.order_status.is_none() && self.current_status.is_some()
    }

    /// A Shipment Monitor's `shipment_id`, any other resource's `id` (the
    /// other where it has none, or an empty one); the unsigned
    /// `SMD-Resource-Id` never.
    fn id(&self) -> Result<String, WebhookRejection> {
        let (first, second) = if self.is_monitor() {
            (&self.shipment_id, &self.id)
        } else {
            (&self.id, &self.shipment_id)
        };
        let present = |id: &&String| !id.trim().is_empty();
        let id = first
            .as_ref()
            .filter(present)
            .or(second.as_ref().filter(present));
        id.cloned().ok_or_else(|| {
            WebhookRejection::invalid_payload(
                "the JWT payload has neither data.id nor data.shipment_id; \
                 the unsigned smd-resource-id header is not taken as the event's id",
            )
        })
    }

    /// The signed time of the status: a monitor's
    /// `current_status_registered_at`, else the resource's `updated_at`, else
    /// its `created_at`. One that is not RFC 3339 is traced and left out,
    /// since Shipmondo does not send a refused message again.
    fn timestamp(&self) -> Option<OffsetDateTime> {
        let registered = (
            "data.current_status_registered_at",
            &self.current_status_registered_at,
        );
        let (field, value) = [
            self.is_monitor().then_some(registered),
            Some(("data.updated_at", &self.updated_at)),
            Some(("data.created_at", &self.created_at)),
        ]
        .into_iter()
        .flatten()
        .find_map(|(field, value)| Some((field, value.as_deref()?)))?;
        OffsetDateTime::parse(value, &Rfc3339)
            .inspect_err(|error| {
                tracing::debug!(field, value, %error, "Shipmondo time is not RFC 3339; the event has no timestamp");
            })
            .ok()
    }

    /// The signed payload's status where it has one; the unsigned `SMD-Action`
    /// only where it has none, and then only `create` and `cancel` mean anything.
    fn status(self, action: &str) -> (ShipmentStatus, String) {
        if let Some(raw) = self.order_status {
            return (ShipmentStatus::normalize(&raw, order_status), raw);
        }
        if let Some(raw) = self.current_status {
            return (ShipmentStatus::normalize(&raw, monitor_status), raw);
        }
        let mut buffer = [0; STATUS_KEY_LEN];
        let status = match status_key(action, &mut buffer) {
            Some("create") => ShipmentStatus::Created,
            Some("cancel") => ShipmentStatus::Cancelled,
            _ => ShipmentStatus::Other(action.to_owned()),
        };
        (status, action.to_owned())
    }
}

fn order_status(key: &str) -> Option<ShipmentStatus> {
    match key {
        "open" => Some(ShipmentStatus::Created),
        "released" => Some(ShipmentStatus::Processing),
        "packed" => Some(ShipmentStatus::ReadyForPickup),
        "sent" => Some(ShipmentStatus::InTransit),
        _ => None,
    }
}

fn monitor_status(key: &str) -> Option<ShipmentStatus> {
    match key {
        "en_route" => Some(ShipmentStatus::InTransit),
        "available_for_delivery" => Some(ShipmentStatus::OutForDelivery),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: Value, action: Option<&str>) -> ShipmentEvent {
        let data: DataFields = serde_json::from_value(data).expect("a resource");
        data.into_event(None, action)
            .expect("the payload has an id")
    }

    #[test]
    fn maps_every_documented_order_status() {
        for (raw, expected) in [
            ("open", ShipmentStatus::Created),
            ("processing", ShipmentStatus::Processing),
            ("released", ShipmentStatus::Processing),
            ("packed", ShipmentStatus::ReadyForPickup),
            ("ready_for_pickup", ShipmentStatus::ReadyForPickup),
            ("sent", ShipmentStatus::InTransit),
            ("picked_up", ShipmentStatus::PickedUp),
            ("on_hold", ShipmentStatus::OnHold),
            ("cancelled", ShipmentStatus::Cancelled),
            ("archived", ShipmentStatus::Other("archived".into())),
        ] {
            let data = serde_json::json!({"id": 1, "order_status": raw});
            assert_eq!(event(data, Some("update")).status, expected, "{raw}");
        }
    }

    #[test]
    fn maps_the_monitor_and_only_create_or_cancel_actions() {
        let monitor = |raw| {
            let data = serde_json::json!({"shipment_id": 1, "current_status": raw});
            event(data, Some("latest")).status
        };
        assert_eq!(monitor("EN_ROUTE"), ShipmentStatus::InTransit);
        assert_eq!(
            monitor("AVAILABLE_FOR_DELIVERY"),
            ShipmentStatus::OutForDelivery
        );
        assert_eq!(monitor("DELIVERED"), ShipmentStatus::Delivered);
        assert_eq!(monitor("FAILED"), ShipmentStatus::Failed);
        assert_eq!(monitor("UNKNOWN"), ShipmentStatus::Other("UNKNOWN".into()));
        let action = |action| event(serde_json::json!({"id": 1}), Some(action)).status;
        assert_eq!(action("create"), ShipmentStatus::Created);
        assert_eq!(action("cancel"), ShipmentStatus::Cancelled);
        assert_eq!(
            action("delivered"),
            ShipmentStatus::Other("delivered".into())
        );
    }

    #[test]
    fn only_an_orders_id_is_scoped_apart_from_shipments() {
        let scope = |data: Value| {
            let data: DataFields = serde_json::from_value(data).expect("a resource");
            data.shipment_scope()
        };
        let order = serde_json::json!({"id": 1, "order_status": "open"});
        assert_eq!(scope(order), Some("order"));
        assert_eq!(scope(serde_json::json!({"id": 1, "pkg_no": "1"})), None);
        let monitor = serde_json::json!({"shipment_id": 1, "current_status": "EN_ROUTE"});
        assert_eq!(scope(monitor), None);
    }

    #[test]
    fn the_signed_status_wins_over_an_action_header() {
        let data = serde_json::json!({"id": 1, "order_status": "open"});
        assert_eq!(event(data, Some("cancel")).status, ShipmentStatus::Created);
    }
}
