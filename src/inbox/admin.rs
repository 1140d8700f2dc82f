//! The admin page: an axum [`Router`] of server-rendered HTML over the inbox,
//! behind the access the user chose ([`AdminAccess`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::{Filter, Inbox, MAX_PAGE, Minute, WebhookState};

mod throttle;
use crate::Provider;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const COOKIE: &str = "shipment_webhooks_admin";

/// Who may see the admin page of [`Inbox::admin`]. There is no default: the
/// page serves nothing until you choose.
#[derive(Clone)]
#[non_exhaustive]
pub enum AdminAccess {
    /// Those who know this token: sent as `Authorization: Bearer <token>`, or
    /// typed once into the page's login form, which sets an `HttpOnly`,
    /// `SameSite=Strict` cookie holding a MAC of the token (not the token).
    /// Compared in constant time. A client that sends more than 10 wrong
    /// tokens in a minute (by bearer or the form) has its next tries, right
    /// or wrong, refused 429 with `Retry-After` until the minute is over;
    /// others are not. Clients are told apart by `ConnectInfo`'s address
    /// (serve with `into_make_service_with_connect_info::<SocketAddr>()`);
    /// without it, or behind a proxy, every client is one, and a guesser
    /// can keep everyone out of the login form for a minute at a time
    /// (those signed in keep their cookie: it is never refused here).
    Token(String),
    /// Only requests from a loopback address (127.0.0.0/8, `::1`), as axum's
    /// `ConnectInfo<SocketAddr>` gives it: serve the app with
    /// `into_make_service_with_connect_info::<SocketAddr>()`, or every
    /// request is refused. Behind a reverse proxy on the same host every
    /// request is loopback: use another mode there.
    LoopbackOnly,
    /// Everyone who reaches it: your own authentication layer in front of
    /// the router decides.
    BehindYourOwnAuth,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(..)"),
            Self::LoopbackOnly => f.write_str("LoopbackOnly"),
            Self::BehindYourOwnAuth => f.write_str("BehindYourOwnAuth"),
        }
    }
}

struct Admin {
    inbox: Inbox,
    access: AdminAccess,
    /// The key of the session cookie and the CSRF token: derived from the
    /// token in [`AdminAccess::Token`], else drawn from the operating
    /// system's CSPRNG when the router is made; `None` if it had none to
    /// give, and then every POST is refused.
    key: Option<[u8; 32]>,
}

impl Admin {
    fn mac(&self, what: &str) -> Option<String> {
        let mut mac = HmacSha256::new_from_slice(&self.key?).ok()?;
        mac.update(what.as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// The session cookie's value: a MAC of the token, not the token.
    fn session(&self) -> Option<String> {
        self.mac("shipment-webhooks admin session")
    }

    /// The token every form carries.
    fn csrf(&self) -> Option<String> {
        self.mac("shipment-webhooks admin csrf")
    }
}

/// A key no one outside this process knows, for the modes without a token:
/// 32 bytes from the operating system's CSPRNG (`getrandom`), or `None`,
/// logged, if it has none to give.
fn process_key() -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    match getrandom::getrandom(&mut key) {
        Ok(()) => Some(key),
        Err(error) => {
            tracing::error!(%error, "admin page: the operating system gave no random key; replay and discard are refused");
            None
        }
    }
}

impl Inbox {
    /// The admin page, to [`nest`](Router::nest) where you like (say
    /// `/admin/webhooks`): counts by state and provider, a chart of the last
    /// hour ([`Inbox::last_hour`]: webhooks received, attempts handled and
    /// failed, per minute), a filtered, paged list, each webhook's payload,
    /// headers and attempts, a shipment's timeline, and replay and discard
    /// buttons (POST forms with a CSRF token and a same-origin check).
    /// Server-rendered HTML and SVG with inline CSS: no JavaScript, nothing
    /// fetched from elsewhere. `access` says who may see it; see
    /// [`AdminAccess`].
    ///
    /// The CSRF token is an HMAC-SHA256 under a key bound to the
    /// credential: with [`AdminAccess::Token`], derived from the token
    /// (every instance serving that token, across restarts, accepts the
    /// same forms; a new token voids them); in the other modes, 32 bytes
    /// from the operating system's CSPRNG drawn when this is called (each
    /// router has its own; a restart voids open forms).
    #[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
    pub fn admin(&self, access: AdminAccess) -> Router {
        let key = match &access {
            // Bound to the token: every instance serving it, before and
            // after a restart, takes the same cookie and CSRF token, and
            // a new token voids both.
            AdminAccess::Token(token) => {
                Some(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into())
            }
            _ => process_key(),
        };
        let admin = Arc::new(Admin {
            inbox: self.clone(),
            access,
            key,
        });
        Router::new()
            .route("/", get(index))
            .route("/webhooks/{id}", get(detail))
            .route("/webhooks/{id}/replay", post(replay))
            .route("/webhooks/{id}/discard", post(discard))
            .route("/shipments/{id}", get(timeline))
            .layer(middleware::from_fn_with_state(admin.clone(), guard))
            .route("/login", post(login))
            .layer(middleware::from_fn(same_origin))
            .layer(middleware::from_fn_with_state(
                Arc::new(throttle::Failures::default()),
                throttle::throttle,
            ))
            .with_state(admin)
    }
}

/// The path the router is nested at, from the original URI: "" at the root.
fn base(original: &OriginalUri, request_path: &str) -> String {
    let full = original.0.path();
    match full.strip_suffix(request_path) {
        Some(base) => base.trim_end_matches('/').to_owned(),
        // Nested: the router's root is the prefix itself, without a `/`.
        None if request_path == "/" => full.trim_end_matches('/').to_owned(),
        None => String::new(),
    }
}

/// The index page's link: the prefix itself (a nested router's root has no
/// trailing `/`), or `/` at the root.
fn home(base: &str) -> String {
    if base.is_empty() {
        "/".to_owned()
    } else {
        base.to_owned()
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether the request was authenticated by an `Authorization` header, which
/// a browser never sends on its own to another site's request.
#[derive(Clone, Copy)]
struct Bearer(bool);

async fn guard(State(admin): State<Arc<Admin>>, mut request: Request, next: Next) -> Response {
    let bearer = match &admin.access {
        AdminAccess::BehindYourOwnAuth => false,
        AdminAccess::LoopbackOnly => match request.extensions().get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(peer)) if peer.ip().is_loopback() => false,
            Some(_) => {
                return text(
                    StatusCode::FORBIDDEN,
                    "the admin page answers only requests from this machine (loopback)",
                );
            }
            None => {
                return text(
                    StatusCode::FORBIDDEN,
                    "the admin page is loopback-only, and the server does not give the peer's address: serve the app with into_make_service_with_connect_info::<SocketAddr>()",
                );
            }
        },
        AdminAccess::Token(token) => {
            let headers = request.headers();
            let authorization = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            if let Some(given) = authorization {
                if !equal(given.trim(), token) {
                    let mut refused = text(StatusCode::UNAUTHORIZED, "wrong admin token");
                    refused.extensions_mut().insert(throttle::WrongToken);
                    return refused;
                }
                true
            } else if let Some(session) = cookie(headers, COOKIE) {
                if !admin
                    .session()
                    .is_some_and(|expected| equal(&session, &expected))
                {
                    return login_page(
                        &request,
                        StatusCode::UNAUTHORIZED,
                        "Your session is not valid: sign in again.",
                    );
                }
                false
            } else {
                return login_page(&request, StatusCode::UNAUTHORIZED, "");
            }
        }
    };
    request.extensions_mut().insert(Bearer(bearer));
    next.run(request).await
}

/// Refuses a POST another site's page sent: by `Sec-Fetch-Site`, or else by
/// an `Origin` other than the `Host`.
async fn same_origin(request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST {
        let headers = request.headers();
        if let Some(site) = headers.get("sec-fetch-site")
            && site.as_bytes() != b"same-origin"
        {
            return text(StatusCode::FORBIDDEN, "cross-site request refused");
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|origin| origin.split_once("://"))
                .map(|(_, host)| host.as_bytes());
            if origin_host.is_none() || origin_host != host {
                return text(StatusCode::FORBIDDEN, "cross-site request refused");
            }
        }
    }
    next.run(request).await
}

fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{} · webhooks</title><style>{CSS}</style></head><body>{body}</body></html>",
        escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}pre{background:#f5f5f5;padding:.5em;overflow:auto;max-width:100%}.dead{color:#b00}.done{color:#070}form.inline{display:inline}nav a{margin-right:1em}";

/// `value` with `&`, `<`, `>`, `"` and `'` escaped, for text and attributes.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `value` percent-encoded for a query string.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn login_page(request: &Request, status: StatusCode, message: &str) -> Response {
    let base = request
        .extensions()
        .get::<OriginalUri>()
        .map(|original| base(original, request.uri().path()))
        .unwrap_or_default();
    let body = format!(
        "<h1>Webhooks admin</h1><p>{}</p><form method=\"post\" action=\"{}/login\"><label>Admin token <input type=\"password\" name=\"token\" autofocus></label> <button type=\"submit\">Sign in</button></form>",
        escape(message),
        escape(&base)
    );
    html(status, "Sign in", &body)
}

async fn login(
    State(admin): State<Arc<Admin>>,
    original: OriginalUri,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let base = base(&original, "/login");
    let AdminAccess::Token(token) = &admin.access else {
        return text(
            StatusCode::NOT_FOUND,
            "no login: the admin page has no token",
        );
    };
    let Ok(Form(form)) = form else {
        return text(
            StatusCode::BAD_REQUEST,
            "malformed form: expected token=...",
        );
    };
    let Some(given) = form.get("token") else {
        return text(
            StatusCode::BAD_REQUEST,
            "malformed form: expected token=...",
        );
    };
    if !equal(given, token) {
        let body = format!(
            "<h1>Webhooks admin</h1><p>Wrong token.</p><form method=\"post\" action=\"{}/login\"><label>Admin token <input type=\"password\" name=\"token\" autofocus></label> <button type=\"submit\">Sign in</button></form>",
            escape(&base)
        );
        let mut refused = html(StatusCode::UNAUTHORIZED, "Sign in", &body);
        refused.extensions_mut().insert(throttle::WrongToken);
        return refused;
    }
    let path = if base.is_empty() { "/" } else { &base };
    let Some(session) = admin.session() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "no session key");
    };
    let set = format!("{COOKIE}={session}; Path={path}; HttpOnly; SameSite=Strict");
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, home(&base))
        .header(header::SET_COOKIE, set)
        .body(Body::empty())
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "bad response"))
}

fn store_failed(error: &super::InboxError) -> Response {
    tracing::error!(%error, "admin page: the inbox's store failed");
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("the inbox's store failed: {error}"),
    )
}

fn time(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

fn nav(base: &str) -> String {
    format!(
        "<nav><a href=\"{0}\">All</a><a href=\"{0}?state=dead\">Dead</a><a href=\"{0}?state=pending\">Pending</a></nav>",
        escape(&home(base))
    )
}

/// The list's filter from the query string; a message for a bad value.
fn parse_filter(query: &HashMap<String, String>) -> Result<Filter, String> {
    let mut filter = Filter::default().limit(50);
    for (name, value) in query {
        if value.is_empty() {
            continue;
        }
        match name.as_str() {
            "state" => filter = filter.state(value.parse().map_err(|e| format!("{e}"))?),
            "provider" => {
                let provider: Provider = value.parse().map_err(|e| format!("{e}"))?;
                filter = filter.provider(provider);
            }
            "shipment" => filter = filter.shipment(value.clone()),
            "after" => {
                let after = value
                    .parse::<i64>()
                    .map_err(|_| format!("after {value:?} is not a webhook id"))?;
                filter = filter.after(after);
            }
            "limit" => {
                let limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|limit| (1..=MAX_PAGE).contains(limit))
                    .ok_or_else(|| {
                        format!("limit {value:?} is not a number from 1 to {MAX_PAGE}")
                    })?;
                filter = filter.limit(limit);
            }
            other => {
                return Err(format!(
                    "unknown filter {other:?}: state, provider, shipment, after, limit"
                ));
            }
        }
    }
    Ok(filter)
}

async fn index(
    State(admin): State<Arc<Admin>>,
    original: OriginalUri,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let base = base(&original, "/");
    let Ok(Query(query)) = query else {
        return text(StatusCode::BAD_REQUEST, "malformed query string");
    };
    let filter = match parse_filter(&query) {
        Ok(filter) => filter,
        Err(message) => return text(StatusCode::BAD_REQUEST, &message),
    };
    let (stats, backlog, page) = match (
        admin.inbox.stats().await,
        admin.inbox.backlog().await,
        admin.inbox.list(&filter).await,
    ) {
        (Ok(stats), Ok(backlog), Ok(page)) => (stats, backlog, page),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return store_failed(&e),
    };
    let chart = match admin.inbox.last_hour().await {
        Ok(minutes) => chart(&minutes),
        Err(e) => return store_failed(&e),
    };
    let mut body = format!("<h1>Webhooks</h1>{}", nav(&base));
    let _ = write!(
        body,
        "<h2>By state</h2><table><tr><th>pending</th><th>processing</th><th>done</th><th>dead</th><th>superseded</th><th>duplicates dropped</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        stats.pending, stats.processing, stats.done, stats.dead, stats.superseded, stats.duplicates
    );
    body.push_str(&chart);
    body.push_str("<h2>Not handled yet, by provider</h2><table><tr><th>provider</th><th>pending</th><th>processing</th><th>dead</th><th>oldest pending</th></tr>");
    for row in &backlog {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(row.provider.as_str()),
            row.pending,
            row.processing,
            row.dead,
            row.oldest_pending_at.map(time).unwrap_or_default()
        );
    }
    body.push_str("</table>");
    let selected = |name: &str| query.get(name).cloned().unwrap_or_default();
    let mut states = String::from("<option value=\"\">any</option>");
    for state in WebhookState::ALL {
        let _ = write!(
            states,
            "<option{}>{}</option>",
            if selected("state") == state.as_str() {
                " selected"
            } else {
                ""
            },
            state.as_str()
        );
    }
    let mut providers = String::from("<option value=\"\">any</option>");
    for provider in Provider::ALL {
        let _ = write!(
            providers,
            "<option{}>{}</option>",
            if selected("provider") == provider.as_str() {
                " selected"
            } else {
                ""
            },
            escape(provider.as_str())
        );
    }
    let _ = write!(
        body,
        "<h2>List</h2><form method=\"get\" action=\"{}\"><label>State <select name=\"state\">{states}</select></label> <label>Provider <select name=\"provider\">{providers}</select></label> <label>Shipment <input name=\"shipment\" value=\"{}\"></label> <button type=\"submit\">Filter</button></form>",
        escape(&home(&base)),
        escape(&selected("shipment"))
    );
    body.push_str("<table><tr><th>id</th><th>received</th><th>provider</th><th>shipment</th><th>status</th><th>state</th><th>attempts</th><th>last error</th></tr>");
    for webhook in &page.webhooks {
        let _ = write!(
            body,
            "<tr><td><a href=\"{base}/webhooks/{id}\">{id}</a></td><td>{}</td><td>{}</td><td><a href=\"{base}/shipments/{}\">{}</a></td><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{}</td></tr>",
            time(webhook.received_at),
            escape(webhook.provider.as_str()),
            encode(webhook.event.id.as_str()),
            escape(webhook.event.id.as_str()),
            escape(&webhook.event.raw_status),
            webhook.attempts,
            escape(webhook.last_error.as_deref().unwrap_or("")),
            base = escape(&base),
            id = webhook.id,
            state = webhook.state.as_str(),
        );
    }
    body.push_str("</table>");
    if let Some(next) = page.next {
        let mut link = format!("{}?after={next}", home(&base));
        for name in ["state", "provider", "shipment", "limit"] {
            if let Some(value) = query.get(name).filter(|v| !v.is_empty()) {
                let _ = write!(link, "&{name}={}", encode(value));
            }
        }
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"{}\">Next page</a></p>",
            escape(&link)
        );
    }
    html(StatusCode::OK, "Webhooks", &body)
}

/// The chart's plot: 60 columns of 10 px, 95 px tall above the axis at 100.
const COLUMN: usize = 10;
const AXIS: f64 = 100.0;
const TALL: f64 = 95.0;

/// How high `count` stands in a plot whose tallest value is `max`.
#[allow(clippy::cast_precision_loss)]
fn height(count: u64, max: u64) -> f64 {
    count as f64 / max as f64 * TALL
}

/// The last hour as inline SVG: webhooks received per minute as bars,
/// attempts handled and failed as lines, with a legend, and each minute's
/// counts in a `<title>` (read out by screen readers, shown on hover).
fn chart(minutes: &[Minute]) -> String {
    let received: u64 = minutes.iter().map(|m| m.received).sum();
    let handled: u64 = minutes.iter().map(|m| m.handled).sum();
    let failed: u64 = minutes.iter().map(|m| m.failed).sum();
    let max = minutes
        .iter()
        .map(|m| m.received.max(m.handled).max(m.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let width = minutes.len() * COLUMN;
    let mut svg = format!(
        "<h2>Last hour, per minute: {received} received, {handled} handled, {failed} failed</h2>\
         <svg id=\"activity\" width=\"{width}\" height=\"130\" viewBox=\"0 0 {width} 130\" role=\"img\" aria-labelledby=\"activity-title\">\
         <title id=\"activity-title\">Webhooks per minute over the last hour: {received} received (bars), {handled} attempts handled (green line), {failed} attempts failed (red line); at most {max} in a minute</title>\
         <line x1=\"0\" y1=\"{AXIS}\" x2=\"{width}\" y2=\"{AXIS}\" stroke=\"#999\"/>"
    );
    svg.push_str("<g id=\"received\" fill=\"#47a\">");
    for (at, minute) in minutes.iter().enumerate() {
        if minute.received == 0 {
            continue;
        }
        let tall = height(minute.received, max).max(1.0);
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"{}\" height=\"{tall:.1}\"><title>{}: {} received, {} handled, {} failed</title></rect>",
            at * COLUMN,
            AXIS - tall,
            COLUMN - 1,
            clock(minute.start),
            minute.received,
            minute.handled,
            minute.failed
        );
    }
    svg.push_str("</g>");
    for (id, colour, count) in [
        (
            "handled",
            "#070",
            (|m: &Minute| m.handled) as fn(&Minute) -> u64,
        ),
        ("failed", "#b00", |m: &Minute| m.failed),
    ] {
        let mut points = String::new();
        for (at, minute) in minutes.iter().enumerate() {
            let _ = write!(
                points,
                "{}{:.1},{:.1}",
                if points.is_empty() { "" } else { " " },
                at * COLUMN + COLUMN / 2,
                AXIS - height(count(minute), max)
            );
        }
        let _ = write!(
            svg,
            "<polyline id=\"{id}\" points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>"
        );
    }
    let _ = write!(
        svg,
        "<g font-size=\"9\"><text x=\"0\" y=\"110\">-60 min</text><text x=\"{}\" y=\"110\">now</text>\
         <rect x=\"0\" y=\"118\" width=\"9\" height=\"9\" fill=\"#47a\"/><text x=\"12\" y=\"126\">received ({received})</text>\
         <line x1=\"100\" y1=\"122\" x2=\"112\" y2=\"122\" stroke=\"#070\" stroke-width=\"1.5\"/><text x=\"115\" y=\"126\">handled ({handled})</text>\
         <line x1=\"200\" y1=\"122\" x2=\"212\" y2=\"122\" stroke=\"#b00\" stroke-width=\"1.5\"/><text x=\"215\" y=\"126\">failed ({failed})</text></g></svg>",
        width.saturating_sub(20)
    );
    svg
}

/// A minute's start as `HH:MM` UTC.
fn clock(at: time::OffsetDateTime) -> String {
    format!("{:02}:{:02} UTC", at.hour(), at.minute())
}

fn parse_id(id: &str) -> Result<i64, Box<Response>> {
    id.parse::<i64>().map_err(|_| {
        Box::new(text(
            StatusCode::BAD_REQUEST,
            &format!("{id:?} is not a webhook id"),
        ))
    })
}

async fn detail(
    State(admin): State<Arc<Admin>>,
    original: OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let base = base(&original, &format!("/webhooks/{id}"));
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let webhook = match admin.inbox.get(id).await {
        Ok(Some(webhook)) => webhook,
        Ok(None) => return text(StatusCode::NOT_FOUND, &format!("no webhook {id}")),
        Err(e) => return store_failed(&e),
    };
    let summary = &webhook.summary;
    let payload = serde_json::from_slice::<serde_json::Value>(&webhook.body)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&webhook.body).into_owned());
    let mut body = format!("<h1>Webhook {id}</h1>{}", nav(&base));
    let _ = write!(
        body,
        "<table><tr><th>state</th><td class=\"{state}\">{state}</td></tr><tr><th>provider</th><td>{}</td></tr><tr><th>shipment</th><td><a href=\"{}/shipments/{}\">{}</a></td></tr><tr><th>status</th><td>{}</td></tr><tr><th>endpoint</th><td>{}</td></tr><tr><th>tenant</th><td>{}</td></tr><tr><th>received</th><td>{}</td></tr><tr><th>dedup key</th><td><code>{}</code></td></tr><tr><th>duplicates dropped</th><td>{}</td></tr></table>",
        escape(summary.provider.as_str()),
        escape(&base),
        encode(summary.event.id.as_str()),
        escape(summary.event.id.as_str()),
        escape(&summary.event.raw_status),
        escape(&summary.endpoint),
        escape(summary.tenant.as_deref().unwrap_or("")),
        time(summary.received_at),
        escape(&webhook.dedup_key.to_string()),
        summary.duplicates,
        state = summary.state.as_str(),
    );
    let csrf = admin.csrf().unwrap_or_default();
    if summary.state == WebhookState::Dead {
        let _ = write!(
            body,
            "<form class=\"inline\" method=\"post\" action=\"{0}/webhooks/{id}/replay\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\" id=\"replay\">Replay</button></form> ",
            escape(&base)
        );
    }
    if matches!(summary.state, WebhookState::Dead | WebhookState::Pending) {
        let _ = write!(
            body,
            "<form class=\"inline\" method=\"post\" action=\"{0}/webhooks/{id}/discard\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\" id=\"discard\">Discard</button></form>",
            escape(&base)
        );
    }
    let _ = write!(
        body,
        "<h2>Payload</h2><pre id=\"payload\">{}</pre>",
        escape(&payload)
    );
    body.push_str("<h2>Headers</h2><table>");
    for (name, value) in &webhook.headers {
        let _ = write!(
            body,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(name),
            escape(value)
        );
    }
    body.push_str("</table><h2>Attempts</h2><table><tr><th>#</th><th>started</th><th>ended</th><th>outcome</th><th>error</th></tr>");
    for attempt in &webhook.history {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            attempt.number,
            attempt.started_at.map(time).unwrap_or_default(),
            time(attempt.ended_at),
            attempt.outcome.as_str(),
            escape(attempt.error.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</table>");
    html(StatusCode::OK, &format!("Webhook {id}"), &body)
}

/// Checks a POST's CSRF token (unless a bearer token authenticated it).
fn check_csrf(
    admin: &Admin,
    bearer: Option<axum::Extension<Bearer>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<(), Box<Response>> {
    if matches!(bearer, Some(axum::Extension(Bearer(true)))) {
        return Ok(());
    }
    let Ok(Form(form)) = form else {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "malformed form: expected csrf=...",
        )));
    };
    let Some(expected) = admin.csrf() else {
        return Err(Box::new(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the admin page has no key (the operating system gave no random bytes): replay and discard are refused",
        )));
    };
    match form.get("csrf") {
        Some(given) if equal(given, &expected) => Ok(()),
        Some(_) => Err(Box::new(text(
            StatusCode::FORBIDDEN,
            "wrong CSRF token: reload the page",
        ))),
        None => Err(Box::new(text(StatusCode::FORBIDDEN, "missing CSRF token"))),
    }
}

fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "bad response"))
}

async fn replay(
    State(admin): State<Arc<Admin>>,
    original: OriginalUri,
    Path(id): Path<String>,
    bearer: Option<axum::Extension<Bearer>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let (base, id) = match posted(&admin, &original, &id, "replay", bearer, form) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    match admin.inbox.replay(id).await {
        Ok(true) => see_other(&format!("{base}/webhooks/{id}")),
        Ok(false) => unchanged(&admin, id, "is not dead: only dead webhooks are replayed").await,
        Err(e) => store_failed(&e),
    }
}

async fn discard(
    State(admin): State<Arc<Admin>>,
    original: OriginalUri,
    Path(id): Path<String>,
    bearer: Option<axum::Extension<Bearer>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let (base, id) = match posted(&admin, &original, &id, "discard", bearer, form) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    match admin.inbox.discard(id).await {
        Ok(true) => see_other(&home(&base)),
        Ok(false) => unchanged(&admin, id, "is neither dead nor pending: it is kept").await,
        Err(e) => store_failed(&e),
    }
}

/// A POST to `/webhooks/{id}/{action}`, checked before anything changes:
/// the base of the page's links and the webhook's id, or the refusal.
fn posted(
    admin: &Admin,
    original: &OriginalUri,
    id: &str,
    action: &str,
    bearer: Option<axum::Extension<Bearer>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<(String, i64), Box<Response>> {
    let base = base(original, &format!("/webhooks/{id}/{action}"));
    let id = parse_id(id)?;
    check_csrf(admin, bearer, form)?;
    Ok((base, id))
}

/// Why a replay or discard changed nothing: 404 for an unknown webhook,
/// otherwise 409, the webhook `{id}` followed by `why`.
async fn unchanged(admin: &Admin, id: i64, why: &str) -> Response {
    match admin.inbox.get(id).await {
        Ok(None) => text(StatusCode::NOT_FOUND, &format!("no webhook {id}")),
        Ok(Some(_)) => text(StatusCode::CONFLICT, &format!("webhook {id} {why}")),
        Err(e) => store_failed(&e),
    }
}

async fn timeline(
    State(admin): State<Arc<Admin>>,
    original: OriginalUri,
    Path(shipment): Path<String>,
) -> Response {
    let base = base(&original, &format!("/shipments/{}", encode(&shipment)));
    let base = if base.is_empty() {
        // The path came decoded: strip by segments instead.
        let path = original.0.path();
        path.rfind("/shipments/")
            .map(|at| path[..at].to_owned())
            .unwrap_or_default()
    } else {
        base
    };
    let filter = Filter::default().shipment(shipment.clone()).limit(MAX_PAGE);
    let page = match admin.inbox.list(&filter).await {
        Ok(page) => page,
        Err(e) => return store_failed(&e),
    };
    let mut body = format!("<h1>Shipment {}</h1>{}", escape(&shipment), nav(&base));
    body.push_str("<table><tr><th>received</th><th>event time</th><th>provider</th><th>status</th><th>state</th><th>webhook</th></tr>");
    let mut webhooks = page.webhooks;
    webhooks.sort_by_key(|webhook| (webhook.event.timestamp, webhook.id));
    for webhook in &webhooks {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{state}\">{state}</td><td><a href=\"{}/webhooks/{id}\">{id}</a></td></tr>",
            time(webhook.received_at),
            webhook.event.timestamp.map(time).unwrap_or_default(),
            escape(webhook.provider.as_str()),
            escape(&webhook.event.raw_status),
            escape(&base),
            state = webhook.state.as_str(),
            id = webhook.id,
        );
    }
    body.push_str("</table>");
    if webhooks.is_empty() {
        body.push_str("<p>No webhook about this shipment.</p>");
    }
    html(StatusCode::OK, &format!("Shipment {shipment}"), &body)
}
