//! The admin page in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`, Debian's `chromium-driver`), signing in with the token
//! and clicking Replay, which must change the webhook's row in the SQLite
//! file.
//!
//! The driver is WebDriver's JSON protocol spoken with the hyper client the
//! tests already use: a dozen commands, no new dependency (a client crate
//! such as `fantoccini` would bring its own HTTP and TLS stack for them).
//! Built with `--all-features` and ignored there (it needs Chromium); `.ci/run` installs
//! Chromium and runs it with `--ignored`, where a missing `chromedriver`
//! fails it.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use shipment_webhooks::inbox::{AdminAccess, Delivery, Inbox, WebhookState};

use crate::common::send;
use crate::harness::{KOSMO, app, at, kosmo, sqlite_path};

const TOKEN: &str = "browser-admin-token-42";

struct Driver {
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Body>,
    base: String,
}

impl Driver {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
            .expect("a WebDriver request");
        let response = self
            .client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("chromedriver answers {method} {path}: {e}"));
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("chromedriver's answer is readable")
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "chromedriver answers JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value["value"].clone()
    }

    async fn element(&self, session: &str, css: &str) -> String {
        let found = self
            .call(
                "POST",
                &format!("/session/{session}/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_object()
            .and_then(|object| object.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("an element {css}: {found}"))
            .to_owned()
    }

    async fn click(&self, session: &str, css: &str) {
        let element = self.element(session, css).await;
        self.call(
            "POST",
            &format!("/session/{session}/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The page's source once it contains `text` (a click's navigation may
    /// still be loading when the click returns), within 10 s.
    async fn wait_for(&self, session: &str, text: &str) -> String {
        for _ in 0..200 {
            let source = self.source(session).await;
            if source.contains(text) {
                return source;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the page never showed {text:?}: {}",
            self.source(session).await
        );
    }

    async fn source(&self, session: &str) -> String {
        self.call("GET", &format!("/session/{session}/source"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

#[ignore = "needs chromium and chromium-driver: .ci/run installs them and runs it with --ignored"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_browser_replay_clicked_in_chromium_changes_the_sqlite_row() {
    let inbox = Inbox::sqlite(sqlite_path("browser"))
        .await
        .expect("a SQLite inbox");
    send(
        &app(&inbox),
        kosmo("SG-BROWSER", "DELIVERED", at(0))
            .field("/note", "<script>document.title='owned'</script>")
            .sign(KOSMO),
    )
    .await;
    inbox
        .worker(|_: Delivery| async { Err("carrier API down".into()) })
        .max_attempts(1)
        .run_until_idle()
        .await
        .expect("the worker runs");
    let id = inbox.dead(1).await.expect("dead webhooks")[0].id;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the app");
    let address = listener.local_addr().expect("its address");
    let router = Router::new().nest(
        "/admin/webhooks",
        inbox.admin(AdminAccess::Token(TOKEN.into())),
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let port = free_port();
    let mut chromedriver = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver on PATH: apt-get install chromium chromium-driver");
    let driver = Driver {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let mut ready = false;
    for _ in 0..100 {
        let status = axum::http::Request::get(format!("{}/status", driver.base))
            .body(Body::empty())
            .expect("a request");
        if driver.client.request(status).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "chromedriver did not start listening in 10 s");
    let session = driver
        .call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
            }}}})),
        )
        .await["sessionId"]
        .as_str()
        .expect("a session id")
        .to_owned();

    let page = format!("http://{address}/admin/webhooks");
    driver
        .call(
            "POST",
            &format!("/session/{session}/url"),
            Some(json!({"url": page})),
        )
        .await;
    let login = driver.element(&session, "input[name=token]").await;
    driver
        .call(
            "POST",
            &format!("/session/{session}/element/{login}/value"),
            Some(json!({"text": TOKEN})),
        )
        .await;
    driver.click(&session, "button[type=submit]").await;
    // Signed in: the list.
    driver.wait_for(&session, "SG-BROWSER").await;

    driver
        .click(
            &session,
            &format!("a[href='/admin/webhooks/webhooks/{id}']"),
        )
        .await;
    driver.wait_for(&session, "id=\"replay\"").await;
    let title = driver
        .call("GET", &format!("/session/{session}/title"), None)
        .await;
    assert_eq!(
        title,
        format!("Webhook {id} · webhooks"),
        "the body's script did not run"
    );
    assert_eq!(
        inbox
            .get(id)
            .await
            .expect("the store answers")
            .map(|w| w.summary.state),
        Some(WebhookState::Dead)
    );
    driver.click(&session, "#replay").await;
    // The redirect back shows it pending, once the POST is done.
    driver
        .wait_for(&session, "class=\"pending\">pending<")
        .await;
    assert_eq!(
        inbox
            .get(id)
            .await
            .expect("the store answers")
            .map(|w| w.summary.state),
        Some(WebhookState::Pending),
        "the click replayed it in the SQLite file"
    );

    driver
        .call("DELETE", &format!("/session/{session}"), None)
        .await;
    chromedriver.kill().await.expect("chromedriver stops");
}
