//! Published keys and metadata.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

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
pub async fn jwks(State(platform): State<Platform>) -> Json<Value> {
    Json(jwk_set(&platform))
}

/// `GET /.well-known/jwt-vc-issuer` (SD-JWT VC issuer metadata): the keys inline, so a
/// verifier needs one request.
pub async fn jwt_vc_issuer(State(platform): State<Platform>) -> Json<Value> {
    Json(json!({
        "issuer": platform.issuer,
        "jwks": jwk_set(&platform),
    }))
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers.
pub async fn readyz(
    State(platform): State<Platform>,
) -> Result<Json<Value>, crate::error::ApiError> {
    platform.store.ping().await?;
    Ok(Json(
        json!({ "status": "ready", "store": platform.store.backend() }),
    ))
}
