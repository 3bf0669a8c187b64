//! `GET /login/{id}/status`: the login page's script asks it whether the wallet has decided,
//! and the node holds the request until it has (see [`crate::decisions`]).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use cyberid_store::LoginStatus;
use serde_json::json;

use super::browser::{destination, same_browser};
use crate::error::{ApiError, ErrorCode};
use crate::platform::Platform;

/// `pending` until the wallet decides or the sign-in expires, then `done`, with the
/// `location` to go to when asked by the browser that started the sign-in (its cookie): the
/// client's redirect URI with the code or the error, as `/login/{id}` would redirect, one
/// exchange sooner. With `?wait=1` (the login page's script) a pending answer waits first,
/// until the decision, the sign-in's expiry or `sign_in.decision_wait_seconds`, whichever
/// comes first; the page asks again.
pub async fn status(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let status = if asks_to_wait(query.as_deref()) {
        wait_for_decision(&platform, &id, &headers).await?
    } else {
        status_now(&platform, &id, &headers).await?
    };
    let body = match status {
        Status::Pending { .. } => json!({ "status": "pending" }),
        Status::Done { location: None } => json!({ "status": "done" }),
        Status::Done {
            location: Some(location),
        } => json!({ "status": "done", "location": location }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

fn asks_to_wait(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "wait" && v == "1")
    })
}

enum Status {
    /// Waiting for the wallet until `expires_at`.
    Pending { expires_at: i64 },
    /// Ended; where the browser that started it goes next.
    Done { location: Option<String> },
}

/// The sign-in's status as the store has it now.
async fn status_now(
    platform: &Platform,
    id: &str,
    headers: &HeaderMap,
) -> Result<Status, ApiError> {
    let login = platform
        .store
        .login(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such sign-in"))?;
    if login.waits_for_wallet(crate::now()) {
        return Ok(Status::Pending {
            expires_at: login.expires_at,
        });
    }
    let location = (login.status != LoginStatus::Pushed && same_browser(headers, &login))
        .then(|| destination(platform, &login));
    Ok(Status::Done { location })
}

/// [`status_now`], answered once the sign-in has ended or when the wait is over: woken by a
/// decision on this node or one found on another, or by the node's closing; over at
/// `sign_in.decision_wait_seconds` or the sign-in's expiry. Beyond the bounds on waiting
/// requests it answers at once.
async fn wait_for_decision(
    platform: &Platform,
    id: &str,
    headers: &HeaderMap,
) -> Result<Status, ApiError> {
    let started = tokio::time::Instant::now();
    let Some(waiter) = platform.decisions.wait_for(id) else {
        return status_now(platform, id, headers).await;
    };
    // Enabled before the read: a decision between the read and the wait still wakes it.
    let decided = waiter.notified();
    tokio::pin!(decided);
    decided.as_mut().enable();
    let expires_at = match status_now(platform, id, headers).await? {
        Status::Pending { expires_at } if !platform.decisions.is_closing() => expires_at,
        answer => return Ok(answer),
    };
    platform.check_decisions_elsewhere();
    // A second past the expiry, so that the read after it finds the sign-in expired.
    let to_expiry = u64::try_from(expires_at.saturating_sub(crate::now())).unwrap_or(0) + 1;
    let until = started
        + platform
            .settings
            .sign_in
            .decision_wait()
            .min(std::time::Duration::from_secs(to_expiry));
    let _ = tokio::time::timeout_at(until, decided).await;
    status_now(platform, id, headers).await
}
