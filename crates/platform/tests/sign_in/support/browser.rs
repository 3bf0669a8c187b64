//! The browser: it follows no redirect and carries the sign-in's cookie by hand; its login
//! page asks for the sign-in's status.

use std::collections::HashMap;
use std::time::Duration;

use cyberid_crypto::{b64, random, sha256};
use cyberid_platform::Settings;
use cyberid_testkit::url_query;
use serde_json::Value;

use crate::common::Harness;
use crate::support::client::Client;

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A sign-in as the browser and the client that started it know it.
pub struct Flow {
    /// The sign-in's own page, `/login/{id}`.
    pub login_url: String,
    pub id: String,
    /// The cookie that binds the sign-in to this browser, as it is sent back.
    pub cookie: String,
    pub verifier: String,
    pub state: String,
    pub nonce: String,
}

/// `pairs` form-encoded, for a URL's query or a form body.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

/// Where a redirect sends the browser: the address and its parameters.
pub fn location_query(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    url_query(response.headers()["location"].to_str().unwrap())
}

/// A fresh PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = random::token::<32>();
    let challenge = b64::encode(sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// The browser arrives at /authorize with a PKCE request; returns the sign-in.
pub async fn begin(h: &Harness, base: &str, client: &Client, extra: &[(&str, &str)]) -> Flow {
    let (verifier, challenge) = pkce();
    let state = random::token::<8>();
    let nonce = random::token::<8>();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if !extra.iter().any(|(k, _)| *k == "scope") {
        params.push(("scope", "openid"));
    }
    params.extend_from_slice(extra);
    let response = browser()
        .get(format!("{base}/authorize?{}", query_string(&params)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the login page itself");
    let cookie = browser_cookie(&response);
    let page = response.text().await.unwrap();
    // The page's script continues at the sign-in's own page.
    let login_url = page
        .split("data-page=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    flow_at(h, login_url, cookie, verifier, state, nonce)
}

/// The sign-in a pushed request's `/authorize` redirected the browser to.
pub fn flow_redirected_to(
    h: &Harness,
    response: &reqwest::Response,
    verifier: String,
    state: String,
    nonce: String,
) -> Flow {
    let login_url = response.headers()["location"].to_str().unwrap().to_owned();
    flow_at(
        h,
        login_url,
        browser_cookie(response),
        verifier,
        state,
        nonce,
    )
}

/// The sign-in's cookie, as the browser sends it back.
fn browser_cookie(response: &reqwest::Response) -> String {
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// A sign-in at its own page `login_url` on this platform.
fn flow_at(
    h: &Harness,
    login_url: String,
    cookie: String,
    verifier: String,
    state: String,
    nonce: String,
) -> Flow {
    assert!(
        login_url.starts_with(&format!("{}/login/", h.url)),
        "{login_url}"
    );
    let id = login_url.rsplit('/').next().unwrap().to_owned();
    Flow {
        login_url,
        id,
        cookie,
        verifier,
        state,
        nonce,
    }
}

/// The browser comes back to the login page at `base` and is sent to the client: the
/// parameters it brings.
pub async fn come_back(base: &str, flow: &Flow) -> HashMap<String, String> {
    let url = flow.login_url.replacen(
        &flow.login_url[..flow.login_url.find("/login/").unwrap()],
        base,
        1,
    );
    let response = browser()
        .get(url)
        .header("cookie", &flow.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    location_query(&response).1
}

/// A status request's answer, sent with `cookie` (60 s at most: a request that is never
/// woken fails the test).
pub async fn status_answer(url: String, cookie: String) -> Value {
    let request = reqwest::Client::new()
        .get(url)
        .header("cookie", cookie)
        .send();
    let response = tokio::time::timeout(Duration::from_secs(60), request)
        .await
        .expect("the status request was not woken")
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A status request's `status`, asked without a cookie.
pub async fn status_of(url: String) -> Value {
    status_answer(url, String::new()).await["status"].clone()
}

/// Until `count` requests wait for sign-in `id` on the harness's node.
pub async fn until_waiting(h: &Harness, id: &str, count: usize) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while h.platform.waiting_for_decision(id) < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the status requests did not start waiting");
}

/// Waiting and re-checking for an hour: only a wake-up answers in time.
pub fn wait_long(settings: &mut Settings) {
    settings.sign_in.decision_wait_seconds = 3600;
    settings.sign_in.decision_recheck_ms = 3_600_000;
}

/// The login page of `flow` as its browser sees it (with the sign-in's cookie).
pub async fn login_page_text(flow: &Flow) -> String {
    browser()
        .get(&flow.login_url)
        .header("cookie", &flow.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
