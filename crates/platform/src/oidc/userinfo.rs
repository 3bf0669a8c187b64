//! `GET|POST /userinfo` (Bearer): the subject, the verified flag and the released claims.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use cyberid_domain::{AccountStatus, Claim};
use serde_json::{Value, json};

use super::VERIFIED_CLAIM;
use super::subject::{claim_values, pairwise_subject};
use crate::error::{ApiError, ErrorCode};
use crate::server::Platform;

fn invalid_token(description: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, description).with_challenge(format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\""
    ))
}

pub async fn userinfo(
    State(platform): State<Platform>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "a Bearer access token is required",
            )
            .with_status(StatusCode::UNAUTHORIZED)
            .with_challenge("Bearer")
        })?;
    let now = crate::now();
    let login_id = super::token::check_access_token(&platform, token.trim(), now)
        .ok_or_else(|| invalid_token("the access token is unknown or expired"))?;
    let (login, rp, account) = platform
        .store
        .login_with_client_and_account(login_id)
        .await?
        .filter(|(login, _, _)| {
            login.code_redeemed_at.is_some() && login.code_replayed_at.is_none()
        })
        .ok_or_else(|| invalid_token("the access token is revoked"))?;
    if rp.suspended {
        platform.saw_client_suspended(&rp.client_id);
        return Err(invalid_token("the client may not use this token"));
    }
    let account_id = login
        .account_id
        .ok_or_else(|| invalid_token("the access token is revoked"))?;
    let account = account
        .filter(|account| account.status == AccountStatus::Active)
        .ok_or_else(|| invalid_token("the holder's Cyberspace ID is not active"))?;
    // Claims beyond the defaults flow only while the holder's consent stands.
    let released: Vec<Claim> = if login.claims.is_empty() {
        Vec::new()
    } else {
        let consented = platform
            .store
            .consent(account_id, &login.request.client_id)
            .await?
            .map(|c| c.claims)
            .unwrap_or_default();
        login
            .claims
            .iter()
            .filter(|c| consented.contains(c))
            .copied()
            .collect()
    };
    let mut claims = claim_values(
        &platform.keys,
        &account,
        &released,
        time::OffsetDateTime::now_utc().date(),
    )?;
    claims.insert(
        "sub".into(),
        json!(pairwise_subject(
            &platform.keys,
            &rp.sector,
            &account.person_digest
        )),
    );
    claims.insert(VERIFIED_CLAIM.into(), json!(true));
    Ok(Json(Value::Object(claims)))
}
