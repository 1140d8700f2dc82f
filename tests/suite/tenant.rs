//! A secret per tenant: `PerTenant` looks each request's tenant up, through a
//! real Router, with concurrent requests for different tenants.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{send, with_header};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use shipment_webhooks::testing::Webhook;
use shipment_webhooks::{
    ConfigError, GoShiipSignature, KosmoSignature, MatchedSecret, PerTenant, ShipmentEvent,
    TenantSource, tenant::PerTenantBuilder,
};

/// A tenant table: each tenant's secrets by label; in an app, a database.
type Table = Arc<Mutex<HashMap<String, Vec<(&'static str, &'static str)>>>>;

fn table() -> Table {
    Arc::new(Mutex::new(HashMap::from([
        ("acme".to_owned(), vec![("primary", "acme-secret")]),
        (
            "globex".to_owned(),
            vec![("primary", "globex-old"), ("next", "globex-new")],
        ),
        ("broken".to_owned(), vec![("primary", "")]),
    ])))
}

/// GoShiip's layer per tenant, from `table`; `lookups` counts the lookups.
fn layer(
    table: Table,
    key: TenantSource,
    lookups: Arc<AtomicUsize>,
) -> PerTenant<GoShiipSignature> {
    builder(table, key, lookups).build()
}

/// [`layer`]'s settings, still to choose.
fn builder(
    table: Table,
    key: TenantSource,
    lookups: Arc<AtomicUsize>,
) -> PerTenantBuilder<GoShiipSignature> {
    PerTenant::builder(key, move |tenant: Arc<str>| {
        lookups.fetch_add(1, Ordering::SeqCst);
        let secrets = table.lock().unwrap().get(&*tenant).cloned();
        async move {
            if &*tenant == "down" {
                return Err("the tenant database is unreachable".into());
            }
            let Some(secrets) = secrets else {
                return Ok(None);
            };
            let mut secrets = secrets.into_iter();
            let (_, first) = secrets.next().expect("a tenant has a secret");
            let mut layer = GoShiipSignature::try_new(first)?;
            for (label, secret) in secrets {
                layer = layer.try_with_secret(label, secret)?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Some(layer))
        }
    })
}

async fn echo(event: ShipmentEvent, secret: MatchedSecret) -> Json<Value> {
    Json(json!({"id": event.id, "tenant": secret.tenant(), "label": secret.label()}))
}

fn app(layer: PerTenant<GoShiipSignature>) -> Router {
    Router::new().route("/webhooks/goshiip/{tenant}", post(echo).route_layer(layer))
}

fn request(tenant: &str, secret: &str, id: usize) -> axum::http::Request<axum::body::Body> {
    Webhook::goshiip("Delivered")
        .field("/shipment/data/reference", format!("ref-{id}"))
        .uri(format!("/webhooks/goshiip/{tenant}").parse().unwrap())
        .sign(secret)
}

#[tokio::test]
async fn concurrent_requests_for_different_tenants_each_verify_with_their_own_secrets() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let app = app(layer(
        table(),
        TenantSource::path_segment(2),
        lookups.clone(),
    ));
    let cases = [
        ("acme", "acme-secret", Some("primary")),
        ("globex", "globex-old", Some("primary")),
        ("globex", "globex-new", Some("next")),
        ("acme", "globex-new", None),
        ("globex", "acme-secret", None),
    ];
    let mut tasks = Vec::new();
    for id in 0..64 {
        let (tenant, secret, label) = cases[id % cases.len()];
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let answer = send(&app, request(tenant, secret, id)).await;
            (tenant, label, id, answer)
        }));
    }
    for task in tasks {
        let (tenant, label, id, answer) = task.await.unwrap();
        match label {
            Some(label) => {
                assert_eq!(answer.status, StatusCode::OK, "{tenant}: {}", answer.json);
                assert_eq!(
                    answer.json,
                    json!({"id": format!("ref-{id}"), "tenant": tenant, "label": label})
                );
            }
            None => answer.assert_refused(StatusCode::UNAUTHORIZED, "matches no configured secret"),
        }
    }
    // Concurrent first requests may each look a tenant up; the cache serves the rest.
    assert!(lookups.load(Ordering::SeqCst) < 64, "{lookups:?}");
}

#[tokio::test]
async fn unknown_tenants_and_requests_naming_none_get_401() {
    let app = app(layer(
        table(),
        TenantSource::path_segment(2),
        Arc::default(),
    ));
    send(&app, request("initech", "acme-secret", 1))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, r#"unknown tenant "initech""#);

    let header_app = Router::new().route(
        "/webhooks/goshiip",
        post(echo).route_layer(layer(
            table(),
            TenantSource::header("x-tenant".parse().unwrap()),
            Arc::default(),
        )),
    );
    let bare = Webhook::goshiip("Delivered").sign("acme-secret");
    send(&header_app, bare).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "names no tenant in the x-tenant header",
    );
    let named = with_header(
        Webhook::goshiip("Delivered").sign("acme-secret"),
        "x-tenant",
        "acme",
    );
    let answer = send(&header_app, named).await;
    assert_eq!(answer.json["tenant"], "acme", "{}", answer.json);
}

#[tokio::test]
async fn a_bad_secret_row_is_a_401_and_a_failed_lookup_a_503_never_a_panic() {
    let app = app(layer(
        table(),
        TenantSource::path_segment(2),
        Arc::default(),
    ));
    send(&app, request("broken", "anything", 1))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            r#"tenant "broken" has no usable secret"#,
        );
    let answer = send(&app, request("down", "anything", 1)).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.json
    );
    assert_eq!(answer.json["error"], "service unavailable");
}

#[tokio::test]
async fn keys_are_prepared_once_per_tenant_until_invalidated_or_expired() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let table = table();
    let layer = layer(
        table.clone(),
        TenantSource::path_segment(2),
        lookups.clone(),
    );
    let app = app(layer.clone());
    for id in 0..5 {
        let answer = send(&app, request("acme", "acme-secret", id)).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 1);

    // Rotated in the table: the cached key holds until invalidated.
    table
        .lock()
        .unwrap()
        .insert("acme".into(), vec![("primary", "acme-rotated")]);
    let stale = send(&app, request("acme", "acme-rotated", 9)).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    layer.invalidate("acme");
    let fresh = send(&app, request("acme", "acme-rotated", 10)).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.json);
    assert_eq!(lookups.load(Ordering::SeqCst), 2);

    // Kept for no time at all: every request looks the tenant up.
    let expiring = builder(table, TenantSource::path_segment(2), lookups.clone())
        .cache_ttl(Duration::ZERO)
        .build();
    let app = self::app(expiring);
    send(&app, request("acme", "acme-rotated", 11)).await;
    send(&app, request("acme", "acme-rotated", 12)).await;
    assert_eq!(lookups.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn the_cache_keeps_at_most_its_capacity() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let layer = builder(table(), TenantSource::path_segment(2), lookups.clone())
        .cache_capacity(1)
        .build();
    let app = app(layer);
    for (tenant, secret) in [
        ("acme", "acme-secret"),
        ("globex", "globex-new"),
        ("acme", "acme-secret"),
    ] {
        assert_eq!(
            send(&app, request(tenant, secret, 1)).await.status,
            StatusCode::OK
        );
    }
    // globex pushed acme out.
    assert_eq!(lookups.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_tenant_can_be_the_host_or_anything_in_the_request() {
    let host_app = Router::new().route(
        "/webhooks/goshiip",
        post(echo).route_layer(layer(table(), TenantSource::host(), Arc::default())),
    );
    let request = with_header(
        Webhook::goshiip("Delivered").sign("globex-new"),
        "host",
        "GLOBEX:8443",
    );
    let answer = send(&host_app, request).await;
    assert_eq!(answer.json["tenant"], "globex", "{}", answer.json);

    let query = TenantSource::from_fn(|parts| {
        parts
            .uri
            .query()?
            .strip_prefix("tenant=")
            .map(str::to_owned)
    });
    let query_app = Router::new().route(
        "/webhooks/goshiip",
        post(echo).route_layer(layer(table(), query, Arc::default())),
    );
    let request = Webhook::goshiip("Delivered")
        .uri("/webhooks/goshiip?tenant=acme".parse().unwrap())
        .sign("acme-secret");
    assert_eq!(send(&query_app, request).await.json["tenant"], "acme");
}

#[tokio::test]
async fn any_provider_can_be_per_tenant() {
    let layer = PerTenant::new(
        TenantSource::path_segment(2),
        |tenant: Arc<str>| async move {
            match &*tenant {
                "acme" => KosmoSignature::try_new("whk_acme").map(Some),
                _ => Ok::<_, ConfigError>(None),
            }
        },
    );
    let app = Router::new().route("/webhooks/kosmo/{tenant}", post(echo).route_layer(layer));
    let request = Webhook::kosmo("DELIVERED")
        .uri("/webhooks/kosmo/acme".parse().unwrap())
        .sign("whk_acme");
    let answer = send(&app, request).await;
    assert_eq!(answer.json["tenant"], "acme", "{}", answer.json);
}

/// Forgets a tenant in any provider's `PerTenant`: the cache controls need
/// no bound a user could not write.
fn forget<V>(layer: &PerTenant<V>, tenant: &str) {
    layer.invalidate(tenant);
}

#[tokio::test]
async fn a_lookup_racing_an_invalidation_does_not_cache_the_old_secret() {
    let table = table();
    let gate = Arc::new(tokio::sync::Notify::new());
    let layer = {
        let (table, gate) = (table.clone(), gate.clone());
        PerTenant::new(TenantSource::path_segment(2), move |tenant: Arc<str>| {
            // The row is read when the lookup starts; the answer comes later.
            let secrets = table.lock().unwrap().get(&*tenant).cloned();
            let gate = gate.clone();
            async move {
                gate.notified().await;
                let (_, secret) = secrets.expect("a known tenant")[0];
                GoShiipSignature::try_new(secret).map(Some)
            }
        })
    };
    let app = app(layer.clone());
    let first = tokio::spawn({
        let app = app.clone();
        async move { send(&app, request("acme", "acme-secret", 1)).await }
    });
    tokio::task::yield_now().await;
    // Rotated while the lookup is under way.
    table
        .lock()
        .unwrap()
        .insert("acme".into(), vec![("primary", "acme-rotated")]);
    forget(&layer, "acme");
    gate.notify_one();
    assert_eq!(first.await.unwrap().status, StatusCode::OK);

    let rotated = tokio::spawn({
        let app = app.clone();
        async move { send(&app, request("acme", "acme-rotated", 2)).await }
    });
    tokio::task::yield_now().await;
    gate.notify_one();
    let answer = rotated.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
}

#[tokio::test]
async fn a_config_error_inside_the_lookups_own_error_is_still_a_401() {
    #[derive(Debug)]
    struct RowError(ConfigError);
    impl std::fmt::Display for RowError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "tenant row refused")
        }
    }
    impl std::error::Error for RowError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let layer = PerTenant::new(TenantSource::path_segment(2), |_: Arc<str>| async {
        GoShiipSignature::try_new("").map(Some).map_err(RowError)
    });
    send(&app(layer), request("acme", "anything", 1))
        .await
        .assert_refused(StatusCode::UNAUTHORIZED, "has no usable secret");
}

#[tokio::test]
async fn a_lookup_that_never_ends_is_bounded_by_a_timeout_outside() {
    let layer = PerTenant::new(TenantSource::path_segment(2), |_: Arc<str>| {
        std::future::pending::<Result<Option<GoShiipSignature>, ConfigError>>()
    });
    let app = app(layer).layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_millis(50),
    ));
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        tower::ServiceExt::oneshot(app, request("acme", "acme-secret", 1)),
    )
    .await
    .expect("the timeout answers")
    .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn two_tenant_headers_or_an_overlong_name_are_refused_without_a_lookup() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let key = TenantSource::header("x-tenant".parse().unwrap());
    let app = Router::new().route(
        "/webhooks/goshiip",
        post(echo).route_layer(layer(table(), key, lookups.clone())),
    );
    let mut twice = with_header(
        Webhook::goshiip("Delivered").sign("acme-secret"),
        "x-tenant",
        "acme",
    );
    twice
        .headers_mut()
        .append("x-tenant", "globex".parse().unwrap());
    send(&app, twice).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the x-tenant header appears more than once",
    );
    let long = "a".repeat(shipment_webhooks::tenant::MAX_TENANT_LEN + 1);
    let request = with_header(
        Webhook::goshiip("Delivered").sign("acme-secret"),
        "x-tenant",
        &long,
    );
    send(&app, request).await.assert_refused(
        StatusCode::UNAUTHORIZED,
        "the tenant's name is over 128 bytes",
    );
    assert_eq!(lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_shipmondo_connection_test_names_its_tenant() {
    const KEY: &str = "acme-shipmondo-key-of-32-bytes-at-least";
    let seen = Arc::new(Mutex::new(Vec::new()));
    let layer = {
        let seen = seen.clone();
        PerTenant::new(TenantSource::path_segment(2), move |_: Arc<str>| {
            let seen = seen.clone();
            async move {
                let layer = shipment_webhooks::ShipmondoJwt::try_new(KEY)?
                    .on_connection_test(move |test| seen.lock().unwrap().push(test.secret.clone()));
                Ok::<_, ConfigError>(Some(layer))
            }
        })
    };
    let app = Router::new().route(
        "/webhooks/shipmondo/{tenant}",
        post(echo).route_layer(layer),
    );
    let ping = Webhook::shipmondo_connection_test()
        .uri("/webhooks/shipmondo/acme".parse().unwrap())
        .sign(KEY);
    assert_eq!(send(&app, ping).await.status, StatusCode::OK);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].tenant(), seen[0].label()),
        (Some("acme"), "primary")
    );
}

#[tokio::test]
async fn a_normalized_name_is_what_the_lookup_the_cache_and_the_handler_see() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let layer = builder(table(), TenantSource::path_segment(2), lookups.clone())
        .normalize(shipment_webhooks::tenant::ascii_lowercase)
        .build();
    let app = app(layer.clone());
    for (id, tenant) in ["ACME", "acme", "Acme"].into_iter().enumerate() {
        let answer = send(&app, request(tenant, "acme-secret", id)).await;
        assert_eq!(answer.status, StatusCode::OK, "{tenant}: {}", answer.json);
        assert_eq!(answer.json["tenant"], "acme");
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 1, "one cache entry");
    // Invalidated under any spelling: it is normalized too.
    layer.invalidate("aCmE");
    send(&app, request("acme", "acme-secret", 3)).await;
    assert_eq!(lookups.load(Ordering::SeqCst), 2);
    assert!(
        format!("{layer:?}").contains("normalized: true"),
        "{layer:?}"
    );
}

#[tokio::test]
async fn without_normalizing_each_spelling_is_a_tenant() {
    let lookups = Arc::new(AtomicUsize::new(0));
    // A lookup that ignores case, as a case-insensitive column does.
    let lookup = {
        let lookups = lookups.clone();
        move |tenant: Arc<str>| {
            lookups.fetch_add(1, Ordering::SeqCst);
            let known = tenant.eq_ignore_ascii_case("acme");
            async move { GoShiipSignature::try_new("acme-secret").map(|layer| known.then_some(layer)) }
        }
    };
    let app = app(PerTenant::new(TenantSource::path_segment(2), lookup));
    for (id, tenant) in ["ACME", "acme", "Acme"].into_iter().enumerate() {
        let answer = send(&app, request(tenant, "acme-secret", id)).await;
        assert_eq!(answer.json["tenant"], tenant, "{}", answer.json);
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 3, "three cache entries");
}

#[tokio::test]
async fn a_name_normalized_to_nothing_or_too_long_is_refused_without_a_lookup() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let layer = builder(table(), TenantSource::path_segment(2), lookups.clone())
        .normalize(|name: &str| match name.strip_prefix("shop-") {
            Some(rest) => std::borrow::Cow::Borrowed(rest),
            None => std::borrow::Cow::Owned(name.repeat(200)),
        })
        .build();
    let app = app(layer);
    let answer = send(&app, request("shop-acme", "acme-secret", 0)).await;
    assert_eq!(answer.json["tenant"], "acme", "{}", answer.json);
    send(&app, request("shop-", "acme-secret", 1))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "the request names no tenant in segment 2 of the path once normalized",
        );
    send(&app, request("acme", "acme-secret", 2))
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "the tenant's name is over 128 bytes once normalized",
        );
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
}
