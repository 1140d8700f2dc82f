//! The admin page (`Inbox::admin`) on a SQLite file, through a real axum
//! `Router` nested at `/admin/webhooks`: each access mode's refusals, the
//! pages, and replay and discard behind a CSRF token and a same-origin check.
//! The pages, replay, discard and the refusals that touch the store run on
//! PostgreSQL too (`postgres_*`, where `SHIPMENT_WEBHOOKS_TEST_POSTGRES` is
//! set).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use shipment_webhooks::inbox::{AdminAccess, Delivery, Inbox, WebhookState};
use tower::ServiceExt;

use crate::common::send;
use crate::harness::{Backend, KOSMO, app, at, kosmo, open};

const TOKEN: &str = "admin-test-token-0123456789";
const BASE: &str = "/admin/webhooks";

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn call(app: &Router, request: Request<Body>) -> Page {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("a router never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the answer is readable");
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(path: &str) -> axum::http::request::Builder {
    Request::get(format!("{BASE}{path}")).header(header::HOST, "ops.example")
}

fn bearer(path: &str) -> Request<Body> {
    get(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("a request")
}

fn form_post(path: &str, form: &str) -> axum::http::request::Builder {
    let _ = form;
    Request::post(format!("{BASE}{path}"))
        .header(header::HOST, "ops.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
}

/// A SQLite inbox holding one dead webhook (whose body carries a `<script>`)
/// and one handled one; the admin page nested at `BASE`; the dead one's id.
async fn setup(access: AdminAccess) -> (Inbox, Router, i64) {
    setup_on(Backend::Sqlite, access)
        .await
        .expect("a SQLite inbox")
}

/// As [`setup`], on `backend`; `None` where PostgreSQL is not given.
async fn setup_on(backend: Backend, access: AdminAccess) -> Option<(Inbox, Router, i64)> {
    let inbox = open(backend, "admin").await?;
    let receive = app(&inbox);
    send(
        &receive,
        kosmo("SG-ADMIN-1", "DELIVERED", at(0))
            .field("/note", "<script>alert('owned')</script>")
            .sign(KOSMO),
    )
    .await;
    inbox
        .worker(|_: Delivery| async { Err("carrier API down <b>".into()) })
        .max_attempts(1)
        .run_until_idle()
        .await
        .expect("the worker runs");
    send(
        &receive,
        kosmo("SG-ADMIN-2", "IN_TRANSIT", at(10)).sign(KOSMO),
    )
    .await;
    inbox
        .worker(|_: Delivery| async { Ok(()) })
        .run_until_idle()
        .await
        .expect("the worker runs");
    let dead = inbox.dead(10).await.expect("dead webhooks");
    assert_eq!(dead.len(), 1);
    let router = Router::new().nest(BASE, inbox.admin(access));
    Some((inbox, router, dead[0].id))
}

async fn state(inbox: &Inbox, id: i64) -> Option<WebhookState> {
    inbox
        .get(id)
        .await
        .expect("the store answers")
        .map(|detail| detail.summary.state)
}

/// The CSRF token in a page's forms.
fn csrf(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    body[at..at + 64].to_owned()
}

/// Signs in through the form: the session cookie.
async fn sign_in(router: &Router) -> String {
    let page = call(
        router,
        form_post("/login", "")
            .header(header::ORIGIN, "https://ops.example")
            .body(Body::from(format!("token={TOKEN}")))
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.headers[header::LOCATION], "/admin/webhooks");
    let cookie = page.headers[header::SET_COOKIE]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/admin/webhooks"), "{cookie}");
    assert!(
        !cookie.contains(TOKEN),
        "the cookie holds a MAC, not the token"
    );
    cookie.split(';').next().expect("a pair").to_owned()
}

#[tokio::test]
async fn admin_without_a_token_shows_only_the_login_form() {
    let (_inbox, router, id) = setup(AdminAccess::Token(TOKEN.into())).await;
    for path in [
        "".to_owned(),
        format!("/webhooks/{id}"),
        "/shipments/SG-ADMIN-1".into(),
    ] {
        let page = call(&router, get(&path).body(Body::empty()).expect("a request")).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(page.body.contains("Admin token"), "{}", page.body);
        assert!(!page.body.contains("SG-ADMIN"), "{}", page.body);
    }
}

#[tokio::test]
async fn admin_wrong_bearer_token_is_refused_401() {
    let (_inbox, router, _) = setup(AdminAccess::Token(TOKEN.into())).await;
    let page = call(
        &router,
        get("")
            .header(header::AUTHORIZATION, "Bearer admin-test-token-0123456788")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(!page.body.contains("SG-ADMIN"), "{}", page.body);
}

#[tokio::test]
async fn admin_wrong_token_in_the_login_form_sets_no_cookie() {
    let (_inbox, router, _) = setup(AdminAccess::Token(TOKEN.into())).await;
    let page = call(
        &router,
        form_post("/login", "")
            .body(Body::from("token=guess"))
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("Wrong token"), "{}", page.body);
    assert!(page.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn admin_malformed_login_form_is_400() {
    let (_inbox, router, _) = setup(AdminAccess::Token(TOKEN.into())).await;
    let page = call(
        &router,
        form_post("/login", "")
            .body(Body::from("password=x"))
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
}

#[tokio::test]
async fn admin_forged_cookie_is_refused() {
    let (_inbox, router, _) = setup(AdminAccess::Token(TOKEN.into())).await;
    let forged = format!("shipment_webhooks_admin={}", "0".repeat(64));
    let page = call(
        &router,
        get("")
            .header(header::COOKIE, forged)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(!page.body.contains("SG-ADMIN"), "{}", page.body);
}

async fn signed_in_sees_counts_list_and_escaped_detail(backend: Backend) {
    let Some((_inbox, router, id)) = setup_on(backend, AdminAccess::Token(TOKEN.into())).await
    else {
        return;
    };
    let cookie = sign_in(&router).await;
    let page = call(
        &router,
        get("")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("SG-ADMIN-1") && page.body.contains("SG-ADMIN-2"));
    assert!(
        page.body
            .contains("<td>kosmo</td><td>0</td><td>0</td><td>1</td>"),
        "{}",
        page.body
    );
    // Both webhooks were received just now, one handled, one failed (dead
    // on its only attempt): the chart's last minutes.
    assert!(
        page.body.contains(
            "<h2>Last hour, per minute: 2 received, 1 handled, 1 failed</h2><svg id=\"activity\""
        ),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("2 received, 1 handled, 1 failed</title></rect>")
            || page.body.matches(" received, ").count() >= 3,
        "each minute's counts in its bar's title: {}",
        page.body
    );
    for line in ["<polyline id=\"handled\"", "<polyline id=\"failed\""] {
        assert!(page.body.contains(line), "{line}: {}", page.body);
    }
    assert!(page.body.contains("handled (1)</text>") && page.body.contains("failed (1)</text>"));

    let dead_only = call(
        &router,
        get("?state=dead")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert!(dead_only.body.contains("SG-ADMIN-1"));
    assert!(
        !dead_only.body.contains(">SG-ADMIN-2<"),
        "{}",
        dead_only.body
    );

    let detail = call(
        &router,
        get(&format!("/webhooks/{id}"))
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(!detail.body.contains("<script>"), "{}", detail.body);
    assert!(
        detail
            .body
            .contains("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;")
    );
    assert!(
        detail.body.contains("carrier API down &lt;b&gt;"),
        "the attempt's error, escaped"
    );
    assert!(
        detail.body.contains("\n  &quot;note&quot;: "),
        "the payload pretty-printed: {}",
        detail.body
    );

    let timeline = call(
        &router,
        get("/shipments/SG-ADMIN-1")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(timeline.status, StatusCode::OK);
    assert!(
        timeline.body.contains("class=\"dead\">dead<"),
        "{}",
        timeline.body
    );
}

async fn list_pages_by_cursor(backend: Backend) {
    let Some((_inbox, router, _)) = setup_on(backend, AdminAccess::BehindYourOwnAuth).await else {
        return;
    };
    let first = call(
        &router,
        get("?limit=1").body(Body::empty()).expect("a request"),
    )
    .await;
    assert!(first.body.contains("SG-ADMIN-1") && !first.body.contains(">SG-ADMIN-2<"));
    let at = first
        .body
        .find("rel=\"next\" href=\"")
        .expect("a next link")
        + 17;
    let end = first.body[at..].find('"').expect("the link ends") + at;
    let next = first.body[at..end].replace("&amp;", "&");
    let second = call(
        &router,
        Request::get(next)
            .header(header::HOST, "ops.example")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert!(second.body.contains(">SG-ADMIN-2<"), "{}", second.body);
    assert!(!second.body.contains("SG-ADMIN-1"));
}

#[tokio::test]
async fn admin_bad_filter_is_400() {
    let (_inbox, router, _) = setup(AdminAccess::BehindYourOwnAuth).await;
    for query in [
        "?state=lost",
        "?provider=nobody",
        "?after=x",
        "?limit=0",
        "?colour=red",
    ] {
        let page = call(&router, get(query).body(Body::empty()).expect("a request")).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            page.body
        );
    }
}

async fn unknown_or_malformed_id_is_404_or_400(backend: Backend) {
    let Some((_inbox, router, _)) = setup_on(backend, AdminAccess::Token(TOKEN.into())).await
    else {
        return;
    };
    assert_eq!(
        call(&router, bearer("/webhooks/999999")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&router, bearer("/webhooks/abc")).await.status,
        StatusCode::BAD_REQUEST
    );
    let replay = Request::post(format!("{BASE}/webhooks/999999/replay"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("a request");
    assert_eq!(call(&router, replay).await.status, StatusCode::NOT_FOUND);
}

async fn replay_clicked_in_the_form_makes_the_webhook_pending(backend: Backend) {
    let Some((inbox, router, id)) = setup_on(backend, AdminAccess::Token(TOKEN.into())).await
    else {
        return;
    };
    let cookie = sign_in(&router).await;
    let detail = call(
        &router,
        get(&format!("/webhooks/{id}"))
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    let token = csrf(&detail.body);
    let page = call(
        &router,
        form_post(&format!("/webhooks/{id}/replay"), "")
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, "https://ops.example")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(format!("csrf={token}")))
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(state(&inbox, id).await, Some(WebhookState::Pending));
    // Replayed again: no longer dead.
    let again = call(
        &router,
        form_post(&format!("/webhooks/{id}/replay"), "")
            .header(header::COOKIE, &cookie)
            .body(Body::from(format!("csrf={token}")))
            .expect("a request"),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

async fn cross_site_post_is_403_and_changes_no_row(backend: Backend) {
    let Some((inbox, router, id)) = setup_on(backend, AdminAccess::Token(TOKEN.into())).await
    else {
        return;
    };
    let cookie = sign_in(&router).await;
    let detail = call(
        &router,
        get(&format!("/webhooks/{id}"))
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    let token = csrf(&detail.body);
    for action in ["replay", "discard"] {
        let by_fetch_site = form_post(&format!("/webhooks/{id}/{action}"), "")
            .header(header::COOKIE, &cookie)
            .header("sec-fetch-site", "cross-site")
            .body(Body::from(format!("csrf={token}")))
            .expect("a request");
        let by_origin = form_post(&format!("/webhooks/{id}/{action}"), "")
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::from(format!("csrf={token}")))
            .expect("a request");
        let no_csrf = form_post(&format!("/webhooks/{id}/{action}"), "")
            .header(header::COOKIE, &cookie)
            .body(Body::from("csrf=".to_owned() + &"0".repeat(64)))
            .expect("a request");
        for request in [by_fetch_site, by_origin, no_csrf] {
            let page = call(&router, request).await;
            assert_eq!(
                page.status,
                StatusCode::FORBIDDEN,
                "{action}: {}",
                page.body
            );
        }
        assert_eq!(
            state(&inbox, id).await,
            Some(WebhookState::Dead),
            "{action}"
        );
    }
}

#[tokio::test]
async fn admin_malformed_replay_form_is_400_and_changes_no_row() {
    let (inbox, router, id) = setup(AdminAccess::BehindYourOwnAuth).await;
    let page = call(
        &router,
        Request::post(format!("{BASE}/webhooks/{id}/replay"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert_eq!(state(&inbox, id).await, Some(WebhookState::Dead));
}

async fn discard_deletes_a_dead_webhook(backend: Backend) {
    let Some((inbox, router, id)) = setup_on(backend, AdminAccess::BehindYourOwnAuth).await else {
        return;
    };
    let detail = call(
        &router,
        get(&format!("/webhooks/{id}"))
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    let page = call(
        &router,
        form_post(&format!("/webhooks/{id}/discard"), "")
            .body(Body::from(format!("csrf={}", csrf(&detail.body))))
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(state(&inbox, id).await, None);
}

fn from(peer: &str) -> Request<Body> {
    let mut request = get("").body(Body::empty()).expect("a request");
    let peer: SocketAddr = peer.parse().expect("an address");
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

#[tokio::test]
async fn admin_loopback_only_refuses_other_peers_and_unknown_ones() {
    let (_inbox, router, _) = setup(AdminAccess::LoopbackOnly).await;
    assert_eq!(
        call(&router, from("127.0.0.1:4000")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&router, from("[::1]:4000")).await.status,
        StatusCode::OK
    );
    let remote = call(&router, from("203.0.113.7:4000")).await;
    assert_eq!(remote.status, StatusCode::FORBIDDEN);
    assert!(!remote.body.contains("SG-ADMIN"));
    let unknown = call(&router, get("").body(Body::empty()).expect("a request")).await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    assert!(
        unknown.body.contains("into_make_service_with_connect_info"),
        "{}",
        unknown.body
    );
}

/// The CSRF token of `router`'s detail page for webhook `id`, by bearer
/// token where there is one.
async fn csrf_of(router: &Router, id: i64, token: Option<&str>) -> String {
    let mut request = get(&format!("/webhooks/{id}"));
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let page = call(router, request.body(Body::empty()).expect("a request")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    csrf(&page.body)
}

/// Without a token each router draws its own key from the OS's CSPRNG, so
/// one router's forms are refused by another; with a token the key is bound
/// to it: two routers with one token agree, another token's do not.
#[tokio::test]
async fn admin_csrf_token_is_random_per_router_or_bound_to_the_token() {
    let (inbox, first, id) = setup(AdminAccess::BehindYourOwnAuth).await;
    let second = Router::new().nest(BASE, inbox.admin(AdminAccess::BehindYourOwnAuth));
    let (a, b) = (
        csrf_of(&first, id, None).await,
        csrf_of(&second, id, None).await,
    );
    assert_ne!(a, b, "a key of its own per router");
    let page = call(
        &second,
        form_post(&format!("/webhooks/{id}/replay"), "")
            .body(Body::from(format!("csrf={a}")))
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(state(&inbox, id).await, Some(WebhookState::Dead));

    let token =
        |token: &str| Router::new().nest(BASE, inbox.admin(AdminAccess::Token(token.into())));
    let (one, again, other) = (token(TOKEN), token(TOKEN), token("another-admin-token-987"));
    let bound = csrf_of(&one, id, Some(TOKEN)).await;
    assert_eq!(bound, csrf_of(&again, id, Some(TOKEN)).await);
    assert_ne!(
        bound,
        csrf_of(&other, id, Some("another-admin-token-987")).await
    );
    assert!(bound != a && bound != b);
}

/// A request for the index with a bearer token, from `peer` if given.
fn bearer_from(token: &str, peer: Option<&str>) -> Request<Body> {
    let mut request = get("")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("a request");
    if let Some(peer) = peer {
        let peer: SocketAddr = peer.parse().expect("an address");
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    request
}

/// Past 10 wrong tokens a minute, a client's next tries are 429 with
/// `Retry-After`, even with the right token (a guesser learns nothing); the
/// right token still works from another client.
#[tokio::test]
async fn admin_repeated_wrong_tokens_are_429_with_retry_after_per_client() {
    let (_inbox, router, _) = setup(AdminAccess::Token(TOKEN.into())).await;
    let guesser = Some("203.0.113.7:4000");
    for n in 0..10 {
        let page = call(&router, bearer_from(&format!("guess-{n}"), guesser)).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "try {n}");
    }
    let page = call(&router, bearer_from("guess-10", guesser)).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    let retry: u64 = page.headers[header::RETRY_AFTER]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let right = call(&router, bearer_from(TOKEN, guesser)).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!right.body.contains("SG-ADMIN"), "{}", right.body);
    let mut form = form_post("/login", "")
        .body(Body::from(format!("token={TOKEN}")))
        .expect("a request");
    form.extensions_mut().insert(ConnectInfo(
        "203.0.113.7:4001"
            .parse::<SocketAddr>()
            .expect("an address"),
    ));
    let form = call(&router, form).await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(form.headers.get(header::SET_COOKIE).is_none());

    let other = call(&router, bearer_from(TOKEN, Some("198.51.100.2:4000"))).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    assert!(other.body.contains("SG-ADMIN-1"));
}

/// Without the peer's address every client shares one count: past it the
/// form and bearer tokens are 429 for all, but a session signed in before
/// still works.
#[tokio::test]
async fn admin_wrong_tokens_without_connect_info_are_counted_together() {
    let (_inbox, router, _) = setup(AdminAccess::Token(TOKEN.into())).await;
    let cookie = sign_in(&router).await;
    for n in 0..10 {
        let page = call(
            &router,
            form_post("/login", "")
                .body(Body::from(format!("token=guess-{n}")))
                .expect("a request"),
        )
        .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "try {n}");
    }
    let page = call(&router, bearer_from(TOKEN, None)).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert!(page.headers.contains_key(header::RETRY_AFTER));
    let signed_in = call(
        &router,
        get("")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
}

every_store!(
    signed_in_sees_counts_list_and_escaped_detail,
    list_pages_by_cursor,
    unknown_or_malformed_id_is_404_or_400,
    replay_clicked_in_the_form_makes_the_webhook_pending,
    cross_site_post_is_403_and_changes_no_row,
    discard_deletes_a_dead_webhook,
);
