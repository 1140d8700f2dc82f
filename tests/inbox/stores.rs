//! One suite, run against every store: `stores::{memory,sqlite,postgres}::*`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post_service;
use futures_util::future::join_all;
use serde_json::json;
use shipment_webhooks::inbox::sqlx;
use shipment_webhooks::inbox::{AttemptOutcome, BoxError, Delivery, Filter, Inbox, WebhookState};
use shipment_webhooks::testing::{DeliveryBuilder, Webhook};
use shipment_webhooks::{
    KosmoEvent, KosmoSignature, PerTenant, Provider, ShipmentStatus, ShipmondoEvent, TenantSource,
    tenant,
};
use time::OffsetDateTime;

use crate::common::send;
use crate::harness::*;

every_store!(
    stored_then_handled_once,
    retried_delivery_is_a_duplicate,
    sixteen_concurrent_duplicates_leave_one_row,
    refused_webhook_is_never_stored,
    same_body_on_two_tenants_is_two_webhooks,
    failing_handler_is_retried_then_dead_then_replayed,
    crashed_worker_lease_runs_out_and_webhook_runs_again,
    shutdown_hands_back_running_webhooks_uncounted,
    older_event_is_superseded_by_signed_time,
    shipengine_latest_wins_by_the_carrier_events_time,
    latest_wins_can_be_turned_off,
    goshiip_final_status_is_never_undone,
    one_shipment_is_never_handled_twice_at_once,
    purge_forgets_keys_after_retention,
    stored_payload_and_headers_reach_the_handler,
    panicking_handler_is_retried,
    hung_handler_times_out_and_is_retried,
    busy_shipment_does_not_hold_back_another,
    replay_after_retention_is_superseded,
    dead_webhooks_are_purged_after_their_own_retention,
    every_spelling_of_a_normalized_tenant_is_one_webhook,
    unnormalized_spellings_are_tenants_of_their_own,
    shipmondo_order_and_shipment_with_one_id_are_two_shipments,
    sendcloud_integration_and_parcel_with_one_id_are_two_shipments,
    shippo_and_shipbob_order_events_by_their_time_not_the_attempts,
    run_until_idle_handles_everything_stored_then_returns,
    run_until_idle_waits_out_retries_until_handled_or_dead,
    run_until_idle_on_an_empty_inbox_returns_at_once,
    run_until_idle_handles_webhooks_stored_while_it_runs,
    test_delivery_is_what_the_worker_hands_out,
    backlog_counts_by_provider_with_the_oldest_pending_age,
    dead_webhooks_listed_shown_with_attempts_and_replayed,
    list_filters_and_pages_by_cursor,
    discard_deletes_only_pending_and_dead,
    last_hour_counts_received_handled_and_failed_per_minute,
    shipment_filter_matches_the_id_in_any_scope_or_one_by_prefix,
);

async fn stored_then_handled_once(backend: Backend) {
    let Some(inbox) = open(backend, "stored").await else {
        return;
    };
    let app = app(&inbox);
    let webhook = kosmo("SG-1", "PICKED UP", at(0));
    let answer = send(&app, webhook.sign(KOSMO)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["status"], "stored");
    assert_eq!(
        inbox.stats().await.unwrap().pending,
        1,
        "stored before the 200"
    );

    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    let stats = wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;
    assert_eq!(stats.done, 1);
    let handled = record.handled();
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0].attempt, 1);
    assert_eq!(handled[0].shipment, "SG-1");
    assert_eq!(handled[0].status, ShipmentStatus::PickedUp);
    assert_eq!(Some(handled[0].id), answer.json["id"].as_i64());
}

async fn retried_delivery_is_a_duplicate(backend: Backend) {
    let Some(inbox) = open(backend, "duplicate").await else {
        return;
    };
    let app = app(&inbox);
    for webhook in [
        kosmo("SG-2", "ASSIGNED", at(0)),
        Webhook::kourier("DELIVERED").field("/orderId", "K-2"),
        goshiip("GS-2", "Picked Up"),
        Webhook::shipmondo_order("sent"),
        Webhook::easypost("in_transit").field("/id", "evt_2"),
        Webhook::aftership("InTransit"),
        Webhook::sendcloud(3),
        shippo("SP-2", "TRANSIT", at(0)),
        shipbob(2, "InTransit", at(0)),
        // Retried as sent: the same signed time and body.
        shipengine("1Z-2", "IT", at(0), at(5)),
    ] {
        let first = send(&app, webhook.sign(secret(&webhook))).await;
        // Shippo and ShipBob sign each attempt's time: a retry signed a
        // minute later is the same delivery.
        let later = webhook
            .clone()
            .sent_at(time::OffsetDateTime::now_utc() + time::Duration::minutes(1));
        let again = send(&app, later.sign(secret(&webhook))).await;
        assert_eq!(first.json["status"], "stored", "{:?}", webhook.provider());
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.json["status"], "duplicate");
        assert_eq!(again.json["id"], first.json["id"]);
    }
    // EasyPost's retry of one event may describe its own delivery otherwise:
    // keyed by the signed event id, it is still a duplicate.
    let retry = Webhook::easypost("in_transit")
        .field("/id", "evt_2")
        .field("/status", "retrying")
        .field("/completed_urls", json!(["https://example.com/other"]));
    let again = send(&app, retry.sign(EASYPOST)).await;
    assert_eq!(again.json["status"], "duplicate", "{}", again.json);
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.duplicates), (10, 11));

    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 10).await;
    worker.shutdown().await;
    assert_eq!(record.handled().len(), 10, "each handled once");
}

fn secret(webhook: &Webhook) -> &'static str {
    match webhook.provider() {
        shipment_webhooks::Provider::Kosmo => KOSMO,
        shipment_webhooks::Provider::Kourier => KOURIER,
        shipment_webhooks::Provider::Shipmondo => SHIPMONDO,
        shipment_webhooks::Provider::GoShiip => GOSHIIP,
        shipment_webhooks::Provider::EasyPost => EASYPOST,
        shipment_webhooks::Provider::AfterShip => AFTERSHIP,
        shipment_webhooks::Provider::Sendcloud => SENDCLOUD,
        shipment_webhooks::Provider::Shippo => SHIPPO,
        shipment_webhooks::Provider::ShipBob => SHIPBOB,
        shipment_webhooks::Provider::ShipEngine => SHIPENGINE,
        other => unreachable!("no secret for {other}"),
    }
}

async fn sixteen_concurrent_duplicates_leave_one_row(backend: Backend) {
    let Some(inbox) = open(backend, "concurrent").await else {
        return;
    };
    let app = app(&inbox);
    let webhook = kosmo("SG-3", "DELIVERED", at(0));
    let answers = join_all((0..16).map(|_| send(&app, webhook.sign(KOSMO)))).await;
    assert!(answers.iter().all(|answer| answer.status == StatusCode::OK));
    let stored = answers
        .iter()
        .filter(|a| a.json["status"] == "stored")
        .count();
    assert_eq!(stored, 1, "exactly one stored");
    let ids: Vec<_> = answers
        .iter()
        .map(|answer| answer.json["id"].clone())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every answer names one row"
    );
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.duplicates), (1, 15));
}

async fn refused_webhook_is_never_stored(backend: Backend) {
    let Some(inbox) = open(backend, "refused").await else {
        return;
    };
    let app = app(&inbox);
    let forged = kosmo("SG-4", "DELIVERED", at(0)).sign("not-the-secret");
    let answer = send(&app, forged).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let unknown_tenant = kosmo("SG-4", "DELIVERED", at(0))
        .uri("/webhooks/tenants/nobody/kosmo".parse().unwrap())
        .sign(KOSMO);
    assert_eq!(
        send(&app, unknown_tenant).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(inbox.stats().await.unwrap(), Default::default());
}

async fn same_body_on_two_tenants_is_two_webhooks(backend: Backend) {
    let Some(inbox) = open(backend, "tenants").await else {
        return;
    };
    let app = app(&inbox);
    let webhook = kosmo("SG-5", "DELIVERED", at(0));
    for tenant in ["shop-a", "shop-b", "shop-a"] {
        let uri = format!("/webhooks/tenants/{tenant}/kosmo");
        let answer = send(&app, webhook.clone().uri(uri.parse().unwrap()).sign(KOSMO)).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.duplicates), (2, 1));
}

async fn failing_handler_is_retried_then_dead_then_replayed(backend: Backend) {
    let Some(inbox) = open(backend, "dead").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-6", "DELIVERED", at(0)).sign(KOSMO)).await;
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&attempts);
    let failing = inbox
        .worker(move |delivery: Delivery| {
            let seen = Arc::clone(&seen);
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                Err(format!("carrier API down (attempt {})", delivery.attempt()).into())
            }
        })
        .max_attempts(3)
        .poll_interval(Duration::from_millis(10))
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .spawn();
    let stats = wait_for(&inbox, |stats| stats.dead == 1).await;
    failing.shutdown().await;
    assert_eq!(stats.dead, 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let dead = inbox.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].event.id, "SG-6");
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("carrier API down (attempt 3)")
    );

    assert!(inbox.replay(dead[0].id).await.unwrap());
    assert!(!inbox.replay(dead[0].id).await.unwrap(), "no longer dead");
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;
    let handled = record.handled();
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0].attempt, 1, "a replay counts from one");
}

async fn crashed_worker_lease_runs_out_and_webhook_runs_again(backend: Backend) {
    let Some(inbox) = open(backend, "lease").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-7", "DELIVERED", at(0)).sign(KOSMO)).await;
    // A worker on a runtime of its own, dropped mid-handler: a crash, as far
    // as the inbox can tell (nothing is handed back).
    let crashed = inbox.clone();
    crate::common::crash_after(move || async move {
        let _worker = crashed
            .worker(|_| std::future::pending::<Result<(), BoxError>>())
            .lease(Duration::from_millis(300))
            .poll_interval(Duration::from_millis(10))
            .spawn();
        wait_for(&crashed, |stats| stats.processing == 1).await;
    });
    // The pool may still hold connections the dropped runtime made, which
    // fail once each before the pool replaces them.
    let mut stats = inbox.stats().await;
    for _ in 0..16 {
        if stats.is_ok() {
            break;
        }
        stats = inbox.stats().await;
    }
    assert_eq!(stats.unwrap().processing, 1);

    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    let stats = wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;
    assert_eq!(stats.done, 1);
    let handled = record.handled();
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0].attempt, 2, "the crashed attempt counts");
    let history = inbox
        .get(handled[0].id)
        .await
        .unwrap()
        .expect("kept")
        .history;
    let outcomes: Vec<_> = history.iter().map(|a| (a.number, a.outcome)).collect();
    assert_eq!(
        outcomes,
        [(1, AttemptOutcome::LeaseLost), (2, AttemptOutcome::Handled)]
    );
    assert_eq!(history[0].started_at, None, "no one recorded its start");
}

async fn shutdown_hands_back_running_webhooks_uncounted(backend: Backend) {
    let Some(inbox) = open(backend, "shutdown").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-8", "DELIVERED", at(0)).sign(KOSMO)).await;
    let slow = inbox
        .worker(|_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .poll_interval(Duration::from_millis(10))
        .shutdown_grace(Duration::from_millis(50))
        .spawn();
    wait_for(&inbox, |stats| stats.processing == 1).await;
    slow.shutdown().await;
    assert_eq!(inbox.stats().await.unwrap().pending, 1, "handed back");

    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;
    assert_eq!(
        record.handled()[0].attempt,
        1,
        "the stopped attempt is not counted"
    );
}

async fn older_event_is_superseded_by_signed_time(backend: Backend) {
    let Some(inbox) = open(backend, "latest").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-9", "DELIVERED", at(60)).sign(KOSMO)).await;
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    // Kosmo's earlier event, delivered late; and one at the same time.
    send(&app, kosmo("SG-9", "PICKED UP", at(30)).sign(KOSMO)).await;
    send(&app, kosmo("SG-9", "DELIVERED", at(60)).sign(KOSMO)).await;
    let stats = wait_for(&inbox, settled).await;
    worker.shutdown().await;
    assert_eq!((stats.done, stats.superseded), (2, 1));
    let statuses: Vec<_> = record.handled().into_iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [ShipmentStatus::Delivered, ShipmentStatus::Delivered]
    );
}

async fn shipengine_latest_wins_by_the_carrier_events_time(backend: Backend) {
    let Some(inbox) = open(backend, "shipengine").await else {
        return;
    };
    let app = app(&inbox);
    send(
        &app,
        shipengine("1Z-9", "DE", at(60), at(61)).sign(SHIPENGINE),
    )
    .await;
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    // The earlier carrier event, sent again hours later (ShipEngine retries
    // every two hours): its newer send time does not make it newer.
    let retry = shipengine("1Z-9", "IT", at(30), at(7200)).sign(SHIPENGINE);
    assert_eq!(send(&app, retry).await.json["status"], "stored");
    let stats = wait_for(&inbox, settled).await;
    worker.shutdown().await;
    assert_eq!((stats.done, stats.superseded), (1, 1));
    let statuses: Vec<_> = record.handled().into_iter().map(|h| h.status).collect();
    assert_eq!(statuses, [ShipmentStatus::Delivered]);
}

async fn latest_wins_can_be_turned_off(backend: Backend) {
    let Some(inbox) = open(backend, "every").await else {
        return;
    };
    let inbox = inbox.latest_wins(false);
    let app = app(&inbox);
    send(&app, kosmo("SG-10", "DELIVERED", at(60)).sign(KOSMO)).await;
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    send(&app, kosmo("SG-10", "PICKED UP", at(30)).sign(KOSMO)).await;
    let stats = wait_for(&inbox, |stats| stats.done == 2).await;
    worker.shutdown().await;
    assert_eq!((stats.done, stats.superseded), (2, 0));
    assert_eq!(record.handled().len(), 2);
}

async fn goshiip_final_status_is_never_undone(backend: Backend) {
    let Some(inbox) = open(backend, "final").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, goshiip("GS-11", "Delivered").sign(GOSHIIP)).await;
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    // GoShiip signs no time: "Picked Up" after "Delivered" is a late retry.
    send(&app, goshiip("GS-11", "Picked Up").sign(GOSHIIP)).await;
    // Another shipment's early status is not affected.
    send(&app, goshiip("GS-12", "Picked Up").sign(GOSHIIP)).await;
    let stats = wait_for(&inbox, |stats| stats.done == 2 && stats.superseded == 1).await;
    worker.shutdown().await;
    assert_eq!((stats.done, stats.superseded), (2, 1));
    let shipments: Vec<_> = record.handled().into_iter().map(|h| h.shipment).collect();
    assert_eq!(shipments, ["GS-11", "GS-12"]);
}

async fn one_shipment_is_never_handled_twice_at_once(backend: Backend) {
    let Some(inbox) = open(backend, "serial").await else {
        return;
    };
    let app = app(&inbox);
    for second in 0..6 {
        send(&app, kosmo("SG-13", "IN TRANSIT", at(second)).sign(KOSMO)).await;
        send(
            &app,
            kosmo(&format!("SG-OTHER-{second}"), "IN TRANSIT", at(second)).sign(KOSMO),
        )
        .await;
    }
    let running = Arc::new(AtomicU32::new(0));
    let overlapped = Arc::new(AtomicU32::new(0));
    let record = Record::default();
    let (seen, running_, overlapped_) = (
        record.clone(),
        Arc::clone(&running),
        Arc::clone(&overlapped),
    );
    let worker = inbox
        .worker(move |delivery: Delivery| {
            seen.push(&delivery);
            let shipment = delivery.event().id.clone();
            let (running, overlapped) = (Arc::clone(&running_), Arc::clone(&overlapped_));
            async move {
                if shipment == "SG-13" {
                    if running.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlapped.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                }
                Ok(())
            }
        })
        .concurrency(8)
        .poll_interval(Duration::from_millis(5))
        .spawn();
    let stats = wait_for(&inbox, |stats| stats.done == 12).await;
    worker.shutdown().await;
    assert_eq!(stats.done, 12);
    assert_eq!(
        overlapped.load(Ordering::SeqCst),
        0,
        "SG-13 handled one at a time"
    );
    let times: Vec<_> = record
        .handled()
        .into_iter()
        .filter(|handled| handled.shipment == "SG-13")
        .map(|handled| handled.id)
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] < pair[1]),
        "in arrival order: {times:?}"
    );
}

async fn purge_forgets_keys_after_retention(backend: Backend) {
    let Some(inbox) = open(backend, "purge").await else {
        return;
    };
    let app = app(&inbox);
    let webhook = kosmo("SG-14", "DELIVERED", at(0));
    send(&app, webhook.sign(KOSMO)).await;
    send(&app, kosmo("SG-15", "DELIVERED", at(0)).sign(KOSMO)).await;
    let (worker, _) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 2).await;
    worker.shutdown().await;

    assert_eq!(inbox.purge().await.unwrap(), 0, "within the default 7 days");
    let forgetful = inbox.clone().retention(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(forgetful.purge().await.unwrap(), 2);
    assert_eq!(inbox.stats().await.unwrap(), Default::default());
    let again = send(&app, webhook.sign(KOSMO)).await;
    assert_eq!(again.json["status"], "stored", "its key was forgotten");
}

async fn stored_payload_and_headers_reach_the_handler(backend: Backend) {
    let Some(inbox) = open(backend, "payload").await else {
        return;
    };
    let app = app(&inbox);
    let shipmondo = Webhook::shipmondo_order("sent")
        .header(axum::http::HeaderName::from_static("smd-user"), "Åse");
    let kosmo = kosmo("SG-16", "DELIVERED", at(0));
    let keys = [
        send(&app, shipmondo.sign(SHIPMONDO)).await,
        send(&app, kosmo.sign(KOSMO)).await,
    ];
    assert!(keys.iter().all(|answer| answer.status == StatusCode::OK));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let worker = inbox
        .worker(move |delivery: Delivery| {
            let mut sink = sink.lock().unwrap();
            match delivery.event().provider {
                shipment_webhooks::Provider::Shipmondo => {
                    let payload: ShipmondoEvent = delivery.payload().expect("Shipmondo's payload");
                    sink.push(json!({"user": payload.headers.user, "endpoint": delivery.endpoint()}));
                }
                _ => {
                    let payload: KosmoEvent = delivery.payload().expect("Kosmo's payload");
                    sink.push(json!({"order": payload.order_id, "label": delivery.webhook().secret().label()}));
                }
            }
            async { Ok(()) }
        })
        .poll_interval(Duration::from_millis(10))
        .spawn();
    wait_for(&inbox, |stats| stats.done == 2).await;
    worker.shutdown().await;
    let mut seen = seen.lock().unwrap().clone();
    // Two shipments: handled in either order.
    seen.sort_by_key(|handled| handled.to_string());
    assert_eq!(
        seen,
        [
            json!({"user": "Åse", "endpoint": "/webhooks/shipmondo"}),
            json!({"order": "SG-16", "label": "primary"}),
        ]
    );
}

async fn panicking_handler_is_retried(backend: Backend) {
    let Some(inbox) = open(backend, "panic").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-17", "DELIVERED", at(0)).sign(KOSMO)).await;
    let record = Record::default();
    let seen = record.clone();
    let worker = inbox
        .worker(move |delivery: Delivery| {
            seen.push(&delivery);
            let attempt = delivery.attempt();
            async move {
                assert!(attempt > 1, "a bug in the handler, on the first attempt");
                Ok(())
            }
        })
        .poll_interval(Duration::from_millis(10))
        .backoff(Duration::from_millis(10), Duration::from_millis(10))
        .spawn();
    let stats = wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;
    assert_eq!(stats.done, 1);
    let attempts: Vec<_> = record.handled().into_iter().map(|h| h.attempt).collect();
    assert_eq!(attempts, [1, 2]);
}

async fn hung_handler_times_out_and_is_retried(backend: Backend) {
    let Some(inbox) = open(backend, "hung").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-23", "DELIVERED", at(0)).sign(KOSMO)).await;
    let record = Record::default();
    let seen = record.clone();
    let worker = inbox
        .worker(move |delivery: Delivery| {
            seen.push(&delivery);
            let attempt = delivery.attempt();
            async move {
                if attempt == 1 {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        })
        .handler_timeout(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(10))
        .backoff(Duration::from_millis(10), Duration::from_millis(10))
        .spawn();
    let stats = wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;
    assert_eq!(stats.done, 1);
    let handled = record.handled();
    let attempts: Vec<_> = handled.iter().map(|h| h.attempt).collect();
    assert_eq!(attempts, [1, 2]);
    let history = inbox
        .get(handled[0].id)
        .await
        .unwrap()
        .expect("kept")
        .history;
    let outcomes: Vec<_> = history.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [AttemptOutcome::TimedOut, AttemptOutcome::Handled]
    );
    let error = history[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("took longer than"), "{error}");
}

/// The receiver answers 503, never 200, when the store cannot take the
/// webhook in time (another process holds the write lock); the provider's
/// retry is then stored, or answered as a duplicate if the first commit
/// landed after the 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process_is_503_then_retry_is_stored() {
    use sqlx::Connection;
    let path = sqlite_path("locked");
    let inbox = Inbox::sqlite(&path).await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let unlock = async move {
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    };
    locked_is_503_then_retry_is_stored(&inbox, unlock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_locked_table_is_503_then_retry_is_stored() {
    use sqlx::Connection;
    let Some(url) = postgres_url() else { return };
    let schema = postgres_schema(&url, "locked").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_with(in_schema(&url, &schema))
        .await
        .unwrap();
    let inbox = Inbox::postgres_pool(pool).await.unwrap();
    let mut other = sqlx::PgConnection::connect_with(&in_schema(&url, &schema))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("LOCK TABLE webhook_inbox IN EXCLUSIVE MODE")
        .execute(&mut other)
        .await
        .unwrap();
    let unlock = async move {
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    };
    locked_is_503_then_retry_is_stored(&inbox, unlock).await;
}

async fn locked_is_503_then_retry_is_stored(
    inbox: &Inbox,
    unlock: impl std::future::Future<Output = ()>,
) {
    let app = axum::Router::new().route(
        "/webhooks/kosmo",
        axum::routing::post_service(inbox.receiver().timeout(Duration::from_millis(200)))
            .route_layer(shipment_webhooks::KosmoSignature::new(KOSMO)),
    );
    let webhook = kosmo("SG-18", "DELIVERED", at(0));
    let answer = send(&app, webhook.sign(KOSMO)).await;
    answer.assert_refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "the webhook was not stored within 200 ms; send it again later",
    );
    unlock.await;
    let retry = send(&app, webhook.sign(KOSMO)).await;
    assert_eq!(retry.status, StatusCode::OK);
    let stats = inbox.stats().await.unwrap();
    assert_eq!(stats.pending, 1, "one webhook, whichever attempt stored it");
}

#[tokio::test]
async fn sqlite_store_failure_is_503() {
    use sqlx::Connection;
    let path = sqlite_path("broken");
    let inbox = Inbox::sqlite(&path).await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("DROP TABLE webhook_inbox")
        .execute(&mut other)
        .await
        .unwrap();
    let answer = send(&app(&inbox), kosmo("SG-19", "DELIVERED", at(0)).sign(KOSMO)).await;
    answer.assert_refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "the webhook could not be stored; send it again later",
    );
}

#[tokio::test]
async fn receiver_without_a_layer_is_500() {
    let inbox = Inbox::in_memory();
    let app = axum::Router::new().route(
        "/webhooks/kosmo",
        axum::routing::post_service(inbox.receiver()),
    );
    let answer = send(&app, kosmo("SG-20", "DELIVERED", at(0)).sign(KOSMO)).await;
    answer.assert_refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InboxReceiver can only be extracted on a route layered with one of this crate's verifying layers (KosmoSignature...)",
    );
    assert_eq!(inbox.stats().await.unwrap(), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inbox_survives_reopening() {
    let path = sqlite_path("reopen");
    let inbox = Inbox::sqlite(&path).await.unwrap();
    let answer = send(&app(&inbox), kosmo("SG-21", "DELIVERED", at(0)).sign(KOSMO)).await;
    assert_eq!(answer.json["status"], "stored");
    drop(inbox);
    let inbox = Inbox::sqlite(&path).await.unwrap();
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;
    assert_eq!(record.handled()[0].shipment, "SG-21");
}

/// A webhook stored by one instance wakes another's idle worker through
/// PostgreSQL's `NOTIFY`, long before its next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs SHIPMENT_WEBHOOKS_TEST_POSTGRES")]
async fn postgres_notify_wakes_another_instance() {
    let Some(url) = postgres_url() else { return };
    let schema = postgres_schema(&url, "notify").await;
    let instance = || async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_with(in_schema(&url, &schema))
            .await
            .unwrap();
        Inbox::postgres_pool(pool).await.unwrap()
    };
    let (receiving, working) = (instance().await, instance().await);
    let (worker, record) = recording(&working);
    let worker = worker.poll_interval(Duration::from_secs(60)).spawn();
    // The worker's first claim, and its LISTEN, before the webhook arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = tokio::time::Instant::now();
    let answer = send(
        &app(&receiving),
        kosmo("SG-22", "DELIVERED", at(0)).sign(KOSMO),
    )
    .await;
    assert_eq!(answer.json["status"], "stored");
    let stats = wait_for(&working, |stats| stats.done == 1).await;
    worker.shutdown().await;
    assert_eq!(stats.done, 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken, not polled: {:?}",
        started.elapsed()
    );
    assert_eq!(record.handled().len(), 1);
}

/// A shipment with a long queue and a slow handler holds no other shipment
/// back: the claim passes over its queued rows instead of filling its
/// window with them.
async fn busy_shipment_does_not_hold_back_another(backend: Backend) {
    let Some(inbox) = open(backend, "hol").await else {
        return;
    };
    let app = app(&inbox);
    for second in 0..40 {
        let webhook = kosmo("SG-BUSY", "PICKED UP", at(second));
        assert_eq!(send(&app, webhook.sign(KOSMO)).await.status, StatusCode::OK);
    }
    send(&app, kosmo("SG-OTHER", "DELIVERED", at(0)).sign(KOSMO)).await;
    let record = Record::default();
    let seen = record.clone();
    let worker = inbox
        .worker(move |delivery: Delivery| {
            seen.push(&delivery);
            let busy = delivery.event().id == "SG-BUSY";
            async move {
                if busy {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(())
            }
        })
        .concurrency(4)
        .spawn();
    wait_for(&inbox, |stats| stats.done >= 3).await;
    worker.shutdown().await;
    let order: Vec<String> = record.handled().into_iter().map(|h| h.shipment).collect();
    let other = order.iter().position(|shipment| shipment == "SG-OTHER");
    // Both heads are claimed at once; the busy shipment's others wait their turn.
    assert!(matches!(other, Some(0 | 1)), "{order:?}");
}

/// Latest wins outlives the purge of the rows it compares with: a captured
/// webhook replayed after the retention, as sent or with its unsigned
/// status changed, and an older one, are superseded, not handled.
async fn replay_after_retention_is_superseded(backend: Backend) {
    let Some(inbox) = open(backend, "replayed").await else {
        return;
    };
    let app = app(&inbox);
    let older = kosmo("SG-20", "PICKED UP", at(5));
    let newest = kosmo("SG-20", "DELIVERED", at(10));
    let final_goshiip = goshiip("GS-20", "Delivered");
    for request in [
        older.sign(KOSMO),
        newest.sign(KOSMO),
        final_goshiip.sign(GOSHIIP),
    ] {
        assert_eq!(send(&app, request).await.status, StatusCode::OK);
    }
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 3).await;
    worker.shutdown().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        inbox
            .clone()
            .retention(Duration::ZERO)
            .purge()
            .await
            .unwrap(),
        3
    );

    // Kosmo signs neither the status nor the stops: the same signature holds.
    let changed = newest.clone().field("/status", "CANCELLED");
    for request in [
        changed.sign(KOSMO),
        older.sign(KOSMO),
        final_goshiip.sign(GOSHIIP),
    ] {
        let answer = send(&app, request).await;
        assert_eq!(answer.json["status"], "stored", "{}", answer.json);
    }
    let (worker, replayed) = recording(&inbox);
    let worker = worker.spawn();
    let stats = wait_for(&inbox, settled).await;
    worker.shutdown().await;
    assert_eq!((stats.done, stats.superseded), (0, 3), "{stats:?}");
    assert!(replayed.handled().is_empty(), "{:?}", replayed.handled());
    assert_eq!(record.handled().len(), 3);
}

/// Dead webhooks stay for a person to look at past the handled ones'
/// retention, and go after their own.
async fn dead_webhooks_are_purged_after_their_own_retention(backend: Backend) {
    let Some(inbox) = open(backend, "deadpurge").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-21", "DELIVERED", at(0)).sign(KOSMO)).await;
    let worker = inbox
        .worker(|_: Delivery| async { Err("always fails".into()) })
        .max_attempts(1)
        .poll_interval(Duration::from_millis(20))
        .spawn();
    wait_for(&inbox, |stats| stats.dead == 1).await;
    worker.shutdown().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let handled_gone = inbox.clone().retention(Duration::ZERO);
    assert_eq!(
        handled_gone.purge().await.unwrap(),
        0,
        "dead are kept longer"
    );
    assert_eq!(inbox.stats().await.unwrap().dead, 1);
    let dead_gone = handled_gone.dead_retention(Duration::ZERO);
    assert_eq!(dead_gone.purge().await.unwrap(), 1);
    assert_eq!(inbox.stats().await.unwrap(), Default::default());
}

/// One Kosmo route mounted for every tenant, whose lookup ignores case (a
/// case-insensitive column), with or without the layer normalizing names.
fn case_blind_tenants(inbox: &Inbox, normalize: bool) -> Router {
    let lookup = |tenant: Arc<str>| async move {
        let known = tenant.eq_ignore_ascii_case("acme");
        Ok::<_, Infallible>(known.then(|| KosmoSignature::new(KOSMO)))
    };
    let builder = PerTenant::builder(TenantSource::path_segment(2), lookup);
    let layer = match normalize {
        true => builder.normalize(tenant::ascii_lowercase).build(),
        false => builder.build(),
    };
    Router::new().route(
        "/webhooks/tenants/{tenant}/kosmo",
        post_service(inbox.receiver()).route_layer(layer),
    )
}

/// The same webhook sent to each spelling of tenant `acme`: the answers.
async fn send_to_every_spelling(app: &Router, webhook: &Webhook) -> Vec<serde_json::Value> {
    let mut answers = Vec::new();
    for tenant in ["acme", "ACME", "Acme"] {
        let uri = format!("/webhooks/tenants/{tenant}/kosmo").parse().unwrap();
        let answer = send(app, webhook.clone().uri(uri).sign(KOSMO)).await;
        assert_eq!(answer.status, StatusCode::OK, "{tenant}: {}", answer.json);
        answers.push(answer.json);
    }
    answers
}

/// Handles what is stored: each delivery's endpoint and tenant.
async fn endpoints_and_tenants(inbox: &Inbox) -> Vec<(String, Option<String>)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let worker = inbox
        .worker(move |delivery: Delivery| {
            let tenant = delivery.webhook().secret().tenant().map(str::to_owned);
            record
                .lock()
                .unwrap()
                .push((delivery.endpoint().to_owned(), tenant));
            async { Ok(()) }
        })
        .poll_interval(Duration::from_millis(20))
        .spawn();
    wait_for(inbox, settled).await;
    worker.shutdown().await;
    seen.lock().unwrap().clone()
}

/// A lookup that ignores case, and the layer normalizing names to match:
/// `/acme`, `/ACME` and `/Acme` are one tenant, so one webhook sent to all
/// three is one row, handled once, stored under the route's name.
async fn every_spelling_of_a_normalized_tenant_is_one_webhook(backend: Backend) {
    let Some(inbox) = open(backend, "spellings").await else {
        return;
    };
    let app = case_blind_tenants(&inbox, true);
    let answers = send_to_every_spelling(&app, &kosmo("SG-22", "DELIVERED", at(0))).await;
    let statuses: Vec<_> = answers.iter().map(|answer| &answer["status"]).collect();
    assert_eq!(statuses, ["stored", "duplicate", "duplicate"]);
    assert!(
        answers
            .iter()
            .all(|answer| answer["id"] == answers[0]["id"])
    );

    let handled = endpoints_and_tenants(&inbox).await;
    let once = (
        "/webhooks/tenants/{tenant}/kosmo".to_owned(),
        Some("acme".to_owned()),
    );
    assert_eq!(handled, [once]);
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.done, stats.duplicates), (1, 2));
}

/// Without normalizing, each spelling the lookup accepts is a tenant of its
/// own: the webhook is stored and handled once per spelling, all under the
/// route's one endpoint name.
async fn unnormalized_spellings_are_tenants_of_their_own(backend: Backend) {
    let Some(inbox) = open(backend, "spelled").await else {
        return;
    };
    let app = case_blind_tenants(&inbox, false);
    let answers = send_to_every_spelling(&app, &kosmo("SG-23", "DELIVERED", at(0))).await;
    assert!(answers.iter().all(|answer| answer["status"] == "stored"));

    let mut handled = endpoints_and_tenants(&inbox).await;
    handled.sort();
    let route = "/webhooks/tenants/{tenant}/kosmo";
    let tenants: Vec<_> = handled
        .iter()
        .map(|(_, tenant)| tenant.as_deref())
        .collect();
    assert_eq!(tenants, [Some("ACME"), Some("Acme"), Some("acme")]);
    assert!(handled.iter().all(|(endpoint, _)| endpoint == route));
}

/// A Shipmondo order and a Shipmondo shipment are numbered apart: with the
/// same id, neither supersedes the other; a shipment's events, and the
/// monitor's about it, still supersede each other by time.
async fn shipmondo_order_and_shipment_with_one_id_are_two_shipments(backend: Backend) {
    let Some(inbox) = open(backend, "resources").await else {
        return;
    };
    let app = app(&inbox);
    let id = 3405958;
    let order = Webhook::shipmondo_order("sent")
        .field("/data/id", id)
        .at(at(60));
    let created = Webhook::shipmondo_shipment("create")
        .field("/data/id", id)
        .at(at(10));
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    for webhook in [order, created] {
        assert_eq!(
            send(&app, webhook.sign(SHIPMONDO)).await.json["status"],
            "stored"
        );
        wait_for(&inbox, settled).await;
    }
    // The shipment's own earlier events, delivered late.
    let cancelled = Webhook::shipmondo_shipment("cancel")
        .field("/data/id", id)
        .at(at(5));
    let monitored = Webhook::shipmondo_monitor("EN_ROUTE")
        .field("/data/shipment_id", id)
        .at(at(3));
    for webhook in [cancelled, monitored] {
        assert_eq!(
            send(&app, webhook.sign(SHIPMONDO)).await.json["status"],
            "stored"
        );
    }
    let stats = wait_for(&inbox, |stats| settled(stats) && stats.superseded == 2).await;
    worker.shutdown().await;
    assert_eq!((stats.done, stats.superseded), (2, 2), "{stats:?}");
    let handled: Vec<_> = record
        .handled()
        .into_iter()
        .map(|handled| (handled.shipment, handled.status))
        .collect();
    let id = id.to_string();
    assert_eq!(
        handled,
        [
            (id.clone(), ShipmentStatus::InTransit),
            (id, ShipmentStatus::Created),
        ]
    );
}

async fn sendcloud_integration_and_parcel_with_one_id_are_two_shipments(backend: Backend) {
    let Some(inbox) = open(backend, "sendcloud_scope").await else {
        return;
    };
    let app = app(&inbox);
    let parcel = |status: i64, time| Webhook::sendcloud(status).field("/parcel/id", 7).at(time);
    let integration = |time| {
        Webhook::sendcloud_test_webhook()
            .field("/action", "integration_updated")
            .field(
                "/integration",
                json!({"id": 7, "shop_name": "API Integration"}),
            )
            .at(time)
    };
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    for webhook in [parcel(3, at(60)), integration(at(10))] {
        assert_eq!(
            send(&app, webhook.sign(SENDCLOUD)).await.json["status"],
            "stored"
        );
        wait_for(&inbox, settled).await;
    }
    // Each one's own earlier events, delivered late, by Sendcloud's signed `timestamp`.
    for webhook in [parcel(1, at(5)), integration(at(3))] {
        assert_eq!(
            send(&app, webhook.sign(SENDCLOUD)).await.json["status"],
            "stored"
        );
    }
    let stats = wait_for(&inbox, |stats| settled(stats) && stats.superseded == 2).await;
    worker.shutdown().await;
    assert_eq!((stats.done, stats.superseded), (2, 2), "{stats:?}");
    let handled: Vec<_> = record
        .handled()
        .into_iter()
        .map(|handled| (handled.shipment, handled.status))
        .collect();
    assert_eq!(
        handled,
        [
            ("7".to_owned(), ShipmentStatus::InTransit),
            (
                "7".to_owned(),
                ShipmentStatus::Other("integration_updated".into())
            ),
        ]
    );
}

async fn shippo_and_shipbob_order_events_by_their_time_not_the_attempts(backend: Backend) {
    let Some(inbox) = open(backend, "attempts").await else {
        return;
    };
    let app = app(&inbox);
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    for (webhook, secret) in [
        (shippo("SP-7", "DELIVERED", at(60)), SHIPPO),
        (shipbob(7, "Delivered", at(60)), SHIPBOB),
    ] {
        assert_eq!(
            send(&app, webhook.sign(secret)).await.json["status"],
            "stored"
        );
    }
    wait_for(&inbox, |stats| stats.done == 2).await;
    // Earlier events, their delivery attempts signed now: the event's time
    // in the body orders them, not the newer attempt's.
    for (webhook, secret) in [
        (shippo("SP-7", "TRANSIT", at(30)), SHIPPO),
        (shipbob(7, "InTransit", at(30)), SHIPBOB),
    ] {
        assert_eq!(
            send(&app, webhook.sign(secret)).await.json["status"],
            "stored"
        );
    }
    let stats = wait_for(&inbox, |stats| settled(stats) && stats.superseded == 2).await;
    // A ShipBob order numbered like the shipment is another shipment.
    let order = Webhook::shipbob("InTransit")
        .field("/order_id", 7)
        .header(
            shipment_webhooks::standard_webhooks::ID_HEADER,
            &format!("msg_{}", unique()),
        )
        .at(at(0));
    assert_eq!(
        send(&app, order.sign(SHIPBOB)).await.json["status"],
        "stored"
    );
    let stats = wait_for(&inbox, |now| now.done == stats.done + 1).await;
    worker.shutdown().await;
    assert_eq!((stats.done, stats.superseded), (3, 2), "{stats:?}");
    let mut handled: Vec<_> = record
        .handled()
        .into_iter()
        .map(|handled| (handled.shipment, handled.status.to_string()))
        .collect();
    // Three shipments: handled in any order.
    handled.sort();
    let expected = [
        ("7", "delivered"),
        ("7", "in_transit"),
        ("SP-7", "delivered"),
    ];
    assert_eq!(
        handled,
        expected.map(|(shipment, status)| (shipment.to_owned(), status.to_owned()))
    );
}

async fn run_until_idle_handles_everything_stored_then_returns(backend: Backend) {
    let Some(inbox) = open(backend, "idle").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-31", "PICKED UP", at(0)).sign(KOSMO)).await;
    send(&app, kosmo("SG-31", "DELIVERED", at(60)).sign(KOSMO)).await;
    send(&app, kosmo("SG-32", "DELIVERED", at(0)).sign(KOSMO)).await;
    let (worker, record) = recording(&inbox);
    // Its default poll interval (1 s): run_until_idle looks far more often.
    let started = tokio::time::Instant::now();
    let run = worker
        .poll_interval(Duration::from_secs(1))
        .run_until_idle()
        .await
        .expect("the inbox's counts");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!((run.handled, run.retried, run.dead), (3, 0, 0));
    let stats = inbox.stats().await.unwrap();
    assert!(
        settled(&stats),
        "returned before the inbox was idle: {stats:?}"
    );
    assert_eq!(stats.done, 3, "every outcome recorded before it returns");
    let mut shipments: Vec<_> = record.handled().into_iter().map(|h| h.shipment).collect();
    shipments.sort();
    assert_eq!(shipments, ["SG-31", "SG-31", "SG-32"]);
}

async fn run_until_idle_waits_out_retries_until_handled_or_dead(backend: Backend) {
    let Some(inbox) = open(backend, "idle_retries").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-33", "DELIVERED", at(0)).sign(KOSMO)).await;
    send(&app, kosmo("SG-34", "DELIVERED", at(0)).sign(KOSMO)).await;
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&attempts);
    let run = inbox
        .worker(move |delivery: Delivery| {
            seen.fetch_add(1, Ordering::SeqCst);
            // SG-33 fails once, then works; SG-34 always fails.
            let fails = delivery.event().id == "SG-34" || delivery.attempt() == 1;
            async move {
                match fails {
                    true => Err("carrier API down".into()),
                    false => Ok(()),
                }
            }
        })
        .max_attempts(3)
        .backoff(Duration::from_millis(20), Duration::from_millis(40))
        .run_until_idle()
        .await
        .expect("the inbox's counts");
    assert_eq!(
        (run.handled, run.retried, run.dead, run.superseded),
        (1, 3, 1, 0)
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 2 + 3);
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.done, stats.dead), (0, 1, 1));
    let dead = inbox.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event.id, "SG-34");
}

async fn run_until_idle_on_an_empty_inbox_returns_at_once(backend: Backend) {
    let Some(inbox) = open(backend, "idle_empty").await else {
        return;
    };
    let (worker, record) = recording(&inbox);
    let run = tokio::time::timeout(Duration::from_secs(5), worker.run_until_idle())
        .await
        .expect("an empty inbox is idle")
        .expect("the inbox's counts");
    assert_eq!(run, shipment_webhooks::inbox::RunStats::default());
    assert!(record.handled().is_empty());
}

/// The testing kit's `DeliveryBuilder` makes, without an inbox, the delivery
/// a worker hands out for the same webhook: event, key, JSON, typed payload.
async fn test_delivery_is_what_the_worker_hands_out(backend: Backend) {
    let Some(inbox) = open(backend, "builder").await else {
        return;
    };
    let app = app(&inbox);
    let kosmo = kosmo("SG-35", "PICKED UP", at(0));
    let shipmondo = Webhook::shipmondo_order("sent").field("/data/id", 7_119_175);
    send(&app, kosmo.sign(KOSMO)).await;
    send(&app, shipmondo.sign(SHIPMONDO)).await;
    let handed = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handed);
    inbox
        .worker(move |delivery: Delivery| {
            seen.lock().unwrap().push(delivery);
            async { Ok(()) }
        })
        .run_until_idle()
        .await
        .expect("the inbox's counts");
    let mut handed = std::mem::take(&mut *handed.lock().unwrap());
    assert_eq!(handed.len(), 2);
    // Two shipments: handed out in either order.
    handed.sort_by_key(|delivery| delivery.event().provider.as_str());
    for (webhook, stored) in [&kosmo, &shipmondo].into_iter().zip(&handed) {
        let built = DeliveryBuilder::new(webhook)
            .id(stored.id())
            .received_at(stored.received_at())
            .build();
        assert_eq!(built.id(), stored.id());
        assert_eq!(built.attempt(), stored.attempt());
        assert_eq!(built.endpoint(), stored.endpoint());
        assert_eq!(built.event(), stored.event());
        // Shipmondo's key is its JWT's hash, signature included: the kit's
        // secret is not the app's.
        if webhook.provider() == shipment_webhooks::Provider::Kosmo {
            assert_eq!(built.dedup_key(), stored.dedup_key());
        }
        assert_eq!(built.webhook().json(), stored.webhook().json());
        assert_eq!(
            built.webhook().secret().tenant(),
            stored.webhook().secret().tenant()
        );
    }
    let built: KosmoEvent = DeliveryBuilder::new(&kosmo).build().payload().unwrap();
    assert_eq!(built, handed[0].payload::<KosmoEvent>().unwrap());
    let built: ShipmondoEvent = DeliveryBuilder::new(&shipmondo).build().payload().unwrap();
    assert_eq!(built, handed[1].payload::<ShipmondoEvent>().unwrap());
}

async fn run_until_idle_handles_webhooks_stored_while_it_runs(backend: Backend) {
    let Some(inbox) = open(backend, "idle_more").await else {
        return;
    };
    let app = app(&inbox);
    send(&app, kosmo("SG-36", "PICKED UP", at(0)).sign(KOSMO)).await;
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let run = inbox
        .worker(move |delivery: Delivery| {
            seen.lock().unwrap().push(delivery.event().id.clone());
            let app = app.clone();
            async move {
                // The first one's handler makes another webhook arrive.
                if delivery.event().id == "SG-36" {
                    let answer = send(&app, kosmo("SG-37", "DELIVERED", at(0)).sign(KOSMO)).await;
                    if answer.status != StatusCode::OK {
                        return Err(format!("not stored: {}", answer.status).into());
                    }
                }
                Ok(())
            }
        })
        .run_until_idle()
        .await
        .expect("the inbox's counts");
    assert_eq!(run.handled, 2);
    assert_eq!(*handled.lock().unwrap(), ["SG-36", "SG-37"]);
    assert_eq!(inbox.stats().await.unwrap().done, 2);
}

/// What the `metrics` gauges read: pending, processing and dead webhooks by
/// provider, and when the oldest pending one was received, from one query.
async fn backlog_counts_by_provider_with_the_oldest_pending_age(backend: Backend) {
    let Some(inbox) = open(backend, "backlog").await else {
        return;
    };
    assert!(inbox.backlog().await.unwrap().is_empty());
    let app = app(&inbox);
    // The stores keep milliseconds: a bound a millisecond early holds.
    let before = OffsetDateTime::now_utc() - time::Duration::milliseconds(1);
    send(&app, kosmo("SG-B1", "PICKED UP", at(0)).sign(KOSMO)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = OffsetDateTime::now_utc();
    send(&app, kosmo("SG-B2", "PICKED UP", at(0)).sign(KOSMO)).await;
    send(&app, goshiip("GS-B1", "Delivered").sign(GOSHIIP)).await;
    let after = OffsetDateTime::now_utc();

    let backlog = inbox.backlog().await.unwrap();
    let providers: Vec<Provider> = backlog.iter().map(|row| row.provider).collect();
    assert_eq!(
        providers,
        [Provider::Kosmo, Provider::GoShiip],
        "in Provider::ALL's order"
    );
    let (kosmo_row, goshiip_row) = (&backlog[0], &backlog[1]);
    assert_eq!(
        (kosmo_row.pending, kosmo_row.processing, kosmo_row.dead),
        (2, 0, 0)
    );
    let oldest = kosmo_row.oldest_pending_at.expect("two pending");
    assert!(
        before <= oldest && oldest <= between,
        "the first one's time: {oldest}"
    );
    assert!(kosmo_row.oldest_pending_age(after) >= Duration::from_millis(19));
    assert_eq!(
        (
            goshiip_row.pending,
            goshiip_row.processing,
            goshiip_row.dead
        ),
        (1, 0, 0)
    );
    assert!(
        goshiip_row.oldest_pending_at.expect("one pending")
            >= between - time::Duration::milliseconds(1)
    );

    // Kosmo's two held by their handler, GoShiip's dead on its one attempt.
    let (release, released) = tokio::sync::watch::channel(false);
    let worker = inbox
        .worker(move |delivery: Delivery| {
            let mut released = released.clone();
            async move {
                if delivery.event().provider == Provider::GoShiip {
                    return Err("carrier API down".into());
                }
                released
                    .wait_for(|released| *released)
                    .await
                    .map_err(|_| "the test ended".to_owned())?;
                Ok(())
            }
        })
        .max_attempts(1)
        .poll_interval(Duration::from_millis(10))
        .spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let held = loop {
        let backlog = inbox.backlog().await.unwrap();
        let done = matches!(&backlog[..], [k, g] if k.processing == 2 && g.dead == 1);
        if done || tokio::time::Instant::now() > deadline {
            break backlog;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(
        (held[0].pending, held[0].processing, held[0].dead),
        (0, 2, 0)
    );
    assert_eq!(held[0].oldest_pending_at, None, "nothing pending: no age");
    assert_eq!(held[0].oldest_pending_age(after), Duration::ZERO);
    assert_eq!(
        (held[1].pending, held[1].processing, held[1].dead),
        (0, 0, 1)
    );

    release.send_replace(true);
    wait_for(&inbox, |stats| stats.done == 2).await;
    worker.shutdown().await;
    let backlog = inbox.backlog().await.unwrap();
    assert_eq!(backlog.len(), 1, "Kosmo's handled: none left: {backlog:?}");
    assert_eq!(backlog[0].provider, Provider::GoShiip);
    assert_eq!(
        (backlog[0].pending, backlog[0].processing, backlog[0].dead),
        (0, 0, 1)
    );
}

/// A worker whose handler always fails, on `attempts` attempts, until every
/// stored webhook is dead.
async fn kill_all(inbox: &Inbox, dead: u64) {
    let failing = inbox
        .worker(|delivery: Delivery| async move {
            Err(format!(
                "carrier API down on {} ({})",
                delivery.event().id,
                "x".repeat(3000)
            )
            .into())
        })
        .max_attempts(2)
        .poll_interval(Duration::from_millis(10))
        .backoff(Duration::from_millis(5), Duration::from_millis(10))
        .spawn();
    wait_for(inbox, |stats| stats.dead == dead).await;
    failing.shutdown().await;
}

async fn dead_webhooks_listed_shown_with_attempts_and_replayed(backend: Backend) {
    let Some(inbox) = open(backend, "history").await else {
        return;
    };
    let app = app(&inbox);
    for n in 0..6 {
        send(
            &app,
            kosmo(&format!("SG-H{n}"), "DELIVERED", at(0)).sign(KOSMO),
        )
        .await;
    }
    kill_all(&inbox, 6).await;

    let page = inbox
        .list(&Filter::default().state(WebhookState::Dead))
        .await
        .unwrap();
    assert_eq!(page.webhooks.len(), 6);
    assert_eq!(page.next, None);
    let first = &page.webhooks[0];
    assert_eq!(first.state, WebhookState::Dead);
    assert_eq!(first.attempts, 2);

    let detail = inbox
        .get(first.id)
        .await
        .unwrap()
        .expect("the dead webhook");
    assert_eq!(detail.summary.event.id, "SG-H0");
    let body: serde_json::Value = serde_json::from_slice(&detail.body).unwrap();
    assert_eq!(body["orderId"], "SG-H0");
    let outcomes: Vec<_> = detail
        .history
        .iter()
        .map(|a| (a.number, a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [(1, AttemptOutcome::Failed), (2, AttemptOutcome::Dead)]
    );
    for attempt in &detail.history {
        let error = attempt.error.as_deref().expect("the handler's error");
        assert!(error.starts_with("carrier API down on SG-H0"), "{error}");
        assert!(error.len() <= 2048, "bounded: {}", error.len());
        assert!(error.ends_with('…'));
        assert!(attempt.started_at.expect("started") <= attempt.ended_at);
    }
    let dead = inbox.dead(10).await.unwrap();
    assert_eq!(dead[0].id, first.id);
    assert_eq!(dead[0].dedup_key, Some(detail.dedup_key));
    assert_eq!(dead[0].body, detail.body);
    assert_eq!(dead[0].history, detail.history);
    // Each with its own attempts, read for all of them at once.
    assert_eq!(dead.len(), 6);
    for webhook in &dead {
        let detail = inbox.get(webhook.id).await.unwrap().expect("kept");
        assert_eq!(webhook.history, detail.history, "{}", webhook.event.id);
        assert_eq!(webhook.body, detail.body);
        assert_eq!(webhook.dedup_key, Some(detail.dedup_key));
        let error = webhook.history[1].error.as_deref().expect("an error");
        assert!(
            error.starts_with(&format!("carrier API down on {} ", webhook.event.id)),
            "{error}"
        );
    }
    assert_eq!(inbox.dead(2).await.unwrap().len(), 2, "the limit");
    assert!(inbox.get(i64::MAX).await.unwrap().is_none(), "unknown id");

    // Two by id (one unknown, one not dead), then the rest by filter.
    let ids = [page.webhooks[0].id, page.webhooks[1].id, i64::MAX];
    assert_eq!(inbox.replay_many(&ids).await.unwrap(), 2);
    assert_eq!(inbox.replay_many(&ids).await.unwrap(), 0, "no longer dead");
    let only_h5 = Filter::default().shipment("SG-H5");
    assert_eq!(inbox.replay_dead(&only_h5).await.unwrap(), 1);
    assert_eq!(inbox.replay_dead(&Filter::default()).await.unwrap(), 3);
    let (worker, record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 6).await;
    worker.shutdown().await;
    assert_eq!(record.handled().len(), 6);
    let detail = inbox.get(first.id).await.unwrap().expect("kept");
    let outcomes: Vec<_> = detail
        .history
        .iter()
        .map(|a| (a.number, a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, AttemptOutcome::Failed),
            (2, AttemptOutcome::Dead),
            (1, AttemptOutcome::Handled)
        ],
        "a replay counts from one, the history kept"
    );
}

async fn list_filters_and_pages_by_cursor(backend: Backend) {
    let Some(inbox) = open(backend, "list").await else {
        return;
    };
    let app = app(&inbox);
    for n in 0..5 {
        send(
            &app,
            kosmo(&format!("SG-L{n}"), "ASSIGNED", at(n)).sign(KOSMO),
        )
        .await;
    }
    send(&app, goshiip("GS-L", "Picked Up").sign(GOSHIIP)).await;
    let before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let after = time::OffsetDateTime::now_utc() + time::Duration::hours(1);

    let mut seen = Vec::new();
    let mut filter = Filter::default()
        .provider(shipment_webhooks::Provider::Kosmo)
        .limit(2);
    loop {
        let page = inbox.list(&filter).await.unwrap();
        assert!(page.webhooks.len() <= 2);
        seen.extend(page.webhooks.iter().map(|w| w.event.id.clone()));
        match page.next {
            Some(next) => filter = filter.after(next),
            None => break,
        }
    }
    assert_eq!(seen, ["SG-L0", "SG-L1", "SG-L2", "SG-L3", "SG-L4"]);

    let one = |filter: Filter| {
        let inbox = inbox.clone();
        async move {
            let page = inbox.list(&filter).await.unwrap();
            page.webhooks
                .into_iter()
                .map(|w| w.event.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(one(Filter::default().shipment("GS-L")).await, ["GS-L"]);
    assert_eq!(
        one(Filter::default().state(WebhookState::Pending))
            .await
            .len(),
        6
    );
    assert!(
        one(Filter::default().state(WebhookState::Dead))
            .await
            .is_empty()
    );
    assert!(one(Filter::default().tenant("shop-a")).await.is_empty());
    assert!(one(Filter::default().endpoint("/nowhere")).await.is_empty());
    assert_eq!(
        one(Filter::default().received(Some(before), Some(after)))
            .await
            .len(),
        6
    );
    assert!(
        one(Filter::default().received(Some(after), None))
            .await
            .is_empty()
    );
    assert!(
        one(Filter::default().received(None, Some(before)))
            .await
            .is_empty()
    );
}

async fn discard_deletes_only_pending_and_dead(backend: Backend) {
    let Some(inbox) = open(backend, "discard").await else {
        return;
    };
    let app = app(&inbox);
    let webhook = kosmo("SG-D", "ASSIGNED", at(0));
    let stored = send(&app, webhook.sign(KOSMO)).await;
    let id = stored.json["id"].as_i64().expect("an id");
    assert!(inbox.discard(id).await.unwrap());
    assert!(!inbox.discard(id).await.unwrap(), "gone");
    assert!(inbox.get(id).await.unwrap().is_none());
    // Its dedup key went with it: the provider's retry is stored again.
    let again = send(&app, webhook.sign(KOSMO)).await;
    assert_eq!(again.json["status"], "stored");
    let (worker, _record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;
    let handled = again.json["id"].as_i64().expect("an id");
    assert!(!inbox.discard(handled).await.unwrap(), "handled is kept");
    assert_eq!(inbox.stats().await.unwrap().done, 1);
}

async fn last_hour_counts_received_handled_and_failed_per_minute(backend: Backend) {
    let Some(inbox) = open(backend, "last_hour").await else {
        return;
    };
    let empty = inbox.last_hour().await.unwrap();
    assert_eq!(empty.len(), 60);
    assert!(
        empty
            .iter()
            .all(|m| (m.received, m.handled, m.failed) == (0, 0, 0))
    );
    let app = app(&inbox);
    let first = kosmo("SG-M0", "DELIVERED", at(0));
    send(&app, first.clone().sign(KOSMO)).await;
    for n in 1..3 {
        send(
            &app,
            kosmo(&format!("SG-M{n}"), "DELIVERED", at(0)).sign(KOSMO),
        )
        .await;
    }
    // A retried delivery is a duplicate: not received again.
    let again = send(&app, first.sign(KOSMO)).await;
    assert_eq!(again.json["status"], "duplicate");
    // Two attempts each, failed then dead: six failed.
    kill_all(&inbox, 3).await;
    assert_eq!(
        inbox
            .replay_dead(&Filter::default().shipment("SG-M1"))
            .await
            .unwrap(),
        1
    );
    let (worker, _record) = recording(&inbox);
    let worker = worker.spawn();
    wait_for(&inbox, |stats| stats.done == 1).await;
    worker.shutdown().await;

    let now = OffsetDateTime::now_utc();
    let minutes = inbox.last_hour().await.unwrap();
    assert_eq!(minutes.len(), 60);
    for pair in minutes.windows(2) {
        assert_eq!(pair[1].start - pair[0].start, time::Duration::MINUTE);
    }
    let last = minutes.last().expect("60 minutes");
    assert_eq!(last.start.second(), 0, "on the clock's minute");
    assert!(last.start <= now && now < last.start + time::Duration::MINUTE);
    let sum = |count: fn(&shipment_webhooks::inbox::Minute) -> u64| -> u64 {
        minutes.iter().map(count).sum()
    };
    assert_eq!(sum(|m| m.received), 3);
    assert_eq!(sum(|m| m.handled), 1);
    assert_eq!(sum(|m| m.failed), 6);
    // All of it just now: in the last two minutes.
    assert_eq!(
        minutes[58..]
            .iter()
            .map(|m| m.received + m.handled + m.failed)
            .sum::<u64>(),
        10
    );
}

/// A Shipmondo order and shipment with one id, and a Sendcloud integration
/// and parcel with another: the shipment filter finds an id in every scope,
/// and `scope:id` in that one only.
async fn shipment_filter_matches_the_id_in_any_scope_or_one_by_prefix(backend: Backend) {
    let Some(inbox) = open(backend, "scoped_filter").await else {
        return;
    };
    let app = app(&inbox);
    let id = 3405961;
    for webhook in [
        Webhook::shipmondo_order("sent").field("/data/id", id),
        Webhook::shipmondo_shipment("create").field("/data/id", id),
    ] {
        assert_eq!(
            send(&app, webhook.sign(SHIPMONDO)).await.json["status"],
            "stored"
        );
    }
    for webhook in [
        Webhook::sendcloud(3).field("/parcel/id", 8),
        Webhook::sendcloud_test_webhook()
            .field("/action", "integration_updated")
            .field("/integration", json!({"id": 8, "shop_name": "API"})),
    ] {
        assert_eq!(
            send(&app, webhook.sign(SENDCLOUD)).await.json["status"],
            "stored"
        );
    }
    send(&app, kosmo("SG-S1", "DELIVERED", at(0)).sign(KOSMO)).await;
    let listed = |filter: Filter| {
        let inbox = inbox.clone();
        async move {
            let page = inbox.list(&filter).await.unwrap();
            page.webhooks
                .iter()
                .map(|webhook| (webhook.provider, webhook.event.raw_status.clone()))
                .collect::<Vec<_>>()
        }
    };
    let both = listed(Filter::default().shipment(id.to_string())).await;
    assert_eq!(both.len(), 2, "the order and the shipment: {both:?}");
    assert!(
        both.iter()
            .all(|(provider, _)| *provider == Provider::Shipmondo)
    );
    let order = listed(Filter::default().shipment(format!("order:{id}"))).await;
    assert_eq!(order, [(Provider::Shipmondo, "sent".to_owned())]);
    let integration = listed(Filter::default().shipment("integration:8")).await;
    assert_eq!(
        integration,
        [(Provider::Sendcloud, "integration_updated".to_owned())]
    );
    assert_eq!(listed(Filter::default().shipment("8")).await.len(), 2);
    assert_eq!(listed(Filter::default().shipment("SG-S1")).await.len(), 1);
    assert!(
        listed(Filter::default().shipment("order:SG-S1"))
            .await
            .is_empty()
    );
    assert!(
        listed(Filter::default().shipment("nowhere:8"))
            .await
            .is_empty()
    );
    // Replaying by shipment reads the same filter: nothing is dead.
    let scoped = Filter::default().shipment(format!("order:{id}"));
    assert_eq!(inbox.replay_dead(&scoped).await.unwrap(), 0);
}
