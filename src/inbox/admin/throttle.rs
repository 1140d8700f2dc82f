//! Wrong admin tokens, counted per client per minute: past
//! [`FAILURES_PER_MINUTE`], the client's next tries are refused 429 with
//! `Retry-After` until the minute is over, right token or not, so a guesser
//! learns nothing more.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How many wrong tokens a client may send in a minute.
pub(super) const FAILURES_PER_MINUTE: u32 = 10;

const WINDOW: Duration = Duration::from_secs(60);

/// The most clients counted at once: past it, the rest share one count, so
/// a flood from many addresses cannot grow the map without bound.
const MAX_CLIENTS: usize = 10_000;

/// Marks a response that refused a wrong token, for [`throttle`] to count.
#[derive(Debug, Clone, Copy)]
pub(super) struct WrongToken;

/// The counts of this minute, by client (`None`: a client whose address the
/// server does not give, or one past [`MAX_CLIENTS`]).
#[derive(Debug)]
pub(super) struct Failures(Mutex<Window>);

#[derive(Debug)]
struct Window {
    started: Instant,
    counts: HashMap<Option<IpAddr>, u32>,
}

impl Default for Failures {
    fn default() -> Self {
        Self(Mutex::new(Window {
            started: Instant::now(),
            counts: HashMap::new(),
        }))
    }
}

impl Failures {
    /// This minute's counts, a fresh minute's if the last one is over.
    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        // Every change is whole before it could panic.
        let mut window = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if window.started.elapsed() >= WINDOW {
            window.started = Instant::now();
            window.counts.clear();
        }
        window
    }

    /// How long `client` must wait, if it sent too many wrong tokens this
    /// minute.
    fn wait(&self, client: Option<IpAddr>) -> Option<Duration> {
        let window = self.window();
        let count = window.counts.get(&client).copied().unwrap_or_default();
        (count >= FAILURES_PER_MINUTE).then(|| WINDOW.saturating_sub(window.started.elapsed()))
    }

    fn record(&self, client: Option<IpAddr>) {
        let mut window = self.window();
        let client = if window.counts.len() >= MAX_CLIENTS && !window.counts.contains_key(&client) {
            None
        } else {
            client
        };
        let count = window.counts.entry(client).or_default();
        *count = count.saturating_add(1);
    }
}

/// Refuses a request that tries a token (a bearer token, or the login
/// form) from a client past its wrong tries for the minute; counts the
/// wrong tokens the page refused. A session cookie is not a try: those
/// already signed in are never refused here.
pub(super) async fn throttle(
    State(failures): State<Arc<Failures>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let tries = request.headers().contains_key(header::AUTHORIZATION)
        || (request.method() == axum::http::Method::POST && request.uri().path() == "/login");
    if tries && let Some(wait) = failures.wait(client) {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "too many wrong admin tokens: try again in {seconds} s (at most {FAILURES_PER_MINUTE} a minute)\n"
            ),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return response;
    }
    let response = next.run(request).await;
    if response.extensions().get::<WrongToken>().is_some() {
        failures.record(client);
    }
    response
}
