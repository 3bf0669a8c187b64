//! `/authorize` (GET and POST) and `/par` (RFC 9126).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cyberid_crypto::{b64, random, sha256};
use cyberid_protocol::LOGIN_PAGE_PREFIX;
use cyberid_store::{LoginStatus, NewLogin, RelyingParty, SignInRequest, StoreError};
use serde_json::json;

use super::client_auth;
use super::request::{Params, check_redirect_uri, validate};
use crate::error::ApiError;
use crate::pages::error_page;
use crate::server::Platform;

pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Binds a sign-in to the browser that started it; scoped to the sign-in's page and what
/// lies below it (its status).
pub const LOGIN_COOKIE: &str = "cyberid_login";

/// `GET /authorize`
pub async fn authorize_get(
    State(platform): State<Platform>,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&platform, query.unwrap_or_default().as_bytes()).await
}

/// `POST /authorize` (form-encoded, as OIDC allows).
pub async fn authorize_post(State(platform): State<Platform>, body: Bytes) -> Response {
    authorize(&platform, &body).await
}

async fn authorize(platform: &Platform, encoded: &[u8]) -> Response {
    let params = match Params::parse(encoded) {
        Ok(params) => params,
        Err(message) => {
            return error_page(StatusCode::BAD_REQUEST, "Invalid sign-in request", &message);
        }
    };
    let rp = match load_client(platform, params.get("client_id")).await {
        Ok(rp) => rp,
        Err(page) => return page,
    };
    if let Some(request_uri) = params.get("request_uri") {
        return authorize_pushed(platform, &rp, request_uri).await;
    }
    let redirect_uri = match check_redirect_uri(&rp, params.get("redirect_uri")) {
        Ok(uri) => uri.to_owned(),
        Err(error) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid sign-in request",
                &error.description,
            );
        }
    };
    // From here on, errors go back to the client.
    let state = params.get("state").map(str::to_owned);
    if rp.require_par {
        let error = ApiError::invalid_request("this client must use pushed authorization requests");
        return refuse(platform, &rp, &redirect_uri, state.as_deref(), &error).await;
    }
    let request = match validate(&rp, &params, &redirect_uri) {
        Ok(request) => request,
        Err(error) => return refuse(platform, &rp, &redirect_uri, state.as_deref(), &error).await,
    };
    match start_login(platform, &request, None, LoginStatus::Pending).await {
        // The login page at once, rather than a redirect to it: one exchange fewer for every
        // sign-in. Its script shows the address `/login/{id}` and asks its status there;
        // reloading this URL starts a new sign-in (the first simply expires).
        Ok(Some(started)) => {
            let page =
                crate::login::login_page(platform, &started.id, started.expires_at, &rp, &request);
            match page {
                Ok(mut response) => {
                    set_login_cookie(
                        platform,
                        &mut response,
                        &started.id,
                        started.cookie.as_deref(),
                    );
                    response
                }
                Err(error) => error.into_response(),
            }
        }
        Ok(None) => suspended_page(),
        Err(error) => redirect_error(platform, &redirect_uri, state.as_deref(), &error),
    }
}

/// Sends a refused request back to the client, unless the client is suspended (read afresh:
/// the cached registration may predate it), which gets the platform's page instead, as it
/// would before the request was looked at.
async fn refuse(
    platform: &Platform,
    rp: &RelyingParty,
    redirect_uri: &str,
    state: Option<&str>,
    error: &ApiError,
) -> Response {
    match suspended_now(platform, &rp.client_id).await {
        Ok(false) => redirect_error(platform, redirect_uri, state, error),
        Ok(true) => suspended_page(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Whether the store (not this node's cache) has the client suspended; a client the store
/// no longer knows counts as suspended.
async fn suspended_now(platform: &Platform, client_id: &str) -> Result<bool, StoreError> {
    let suspended = platform
        .store
        .relying_party(client_id)
        .await?
        .is_none_or(|fresh| fresh.suspended);
    if suspended {
        platform.saw_client_suspended(client_id);
    }
    Ok(suspended)
}

fn suspended_page() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Service suspended",
        "This service may not use Cyberspace ID at the moment.",
    )
}

/// The client, known and active; otherwise a platform page (never a redirect: the redirect
/// URI cannot be trusted before the client is).
async fn load_client(
    platform: &Platform,
    client_id: Option<&str>,
) -> Result<Arc<RelyingParty>, Response> {
    let Some(client_id) = client_id else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            "The request names no client (client_id).",
        ));
    };
    // A suspension the cached registration does not show yet is caught when the sign-in
    // is created or claimed (see `crate::clients`).
    match platform.client(client_id).await {
        Ok(Some(rp)) if rp.suspended => Err(suspended_page()),
        Ok(Some(rp)) => Ok(rp),
        Ok(None) => Err(error_page(
            StatusCode::BAD_REQUEST,
            "Unknown service",
            "The service that sent you here is not registered with Cyberspace ID.",
        )),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// A sign-in just stored.
struct Started {
    id: String,
    /// The browser-binding cookie's value (front-channel requests only).
    cookie: Option<String>,
    expires_at: i64,
}

/// Creates the sign-in; `None` (nothing created, and this node's copy of the client
/// forgotten) if the client is suspended.
async fn start_login(
    platform: &Platform,
    request: &SignInRequest,
    par_handle: Option<String>,
    status: LoginStatus,
) -> Result<Option<Started>, ApiError> {
    // One reading of the clock: the id's time prefix and `created_at` agree.
    let now_ms = crate::now_ms();
    let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    // Time-ordered: a sign-in's row is written three times within seconds of its creation,
    // and neighbours in time then share B-tree pages (see `time_ordered_token`).
    let id = random::time_ordered_token::<16>(now_ms);
    let cookie = (status == LoginStatus::Pending).then(random::token::<24>);
    let lifetime = if status == LoginStatus::Pushed {
        platform.settings.sign_in.pushed_request_seconds
    } else {
        platform.settings.sign_in.lifetime_seconds
    };
    let login = NewLogin {
        id: id.clone(),
        request: request.clone(),
        par_handle,
        browser_digest: cookie.as_deref().map(|c| sha256(c.as_bytes()).to_vec()),
        status,
        created_at: now,
        expires_at: now + lifetime,
    };
    if !platform.store.insert_login(&login).await? {
        platform.saw_client_suspended(&request.client_id);
        return Ok(None);
    }
    Ok(Some(Started {
        id,
        cookie,
        expires_at: login.expires_at,
    }))
}

/// `/authorize?client_id=…&request_uri=…`: the browser arrives for a pushed request.
async fn authorize_pushed(platform: &Platform, rp: &RelyingParty, request_uri: &str) -> Response {
    let invalid = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            "The pushed request is unknown, was already used, or has expired. Please start again at the service.",
        )
    };
    let Some(handle) = request_uri.strip_prefix(REQUEST_URI_PREFIX) else {
        return invalid();
    };
    let cookie = random::token::<24>();
    let now = crate::now();
    let digest = sha256(cookie.as_bytes());
    match platform
        .store
        .claim_pushed_login(
            handle,
            &rp.client_id,
            &digest,
            now,
            now + platform.settings.sign_in.lifetime_seconds,
        )
        .await
    {
        Ok(Some(login)) => to_login_page(platform, &login.id, Some(&cookie)),
        // Unknown, used, expired, or the client was suspended meanwhile: tell which.
        Ok(None) => match suspended_now(platform, &rp.client_id).await {
            Ok(true) => suspended_page(),
            _ => invalid(),
        },
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// 303 to the login page, setting the browser-binding cookie.
fn to_login_page(platform: &Platform, id: &str, cookie: Option<&str>) -> Response {
    let location = format!("{}{LOGIN_PAGE_PREFIX}{id}", platform.issuer);
    let mut response = see_other(&location);
    set_login_cookie(platform, &mut response, id, cookie);
    response
}

/// Binds sign-in `id` to this browser: a cookie sent back only to its login page and the
/// page's status URL.
fn set_login_cookie(platform: &Platform, response: &mut Response, id: &str, cookie: Option<&str>) {
    let Some(cookie) = cookie else {
        return;
    };
    let secure = if platform.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{LOGIN_COOKIE}={cookie}; Path={}{LOGIN_PAGE_PREFIX}{id}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        platform.issuer_path,
        platform.settings.sign_in.lifetime_seconds.max(60) * 2
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
}

pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 303 back to the client with `params`, `state` and `iss` (RFC 9207).
pub fn redirect_to_client(
    platform: &Platform,
    redirect_uri: &str,
    state: Option<&str>,
    params: &[(&str, &str)],
) -> Response {
    see_other(&client_redirect_url(platform, redirect_uri, state, params))
}

/// The client's redirect URI with `params`, `state` and `iss` (RFC 9207) added to its query.
pub fn client_redirect_url(
    platform: &Platform,
    redirect_uri: &str,
    state: Option<&str>,
    params: &[(&str, &str)],
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    query.append_pair("iss", &platform.issuer);
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.finish())
}

pub fn redirect_error(
    platform: &Platform,
    redirect_uri: &str,
    state: Option<&str>,
    error: &ApiError,
) -> Response {
    redirect_to_client(
        platform,
        redirect_uri,
        state,
        &[
            ("error", error.code.as_str()),
            ("error_description", &error.description),
        ],
    )
}

/// `POST /par`: the client pushes its request (authenticated) and gets a `request_uri`.
pub async fn par(
    State(platform): State<Platform>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(&body).map_err(ApiError::invalid_request)?;
    let endpoint = format!("{}/par", platform.issuer);
    let rp = client_auth::authenticate(&platform, &headers, &params, &endpoint).await?;
    if params.get("request_uri").is_some() {
        return Err(ApiError::invalid_request("request_uri may not be pushed"));
    }
    let redirect_uri = check_redirect_uri(&rp, params.get("redirect_uri"))?.to_owned();
    let request = validate(&rp, &params, &redirect_uri)?;
    let handle = random::token::<24>();
    if start_login(
        &platform,
        &request,
        Some(handle.clone()),
        LoginStatus::Pushed,
    )
    .await?
    .is_none()
    {
        return Err(client_auth::invalid_client("this client is suspended"));
    }
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "request_uri": format!("{REQUEST_URI_PREFIX}{handle}"),
            "expires_in": platform.settings.sign_in.pushed_request_seconds,
        })),
    )
        .into_response())
}

/// The authorization code of an approved sign-in: its id and a MAC, so nothing secret is
/// stored and any node can check it.
pub fn authorization_code(platform: &Platform, id: &str) -> String {
    let tag = platform
        .keys
        .mac
        .digest("authorization-code", id.as_bytes());
    format!("{id}.{}", b64::encode(&tag[..16]))
}

/// The sign-in id of a well-formed, authentic code.
pub fn check_authorization_code<'a>(platform: &Platform, code: &'a str) -> Option<&'a str> {
    let (id, _) = code.split_once('.')?;
    cyberid_crypto::constant_time_eq(authorization_code(platform, id).as_bytes(), code.as_bytes())
        .then_some(id)
}
