//! A small stand-in OpenID provider (discovery, JWKS, token and userinfo endpoints) that
//! issues ES256 ID tokens, and can be told to get one thing wrong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Json, Response as AxumResponse};
use axum::routing::{get, post};
use base64::Engine as _;
use cyberid_crypto::jose::SigningKey;
use serde_json::{Value, json};

pub(crate) const CLIENT_ID: &str = "shop-client";
pub(crate) const CLIENT_SECRET: &str = "s3cret:with/odd chars";
pub(crate) const ACCESS_TOKEN: &str = "at-0123456789";
pub(crate) const SUBJECT: &str = "pairwise-subject-42";

// ---------------------------------------------------------------- the stand-in provider

/// What the stand-in provider does wrong, to see the relying party refuse it.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Fault {
    None,
    WrongNonce,
    ForeignKey,
    WrongAudience,
    WrongAtHash,
}

pub(crate) struct ProviderState {
    pub(crate) issuer: String,
    pub(crate) key: SigningKey,
    pub(crate) foreign_key: SigningKey,
    /// From the authorization request, as the provider's authorize endpoint would keep it.
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code: String,
    pub(crate) fault: Fault,
    pub(crate) token_requests: usize,
    pub(crate) userinfo_requests: usize,
    pub(crate) discovery_requests: usize,
    pub(crate) advertise_iss_parameter: bool,
}

pub(crate) type Shared = Arc<Mutex<ProviderState>>;

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

pub(crate) async fn discovery(State(state): State<Shared>) -> Json<Value> {
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

pub(crate) async fn jwks(State(state): State<Shared>) -> Json<Value> {
    let s = state.lock().unwrap();
    Json(json!({ "keys": [s.key.public_jwk()] }))
}

pub(crate) async fn token(
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

pub(crate) async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> AxumResponse {
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

pub(crate) fn form_encode(text: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub(crate) async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

pub(crate) async fn start_provider() -> (String, Shared) {
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
