//! What every fuzz target shares: read a fuzz input as a request, send it
//! through a provider's layer to a handler that takes the crate's
//! extractors, and check what came out.
//!
//! An input is one flags byte, two bytes of bit position, then header lines
//! (`name: value`), a blank line and the body. Flags: bit 0, the target
//! proves the request itself with one of [`SECRETS`] (bit 2 picks which);
//! bit 1, it then flips the bit at the position, in what the proof covers;
//! bits 4 to 7, how the body is framed ([`Input::frame`]). Inputs without a
//! blank line are all body.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use sha2::Sha256;
use shipment_webhooks::{Provider, ShipmentEvent};
use tower_layer::Layer;
use tower_service::Service;

/// The body limit of every target's layer: small, so inputs cross it.
pub const BODY_LIMIT: usize = 2048;

/// The secrets every target's layer is configured with, for rotation.
pub const SECRETS: [&str; 2] = [
    "fuzz-secret-of-thirty-two-bytes!",
    "the-previous-fuzz-secret-32-byte",
];

/// The most heap a layer may hold for one request, beyond the request itself:
/// a layer's copies of a body at the limit (strings with escapes, the JWT's
/// decoded payload, the event's strings) and the service's own state. A layer
/// that allocated by a declared or decoded length, not by what it read, would
/// cross it.
pub const MAX_REQUEST_HEAP: usize = 8 * BODY_LIMIT + 16 * 1024;

/// The system allocator, counting live bytes and their peak, so a target can
/// check what one request holds at once.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// [`PEAK`] when the handler was called: what the layer alone held.
static PEAK_AT_HANDLER: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        grew(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A fuzz input read as a request.
#[derive(Debug)]
pub struct Input {
    /// The secret the target proves the request with, if any.
    pub secret: Option<&'static str>,
    /// The bit to flip in what the proof covers, once proven.
    pub flip: Option<usize>,
    /// The size of the frames the body is sent in, with no declared length,
    /// as a chunked body is; `None`: in one frame, its length declared.
    pub frame: Option<usize>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// An input cut into its parts, before reading the head as headers.
#[derive(Debug)]
pub struct Parts<'a> {
    pub flags: u8,
    pub position: usize,
    pub head: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Parts<'a> {
    pub fn split(data: &'a [u8]) -> Option<Self> {
        let (&[flags, high, low], rest) = data.split_first_chunk()?;
        let (head, body) = match rest.windows(2).position(|pair| pair == b"\n\n") {
            Some(end) => (&rest[..end], &rest[end + 2..]),
            None => (&[][..], rest),
        };
        Some(Self {
            flags,
            position: usize::from(u16::from_be_bytes([high, low])),
            head,
            body,
        })
    }

    /// The secret to prove the request with, if flags bit 0 asks for one.
    pub fn secret(&self) -> Option<&'static str> {
        (self.flags & 1 == 1).then_some(SECRETS[usize::from(self.flags >> 2 & 1)])
    }

    /// The bit to flip once proven, if flags bit 1 asks for one.
    pub fn flip(&self) -> Option<usize> {
        (self.flags & 2 == 2).then_some(self.position)
    }

    /// The body's frame size: flags bits 4 to 7 are `n`, and the frames
    /// 2^(n-1) bytes (1 to 16 KiB); 0 sends the body whole.
    pub fn frame(&self) -> Option<usize> {
        match self.flags >> 4 {
            0 => None,
            n => Some(1 << (n - 1)),
        }
    }
}

impl Input {
    pub fn parse(data: &[u8]) -> Option<Self> {
        let parts = Parts::split(data)?;
        let mut headers = HeaderMap::new();
        for line in parts.head.split(|&byte| byte == b'\n') {
            let Some(colon) = line.iter().position(|&byte| byte == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii_start());
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                headers.append(name, value);
            }
        }
        Some(Self {
            secret: parts.secret(),
            flip: parts.flip(),
            frame: parts.frame(),
            headers,
            body: parts.body.to_vec(),
        })
    }

    /// Replaces every `name` header with `value`, if it is a valid header value.
    pub fn set_header(&mut self, name: HeaderName, value: &[u8]) {
        self.headers.remove(&name);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            self.headers.insert(name, value);
        }
    }

    pub fn request(&self) -> Request<FuzzBody> {
        let body = FuzzBody {
            rest: Bytes::from(self.body.clone()),
            frame: self.frame,
        };
        let mut request = Request::post("/webhook")
            .body(body)
            .expect("a fixed method and URI make a request");
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// A request body as a server hands it on: whole, its length declared (as
/// with `Content-Length`), or in frames of [`Input::frame`] bytes with no
/// length declared (as a chunked body, or HTTP/2 DATA frames).
#[derive(Debug)]
pub struct FuzzBody {
    rest: Bytes,
    frame: Option<usize>,
}

impl http_body::Body for FuzzBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let len = self.rest.len().min(self.frame.unwrap_or(usize::MAX));
        Poll::Ready((len > 0).then(|| Ok(Frame::data(self.rest.split_to(len)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.frame {
            None => SizeHint::with_exact(self.rest.len() as u64),
            Some(_) => SizeHint::default(),
        }
    }
}

/// Flips the bit at `at` (modulo the length) of `bytes`.
pub fn flip(bytes: &mut [u8], at: usize) {
    if !bytes.is_empty() {
        let at = at % (bytes.len() * 8);
        bytes[at / 8] ^= 1 << (at % 8);
    }
}

/// HMAC-SHA256 of the concatenated `message` with `key`.
pub fn hmac(key: &str, message: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    for part in message {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `tag` is the HMAC of `message` under one of [`SECRETS`].
pub fn signed_by_a_secret(message: &[&[u8]], tag: &[u8]) -> bool {
    SECRETS.iter().any(|secret| hmac(secret, message) == tag)
}

/// The one value of `name`, as text: what a sender must send exactly once.
pub fn only_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    values
        .next()
        .is_none()
        .then(|| value.to_str().ok())
        .flatten()
}

/// An HS256 JWT over `header` and `payload`, unpadded base64url as Shipmondo sends it.
pub fn hs256_token(secret: &str, header: &[u8], payload: &[u8]) -> Vec<u8> {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = URL_SAFE_NO_PAD.encode(hmac(secret, &[signed.as_bytes()]));
    format!("{signed}.{signature}").into_bytes()
}

/// Whether `body` is `{"data": "<JWT>"}` whose JWT is HS256, lists no `crit`
/// and is signed with one of [`SECRETS`]: what Shipmondo's layer must check.
/// Only those fields are read, and others skipped, as the layer does:
/// serde_json checks neither UTF-8 nor depth in what it skips.
pub fn shipmondo_token_holds(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Envelope {
        data: String,
    }
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        #[serde(default)]
        crit: Vec<IgnoredAny>,
    }
    let Ok(Envelope { data: token }) = serde_json::from_slice(body) else {
        return false;
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return false;
    };
    let signed = &token[..header.len() + 1 + payload.len()];
    let header = URL_SAFE_NO_PAD.decode(header).ok();
    let header = header.and_then(|header| serde_json::from_slice::<Header>(&header).ok());
    header.is_some_and(|header| header.alg == "HS256" && header.crit.is_empty())
        && URL_SAFE_NO_PAD
            .decode(signature)
            .is_ok_and(|tag| signed_by_a_secret(&[signed.as_bytes()], &tag))
}

/// Whether `body`'s JWT payload, decoded here without the crate, is a
/// connection test: a JSON object with `"action": "connection_test"` and no
/// `data`. Like the layer, it reads only those two members, so bytes in
/// others (not UTF-8, say) do not change its answer.
fn shipmondo_connection_test(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Envelope {
        data: String,
    }
    #[derive(Deserialize)]
    struct Ping {
        #[serde(default)]
        action: Option<String>,
        #[serde(default)]
        data: Option<IgnoredAny>,
    }
    let Ok(Envelope { data: token }) = serde_json::from_slice(body) else {
        return false;
    };
    let Some(payload) = token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
    else {
        return false;
    };
    // Shipmondo sends the payload as a JSON string holding it.
    let payload = match payload.trim_ascii_start().first() {
        Some(b'"') => match serde_json::from_slice::<String>(&payload) {
            Ok(inner) => inner.into_bytes(),
            Err(_) => return false,
        },
        _ => payload,
    };
    payload.trim_ascii_start().starts_with(b"{")
        && serde_json::from_slice::<Ping>(&payload).is_ok_and(|ping| {
            ping.action.as_deref() == Some("connection_test") && ping.data.is_none()
        })
}

/// Whether `body`, read here without the crate, is Sendcloud's test button:
/// a JSON object whose `action` is `test_webhook`. Only that member is read.
fn sendcloud_test_webhook(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Action {
        action: String,
    }
    body.trim_ascii_start().starts_with(b"{")
        && serde_json::from_slice::<Action>(body).is_ok_and(|it| it.action == "test_webhook")
}

/// What a layer let through: a webhook to its handler, or a connection test
/// (Shipmondo's, Sendcloud's `test_webhook`) it answered itself.
#[derive(Debug, Clone)]
pub enum Accepted {
    Delivered(Delivered),
    ConnectionTest,
}

/// What a handler behind a layer got: the layer's event, whether the typed
/// payload `P` decoded, and the body.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub event: ShipmentEvent,
    pub payload_decoded: bool,
    pub body: Bytes,
}

/// A handler taking [`ShipmentEvent`] and the typed payload `P`, which
/// reports what it got in its response's extensions.
pub struct Handler<P>(PhantomData<fn() -> P>);

impl<P> Clone for Handler<P> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<P: FromRequestParts<()> + 'static> Service<Request<Body>> for Handler<P> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        PEAK_AT_HANDLER.store(PEAK.load(Ordering::Relaxed), Ordering::Relaxed);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let event = ShipmentEvent::from_request_parts(&mut parts, &())
                .await
                .expect("the layer records the event of every request it passes on");
            let payload_decoded = P::from_request_parts(&mut parts, &()).await.is_ok();
            let body = body
                .collect()
                .await
                .expect("the layer passes on a body in memory")
                .to_bytes();
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(Delivered {
                event,
                payload_decoded,
                body,
            });
            Ok(response)
        })
    }
}

/// Sends `input` through `layer` to a [`Handler`] and checks what every
/// layer owes its sender: an answer of 200, 400, 401 or 413, never a panic or
/// a 500; a JSON error on refusal; and on 200, the `provider` event and the
/// body exactly as sent, within the limit, or the answer to a connection
/// test (Shipmondo's or Sendcloud's) whose payload an independent decoding
/// finds to be one. Returns what
/// was accepted.
pub fn send<L, P>(layer: &L, provider: Provider, input: &Input) -> Option<Accepted>
where
    L: Layer<Handler<P>>,
    L::Service: Service<
            Request<FuzzBody>,
            Response = Response<Body>,
            Error = Infallible,
            Future: Future<Output = Result<Response<Body>, Infallible>>,
        >,
    P: FromRequestParts<()> + 'static,
{
    let request = input.request();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    PEAK_AT_HANDLER.store(0, Ordering::Relaxed);
    let mut service = layer.layer(Handler(PhantomData));
    let Ok(()) = now(std::future::poll_fn(|cx| service.poll_ready(cx)));
    let Ok(mut response) = now(service.call(request));
    // The typed payload the handler decodes is the handler's own cost.
    let peak = match PEAK_AT_HANDLER.load(Ordering::Relaxed) {
        0 => PEAK.load(Ordering::Relaxed),
        at_handler => at_handler,
    };
    let held = peak - before;
    assert!(
        held <= MAX_REQUEST_HEAP,
        "the layer held {held} bytes at once"
    );
    let status = response.status();
    if status == StatusCode::OK {
        let Some(delivered) = response.extensions_mut().remove::<Delivered>() else {
            let is_test = match provider {
                Provider::Shipmondo => shipmondo_connection_test(&input.body),
                Provider::Sendcloud => sendcloud_test_webhook(&input.body),
                other => panic!("only the handler answers {other}'s webhooks 200"),
            };
            let body = now(response.into_body().collect())
                .expect("an answer's body is in memory")
                .to_bytes();
            assert_eq!(&body[..], br#"{"status":"connection test received"}"#);
            assert!(is_test, "answered a payload that is no connection test");
            return Some(Accepted::ConnectionTest);
        };
        assert_eq!(delivered.event.provider, provider);
        assert_eq!(delivered.body, input.body, "the handler got other bytes");
        assert!(
            input.body.len() <= BODY_LIMIT,
            "a body over the limit passed"
        );
        return Some(Accepted::Delivered(delivered));
    }
    assert!(
        [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::PAYLOAD_TOO_LARGE
        ]
        .contains(&status),
        "answered {status}"
    );
    let body = now(response.into_body().collect())
        .expect("a refusal's body is in memory")
        .to_bytes();
    let json: Value = serde_json::from_slice(&body).expect("a refusal is JSON");
    assert!(json["error"].is_string(), "{json}");
    None
}

/// The output of `future`, which must not wait: every body here is in memory.
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a request whose body is in memory never waits"),
    }
}
