//! The row the receiver stores, without a store.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::store::NewWebhook;
use crate::{MatchedSecret, Provider, ShipmentEvent, ShipmentStatus, VerifiedWebhook};

fn webhook(id: &str) -> VerifiedWebhook {
    let event = ShipmentEvent::new(Provider::ALL[0], id, ShipmentStatus::Created);
    let secret = MatchedSecret::stored(Arc::from("primary"), None);
    VerifiedWebhook::new(event, secret, Bytes::from_static(b"{}"))
}

#[test]
fn an_unscoped_shipment_key_is_the_ids_sha256_as_before_scopes() {
    let row = NewWebhook::new(&webhook("3405958"), "/webhooks").unwrap();
    assert_eq!(row.shipment, <[u8; 32]>::from(Sha256::digest("3405958")));
}

#[test]
fn a_scoped_shipment_key_is_the_sha256_of_scope_nul_and_id() {
    let scoped = webhook("3405958").with_shipment_scope(Some("order"));
    let row = NewWebhook::new(&scoped, "/webhooks").unwrap();
    assert_eq!(
        row.shipment,
        <[u8; 32]>::from(Sha256::digest("order\x003405958"))
    );
    let unscoped = NewWebhook::new(&webhook("3405958"), "/webhooks").unwrap();
    assert_ne!(row.shipment, unscoped.shipment);
    assert_eq!(
        row.dedup_key, unscoped.dedup_key,
        "the dedup key is what was signed"
    );
}
