//! What one request costs in heap while the layer reads a body sent in tiny
//! frames, over a real connection: its body once, plus the server's own
//! buffers, however the body is framed. Keeping every frame, as the layer
//! once did, cost about 40 times the body. A body in one frame is not
//! copied at all.
//!
//! The server runs on a thread of its own, and a counting allocator counts
//! only that thread's allocations, so the client's buffers are not measured.

#[path = "../tests/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use futures_util::stream;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use shipment_webhooks::GoShiipSignature;
use shipment_webhooks::testing::Webhook;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// hyper's HTTP/1 read buffer: on a fast connection hyper reads up to this
/// much at once (its default `max_buf_size`) whatever the body, and while a
/// frame it handed out still shares one buffer, it reads into another.
const HYPER_READ_BUFFER: usize = 8192 + 4096 * 100;

/// A well-formed GoShiip signature that matches nothing: the layer reads the
/// whole body before it can refuse it.
const SIGNATURE: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The system allocator, counting the live bytes and their peak on the
/// threads that ask for it.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    // `try_with`: the allocator is still called while thread locals are torn down.
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

fn grew(size: usize) {
    if counted() {
        let size = size as isize;
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

fn shrank(size: usize) {
    if counted() {
        LIVE.fetch_sub(size as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to `System` with the caller's arguments unchanged;
// the counting around it neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrank(layout.size());
        grew(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters are global: one measurement at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// GoShiip's layer with body limit `limit`, in front of a handler that never runs.
fn app(limit: usize) -> Router {
    async fn unreachable() -> StatusCode {
        panic!("no request here carries a valid signature")
    }
    let layer = GoShiipSignature::new("your_secret_key").body_limit(limit);
    Router::new().route("/webhooks/goshiip", post(unreachable).layer(layer))
}

/// Runs `serve` with [`app`] on a thread of its own, whose allocations, and
/// only those, are counted; returns the address it serves on.
fn serve_counted<F, Fut>(limit: usize, serve: F) -> SocketAddr
where
    F: FnOnce(Router) -> Fut + Send + 'static,
    Fut: Future<Output = SocketAddr>,
{
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        COUNTED.set(true);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the server");
        runtime.block_on(async {
            sender
                .send(serve(app(limit)).await)
                .expect("the test waits for the address");
            std::future::pending::<()>().await
        });
    });
    receiver
        .recv()
        .expect("the server thread sends its address")
}

/// What `exchange` returned, and the most heap the server held at once
/// during it, beyond what it held before.
async fn peak_heap<T>(exchange: impl Future<Output = T>) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let output = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("the server answers within 30 s");
    let peak = PEAK.load(Ordering::Relaxed) - before;
    (output, usize::try_from(peak).unwrap_or(0))
}

/// Asserts that the layer read the whole body (it can only then say that
/// the signature matches nothing) and that the request held at most its
/// body `limit` and `allowance` for the server's own buffers. Prints the
/// peak (`cargo test -p shipment-webhooks-benches --test memory -- --nocapture`).
#[track_caller]
fn assert_read_within(
    status: StatusCode,
    json: &Value,
    peak: usize,
    limit: usize,
    allowance: usize,
) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    assert_eq!(
        json["details"],
        "the signature matches no configured secret"
    );
    eprintln!(
        "peak heap {peak} bytes, {:.2}x the body limit of {limit}",
        peak as f64 / limit as f64
    );
    assert!(
        peak <= limit + allowance,
        "one request held {peak} bytes of heap at once, {:.1}x its body limit of {limit}",
        peak as f64 / limit as f64
    );
}

#[tokio::test]
async fn a_body_of_one_byte_chunks_costs_about_its_limit() {
    const LIMIT: usize = 256 * 1024;
    let _one = ONE_AT_A_TIME.lock().await;
    let address = serve_counted(LIMIT, common::serve);
    // The whole request in one write, chunked framing and all: each byte of
    // the body is a chunk of its own, `1\r\n \r\n`.
    let mut request = format!(
        "POST /webhooks/goshiip HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-Signature: {SIGNATURE}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..LIMIT {
        request.extend_from_slice(b"1\r\n \r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");

    let (response, peak) = peak_heap(async {
        let mut stream = TcpStream::connect(address).await?;
        stream.write_all(&request).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        std::io::Result::Ok(response)
    })
    .await;
    let response = response.expect("the exchange completes");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| panic!("an HTTP/1.1 response: {text}"));
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    assert_read_within(status, &json, peak, LIMIT, 2 * HYPER_READ_BUFFER);
}

/// The h2c server's stream window, in bytes. h2 drops a connection whose
/// small DATA frames queue up faster than the application reads them
/// (GOAWAY `ENHANCE_YOUR_CALM`), so an attacker paces them, as this window
/// does: the client sends no more frames until the layer has read these.
const H2C_WINDOW: u32 = 128;

/// Serves `app` on 127.0.0.1 over h2c with prior knowledge, as `axum::serve`
/// does with axum's `http2` feature, with a stream window of [`H2C_WINDOW`].
async fn serve_h2c(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let app = app.clone();
            let service = service_fn(move |request| app.clone().oneshot(request));
            let connection = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(H2C_WINDOW)
                .serve_connection(TokioIo::new(stream), service);
            tokio::spawn(connection);
        }
    });
    address
}

#[tokio::test]
async fn a_body_of_one_byte_h2c_data_frames_costs_about_its_limit() {
    // Smaller than over HTTP/1.1: a debug build of h2 is slow per frame.
    const LIMIT: usize = 64 * 1024;
    let _one = ONE_AT_A_TIME.lock().await;
    let address = serve_counted(LIMIT, serve_h2c);
    let uri = format!("http://{address}/webhooks/goshiip");
    // h2c with prior knowledge: the connection starts with HTTP/2's preface.
    let stream = TcpStream::connect(address).await.expect("a connection");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an h2c connection");
    tokio::spawn(connection);
    // A first answer (401: no signature), so that the client has applied the
    // server's settings, the window above all, before it sends the body.
    let first = Request::post(&uri)
        .body(Empty::new().boxed())
        .expect("a valid request");
    let response = sender.send_request(first).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let frames = std::iter::repeat_n(Bytes::from_static(b" "), LIMIT)
        .map(|byte| Ok::<_, Infallible>(Frame::data(byte)));
    let request = Request::post(&uri)
        .header("content-type", "application/json")
        .header("x-signature", SIGNATURE)
        .body(StreamBody::new(stream::iter(frames)).boxed())
        .expect("a valid request");
    let (answer, peak) = peak_heap(async {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        hyper::Result::Ok((status, body))
    })
    .await;
    let (status, body) = answer.expect("the exchange completes");
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // h2's own buffers and the connection's state: about 70 KiB measured.
    assert_read_within(status, &json, peak, LIMIT, 128 * 1024);
}

#[tokio::test]
async fn a_body_in_one_frame_reaches_the_handler_uncopied() {
    const SECRET: &str = "your_secret_key";
    let webhook = Webhook::goshiip("Delivered");
    let body = Bytes::from(webhook.payload_json());
    let sent = body.as_ptr() as usize;
    let handler = move |received: Bytes| async move {
        if received.as_ptr() as usize == sent {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let app = Router::new().route(
        "/webhooks/goshiip",
        post(handler).layer(GoShiipSignature::new(SECRET)),
    );
    let (parts, _) = webhook.sign(SECRET).into_parts();
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    let response = app.oneshot(request).await.expect("a router never fails");
    assert_eq!(response.status(), StatusCode::OK, "the body was copied");
}
