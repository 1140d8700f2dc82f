//! The row the receiver stores, without a store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::store::NewWebhook;
use crate::{MatchedSecret, Provider, ShipmentEvent, ShipmentStatus, VerifiedWebhook};

fn webhook(id: &str) -> VerifiedWebhook {
    let event = ShipmentEvent::new(Provider::ALL[0], id, ShipmentStatus::Created);
    let secret = MatchedSecret::stored(Arc::from("primary"), None);
    VerifiedWebhook::new(event, secret, Bytes::from(format!(r#"{{"id":"{id}"}}"#)))
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

#[tokio::test]
async fn a_worker_takes_the_longest_intervals_without_overflowing_the_clock() {
    let inbox = super::Inbox::in_memory();
    let (handled, mut handled_rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = inbox
        .worker(move |delivery| {
            let handled = handled.clone();
            async move {
                handled
                    .send(delivery.event().id.clone())
                    .map_err(|_| "closed".into())
            }
        })
        .lease(Duration::MAX)
        .poll_interval(Duration::MAX)
        .spawn();
    // Two webhooks, the second after the worker's first sweep and renewal
    // scheduled their next runs by these intervals.
    for id in ["1", "2"] {
        inbox.receive(&webhook(id), "/webhooks").await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), handled_rx.recv()).await;
        assert_eq!(
            got.ok().flatten().as_deref(),
            Some(id),
            "webhook {id} was not handled"
        );
    }
    worker.shutdown().await;
}
