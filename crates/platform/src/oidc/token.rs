//! `POST /token`: the authorization code grant. The client is authenticated, the code is
//! redeemed once (a replay revokes what it gave), and the ID token and access token are
//! issued for the holder the sign-in approved.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cyberid_crypto::{b64, sha256};
use cyberid_domain::{AccountStatus, AssuranceLevel, Claim};
use cyberid_store::{AccountRecord, CodeRedemption, LoginRecord, RelyingParty};
use serde_json::json;

use super::claims::{IdTokenClaims, ReleasedClaims, pairwise_subject};
use super::client_auth;
use super::params::Params;
use crate::error::{ApiError, ErrorCode};
use crate::extract::FormBody;
use crate::limits::Limit;
use crate::platform::Platform;
use crate::sign_in::tokens::{access_token, check_authorization_code};

pub async fn token(
    State(platform): State<Platform>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Result<Response, ApiError> {
    let params = Params::parse(&body).map_err(ApiError::invalid_request)?;
    let endpoint = format!("{}/token", platform.issuer);
    let rp = client_auth::authenticate(&platform, &headers, &params, &endpoint).await?;
    admit_token_request(&platform, &rp)?;
    check_grant_type(&params)?;
    let id = read_code(&platform, &params)?;
    let now = crate::now();
    let (login, account) = redeem(&platform, &rp, &params, id, now).await?;
    check_code_fresh(&platform, &login, now)?;
    let account = active_account(account)?;
    let level = approved_level(&login)?;
    let id_token = id_token(&platform, &rp, &login, &account, level, now)?;
    Ok(token_response(&platform, &login, id_token, now))
}

/// Authenticated requests count against their client's limit: only the client itself can
/// spend it.
fn admit_token_request(platform: &Platform, rp: &RelyingParty) -> Result<(), ApiError> {
    platform
        .limits
        .admit_client(Limit::TokenRequestsPerClient, &rp.client_id, crate::now())
        .map_err(ApiError::from)
}

fn invalid_grant(description: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidGrant, description)
}

pub(super) fn check_grant_type(params: &Params) -> Result<(), ApiError> {
    match params.get("grant_type") {
        Some("authorization_code") => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::UnsupportedGrantType,
            "only the authorization_code grant is supported",
        )),
        None => Err(ApiError::invalid_request("grant_type is required")),
    }
}

/// The sign-in id of the code presented, if the platform issued it.
fn read_code<'a>(platform: &Platform, params: &'a Params) -> Result<&'a str, ApiError> {
    let code = params
        .get("code")
        .ok_or_else(|| ApiError::invalid_request("code is required"))?;
    check_authorization_code(platform, code).ok_or_else(|| invalid_grant("the code is not valid"))
}

/// The code redeemed, with the sign-in and its account. The common case takes one store
/// statement that checks client, redirect URI and PKCE challenge as it redeems; anything
/// off, and [`redeem_checked`] finds out what, with the precise error.
async fn redeem(
    platform: &Platform,
    rp: &RelyingParty,
    params: &Params,
    id: &str,
    now: i64,
) -> Result<(LoginRecord, Option<AccountRecord>), ApiError> {
    if let (Some(redirect_uri), Some(verifier)) =
        (params.get("redirect_uri"), params.get("code_verifier"))
        && well_formed_verifier(verifier)
    {
        let challenge = b64::encode(sha256(verifier.as_bytes()));
        let redeemed = platform
            .store
            .redeem_code_if(id, &rp.client_id, redirect_uri, &challenge, now)
            .await?;
        if let Some(redeemed) = redeemed {
            return Ok(redeemed);
        }
    }
    redeem_checked(platform, rp, params, id, now).await
}

/// Every check of a code exchange, one after the other, each with its own error; then the
/// redemption (a replay revokes what the code gave).
async fn redeem_checked(
    platform: &Platform,
    rp: &RelyingParty,
    params: &Params,
    id: &str,
    now: i64,
) -> Result<(LoginRecord, Option<AccountRecord>), ApiError> {
    let (login, client) = platform
        .store
        .login_with_client(id)
        .await?
        .ok_or_else(|| invalid_grant("the code is not valid"))?;
    if login.request.client_id != rp.client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    // The client authentication used this node's cached registration; this is the store's.
    if client.suspended {
        platform.saw_client_suspended(&client.client_id);
        return Err(client_auth::invalid_client("this client is suspended"));
    }
    let request = &login.request;
    if params.get("redirect_uri") != Some(request.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    check_pkce(params.get("code_verifier"), &request.code_challenge)?;
    // Redeem before checking expiry, so that a late replay is still seen as one.
    match platform.store.redeem_code(id, now).await? {
        CodeRedemption::Redeemed { login, account } => Ok((*login, account.map(|a| *a))),
        CodeRedemption::AlreadyRedeemed => {
            // RFC 6749 §4.1.2: a replayed code revokes what it was used for.
            platform.store.mark_code_replayed(id, now).await?;
            tracing::warn!("authorization code replayed; the tokens it issued are revoked");
            Err(invalid_grant(
                "the code was already used; the tokens issued with it are revoked",
            ))
        }
        CodeRedemption::NotApproved => Err(invalid_grant("the sign-in was not approved")),
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn well_formed_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 S256: base64url(SHA-256(verifier)) must equal the challenge.
pub(super) fn check_pkce(verifier: Option<&str>, challenge: &str) -> Result<(), ApiError> {
    let verifier =
        verifier.ok_or_else(|| ApiError::invalid_request("code_verifier is required"))?;
    if !well_formed_verifier(verifier) || b64::encode(sha256(verifier.as_bytes())) != challenge {
        return Err(invalid_grant("PKCE verification failed"));
    }
    Ok(())
}

/// A code lives `sign_in.code_seconds` after the approval.
fn check_code_fresh(platform: &Platform, login: &LoginRecord, now: i64) -> Result<(), ApiError> {
    let lifetime = platform.settings.sign_in.code_seconds;
    if login.auth_time.is_some_and(|t| t + lifetime <= now) {
        return Err(invalid_grant("the code has expired"));
    }
    Ok(())
}

fn active_account(account: Option<AccountRecord>) -> Result<AccountRecord, ApiError> {
    let account = account.ok_or_else(|| invalid_grant("the account no longer exists"))?;
    if account.status != AccountStatus::Active {
        return Err(invalid_grant(
            "the holder's Cyberspace ID is suspended or deregistered",
        ));
    }
    Ok(account)
}

fn approved_level(login: &LoginRecord) -> Result<AssuranceLevel, ApiError> {
    login
        .level
        .ok_or_else(|| ApiError::internal("token", "approved without level"))
}

/// The signed ID token: the pairwise subject, the level proved, and the released claims
/// asked for the ID token.
fn id_token(
    platform: &Platform,
    rp: &RelyingParty,
    login: &LoginRecord,
    account: &AccountRecord,
    level: AssuranceLevel,
    now: i64,
) -> Result<String, ApiError> {
    let for_id_token: Vec<Claim> = login
        .request
        .id_token_claims
        .iter()
        .filter(|claim| login.claims.contains(claim))
        .copied()
        .collect();
    let released = ReleasedClaims::of(
        &platform.keys,
        account,
        &for_id_token,
        time::OffsetDateTime::now_utc().date(),
    )?;
    let claims = IdTokenClaims {
        iss: &platform.issuer,
        sub: pairwise_subject(&platform.keys, &rp.sector, &account.person_digest),
        aud: &rp.client_id,
        iat: now,
        exp: now + platform.settings.sign_in.id_token_seconds,
        auth_time: login.auth_time.unwrap_or(now),
        nonce: login.request.nonce.as_deref(),
        acr: level.acr(),
        amr: level.amr(),
        cyberid_verified: true,
        released,
    };
    platform
        .keys
        .current_issuer()
        .sign_jwt("JWT", &claims)
        .map_err(|e| ApiError::internal("ID token", e))
}

fn token_response(
    platform: &Platform,
    login: &LoginRecord,
    id_token: String,
    now: i64,
) -> Response {
    let lifetime = platform.settings.sign_in.access_token_seconds;
    let scope: Vec<&str> = std::iter::once("openid")
        .chain(login.claims.iter().map(Claim::as_str))
        .collect();
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(json!({
            "access_token": access_token(platform, &login.id, now + lifetime),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "id_token": id_token,
            "scope": scope.join(" "),
        })),
    )
        .into_response()
}
