//! A JSON body extractor whose refusals are [`ApiError`]s, so malformed JSON, missing
//! fields, a wrong content type and oversized bodies all answer in the platform's format;
//! and the client's address as the rate limits count it.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::limits::ClientAddress;
use crate::platform::Platform;

/// Bodies of the platform's own API are small JSON documents.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(describe(rejection)),
        }
    }
}

fn describe(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let description = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "the request body must be JSON with Content-Type: application/json".to_owned()
        }
        JsonRejection::JsonSyntaxError(_) => {
            format!("the body is not valid JSON: {}", rejection.body_text())
        }
        JsonRejection::JsonDataError(_) => format!(
            "a field is missing or has the wrong type: {}",
            rejection.body_text()
        ),
        JsonRejection::BytesRejection(_) if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {} bytes", MAX_BODY_BYTES)
        }
        _ => rejection.body_text(),
    };
    ApiError::invalid_request(description).with_status(status)
}

/// A form-encoded body (`/token`, `/par`): RFC 6749 §4.1.3 and RFC 9126 §2.1 send
/// `application/x-www-form-urlencoded`, and a body sent as anything else (`text/plain`,
/// JSON) is refused with `415 invalid_request` rather than parsed as if it were a form.
pub struct FormBody(pub axum::body::Bytes);

/// Whether `headers` declare a form-encoded body (parameters such as a charset allowed).
pub fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_form(request.headers()) {
            return Err(ApiError::invalid_request(
                "the request body must be a form: Content-Type: application/x-www-form-urlencoded",
            )
            .with_status(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        axum::body::Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                let status = rejection.status();
                let description = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    format!("the request body is larger than {MAX_BODY_BYTES} bytes")
                } else {
                    rejection.body_text()
                };
                ApiError::invalid_request(description).with_status(status)
            })
    }
}

impl FromRequestParts<Platform> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &Platform,
    ) -> Result<Self, Self::Rejection> {
        let header = platform.settings.limits.client_address_header.as_deref();
        Ok(Self::of(parts, header))
    }
}
