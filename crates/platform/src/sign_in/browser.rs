//! The browser's side of a sign-in: the cookie that binds a sign-in to the browser that
//! started it, and the redirects back to the client (with `state` and `iss`, RFC 9207).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cyberid_crypto::{constant_time_eq, sha256};
use cyberid_protocol::LOGIN_PAGE_PREFIX;
use cyberid_store::{LoginRecord, LoginStatus};

use super::tokens::authorization_code;
use crate::error::{ApiError, ErrorCode};
use crate::platform::Platform;

/// Binds a sign-in to the browser that started it; scoped to the sign-in's page and what
/// lies below it (its status).
pub const LOGIN_COOKIE: &str = "cyberid_login";

/// The sign-in's own page, `{issuer}/login/{id}`.
pub fn login_page_url(platform: &Platform, id: &str) -> String {
    format!("{}{LOGIN_PAGE_PREFIX}{id}", platform.issuer)
}

/// Binds sign-in `id` to this browser: a cookie sent back only to its login page and the
/// page's status URL.
pub fn set_login_cookie(platform: &Platform, response: &mut Response, id: &str, cookie: &str) {
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

/// Whether the request comes from the browser that started the sign-in (its cookie).
pub fn same_browser(headers: &HeaderMap, login: &LoginRecord) -> bool {
    let Some(expected) = login.browser_digest.as_deref() else {
        return false;
    };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == LOGIN_COOKIE)
        .any(|(_, value)| constant_time_eq(&sha256(value.as_bytes()), expected))
}

/// 303 to `location`, never cached.
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

/// 303 back to the client with `error` and its description.
pub fn redirect_error(
    platform: &Platform,
    redirect_uri: &str,
    state: Option<&str>,
    error: &ApiError,
) -> Response {
    see_other(&client_redirect_url(
        platform,
        redirect_uri,
        state,
        &[
            ("error", error.code.as_str()),
            ("error_description", &error.description),
        ],
    ))
}

/// Where the browser goes once sign-in `login` has ended (it is not pending, or has
/// expired): back to the client with the code, or with the error and why.
pub fn destination(platform: &Platform, login: &LoginRecord) -> String {
    let request = &login.request;
    let state = request.state.as_deref();
    let error = |code: ErrorCode, description: &str| {
        client_redirect_url(
            platform,
            &request.redirect_uri,
            state,
            &[("error", code.as_str()), ("error_description", description)],
        )
    };
    match login.status {
        LoginStatus::Approved => {
            let code = authorization_code(platform, &login.id);
            client_redirect_url(platform, &request.redirect_uri, state, &[("code", &code)])
        }
        LoginStatus::Declined => error(ErrorCode::AccessDenied, "the holder declined the sign-in"),
        LoginStatus::Failed => error(
            ErrorCode::UnmetAuthenticationRequirements,
            "the holder's wallet could not reach the requested level",
        ),
        // Pending past its expiry (a pushed request that was never claimed has no page).
        LoginStatus::Pending | LoginStatus::Pushed => error(
            ErrorCode::AccessDenied,
            "the sign-in request expired before it was approved",
        ),
    }
}
