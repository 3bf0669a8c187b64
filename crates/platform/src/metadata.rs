//! Published keys and metadata, and the node's health and readiness.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use cyberid_store::StoreError;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::platform::Platform;

fn jwk_set(platform: &Platform) -> Value {
    let keys: Vec<_> = platform
        .keys
        .issuer
        .iter()
        .map(|k| k.public_jwk())
        .collect();
    json!({ "keys": keys })
}

/// `GET /jwks.json`: every issuer key still in use, the current one first.
pub async fn jwks(State(platform): State<Platform>) -> impl IntoResponse {
    public(Json(jwk_set(&platform)))
}

/// `GET /.well-known/jwt-vc-issuer` (SD-JWT VC issuer metadata): the keys inline, so a
/// verifier needs one request.
pub async fn jwt_vc_issuer(State(platform): State<Platform>) -> impl IntoResponse {
    public(Json(json!({
        "issuer": platform.issuer,
        "jwks": jwk_set(&platform),
    })))
}

/// Public metadata may be cached for five minutes: a new signing key is published before it
/// signs anything (keys overlap in the set), so a copy that old still verifies.
pub fn public<T: IntoResponse>(body: T) -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        body,
    )
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers within `store.ready_timeout_ms`. Otherwise `503
/// temporarily_unavailable`, so that a load balancer sends requests elsewhere until it does
/// (the node itself keeps serving and recovers on its own).
pub async fn readyz(State(platform): State<Platform>) -> Result<Json<Value>, ApiError> {
    let limit = Duration::from_millis(platform.settings.store.ready_timeout_ms);
    match tokio::time::timeout(limit, platform.store.ping()).await {
        Ok(Ok(())) => Ok(Json(
            json!({ "status": "ready", "store": platform.store.backend() }),
        )),
        Ok(Err(StoreError::Unavailable(cause))) => {
            tracing::debug!(%cause, "not ready: the store is unavailable");
            Err(ApiError::unavailable())
        }
        // The store answered, but with an error a retry will not mend: worth a warning.
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: the store failed");
            Err(ApiError::unavailable())
        }
        Err(_) => Err(ApiError::unavailable()),
    }
}
