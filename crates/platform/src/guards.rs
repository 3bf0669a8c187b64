//! What every request and response of the node's listeners passes through: a bound on the
//! URI and the head, answered in the platform's format, refusals that the HTTP layer
//! (axum's extractors) wrote as plain text rewritten in that format, and the security
//! headers every answer carries.
//!
//! The platform's format is the JSON error on the API and a page on the routes a browser
//! opens (`/authorize`, `/login/{id}`). Requests past hyper's own hard limits (a URI over
//! 64 KiB, a head over its buffer, more than 100 header fields, a head that does not parse)
//! are refused by hyper itself, with an empty body, before any of this runs.

use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::pages::error_page;

/// The longest request URI served: room for every authorization request parameter at its
/// maximum (docs/limits.md), percent-encoded.
pub const MAX_URI_BYTES: usize = 32 * 1024;

/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Plain-text refusals are a sentence or two; a longer body is not one of them.
const MAX_REWRITTEN_BODY: usize = 4 * 1024;

/// Serves `request` with `serve` (the router), guarded. Called for every request by the
/// connection loop (`crate::connections`) rather than as a router layer: one future fewer
/// to box per request on the sign-in's hot path.
pub async fn guarded<B, F>(request: Request<B>, serve: impl FnOnce(Request<B>) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let browser = opened_by_browsers(request.uri().path());
    if let Some(refusal) = oversized(&request, browser) {
        return with_security_headers(refusal);
    }
    let response = serve(request).await;
    with_security_headers(in_platform_format(response, browser).await)
}

/// Routes a browser opens: refusals there are pages. (The login page's status request,
/// `/login/{id}/status`, is its script's and answers JSON.)
fn opened_by_browsers(path: &str) -> bool {
    path == "/authorize"
        || path
            .strip_prefix("/login/")
            .is_some_and(|id| !id.contains('/'))
}

fn oversized<B>(request: &Request<B>, browser: bool) -> Option<Response> {
    let uri = request.uri();
    // Measured without writing the URI out: an origin-form URI is its path and query.
    let uri = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, str::len);
    if uri > MAX_URI_BYTES {
        return Some(refusal(
            StatusCode::URI_TOO_LONG,
            browser,
            &format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let head: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if head > MAX_HEADER_BYTES {
        return Some(refusal(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            browser,
            &format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"),
        ));
    }
    None
}

fn refusal(status: StatusCode, browser: bool, description: &str) -> Response {
    if browser {
        let message = format!(
            "This request cannot be served: {description}. Please start again at the service."
        );
        error_page(status, "Request too large", &message)
    } else {
        ApiError::invalid_request(description)
            .with_status(status)
            .into_response()
    }
}

/// A client error written as plain text or with no body (axum's extractors: a body over
/// the limit, a path that does not parse) becomes the platform's refusal with the same
/// status and text.
async fn in_platform_format(response: Response, browser: bool) -> Response {
    if !response.status().is_client_error() {
        return response;
    }
    let content_type = response.headers().get(header::CONTENT_TYPE);
    let plain = content_type
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !plain {
        return response;
    }
    let status = response.status();
    let text = match axum::body::to_bytes(response.into_body(), MAX_REWRITTEN_BODY).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_owned(),
    };
    refusal(status, browser, text.trim())
}

/// `nosniff` on everything; `no-store` on everything that has not said how it may be
/// cached (public metadata, status lists and the login script do).
fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn empty(status: StatusCode) -> Response {
        with_security_headers((status, Body::empty()).into_response())
    }

    #[test]
    fn every_answer_is_nosniff_and_uncached_unless_it_says_otherwise() {
        let response = empty(StatusCode::OK);
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let cached = with_security_headers(
            ([(header::CACHE_CONTROL, "public, max-age=60")], "x").into_response(),
        );
        assert_eq!(
            cached.headers()[header::CACHE_CONTROL],
            "public, max-age=60"
        );
    }

    #[test]
    fn browsers_open_the_authorization_endpoint_and_login_pages_only() {
        assert!(opened_by_browsers("/authorize"));
        assert!(opened_by_browsers("/login/abc"));
        assert!(!opened_by_browsers("/login/abc/status"));
        assert!(!opened_by_browsers("/api/v1/logins/abc"));
        assert!(!opened_by_browsers("/authorize/x"));
    }

    #[tokio::test]
    async fn plain_text_refusals_become_json_or_pages() {
        let plain = (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response();
        let json = in_platform_format(plain, false).await;
        assert_eq!(json.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(json.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["error_description"], "length limit exceeded");
        let empty = (StatusCode::NOT_FOUND, Body::empty()).into_response();
        let page = in_platform_format(empty, true).await;
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        assert!(
            page.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}
