//! The one error type of every HTTP endpoint, rendered in one place as an OAuth-style JSON
//! error (`{"error": code, "error_description": text}`). Codes come from the one
//! vocabulary, [`ErrorCode`], which also gives the HTTP status. Server faults are logged
//! with their cause and shown to the client without it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use cyberid_protocol::ErrorCode;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub description: String,
    /// A `WWW-Authenticate` challenge for 401 answers.
    pub challenge: Option<String>,
    /// `Retry-After` seconds, for 429 and 503 answers.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorCode,
    error_description: &'a str,
}

impl ApiError {
    /// A refusal with `code`'s HTTP status (400 for codes that otherwise travel in a
    /// redirect, when they are answered directly, as at `/par`).
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let status = code
            .http_status()
            .and_then(|status| StatusCode::from_u16(status).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        Self {
            status,
            code,
            description: description.into(),
            challenge: None,
            retry_after: None,
        }
    }

    /// The same code with another status: `invalid_request` for a wrong method, an
    /// oversized body, a wrong content type, a missing Bearer token.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// `invalid_request`: the most common refusal.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// A fault of the platform, not of the request. The cause goes to the log (it must
    /// not contain personal data), the client gets a generic message.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(
            ErrorCode::ServerError,
            "the platform could not complete the request; try again later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code,
            error_description: &self.description,
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        if let Some(value) = self
            .challenge
            .as_deref()
            .and_then(|c| axum::http::HeaderValue::from_str(c).ok())
        {
            headers.insert(axum::http::header::WWW_AUTHENTICATE, value);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// How soon a caller may try again while the database cannot be reached: an outage's
/// length is unknown, and a node recovers on the first store call that succeeds.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

impl From<cyberid_store::StoreError> for ApiError {
    fn from(error: cyberid_store::StoreError) -> Self {
        match error {
            // Not a fault of this request, and one per request while it lasts: the store's
            // error counter, `/readyz` and the background loops' warnings report it.
            cyberid_store::StoreError::Unavailable(cause) => {
                tracing::debug!(%cause, "store unavailable");
                Self::unavailable()
            }
            error => Self::internal("store", error),
        }
    }
}

impl ApiError {
    /// `503 temporarily_unavailable` with `Retry-After`: the database cannot be reached.
    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the platform cannot reach its database at the moment; try again shortly",
        )
        .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECONDS)
    }
}
