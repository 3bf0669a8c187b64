//! PostgreSQL becoming unreachable under load, through a TCP proxy between the node and the
//! database that the test cuts and restores (the shared server itself is never stopped):
//! refused (as a stopped server is) and black-holed (connections accepted, nothing ever
//! answered, as over a network that drops packets). The node answers `503
//! temporarily_unavailable` with `Retry-After` instead of holding requests, `/readyz` says
//! it is not ready while `/healthz` still answers, and once the database is back the same
//! node serves again. SQLite has no such outage (it is a file of the node's own).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use cyberid_crypto::jose::SigningKey;
use cyberid_platform::rp::{Registration, register};
use cyberid_protocol::ENROLMENT_PATH;
use cyberid_testkit::url_query;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};

/// What the proxy does with the node's connections to the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Forwarding,
    /// Open connections are closed and the port refuses new ones.
    Refused,
    /// Open connections stay open but nothing passes any more, for good; new ones are
    /// accepted and never answered. Restoring forwards new connections only: the old ones
    /// stay silent, as when a network path comes back but the server forgot them.
    BlackHole,
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`.
struct Proxy {
    address: SocketAddr,
    link: watch::Sender<Link>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (link, watching) = watch::channel(Link::Forwarding);
        tokio::spawn(listen(listener, address, upstream, watching));
        Self { address, link }
    }

    fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

/// Accepts while the link is not refused; closes the port while it is.
async fn listen(
    mut listener: TcpListener,
    address: SocketAddr,
    upstream: SocketAddr,
    mut link: watch::Receiver<Link>,
) {
    // Sockets kept open and never read: the black hole.
    let silent: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    loop {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let current = *link.borrow();
                    match current {
                        Link::Forwarding => {
                            tokio::spawn(forward(stream, upstream, link.clone(), Arc::clone(&silent)));
                        }
                        Link::BlackHole => silent.lock().await.push(stream),
                        Link::Refused => {}
                    }
                }
                changed = link.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *link.borrow() == Link::Refused {
                        break;
                    }
                }
            }
        }
        drop(listener);
        silent.lock().await.clear();
        if link.wait_for(|l| *l != Link::Refused).await.is_err() {
            return;
        }
        listener = TcpListener::bind(address).await.unwrap();
    }
}

/// One connection, passed both ways until the link changes: then closed (refused) or
/// silenced for good (black hole).
async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut link: watch::Receiver<Link>,
    silent: Arc<Mutex<Vec<TcpStream>>>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let silenced = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
        cut = link.wait_for(|l| *l != Link::Forwarding) => cut.is_ok_and(|l| *l == Link::BlackHole),
    };
    if silenced {
        silent.lock().await.extend([client, server]);
    }
}

/// The test database's host and port, from `CYBERID_TEST_DATABASE_URL`.
async fn database_address(url: &str) -> (String, SocketAddr) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap().to_owned();
    let with_port = if host_port.contains(':') {
        host_port.clone()
    } else {
        format!("{host_port}:5432")
    };
    let address = tokio::net::lookup_host(&with_port)
        .await
        .unwrap()
        .next()
        .unwrap_or_else(|| panic!("{with_port} does not resolve"));
    (host_port, address)
}

/// A client that waits long enough never to decide the verdict by itself: an answer that
/// has not come in 20 s is a hang, and fails the test.
fn patient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A relying party registered in the store (while the database is up).
async fn client_id(h: &Harness) -> String {
    let registration = Registration {
        name: "Example Shop".into(),
        redirect_uris: vec!["https://shop.example/callback".into()],
        ..Registration::default()
    };
    let (rp, shown) = register(&h.keys(), &registration, cyberid_platform::now()).unwrap();
    h.store.insert_relying_party(&rp).await.unwrap();
    shown.client_id
}

fn authorize_url(h: &Harness, client_id: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fshop.example%2Fcallback&scope=openid&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        h.url
    )
}

/// What one request was answered, or that it was not.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    location: Option<String>,
    body: serde_json::Value,
    took: Duration,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let started = Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => panic!("no answer within 20 s (or no connection): {e}"),
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, retry_after, location) = (
        response.status().as_u16(),
        header("retry-after"),
        header("location"),
    );
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        retry_after,
        location,
        body,
        took: started.elapsed(),
    }
}

/// `503 temporarily_unavailable` as JSON, with `Retry-After`.
fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 503, "{what}: {answer:?}");
    assert_eq!(
        answer.body["error"], "temporarily_unavailable",
        "{what}: {answer:?}"
    );
    assert!(
        answer.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("database")),
        "{what}: {answer:?}"
    );
    assert_eq!(
        answer.retry_after.as_deref(),
        Some("1"),
        "{what}: {answer:?}"
    );
}

const LOAD_WORKERS: usize = 4;

/// Requests that run all along, as other people's sign-ins do: every answer is a login page,
/// the client's redirect with `temporarily_unavailable`, or readiness either way; never a
/// 500 nor a request left hanging.
struct Load {
    running: Arc<AtomicBool>,
    /// Answers that were not 200.
    refused: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<Vec<Answer>>>,
}

impl Load {
    fn start(h: &Harness, client_id: &str, workers: usize) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let refused = Arc::new(AtomicUsize::new(0));
        let workers = (0..workers)
            .map(|worker| {
                let (running, refused, http) =
                    (Arc::clone(&running), Arc::clone(&refused), patient_client());
                let (authorize, readyz) =
                    (authorize_url(h, client_id), format!("{}/readyz", h.url));
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    while running.load(Ordering::Relaxed) {
                        let url = if (answers.len() + worker) % 3 == 0 {
                            &readyz
                        } else {
                            &authorize
                        };
                        let answered = answer(http.get(url)).await;
                        if answered.status != 200 {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        answers.push(answered);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    answers
                })
            })
            .collect();
        Self {
            running,
            refused,
            workers,
        }
    }

    /// Waits (a minute at most) until the load has had `count` answers other than 200.
    async fn until_refused(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.refused.load(Ordering::Relaxed) < count {
            assert!(Instant::now() < deadline, "the load never saw the outage");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> Vec<Answer> {
        self.running.store(false, Ordering::Relaxed);
        let mut all = Vec::new();
        for worker in self.workers {
            all.extend(worker.await.unwrap());
        }
        all
    }
}

fn assert_load_answered(answers: &[Answer]) {
    assert!(!answers.is_empty());
    for answer in answers {
        match answer.status {
            200 => {}
            303 => {
                let (address, params) = url_query(answer.location.as_deref().unwrap());
                assert_eq!(address, "https://shop.example/callback", "{answer:?}");
                assert_eq!(
                    params.get("error").map(String::as_str),
                    Some("temporarily_unavailable"),
                    "{answer:?}"
                );
                assert_eq!(params.get("state").map(String::as_str), Some("s1"));
            }
            503 => assert_unavailable(answer, "readiness under load"),
            _ => panic!("unexpected answer under load: {answer:?}"),
        }
    }
}

/// Polls `url` until it answers 200, for at most a minute (a generous deadline: recovery
/// must come by itself, however slow the machine).
async fn until_ok(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = http.get(url).send().await.map(|r| r.status().as_u16());
        if status.as_ref().is_ok_and(|s| *s == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not recover within a minute: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// During an outage of kind `link`: every store-bound request is answered 503 (the
/// sign-in's client hears it in its redirect), never held; readiness 503, health 200.
async fn check_outage(h: &Harness, proxy: &Proxy, link: Link, clients: (&str, &str), n: usize) {
    let http = patient_client();
    let (cached, uncached) = clients;
    let load = Load::start(h, cached, LOAD_WORKERS);
    // The load has the node using its connections when they are cut.
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set(link);

    let (device_key, _) = SigningKey::generate().unwrap();
    let request = h.request_for(h.adult(n), &device_key).await;
    let enrolled = answer(
        http.post(format!("{}{ENROLMENT_PATH}", h.url))
            .json(&request),
    )
    .await;
    assert_unavailable(&enrolled, "enrolment");

    // A client this node knows: the store write fails, the client is told in the redirect.
    let started = answer(http.get(authorize_url(h, cached))).await;
    assert_eq!(started.status, 303, "{started:?}");
    let (_, params) = url_query(started.location.as_deref().unwrap());
    assert_eq!(params["error"], "temporarily_unavailable", "{started:?}");
    // A client it must read first: no redirect is trusted yet, so the JSON error.
    let unknown = answer(http.get(authorize_url(h, uncached))).await;
    assert_unavailable(&unknown, "authorize, client not yet read");

    let ready = answer(http.get(format!("{}/readyz", h.url))).await;
    assert_unavailable(&ready, "readyz");
    let health = answer(http.get(format!("{}/healthz", h.url))).await;
    assert_eq!(health.status, 200, "{health:?}");
    println!(
        "{link:?}: enrolment answered in {:?}, authorize in {:?} and {:?}, readyz in {:?}",
        enrolled.took, started.took, unknown.took, ready.took
    );

    // Every worker's request meets the outage at least once (and every connection the node
    // had open when it began is handed out during it) before the database comes back.
    load.until_refused(2 * LOAD_WORKERS).await;
    proxy.set(Link::Forwarding);
    assert_load_answered(&load.stop().await);

    // Back by itself: the same node, not restarted.
    until_ok(&http, &format!("{}/readyz", h.url)).await;
    let request = h.request_for(h.adult(n), &device_key).await;
    let enrolled = answer(
        http.post(format!("{}{ENROLMENT_PATH}", h.url))
            .json(&request),
    )
    .await;
    assert_eq!(enrolled.status, 201, "{enrolled:?}");
    // More requests than the pool has connections: none is handed one left silent.
    for _ in 0..3 * h.settings.store.pool_size {
        let page = answer(http.get(authorize_url(h, cached))).await;
        assert_eq!(page.status, 200, "after the {link:?} outage: {page:?}");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_answered_503_and_the_node_recovers_by_itself() {
    if cyberid_testkit::postgres().is_none() {
        return;
    }
    let base = std::env::var(cyberid_testkit::TEST_DATABASE_ENV).unwrap();
    let (host_port, upstream) = database_address(&base).await;
    let proxy = Proxy::start(upstream).await;
    let through_proxy = proxy.address.to_string();
    let h = start(true, |settings| {
        let store = &mut settings.store;
        let url = store.database_url.take().unwrap();
        let url = url.expose().replacen(&host_port, &through_proxy, 1);
        store.database_url = Some(cyberid_platform::Secret::new(url));
        store.pool_size = 4;
        store.connect_timeout_ms = 1000;
        store.operation_timeout_ms = 1000;
        store.ready_timeout_ms = 500;
        // The load comes from one address, faster than any person starts sign-ins.
        settings.limits.sign_ins_per_address = 0;
    })
    .await;
    assert!(
        h.settings
            .store
            .database_url
            .as_ref()
            .unwrap()
            .expose()
            .contains(&through_proxy)
    );
    let http = patient_client();
    // One client this node has read before each outage; two it has not.
    let cached = client_id(&h).await;
    let (first, second) = (client_id(&h).await, client_id(&h).await);
    assert_eq!(
        answer(http.get(authorize_url(&h, &cached))).await.status,
        200
    );
    assert_eq!(
        answer(http.get(format!("{}/readyz", h.url))).await.status,
        200
    );

    check_outage(&h, &proxy, Link::Refused, (&cached, &first), 0).await;
    check_outage(&h, &proxy, Link::BlackHole, (&cached, &second), 1).await;
    assert_eq!(h.store.counts().await.unwrap().accounts, 2);
}
