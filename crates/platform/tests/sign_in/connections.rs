//! Slow and idle clients, and clients that take no answers, are closed while the node keeps
//! answering, and a login page's held status request is not; beyond the connection cap
//! clients wait; every answer carries `nosniff`, and every answer with personal data,
//! credentials or tokens `no-store`; oversized requests are refused in the platform's format.

use std::time::{Duration, Instant};

use cyberid_platform::Settings;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Harness, on_each_backend, start};
use crate::support::browser::{begin, browser, status_of, until_waiting, wait_long};
use crate::support::client::{registered_client, registration};
use crate::support::wallet::{Decide, decide, details, proof};
use crate::support::{adult, sign_in};

/// Generous: the verdict is whether the server closes, not how fast this machine is.
const DEADLINE: Duration = Duration::from_secs(60);

fn address(h: &Harness) -> String {
    h.url.trim_start_matches("http://").to_owned()
}

/// A connection that has sent `sent` and then nothing more.
async fn holding(h: &Harness, sent: &[u8]) -> TcpStream {
    connected(&address(h), sent).await
}

async fn connected(address: &str, sent: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream
}

/// A client that opens a new connection for every request. The node closes idle
/// connections within a second in these tests, and a pooled one reused at the moment the
/// node closes it would fail the request: a race of the test's, not the node's.
fn unpooled() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Reads until the server closes the connection; panics if it does not within
/// [`DEADLINE`]. What the server said before closing.
async fn closed_by_server(mut stream: impl AsyncRead + Unpin) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_and_idle_clients_are_closed_and_the_node_keeps_answering() {
    let mut h = start(false, |s: &mut Settings| {
        s.server.header_read_timeout_seconds = 1;
        s.server.body_timeout_seconds = 1;
        s.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    h.http = unpooled();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(("nothing", holding(&h, b"").await));
        held.push((
            "half a header",
            holding(&h, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await,
        ));
        held.push((
            "a body never sent",
            holding(
                &h,
                b"POST /api/v1/enrolments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            )
            .await,
        ));
    }
    // An idle keep-alive connection, after one complete request.
    let mut idle = holding(&h, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut first = [0u8; 1024];
    let n = idle.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    held.push(("idle after a request", idle));
    // The metrics listener bounds its connections too.
    let metrics = h
        .metrics_url
        .as_deref()
        .unwrap()
        .trim_start_matches("http://");
    held.push((
        "nothing, at the metrics listener",
        connected(metrics, b"").await,
    ));
    // A body sent a byte every 100 ms, far sooner than the body timeout each time, but
    // never whole: the timeout bounds the body, not the wait for each byte.
    let (dripped, mut dripping) = holding(
        &h,
        b"POST /api/v1/enrolments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{",
    )
    .await
    .into_split();
    let drip = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < 2 * DEADLINE {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if dripping.write_all(b" ").await.is_err() {
                return;
            }
        }
    });

    // While they are held, the node answers.
    let health = h
        .http
        .get(format!("{}/healthz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let started = Instant::now();
    for (what, stream) in held {
        let said = closed_by_server(stream).await;
        if what == "a body never sent" {
            // The request is refused in the platform's format before the connection goes.
            assert!(
                said.is_empty() || said.contains("invalid_request"),
                "{said}"
            );
        }
    }
    // (The answer may be lost to the reset that bytes sent after the close provoke.)
    let said = closed_by_server(dripped).await;
    assert!(said.is_empty() || said.contains("did not arrive"), "{said}");
    drip.abort();
    assert!(started.elapsed() < DEADLINE);
    let health = h
        .http
        .get(format!("{}/healthz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// A client that sends requests and never reads the answers: once an answer has waited
/// the send timeout for the client to take more of it, the node closes the connection, and
/// the client's writes fail. (Only the send timeout can end it: the node is never waiting
/// for a request's head, and that timeout is an hour here.)
#[tokio::test]
async fn a_client_that_takes_no_answers_is_closed() {
    let mut h = start(false, |s: &mut Settings| {
        s.server.send_timeout_seconds = 1;
        s.server.header_read_timeout_seconds = 3_600;
    })
    .await;
    h.http = unpooled();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address(&h).parse().unwrap()).await.unwrap();
    let (_unread, mut writer) = stream.into_split();
    let requests = b"GET /jwks.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1_000);
    let writing = tokio::spawn(async move { while writer.write_all(&requests).await.is_ok() {} });
    let health = h
        .http
        .get(format!("{}/healthz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    tokio::time::timeout(DEADLINE, writing)
        .await
        .expect("the node kept serving a client that takes no answers")
        .unwrap();
}

/// A login page's status request is held by the node while it waits for the decision:
/// that wait is the server's, and the timeouts for slow clients do not cut it.
#[tokio::test]
async fn a_held_status_request_outlives_the_client_timeouts() {
    let mut h = start(false, |s: &mut Settings| {
        s.server.header_read_timeout_seconds = 1;
        s.server.body_timeout_seconds = 1;
        s.server.send_timeout_seconds = 1;
        wait_long(s);
    })
    .await;
    h.http = unpooled();
    let shop = registered_client(&h, registration(&[])).await;
    let key = h.enrol(&adult(&h, 17)).await;
    let flow = begin(&h, &h.url, &shop, &[]).await;
    let held = tokio::spawn(status_of(format!(
        "{}/login/{}/status?wait=1",
        h.url, flow.id
    )));
    until_waiting(&h, &flow.id, 1).await;
    // Three times each timeout: had one cut the request, it would wait no longer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.platform.waiting_for_decision(&flow.id), 1);
    let details = details(&h, &h.url, &flow.id).await;
    let (_, body) = decide(&h, &h.url, &key, &details, Decide::default()).await;
    assert_eq!(body["status"], "approved");
    assert_eq!(held.await.unwrap(), "done");
}

/// With every slot taken, a new client waits until a connection ends: its answer can only
/// come after one of the held connections was closed.
#[tokio::test]
async fn beyond_the_cap_clients_wait_for_a_free_slot() {
    let h = start(false, |s: &mut Settings| {
        s.server.max_connections = 3;
        s.server.header_read_timeout_seconds = 2;
    })
    .await;
    // Three connections, each answered once (so surely accepted), then idle.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = holding(&h, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut answer = [0u8; 1024];
        let n = stream.read(&mut answer).await.unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let fourth = tokio::time::timeout(DEADLINE, async {
        let mut stream = holding(
            &h,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    })
    .await
    .expect("the fourth client was served once a slot freed");
    assert!(fourth.starts_with("HTTP/1.1 200"), "{fourth}");
    // It was served only after the held ones were closed.
    let mut closed = 0;
    for mut stream in held {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 1, "served while every slot was taken");
}

fn assert_private(response: &reqwest::Response, what: &str) {
    let headers = response.headers();
    assert_eq!(headers["cache-control"], "no-store", "{what}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
}

#[tokio::test]
async fn answers_with_personal_data_or_tokens_are_never_cached() {
    on_each_backend(|h| async move {
        let shop = registered_client(&h, registration(&["region"])).await;
        let (first_key, _) = cyberid_crypto::jose::SigningKey::generate().unwrap();
        let request = h.request_for(&adult(&h, 15), &first_key).await;
        let enrolled = h
            .http
            .post(format!("{}{}", h.url, cyberid_protocol::ENROLMENT_PATH))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(enrolled.status(), 201);
        assert_private(&enrolled, "the enrolment's credential");
        let pin = cyberid_crypto::pin::Pin::parse("135790").unwrap();
        let (_, blinded) = cyberid_crypto::pin::blind(&pin).unwrap();
        let start = h
            .http
            .post(format!(
                "{}{}",
                h.url,
                cyberid_protocol::ENROLMENT_START_PATH
            ))
            .json(&json!({ "blinded_pin": blinded }))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 200);
        assert_private(&start, "enrolment start");

        let device_key = h.enrol(&adult(&h, 16)).await;
        let flow = begin(&h, &h.url, &shop, &[("scope", "openid region")]).await;
        let opened = h
            .http
            .get(format!("{}/api/v1/logins/{}", h.url, flow.id))
            .send()
            .await
            .unwrap();
        assert_eq!(opened.status(), 200);
        assert_private(&opened, "a sign-in's details");

        let (_, tokens, _) = sign_in(&h, &shop, &device_key, &[("scope", "openid region")], |d| {
            Decide {
                claims: d.claims.iter().map(|c| c.name.clone()).collect(),
                ..Decide::default()
            }
        })
        .await;
        let userinfo = h
            .http
            .get(format!("{}/userinfo", h.url))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), 200);
        assert_private(&userinfo, "userinfo");
        let consents = h
            .http
            .post(format!("{}/api/v1/wallet/consents", h.url))
            .json(&json!({ "proof": proof(&device_key, "list-consents", "") }))
            .send()
            .await
            .unwrap();
        assert_eq!(consents.status(), 200);
        assert_private(&consents, "the consents list");

        // nosniff on every kind of answer; public data keeps its own caching.
        for (path, what) in [
            ("/healthz", "JSON"),
            ("/no/such/endpoint", "404"),
            ("/jwks.json", "keys"),
            ("/status/0", "status list"),
            ("/static/login.js", "script"),
        ] {
            let response = h.http.get(format!("{}{path}", h.url)).send().await.unwrap();
            assert_eq!(
                response.headers()["x-content-type-options"],
                "nosniff",
                "{what}"
            );
        }
        let script = h
            .http
            .get(format!("{}/static/login.js", h.url))
            .send()
            .await
            .unwrap();
        assert_eq!(script.headers()["cache-control"], "public, max-age=3600");
        for path in [
            "/jwks.json",
            "/.well-known/jwt-vc-issuer",
            "/.well-known/openid-configuration",
        ] {
            let metadata = h.http.get(format!("{}{path}", h.url)).send().await.unwrap();
            assert_eq!(
                metadata.headers()["cache-control"],
                "public, max-age=300",
                "{path}"
            );
        }
        let wrong_method = h
            .http
            .delete(format!("{}/token", h.url))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_method.status(), 405);
        assert_eq!(wrong_method.headers()["x-content-type-options"], "nosniff");
        let page = browser().get(&flow.login_url).send().await.unwrap();
        assert_eq!(page.headers()["x-content-type-options"], "nosniff");
        assert_eq!(page.headers()["cache-control"], "no-store");
    })
    .await;
}

#[tokio::test]
async fn oversized_requests_are_refused_in_the_platform_format() {
    let h = start(false, |_| {}).await;
    let json_error = |response: reqwest::Response, status: u16| async move {
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
        body
    };
    let page = |response: reqwest::Response, status: u16| async move {
        assert_eq!(response.status(), status);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        response.text().await.unwrap()
    };
    // 413: a JSON body, a form body at /token, a form in the browser.
    let big = "x".repeat(100 * 1024);
    let response = h
        .http
        .post(format!("{}{}", h.url, cyberid_protocol::ENROLMENT_PATH))
        .header("content-type", "application/json")
        .body(format!("{{\"ticket\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    json_error(response, 413).await;
    let response = h
        .http
        .post(format!("{}/token", h.url))
        .form(&[("code", big.as_str())])
        .send()
        .await
        .unwrap();
    json_error(response, 413).await;
    let response = browser()
        .post(format!("{}/authorize", h.url))
        .form(&[("state", big.as_str())])
        .send()
        .await
        .unwrap();
    page(response, 413).await;
    // 414: the API and the browser.
    let long = "q".repeat(40 * 1024);
    let response = h
        .http
        .get(format!("{}/api/v1/logins/x?{long}", h.url))
        .send()
        .await
        .unwrap();
    json_error(response, 414).await;
    let response = browser()
        .get(format!("{}/authorize?state={long}", h.url))
        .send()
        .await
        .unwrap();
    assert!(page(response, 414).await.contains("too large"));
    let response = browser()
        .get(format!("{}/login/some-id?{long}", h.url))
        .send()
        .await
        .unwrap();
    page(response, 414).await;
    // The login page's status request is its script's: JSON.
    let response = h
        .http
        .get(format!("{}/login/some-id/status?{long}", h.url))
        .send()
        .await
        .unwrap();
    json_error(response, 414).await;
    // 431.
    let response = h
        .http
        .get(format!("{}/healthz", h.url))
        .header("x-padding", "p".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    json_error(response, 431).await;
}
