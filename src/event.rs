//! The normalized event every provider's webhook becomes.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

/// A delivery provider this crate verifies webhooks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Provider {
    /// [Kosmo](crate::kosmo).
    Kosmo,
    /// [Kourier](crate::kourier).
    Kourier,
    /// [Shipmondo](crate::shipmondo).
    Shipmondo,
    /// [GoShiip](crate::goshiip).
    GoShiip,
}

impl Provider {
    /// The provider's name as it appears in JSON: `kosmo`, `kourier`, `shipmondo` or `goshiip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kosmo => "kosmo",
            Self::Kourier => "kourier",
            Self::Shipmondo => "shipmondo",
            Self::GoShiip => "goshiip",
        }
    }
}

impl FromStr for Provider {
    type Err = UnknownProvider;

    /// Parses the name [`as_str`](Self::as_str) gives, in any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [Self::Kosmo, Self::Kourier, Self::Shipmondo, Self::GoShiip]
            .into_iter()
            .find(|provider| provider.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownProvider(name.to_owned()))
    }
}

/// The error of parsing a [`Provider`] from a name that is none of theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProvider(String);

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown provider {:?}: expected kosmo, kourier, shipmondo or goshiip",
            self.0
        )
    }
}

impl std::error::Error for UnknownProvider {}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One status vocabulary for every provider.
///
/// Each provider module documents how its own statuses map here; the provider's
/// own string is always kept in [`ShipmentEvent::raw_status`]. In JSON a status
/// is its snake_case name (`picked_up`), and [`Other`](Self::Other) is `other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShipmentStatus {
    /// The order or shipment exists; nothing has happened to it yet.
    Created,
    /// The sender is preparing it (picking, packing, labelling).
    Processing,
    /// Prepared and waiting to be collected.
    ReadyForPickup,
    /// A courier has taken the job.
    Assigned,
    /// The courier has collected it.
    PickedUp,
    /// On its way.
    InTransit,
    /// On the last leg to the recipient.
    OutForDelivery,
    /// Handed to the recipient.
    Delivered,
    /// Delivery was attempted and failed.
    Failed,
    /// Cancelled before delivery.
    Cancelled,
    /// Sent back to the sender.
    Returned,
    /// Paused, waiting for someone to act.
    OnHold,
    /// A status this crate does not know, as the provider sent it.
    Other(String),
}

impl ShipmentStatus {
    /// The snake_case name used in JSON; `other` for [`Other`](Self::Other).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Processing => "processing",
            Self::ReadyForPickup => "ready_for_pickup",
            Self::Assigned => "assigned",
            Self::PickedUp => "picked_up",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
            Self::OnHold => "on_hold",
            Self::Other(_) => "other",
        }
    }

    /// Maps a provider's status with the words every provider shares
    /// (`delivered`, `picked up`, `CANCELED`...) after `provider_words` had its
    /// say. Case, surrounding blanks, spaces and hyphens don't matter.
    pub(crate) fn normalize(
        raw: &str,
        provider_words: impl FnOnce(&str) -> Option<ShipmentStatus>,
    ) -> Self {
        let key = status_key(raw);
        if let Some(status) = provider_words(&key) {
            return status;
        }
        match key.as_str() {
            "created" => Self::Created,
            "processing" => Self::Processing,
            "ready_for_pickup" => Self::ReadyForPickup,
            "assigned" => Self::Assigned,
            "picked_up" => Self::PickedUp,
            "in_transit" => Self::InTransit,
            "out_for_delivery" => Self::OutForDelivery,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "cancelled" | "canceled" => Self::Cancelled,
            "returned" => Self::Returned,
            "on_hold" => Self::OnHold,
            _ => Self::Other(raw.to_owned()),
        }
    }
}

/// A provider's word as the mappings match it: trimmed, lowercase, with
/// spaces and hyphens as underscores (`Picked Up` is `picked_up`).
pub(crate) fn status_key(raw: &str) -> String {
    raw.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ShipmentStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A verified webhook, normalized: the same shape whatever the provider.
///
/// Take it as a handler argument on a route that has one of the verifying
/// layers ([`KosmoSignature`](crate::KosmoSignature),
/// [`KourierBearer`](crate::KourierBearer), [`ShipmondoJwt`](crate::ShipmondoJwt),
/// [`GoShiipSignature`](crate::GoShiipSignature)). Without one, extracting it
/// fails with a 500 that names the missing layer: a `ShipmentEvent` only ever
/// comes from a request whose proof was checked.
///
/// As JSON:
///
/// ```json
/// {"provider":"kosmo","id":"SG-19ALqYm4s6P","status":"delivered","raw_status":"COMPLETED",
///  "timestamp":"2023-02-23T04:22:15Z","event_id":"9ddafe4f-010b-43e9-a0b4-baad0c46d9de"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShipmentEvent {
    /// Who sent it.
    pub provider: Provider,
    /// The provider's id of the order, delivery or shipment (see each provider module).
    pub id: String,
    /// The status, normalized.
    pub status: ShipmentStatus,
    /// The status as the provider sent it.
    pub raw_status: String,
    /// When the provider says the event happened; `None` where it sends no
    /// time (GoShiip, and Shipmondo resources without a signed time).
    #[serde(with = "time::serde::rfc3339::option")]
    pub timestamp: Option<OffsetDateTime>,
    /// The provider's id of this event, where it gives one (Kosmo's `eventId`).
    pub event_id: Option<String>,
}
