//! The example relying party over HTTP: its password sign-in, and "Sign in with Cyberspace
//! ID" against a small stand-in provider (discovery, JWKS, token and userinfo endpoints)
//! that issues ES256 ID tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Json, Response as AxumResponse};
use axum::routing::{get, post};
use base64::Engine as _;
use cyberid_crypto::jose::SigningKey;
use cyberid_example_rp::{CALLBACK_PATH, ExampleRp, ExampleRpConfig, redirect_uri, serve};
use openidconnect::url::Url;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CLIENT_ID: &str = "shop-client";
const CLIENT_SECRET: &str = "s3cret:with/odd chars";
const ACCESS_TOKEN: &str = "at-0123456789";
const SUBJECT: &str = "pairwise-subject-42";

// ---------------------------------------------------------------- the stand-in provider

/// What the stand-in provider does wrong, to see the relying party refuse it.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    WrongNonce,
    ForeignKey,
    WrongAudience,
    WrongAtHash,
}

struct ProviderState {
    issuer: String,
    key: SigningKey,
    foreign_key: SigningKey,
    /// From the authorization request, as the provider's authorize endpoint would keep it.
    nonce: Option<String>,
    code_challenge: Option<String>,
    redirect_uri: Option<String>,
    code: String,
    fault: Fault,
    token_requests: usize,
    userinfo_requests: usize,
    discovery_requests: usize,
    advertise_iss_parameter: bool,
}

type Shared = Arc<Mutex<ProviderState>>;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

async fn discovery(State(state): State<Shared>) -> Json<Value> {
    let mut s = state.lock().unwrap();
    s.discovery_requests += 1;
    let issuer = &s.issuer;
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "age"],
        "claims_supported": ["sub", "acr", "amr", "real_name_verified", "age_over_18"],
    });
    if s.advertise_iss_parameter {
        doc["authorization_response_iss_parameter_supported"] = json!(true);
    }
    Json(doc)
}

async fn jwks(State(state): State<Shared>) -> Json<Value> {
    let s = state.lock().unwrap();
    Json(json!({ "keys": [s.key.public_jwk()] }))
}

async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> AxumResponse {
    let mut s = state.lock().unwrap();
    s.token_requests += 1;
    let oauth_error = |error: &str| {
        (
            AxumStatus::BAD_REQUEST,
            Json(json!({ "error": error, "error_description": "refused by the test provider" })),
        )
            .into_response()
    };

    // client_secret_basic: both parts form-urlencoded, then base64 (RFC 6749 §2.3.1).
    let expected_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(CLIENT_ID),
            form_encode(CLIENT_SECRET)
        ))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected_basic)
        || form.contains_key("client_secret")
    {
        return (
            AxumStatus::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code")
        || form.get("code") != Some(&s.code)
        || form.get("redirect_uri") != s.redirect_uri.as_ref()
    {
        return oauth_error("invalid_grant");
    }
    let Some(verifier) = form.get("code_verifier") else {
        return oauth_error("invalid_grant");
    };
    if Some(b64url(&sha256(verifier.as_bytes()))) != s.code_challenge {
        return oauth_error("invalid_grant");
    }
    // One use only.
    s.code = format!("used-{}", s.code);

    let at_hash = if s.fault == Fault::WrongAtHash {
        b64url(&sha256(b"another access token")[..16])
    } else {
        b64url(&sha256(ACCESS_TOKEN.as_bytes())[..16])
    };
    let nonce = if s.fault == Fault::WrongNonce {
        "not-the-nonce".to_string()
    } else {
        s.nonce.clone().unwrap_or_default()
    };
    let audience = if s.fault == Fault::WrongAudience {
        "someone-else"
    } else {
        CLIENT_ID
    };
    let claims = json!({
        "iss": s.issuer,
        "sub": SUBJECT,
        "aud": audience,
        "exp": now() + 300,
        "iat": now(),
        "auth_time": now() - 5,
        "nonce": nonce,
        "at_hash": at_hash,
        "acr": "L2",
        "amr": ["hwk", "pin"],
        "real_name_verified": true,
        "region": "<Zhejiang & co>",
    });
    let key = if s.fault == Fault::ForeignKey {
        &s.foreign_key
    } else {
        &s.key
    };
    let id_token = key.sign_jwt("JWT", &claims).unwrap();
    Json(json!({
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> AxumResponse {
    let mut s = state.lock().unwrap();
    s.userinfo_requests += 1;
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {ACCESS_TOKEN}"))
    {
        return (
            AxumStatus::UNAUTHORIZED,
            Json(json!({ "error": "invalid_token" })),
        )
            .into_response();
    }
    Json(json!({
        "sub": SUBJECT,
        "age_over_18": true,
        // Conflicts with the ID token: the signed ID token value must win.
        "acr": "L1",
    }))
    .into_response()
}

fn form_encode(text: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

async fn start_provider() -> (String, Shared) {
    let (listener, issuer) = listen().await;
    let state = Arc::new(Mutex::new(ProviderState {
        issuer: issuer.clone(),
        key: SigningKey::generate().unwrap().0.with_kid("test-key-1"),
        foreign_key: SigningKey::generate().unwrap().0.with_kid("test-key-1"),
        nonce: None,
        code_challenge: None,
        redirect_uri: None,
        code: "the-code".into(),
        fault: Fault::None,
        token_requests: 0,
        userinfo_requests: 0,
        discovery_requests: 0,
        advertise_iss_parameter: true,
    }));
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks.json", get(jwks))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (issuer, state)
}

// ---------------------------------------------------------------- the relying party

async fn start_rp(issuer: &str) -> String {
    start_rp_with(ExampleRpConfig {
        extra_scopes: vec!["age".into()],
        acr_values: Some("L2 L3".into()),
        ..ExampleRpConfig::new(issuer, CLIENT_ID, CLIENT_SECRET)
    })
    .await
}

async fn start_rp_with(config: ExampleRpConfig) -> String {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        serve(config, move |url| {
            tx.send(url.to_string()).unwrap();
        })
        .await
        .unwrap();
    });
    rx.await.unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the session cookie set by `response`, and the whole header.
fn set_cookie(response: &reqwest::Response) -> Option<(String, String)> {
    let header = response
        .headers()
        .get(header::SET_COOKIE)?
        .to_str()
        .unwrap()
        .to_string();
    let pair = header.split(';').next().unwrap().trim().to_string();
    Some((pair, header))
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}

async fn get_page(rp: &str, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = http().get(format!("{rp}{path}"));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

async fn post_form(
    rp: &str,
    path: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> reqwest::Response {
    let body = openidconnect::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = http()
        .post(format!("{rp}{path}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

/// Starts a Cyberspace ID sign-in: the session cookie and the authorization URL's parameters.
async fn begin_cyberid(rp: &str, provider: &Shared) -> (String, HashMap<String, String>) {
    let response = get_page(rp, "/auth/cyberid", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (cookie, _) = set_cookie(&response).expect("a session cookie");
    let url = Url::parse(&location(&response)).unwrap();
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    // What the provider's authorize endpoint would keep for the token request.
    let mut p = provider.lock().unwrap();
    p.nonce = params.get("nonce").cloned();
    p.code_challenge = params.get("code_challenge").cloned();
    p.redirect_uri = params.get("redirect_uri").cloned();
    drop(p);
    (cookie, params)
}

fn callback_path(params: &[(&str, &str)]) -> String {
    let query = openidconnect::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{CALLBACK_PATH}?{query}")
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn start_page_offers_both_sign_ins_and_health_answers() {
    let rp = start_rp("http://127.0.0.1:9").await;
    let response = get_page(&rp, "/", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains(
        r#"<a class="button" id="cyberid-signin" href="/auth/cyberid">Sign in with Cyberspace ID</a>"#
    ));
    assert!(body.contains(r#"<form method="post" action="/login""#));
    assert!(body.contains(r#"name="username""#) && body.contains(r#"name="password""#));

    let health = get_page(&rp, "/healthz", None).await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn password_sign_in_and_sign_out() {
    let rp = start_rp("http://127.0.0.1:9").await;

    let wrong = post_form(
        &rp,
        "/login",
        &[("username", "demo"), ("password", "nope")],
        None,
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        set_cookie(&wrong).is_none(),
        "no session for a wrong password"
    );
    let body = wrong.text().await.unwrap();
    assert!(body.contains("Wrong username or password."));
    assert!(body.contains(r#"id="password-login""#), "the form again");

    let wrong_user = post_form(
        &rp,
        "/login",
        &[("username", "demo2"), ("password", "demo-password")],
        None,
    )
    .await;
    assert_eq!(wrong_user.status(), StatusCode::UNAUTHORIZED);

    let right = post_form(
        &rp,
        "/login",
        &[("username", "demo"), ("password", "demo-password")],
        None,
    )
    .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&right), "/");
    let (cookie, header) = set_cookie(&right).expect("a session cookie");
    assert!(cookie.starts_with("example_rp_session="));
    assert!(cookie.len() > "example_rp_session=".len() + 40);
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(header.contains(attribute), "{attribute} in {header}");
    }

    let home = get_page(&rp, "/", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains(r#"data-method="password""#));
    assert!(home.contains("Signed in as <strong>demo</strong>"));
    assert!(home.contains(r#"action="/logout""#));
    assert!(!home.contains(r#"id="cyberid-signin""#));

    // A password session is not a Cyberspace ID session.
    let me = get_page(&rp, "/me", Some(&cookie)).await;
    assert_eq!(me.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_page(&rp, "/me.json", Some(&cookie)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let out = post_form(&rp, "/logout", &[], Some(&cookie)).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (cleared, header) = set_cookie(&out).unwrap();
    assert_eq!(cleared, "example_rp_session=");
    assert!(header.contains("Max-Age=0"));
    // The old cookie is worthless now.
    let home = get_page(&rp, "/", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains(r#"id="cyberid-signin""#));
    assert!(!home.contains("Signed in as"));
}

#[tokio::test]
async fn configured_demo_account_is_used() {
    let rp = start_rp_with(ExampleRpConfig {
        demo_username: "alice".into(),
        demo_password: "correct horse".into(),
        ..ExampleRpConfig::new("http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET)
    })
    .await;
    let old = post_form(
        &rp,
        "/login",
        &[("username", "demo"), ("password", "demo-password")],
        None,
    )
    .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = post_form(
        &rp,
        "/login",
        &[("username", "alice"), ("password", "correct horse")],
        None,
    )
    .await;
    assert_eq!(new.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn echoed_input_is_escaped() {
    let rp = start_rp("http://127.0.0.1:9").await;
    let response = post_form(
        &rp,
        "/login",
        &[
            ("username", r#""><script>alert(1)</script>"#),
            ("password", "x"),
        ],
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;""#));
    assert!(!body.contains("<script>"));

    let response = get_page(
        &rp,
        &callback_path(&[("error", "<b>x</b>"), ("error_description", "a & <i>b</i>")]),
        None,
    )
    .await;
    let body = response.text().await.unwrap();
    assert!(body.contains("&lt;b&gt;x&lt;/b&gt;"));
    assert!(body.contains("a &amp; &lt;i&gt;b&lt;/i&gt;"));
    assert!(!body.contains("<b>x") && !body.contains("<i>b"));
}

#[tokio::test]
async fn me_requires_a_cyberid_session() {
    let rp = start_rp("http://127.0.0.1:9").await;
    let me = get_page(&rp, "/me", None).await;
    assert_eq!(me.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&me), "/");
    let json = get_page(&rp, "/me.json", None).await;
    assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
    let made_up = get_page(&rp, "/me.json", Some("example_rp_session=made-up")).await;
    assert_eq!(made_up.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unreachable_provider_gives_a_clear_error_page() {
    // Nothing listens on this port: bind, note the address, close.
    let (listener, issuer) = listen().await;
    drop(listener);
    let rp = start_rp(&issuer).await;
    let response = get_page(&rp, "/auth/cyberid", None).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = response.text().await.unwrap();
    assert!(body.contains("Cyberspace ID is not reachable right now"));
    assert!(body.contains("discovery"), "{body}");
    assert!(body.contains(&issuer));
}

#[tokio::test]
async fn authorization_request_carries_pkce_state_nonce_and_scopes() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let response = get_page(&rp, "/auth/cyberid", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (cookie, header) = set_cookie(&response).unwrap();
    assert!(cookie.starts_with("example_rp_session="));
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"));

    let url = Url::parse(&location(&response)).unwrap();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{issuer}/authorize")
    );
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], redirect_uri(&rp));
    assert_eq!(params["redirect_uri"], format!("{rp}/callback"));
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43, "base64url SHA-256");
    assert!(params["state"].len() >= 43);
    assert!(params["nonce"].len() >= 43);
    let scopes: Vec<&str> = params["scope"].split(' ').collect();
    assert!(scopes.contains(&"openid"));
    assert!(scopes.contains(&"age"));
    assert_eq!(params["acr_values"], "L2 L3");

    // Each sign-in gets its own values.
    let second = get_page(&rp, "/auth/cyberid", None).await;
    let second: HashMap<String, String> = Url::parse(&location(&second))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_ne!(second["state"], params["state"]);
    assert_ne!(second["nonce"], params["nonce"]);
    assert_ne!(second["code_challenge"], params["code_challenge"]);
    drop(provider);
}

#[tokio::test]
async fn full_sign_in_with_es256_id_token_and_userinfo() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;

    let response = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
    assert_eq!(location(&response), "/me");
    let (new_cookie, _) = set_cookie(&response).unwrap();
    assert_ne!(new_cookie, cookie, "a fresh session after sign-in");

    let claims: Value = get_page(&rp, "/me.json", Some(&new_cookie))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims,
        json!({
            "sub": SUBJECT,
            "acr": "L2",
            "amr": ["hwk", "pin"],
            "real_name_verified": true,
            "region": "<Zhejiang & co>",
            "age_over_18": true,
        })
    );
    {
        let p = provider.lock().unwrap();
        assert_eq!(p.token_requests, 1);
        assert_eq!(p.userinfo_requests, 1);
    }

    let page = get_page(&rp, "/me", Some(&new_cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"<table id="claims">"#));
    assert!(page.contains(&format!(
        r#"<tr data-claim="sub"><th>sub</th><td>{SUBJECT}</td></tr>"#
    )));
    assert!(page.contains(r#"<tr data-claim="acr"><th>acr</th><td>L2</td></tr>"#));
    assert!(page.contains(r#"<tr data-claim="amr"><th>amr</th><td>hwk, pin</td></tr>"#));
    assert!(page.contains(
        r#"<tr data-claim="region"><th>region</th><td>&lt;Zhejiang &amp; co&gt;</td></tr>"#
    ));
    assert_eq!(page.matches("<tr data-claim=").count(), 6);
    assert!(page.contains("This is all Example Service learned"));

    let home = get_page(&rp, "/", Some(&new_cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains(r#"data-method="cyberid""#));
    assert!(home.contains(SUBJECT));

    // The old session and its authorization response are spent.
    let replay = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(provider.lock().unwrap().token_requests, 1);

    let out = post_form(&rp, "/logout", &[], Some(&new_cookie)).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_page(&rp, "/me.json", Some(&new_cookie)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn callback_refuses_missing_or_wrong_state() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;

    let wrong = get_page(
        &rp,
        &callback_path(&[("code", "the-code"), ("state", "forged"), ("iss", &issuer)]),
        Some(&cookie),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(wrong.text().await.unwrap().contains("state mismatch"));

    let missing = get_page(
        &rp,
        &callback_path(&[("code", "the-code"), ("iss", &issuer)]),
        Some(&cookie),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    let no_cookie = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        None,
    )
    .await;
    assert_eq!(no_cookie.status(), StatusCode::BAD_REQUEST);

    // None of these reached the token endpoint, and the genuine response still works.
    assert_eq!(provider.lock().unwrap().token_requests, 0);
    let genuine = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(genuine.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn callback_shows_the_providers_error() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;
    let response = get_page(
        &rp,
        &callback_path(&[
            ("error", "access_denied"),
            ("error_description", "The holder declined"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"<code id="error-code">access_denied</code>"#));
    assert!(body.contains("The holder declined"));
    assert_eq!(provider.lock().unwrap().token_requests, 0);
}

#[tokio::test]
async fn callback_refuses_another_issuer_or_a_missing_one() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;

    let other = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", "https://evil.example"),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    assert!(other.text().await.unwrap().contains("different issuer"));

    // The provider advertises RFC 9207 support, so `iss` must be there.
    let missing = get_page(
        &rp,
        &callback_path(&[("code", "the-code"), ("state", &params["state"])]),
        Some(&cookie),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(provider.lock().unwrap().token_requests, 0);
}

#[tokio::test]
async fn iss_may_be_absent_when_the_provider_does_not_promise_it() {
    let (issuer, provider) = start_provider().await;
    provider.lock().unwrap().advertise_iss_parameter = false;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;
    let response = get_page(
        &rp,
        &callback_path(&[("code", "the-code"), ("state", &params["state"])]),
        Some(&cookie),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn sign_in_with_fault(fault: Fault) -> (StatusCode, String) {
    let (issuer, provider) = start_provider().await;
    provider.lock().unwrap().fault = fault;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;
    let response = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    let status = response.status();
    let cookie_set = set_cookie(&response).is_some();
    assert!(!cookie_set, "no session for a refused sign-in");
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn id_token_with_the_wrong_nonce_is_refused() {
    let (status, body) = sign_in_with_fault(Fault::WrongNonce).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("ID token was rejected"), "{body}");
}

#[tokio::test]
async fn id_token_signed_by_another_key_is_refused() {
    let (status, body) = sign_in_with_fault(Fault::ForeignKey).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("ID token was rejected"), "{body}");
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up() {
    let (issuer, provider) = start_provider().await;
    let rp = start_rp(&issuer).await;
    let (cookie, params) = begin_cyberid(&rp, &provider).await;
    assert_eq!(provider.lock().unwrap().discovery_requests, 1);
    // The provider rotates after the relying party cached its JWKS.
    provider.lock().unwrap().key = SigningKey::generate().unwrap().0.with_kid("test-key-2");
    let response = get_page(
        &rp,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
    assert_eq!(provider.lock().unwrap().discovery_requests, 2);
}

#[tokio::test]
async fn id_token_for_another_client_is_refused() {
    let (status, body) = sign_in_with_fault(Fault::WrongAudience).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("ID token was rejected"), "{body}");
}

#[tokio::test]
async fn id_token_for_another_access_token_is_refused() {
    let (status, body) = sign_in_with_fault(Fault::WrongAtHash).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("at_hash"), "{body}");
}

#[tokio::test]
async fn bind_register_then_serve() {
    let (issuer, provider) = start_provider().await;
    // Credentials are only known after the redirect URI (with its port) is registered.
    let mut rp = ExampleRp::bind(ExampleRpConfig::new(&issuer, "placeholder", "placeholder"))
        .await
        .unwrap();
    let port = rp.local_addr().unwrap().port();
    assert_ne!(port, 0);
    assert_eq!(rp.public_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(
        rp.redirect_uri(),
        format!("http://127.0.0.1:{port}/callback")
    );
    rp.set_client(CLIENT_ID, CLIENT_SECRET);
    let url = rp.public_url().to_string();
    tokio::spawn(rp.serve());

    let (cookie, params) = begin_cyberid(&url, &provider).await;
    assert_eq!(params["client_id"], CLIENT_ID);
    let response = get_page(
        &url,
        &callback_path(&[
            ("code", "the-code"),
            ("state", &params["state"]),
            ("iss", &issuer),
        ]),
        Some(&cookie),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
}

#[tokio::test]
async fn listens_where_configured_and_reports_the_public_url() {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let rp = start_rp_with(ExampleRpConfig {
        listen,
        public_url: Some("https://shop.example/".into()),
        ..ExampleRpConfig::new("http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET)
    })
    .await;
    assert_eq!(rp, "https://shop.example");
    assert_eq!(redirect_uri(&rp), "https://shop.example/callback");
}
