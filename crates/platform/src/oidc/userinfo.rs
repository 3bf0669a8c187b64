//! `GET|POST /userinfo` (Bearer): the subject, the verified flag, and the released claims the
//! holder still consents to.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use cyberid_domain::{AccountStatus, Claim};
use cyberid_store::{AccountRecord, LoginRecord, RelyingParty};

use super::claims::{ReleasedClaims, UserinfoClaims, pairwise_subject};
use crate::error::{ApiError, ErrorCode};
use crate::platform::Platform;
use crate::sign_in::tokens::check_access_token;

pub async fn userinfo(
    State(platform): State<Platform>,
    headers: HeaderMap,
) -> Result<Json<UserinfoClaims>, ApiError> {
    let token = bearer_token(&headers)?;
    let id = check_access_token(&platform, token, crate::now())
        .ok_or_else(|| invalid_token("the access token is unknown or expired"))?;
    let (login, rp, account) = live_sign_in(&platform, id).await?;
    let account = active_account(account)?;
    let released = still_consented(&platform, &login, &account).await?;
    Ok(Json(UserinfoClaims {
        sub: pairwise_subject(&platform.keys, &rp.sector, &account.person_digest),
        cyberid_verified: true,
        released: ReleasedClaims::of(
            &platform.keys,
            &account,
            &released,
            time::OffsetDateTime::now_utc().date(),
        )?,
    }))
}

fn invalid_token(description: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, description).with_challenge(format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\""
    ))
}

/// The access token of an `Authorization: Bearer …` header (RFC 6750 §2.1); the scheme's
/// name is case-insensitive (RFC 9110 §11.1).
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_request("a Bearer access token is required")
                .with_status(StatusCode::UNAUTHORIZED)
                .with_challenge("Bearer")
        })
}

/// The sign-in the token names, with its client and account: its code redeemed and not
/// replayed (a replay revokes the token), its client not suspended.
async fn live_sign_in(
    platform: &Platform,
    id: &str,
) -> Result<(LoginRecord, RelyingParty, Option<AccountRecord>), ApiError> {
    let (login, rp, account) = platform
        .store
        .login_with_client_and_account(id)
        .await?
        .filter(|(login, _, _)| {
            login.code_redeemed_at.is_some() && login.code_replayed_at.is_none()
        })
        .filter(|(login, _, _)| login.account_id.is_some())
        .ok_or_else(|| invalid_token("the access token is revoked"))?;
    if rp.suspended {
        platform.saw_client_suspended(&rp.client_id);
        return Err(invalid_token("the client may not use this token"));
    }
    Ok((login, rp, account))
}

fn active_account(account: Option<AccountRecord>) -> Result<AccountRecord, ApiError> {
    account
        .filter(|account| account.status == AccountStatus::Active)
        .ok_or_else(|| invalid_token("the holder's Cyberspace ID is not active"))
}

/// The claims released at the sign-in that the holder's consent still covers: claims beyond
/// the defaults flow only while it stands.
async fn still_consented(
    platform: &Platform,
    login: &LoginRecord,
    account: &AccountRecord,
) -> Result<Vec<Claim>, ApiError> {
    if login.claims.is_empty() {
        return Ok(Vec::new());
    }
    let consented = platform
        .store
        .consent(account.account_id, &login.request.client_id)
        .await?
        .map(|consent| consent.claims)
        .unwrap_or_default();
    Ok(login
        .claims
        .iter()
        .filter(|claim| consented.contains(claim))
        .copied()
        .collect())
}
