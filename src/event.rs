//! The normalized event every provider's webhook becomes.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A delivery provider this crate verifies webhooks from.
///
/// In JSON a provider is its lowercase name ([`as_str`](Self::as_str)), both
/// ways; deserializing takes exactly that name and refuses any other, naming
/// them all. [`FromStr`] also takes it in any case (`Kosmo`, `GOSHIIP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// [EasyPost](crate::easypost).
    EasyPost,
    /// [AfterShip](crate::aftership).
    AfterShip,
    /// [Sendcloud](crate::sendcloud).
    Sendcloud,
    /// [Shippo](crate::shippo).
    Shippo,
    /// [ShipBob](crate::shipbob).
    ShipBob,
    /// [ShipEngine](crate::shipengine), and the ShipStation API v2.
    ShipEngine,
}

impl Provider {
    /// Every provider, in the order of the docs.
    pub const ALL: [Self; 10] = [
        Self::Kosmo,
        Self::Kourier,
        Self::Shipmondo,
        Self::GoShiip,
        Self::EasyPost,
        Self::AfterShip,
        Self::Sendcloud,
        Self::Shippo,
        Self::ShipBob,
        Self::ShipEngine,
    ];

    /// The provider's name as it appears in JSON: `kosmo`, `kourier`,
    /// `shipmondo`, `goshiip`, `easypost`, `aftership`, `sendcloud`, `shippo`,
    /// `shipbob` or `shipengine`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kosmo => "kosmo",
            Self::Kourier => "kourier",
            Self::Shipmondo => "shipmondo",
            Self::GoShiip => "goshiip",
            Self::EasyPost => "easypost",
            Self::AfterShip => "aftership",
            Self::Sendcloud => "sendcloud",
            Self::Shippo => "shippo",
            Self::ShipBob => "shipbob",
            Self::ShipEngine => "shipengine",
        }
    }
}

impl FromStr for Provider {
    type Err = UnknownProvider;

    /// Parses the name [`as_str`](Self::as_str) gives, in any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
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
        write!(f, "unknown provider {:?}: expected ", self.0)?;
        let (last, rest) = Provider::ALL.split_last().expect("there are providers");
        for (i, provider) in rest.iter().enumerate() {
            let comma = if i == 0 { "" } else { ", " };
            write!(f, "{comma}{provider}")?;
        }
        write!(f, " or {last}")
    }
}

impl std::error::Error for UnknownProvider {}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route without a layer lacks, for its 500.
pub(crate) const ANY_LAYER: &str = "one of this crate's verifying layers (KosmoSignature...)";

/// One status vocabulary for every provider.
///
/// Each provider module documents how its own statuses map here; the provider's
/// own string is always kept in [`ShipmentEvent::raw_status`].
///
/// # As text and JSON
///
/// A status is written as its snake_case name ([`as_str`](Self::as_str),
/// [`Display`](fmt::Display), `Serialize`): `picked_up`, and `other` for
/// [`Other`](Self::Other) whatever its text, so consumers see one vocabulary.
///
/// It is read back ([`FromStr`], `Deserialize`) from exactly those names:
/// `picked_up` gives [`PickedUp`](Self::PickedUp), and any other text gives
/// `Other(text)`, so parsing never fails (`Err` is [`Infallible`]). Parsing
/// does not normalize: `PICKED UP` and `other` give `Other("PICKED UP")` and
/// `Other("other")`; mapping a provider's words is the layers' work.
///
/// So on its own a status round-trips for every variant but `Other`'s text:
/// `Other("DRIVER LOST")` is written `other` and comes back as
/// `Other("other")`. That text is the provider's status, which travels in
/// [`ShipmentEvent::raw_status`], and a [`ShipmentEvent`] deserializes its
/// `other` status as `Other(raw_status)`: an event round-trips whole.
///
/// ```
/// use shipment_webhooks::ShipmentStatus;
///
/// let status: ShipmentStatus = "picked_up".parse().unwrap();
/// assert_eq!(status, ShipmentStatus::PickedUp);
/// assert_eq!("DRIVER LOST".parse(), Ok(ShipmentStatus::Other("DRIVER LOST".into())));
///
/// let json = serde_json::to_string(&ShipmentStatus::Other("DRIVER LOST".into())).unwrap();
/// assert_eq!(json, r#""other""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShipmentStatus {
    /// The order or shipment exists; nothing has happened to it yet.
    Created,
    /// The sender is preparing it (picking, packing, labelling).
    Processing,
    /// Prepared and waiting for the courier to collect it from the sender.
    ReadyForPickup,
    /// A courier has taken the job.
    Assigned,
    /// The courier has collected it.
    PickedUp,
    /// On its way.
    InTransit,
    /// On the last leg to the recipient.
    OutForDelivery,
    /// Waiting at a pickup point or locker for the recipient to collect it:
    /// unlike [`ReadyForPickup`](Self::ReadyForPickup), the recipient must
    /// act (a shop tells them where to go, and when it will be sent back).
    AtPickupPoint,
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
            Self::AtPickupPoint => "at_pickup_point",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
            Self::OnHold => "on_hold",
            Self::Other(_) => "other",
        }
    }

    /// The named variant whose [`as_str`](Self::as_str) is exactly `name`.
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "created" => Self::Created,
            "processing" => Self::Processing,
            "ready_for_pickup" => Self::ReadyForPickup,
            "assigned" => Self::Assigned,
            "picked_up" => Self::PickedUp,
            "in_transit" => Self::InTransit,
            "out_for_delivery" => Self::OutForDelivery,
            "at_pickup_point" => Self::AtPickupPoint,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "returned" => Self::Returned,
            "on_hold" => Self::OnHold,
            _ => return None,
        })
    }

    /// Maps a provider's status with the words every provider shares
    /// (`delivered`, `picked up`, `CANCELED`...) after `provider_words` had its
    /// say. Case, surrounding blanks, spaces and hyphens don't matter.
    pub(crate) fn normalize(
        raw: &str,
        provider_words: impl FnOnce(&str) -> Option<ShipmentStatus>,
    ) -> Self {
        let mut buffer = [0; STATUS_KEY_LEN];
        let known = status_key(raw, &mut buffer).and_then(|key| match provider_words(key) {
            Some(status) => Some(status),
            None if key == "canceled" => Some(Self::Cancelled),
            None => Self::from_name(key),
        });
        known.unwrap_or_else(|| Self::Other(raw.to_owned()))
    }
}

/// The longest key [`status_key`] makes: longer than any word a mapping knows.
pub(crate) const STATUS_KEY_LEN: usize = 32;

/// A provider's word as the mappings match it: trimmed, lowercase, with
/// spaces and hyphens as underscores (`Picked Up` is `picked_up`), written in
/// `buffer`, so that mapping a status allocates nothing. `None` for a word
/// longer than the buffer, which no mapping knows.
pub(crate) fn status_key<'a>(raw: &str, buffer: &'a mut [u8; STATUS_KEY_LEN]) -> Option<&'a str> {
    let word = raw.trim().as_bytes();
    let key = buffer.get_mut(..word.len())?;
    for (to, &from) in key.iter_mut().zip(word) {
        *to = match from {
            b' ' | b'-' => b'_',
            other => other.to_ascii_lowercase(),
        };
    }
    // Only ASCII bytes changed, to ASCII: still UTF-8.
    std::str::from_utf8(key).ok()
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShipmentStatus {
    type Err = Infallible;

    /// The variant named exactly `name` (`picked_up`), else `Other(name)`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_name(name).unwrap_or_else(|| Self::Other(name.to_owned())))
    }
}

impl Serialize for ShipmentStatus {
    /// The snake_case name; `other` for [`Other`](Self::Other).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ShipmentStatus {
    /// As [`FromStr`]: a name gives its variant, any other string `Other(text)`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusName;

        impl Visitor<'_> for StatusName {
            type Value = ShipmentStatus;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a shipment status name such as \"picked_up\"")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(ShipmentStatus::from_name(name)
                    .unwrap_or_else(|| ShipmentStatus::Other(name.to_owned())))
            }

            fn visit_string<E: de::Error>(self, name: String) -> Result<Self::Value, E> {
                match ShipmentStatus::from_name(&name) {
                    Some(status) => Ok(status),
                    None => Ok(ShipmentStatus::Other(name)),
                }
            }
        }

        deserializer.deserialize_string(StatusName)
    }
}

/// A verified webhook, normalized: the same shape whatever the provider.
///
/// Take it as a handler argument on a route that has one of the verifying
/// layers ([`KosmoSignature`](crate::KosmoSignature),
/// [`KourierBearer`](crate::KourierBearer), [`ShipmondoJwt`](crate::ShipmondoJwt),
/// [`GoShiipSignature`](crate::GoShiipSignature),
/// [`EasyPostSignature`](crate::EasyPostSignature),
/// [`AfterShipSignature`](crate::AfterShipSignature),
/// [`SendcloudSignature`](crate::SendcloudSignature),
/// [`ShippoSignature`](crate::ShippoSignature),
/// [`ShipBobSignature`](crate::ShipBobSignature),
/// [`ShipEngineSignature`](crate::ShipEngineSignature)...). Without one, extracting it
/// fails with a 500 that names the missing layer: a `ShipmentEvent` only ever
/// comes from a request whose proof was checked.
///
/// As JSON:
///
/// ```json
/// {"provider":"kosmo","id":"SG-19ALqYm4s6P","status":"delivered","raw_status":"COMPLETED",
///  "timestamp":"2023-02-23T04:22:15Z","event_id":"9ddafe4f-010b-43e9-a0b4-baad0c46d9de"}
/// ```
///
/// # Through a queue
///
/// An event deserializes from that JSON as it serialized, losslessly:
/// `serde_json::from_str(&serde_json::to_string(&event)?)? == event`, so a
/// handler can answer the provider at once and leave the work to a worker
/// reading a queue.
///
/// - `status` is its name, and `other` for [`ShipmentStatus::Other`], whose
///   text is the event's `raw_status` (the provider's own word) in every
///   event the layers, [`new`](Self::new) and
///   [`with_raw_status`](Self::with_raw_status) make: an `other` status comes
///   back as `Other(raw_status)`. So does a status name this version of the
///   crate does not know, as if the crate had not mapped it. A known name
///   gives its variant whatever `raw_status` says. (An `Other` whose text was
///   assigned apart from `raw_status` comes back as `Other(raw_status)` too.)
/// - `timestamp` is RFC 3339 with every sub-second digit and the UTC offset
///   the event had (`2021-02-23T09:12:40.233+01:00`); `null` is `None`.
///   Serializing fails, with an error rather than a wrong time, for a
///   timestamp RFC 3339 cannot write: a year outside 0000–9999, or an offset
///   with seconds or over 23 hours. The layers make none of these; only one
///   given to [`with_timestamp`](Self::with_timestamp) can be one.
/// - `timestamp` and `event_id` may be absent (`None`); every other field must
///   be there, `provider` must be one of [`Provider`]'s names, and unknown fields are
///   ignored, so an older worker reads a newer producer's events.
///
/// Deserializing an event never makes it pass as verified: the
/// `ShipmentEvent` extractor takes only the event a layer recorded for that
/// request, in a type private to this crate, never one read from a body or
/// built by a handler.
///
/// `==` and `Hash` compare the timestamp as an instant, as
/// [`OffsetDateTime`] does: the same instant at two offsets is equal, though
/// JSON keeps each offset.
///
/// Workers and tests make one with [`new`](Self::new) and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct ShipmentEvent {
    /// Who sent it.
    pub provider: Provider,
    /// The provider's id of the order, delivery or shipment (see each provider module).
    pub id: String,
    /// The status, normalized.
    pub status: ShipmentStatus,
    /// The status as the provider sent it; for [`ShipmentStatus::Other`], its text.
    pub raw_status: String,
    /// When the provider says the event happened; `None` where it sends no
    /// time (GoShiip, Shipmondo resources without a signed time, EasyPost
    /// events that are not a tracker's, Sendcloud events without `timestamp`, a ShipBob body
    /// without `event_time`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub timestamp: Option<OffsetDateTime>,
    /// The provider's id of this event, where it gives one (Kosmo's
    /// `eventId`,
    /// EasyPost's `evt_…`, AfterShip's `event_id`,
    /// ShipBob's `webhook-id`; ShipEngine gives none).
    pub event_id: Option<String>,
}

impl ShipmentEvent {
    /// An event from `provider` about its order, delivery or shipment `id`,
    /// now in `status`: `raw_status` is the status's name (`picked_up`), or
    /// `Other`'s text; no `timestamp`, no `event_id`. For workers that make
    /// events of their own and for tests; the layers make theirs from what the
    /// provider signed.
    ///
    /// ```
    /// use shipment_webhooks::{Provider, ShipmentEvent, ShipmentStatus};
    /// use time::OffsetDateTime;
    /// use time::format_description::well_known::Rfc3339;
    ///
    /// let lost = ShipmentEvent::new(Provider::Kosmo, "SG-42", ShipmentStatus::Other("DRIVER LOST".into()))
    ///     .with_timestamp(OffsetDateTime::parse("2023-02-23T12:22:15.123456789+08:00", &Rfc3339)?)
    ///     .with_event_id("9ddafe4f-010b-43e9-a0b4-baad0c46d9de");
    /// assert_eq!(lost.raw_status, "DRIVER LOST");
    ///
    /// // What a queue holds, and what a worker reads back.
    /// let json = serde_json::to_string(&lost)?;
    /// assert!(json.contains(r#""status":"other","raw_status":"DRIVER LOST","timestamp":"2023-02-23T12:22:15.123456789+08:00""#));
    /// let back: ShipmentEvent = serde_json::from_str(&json)?;
    /// assert_eq!(back, lost);
    /// assert_eq!(back.status, ShipmentStatus::Other("DRIVER LOST".into()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(provider: Provider, id: impl Into<String>, status: ShipmentStatus) -> Self {
        let raw_status = match &status {
            ShipmentStatus::Other(text) => text.clone(),
            named => named.as_str().to_owned(),
        };
        Self {
            provider,
            id: id.into(),
            status,
            raw_status,
            timestamp: None,
            event_id: None,
        }
    }

    /// The status as the provider sent it (`PICKED UP` for
    /// [`PickedUp`](ShipmentStatus::PickedUp)).
    ///
    /// An [`Other`](ShipmentStatus::Other) status's text is the raw status, so
    /// for one this sets both: `Other(raw_status)` is what JSON brings back.
    ///
    /// ```
    /// use shipment_webhooks::{Provider, ShipmentEvent, ShipmentStatus};
    ///
    /// let event = ShipmentEvent::new(Provider::GoShiip, "5lqijs7rm9n0", ShipmentStatus::PickedUp)
    ///     .with_raw_status("Picked Up");
    /// assert_eq!(event.raw_status, "Picked Up");
    ///
    /// let event = ShipmentEvent::new(Provider::Kosmo, "SG-42", ShipmentStatus::Other("LOST".into()))
    ///     .with_raw_status("DRIVER LOST");
    /// assert_eq!(event.status, ShipmentStatus::Other("DRIVER LOST".into()));
    /// ```
    #[must_use]
    pub fn with_raw_status(mut self, raw_status: impl Into<String>) -> Self {
        self.raw_status = raw_status.into();
        if let ShipmentStatus::Other(text) = &mut self.status {
            text.clone_from(&self.raw_status);
        }
        self
    }

    /// When the provider says the event happened, kept to the nanosecond with
    /// its UTC offset (see [Through a queue](Self#through-a-queue) for the
    /// few times RFC 3339 cannot write).
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: OffsetDateTime) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The provider's id of this event (Kosmo's `eventId`).
    #[must_use]
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = Some(event_id.into());
        self
    }
}

/// A [`ShipmentEvent`] as JSON holds it (or, in formats that write structs
/// as sequences, its six fields in order).
#[derive(Deserialize)]
#[serde(rename = "ShipmentEvent", expecting = "a ShipmentEvent")]
struct EventFields {
    provider: Provider,
    id: String,
    status: ShipmentStatus,
    raw_status: String,
    #[serde(default, deserialize_with = "rfc3339_or_null")]
    timestamp: Option<OffsetDateTime>,
    #[serde(default)]
    event_id: Option<String>,
}

/// What `time::serde::rfc3339::option` reads, with an error that quotes the
/// text and says what it should be (`time`'s alone says only which part of
/// it failed).
fn rfc3339_or_null<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    OffsetDateTime::parse(&text, &Rfc3339)
        .map(Some)
        .map_err(|error| {
            de::Error::custom(format_args!(
                "timestamp {text:?} is not an RFC 3339 date-time ({error})"
            ))
        })
}

impl<'de> Deserialize<'de> for ShipmentEvent {
    /// The JSON [`Serialize`] writes; an `other` status (or one this version
    /// does not know) is `Other(raw_status)`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let EventFields {
            provider,
            id,
            status,
            raw_status,
            timestamp,
            event_id,
        } = EventFields::deserialize(deserializer)?;
        let status = match status {
            ShipmentStatus::Other(_) => ShipmentStatus::Other(raw_status.clone()),
            named => named,
        };
        Ok(Self {
            provider,
            id,
            status,
            raw_status,
            timestamp,
            event_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMED: [ShipmentStatus; 13] = [
        ShipmentStatus::Created,
        ShipmentStatus::Processing,
        ShipmentStatus::ReadyForPickup,
        ShipmentStatus::Assigned,
        ShipmentStatus::PickedUp,
        ShipmentStatus::InTransit,
        ShipmentStatus::OutForDelivery,
        ShipmentStatus::AtPickupPoint,
        ShipmentStatus::Delivered,
        ShipmentStatus::Failed,
        ShipmentStatus::Cancelled,
        ShipmentStatus::Returned,
        ShipmentStatus::OnHold,
    ];

    #[test]
    fn every_name_parses_to_its_variant() {
        for status in NAMED {
            assert_eq!(
                ShipmentStatus::from_name(status.as_str()),
                Some(status.clone())
            );
            assert_eq!(status.as_str().parse(), Ok(status));
        }
        assert_eq!(ShipmentStatus::from_name("other"), None);
    }

    #[test]
    fn status_key_is_trimmed_lowercase_with_underscores() {
        let mut buffer = [0; STATUS_KEY_LEN];
        for (raw, key) in [
            ("  Picked Up ", Some("picked_up")),
            ("\u{a0}IN-TRANSIT\t", Some("in_transit")),
            ("Élan vital", Some("Élan_vital")),
            ("", Some("")),
            (
                &"x".repeat(STATUS_KEY_LEN),
                Some(&*"x".repeat(STATUS_KEY_LEN)),
            ),
            (&"x".repeat(STATUS_KEY_LEN + 1), None),
        ] {
            assert_eq!(status_key(raw, &mut buffer), key, "{raw:?}");
        }
        let long = "a status far longer than any word a mapping knows";
        assert_eq!(
            ShipmentStatus::normalize(long, |_| None),
            ShipmentStatus::Other(long.into())
        );
    }

    #[test]
    fn normalize_maps_each_name_to_its_variant() {
        // The names the JSON uses are words every provider's mapping knows.
        for status in NAMED {
            assert_eq!(ShipmentStatus::normalize(status.as_str(), |_| None), status);
        }
    }
}
