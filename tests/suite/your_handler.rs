//! How to test your own webhook handler with the `testing` feature: build the
//! request as the provider would send it, and send it through your Router.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Router, routing::post};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{KourierBearer, ShipmentEvent, ShipmentStatus};
use tower::ServiceExt;

/// Your application: it records every delivery's latest status.
type Deliveries = Arc<Mutex<Vec<(String, ShipmentStatus)>>>;

async fn on_kourier(State(deliveries): State<Deliveries>, event: ShipmentEvent) -> StatusCode {
    deliveries.lock().unwrap().push((event.id, event.status));
    StatusCode::OK
}

fn app(deliveries: Deliveries) -> Router {
    Router::new()
        .route(
            "/webhooks/kourier",
            post(on_kourier).layer(KourierBearer::new("test-token")),
        )
        .with_state(deliveries)
}

#[tokio::test]
async fn records_each_status_kourier_sends() {
    let deliveries = Deliveries::default();
    for status in ["created", "in_transit", "delivered"] {
        let request = Webhook::kourier(status)
            .field("/delivery_id", "d-7")
            .sign("test-token");
        let response = app(deliveries.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        *deliveries.lock().unwrap(),
        [
            ("d-7".to_owned(), ShipmentStatus::Created),
            ("d-7".to_owned(), ShipmentStatus::InTransit),
            ("d-7".to_owned(), ShipmentStatus::Delivered),
        ]
    );
}

#[tokio::test]
async fn records_nothing_from_a_forged_webhook() {
    let deliveries = Deliveries::default();
    let forged = Webhook::kourier("delivered").sign("guessed-token");
    let response = app(deliveries.clone()).oneshot(forged).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(deliveries.lock().unwrap().is_empty());
}

/// A worker's handler, unit-tested without an inbox: the testing kit's
/// `DeliveryBuilder` makes the `Delivery` a worker would hand it, carrying a
/// webhook verified by its provider's layer (feature `inbox`).
#[cfg(feature = "inbox")]
mod worker_handler {
    use shipment_webhooks::inbox::{BoxError, Delivery};
    use shipment_webhooks::testing::DeliveryBuilder;
    use shipment_webhooks::{KosmoEvent, RejectionKind};

    use super::*;

    /// Your worker's handler: it notifies the customer of a delivery, and fails
    /// (an error naming the attempt, so the inbox retries it, then marks it
    /// dead) while the notification service is down.
    async fn notify(
        delivery: Delivery,
        notified: Deliveries,
        service_up: bool,
    ) -> Result<(), BoxError> {
        let kosmo: KosmoEvent = delivery.payload()?;
        if kosmo.status != "DELIVERED" {
            return Ok(());
        }
        if !service_up {
            return Err(
                format!("notification service down (attempt {})", delivery.attempt()).into(),
            );
        }
        let event = delivery.event();
        notified
            .lock()
            .unwrap()
            .push((event.id.clone(), event.status.clone()));
        Ok(())
    }

    #[tokio::test]
    async fn a_handler_unit_tested_with_a_built_delivery() {
        let notified = Deliveries::default();
        let webhook = Webhook::kosmo("DELIVERED").field("/orderId", "SG-42");
        let delivery = DeliveryBuilder::new(&webhook).build();
        assert_eq!(delivery.attempt(), 1);
        assert_eq!(delivery.endpoint(), "/webhooks/kosmo");
        notify(delivery, notified.clone(), true).await.unwrap();
        assert_eq!(
            *notified.lock().unwrap(),
            [("SG-42".to_owned(), ShipmentStatus::Delivered)]
        );

        let picked_up = DeliveryBuilder::new(&Webhook::kosmo("PICKED UP")).build();
        notify(picked_up, notified.clone(), true).await.unwrap();
        assert_eq!(notified.lock().unwrap().len(), 1, "only deliveries notify");

        let fourth = DeliveryBuilder::new(&webhook)
            .id(77)
            .attempt(4)
            .endpoint("/hooks/kosmo")
            .build();
        assert_eq!((fourth.id(), fourth.endpoint()), (77, "/hooks/kosmo"));
        let error = notify(fourth, notified.clone(), false).await.unwrap_err();
        assert_eq!(error.to_string(), "notification service down (attempt 4)");
    }

    #[tokio::test]
    async fn every_providers_sample_makes_a_delivery_with_its_json() {
        use shipment_webhooks::Provider;
        let providers = [
            (Provider::Kosmo, "DELIVERED"),
            (Provider::Kourier, "delivered"),
            (Provider::Shipmondo, "sent"),
            (Provider::GoShiip, "Delivered"),
            (Provider::EasyPost, "delivered"),
            (Provider::AfterShip, "Delivered"),
            (Provider::Sendcloud, "delivered"),
            (Provider::Shippo, "DELIVERED"),
            (Provider::ShipBob, "Delivered"),
            (Provider::ShipEngine, "DE"),
        ];
        for (provider, status) in providers {
            // Stamped in the past and in the future: the kit's layers have no window.
            for year in [2001, 2090] {
                let time = time::OffsetDateTime::from_unix_timestamp(0)
                    .unwrap()
                    .replace_year(year)
                    .unwrap();
                let webhook = Webhook::sample(provider, status).at(time).sent_at(time);
                let delivery = DeliveryBuilder::new(&webhook).build();
                assert_eq!(delivery.event().provider, provider);
                let expected = match provider {
                    // An order `sent` is on its way.
                    Provider::Shipmondo => ShipmentStatus::InTransit,
                    _ => ShipmentStatus::Delivered,
                };
                assert_eq!(delivery.event().status, expected, "{provider}");
                assert_eq!(delivery.endpoint(), format!("/webhooks/{provider}"));
                let json: serde_json::Value =
                    serde_json::from_slice(delivery.webhook().json()).unwrap();
                assert!(json.is_object(), "{provider}: {json}");
            }
        }
    }

    #[test]
    fn a_webhook_its_layer_refuses_is_an_error_from_verify() {
        let without_order = Webhook::kosmo("DELIVERED").without("/orderId");
        let refusal = without_order.verify().unwrap_err();
        assert_eq!(refusal.kind(), RejectionKind::InvalidPayload, "{refusal}");
        let moved = Webhook::goshiip("Delivered")
            .signature_header(axum::http::HeaderName::from_static("x-elsewhere"));
        assert_eq!(
            moved.verify().unwrap_err().kind(),
            RejectionKind::MissingProof
        );
    }

    #[should_panic(expected = "a connection test is no delivery")]
    #[test]
    fn a_connection_test_makes_no_delivery() {
        let _ = DeliveryBuilder::new(&Webhook::shipmondo_connection_test());
    }

    /// `mark_done_in` on a built delivery writes nothing to the database and
    /// returns `true`: the handler's own writes commit, as under a worker.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn mark_done_in_on_a_built_delivery_commits_the_handlers_writes() {
        use shipment_webhooks::inbox::sqlx::{
            self,
            sqlite::{SqliteConnectOptions, SqlitePoolOptions},
        };

        async fn record_status(delivery: Delivery, pool: sqlx::SqlitePool) -> Result<(), BoxError> {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO shipment_status (id, status) VALUES (?, ?)")
                .bind(&delivery.event().id)
                .bind(delivery.event().status.as_str())
                .execute(&mut *tx)
                .await?;
            if !delivery.mark_done_in(&mut *tx).await? {
                return Err("lease lost".into());
            }
            Ok(tx.commit().await?)
        }

        let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("your-handler-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let pool = SqlitePoolOptions::new()
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        // The app's own table; no inbox tables in this database at all.
        sqlx::query("CREATE TABLE shipment_status (id TEXT PRIMARY KEY, status TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let webhook = Webhook::kosmo("DELIVERED").field("/orderId", "SG-43");
        record_status(DeliveryBuilder::new(&webhook).build(), pool.clone())
            .await
            .unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM shipment_status")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(rows, [("SG-43".to_owned(), "delivered".to_owned())]);
        let tables: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            tables,
            [("shipment_status".to_owned(),)],
            "nothing else written"
        );
        pool.close().await;
        let _ = std::fs::remove_file(&path);
    }
}
