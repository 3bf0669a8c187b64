//! `POST /token`: the authorization code grant.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cyberid_crypto::{b64, sha256};
use cyberid_domain::{AccountStatus, Claim};
use cyberid_store::{AccountRecord, CodeRedemption, LoginRecord, RelyingParty};
use serde_json::{Map, Value, json};

use super::authorize::check_authorization_code;
use super::request::Params;
use super::subject::{claim_values, pairwise_subject};
use super::{VERIFIED_CLAIM, client_auth};
use crate::error::{ApiError, ErrorCode};
use crate::server::Platform;

fn invalid_grant(description: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidGrant, description)
}

pub async fn token(
    State(platform): State<Platform>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(&body).map_err(ApiError::invalid_request)?;
    let endpoint = format!("{}/token", platform.issuer);
    let rp = client_auth::authenticate(&platform, &headers, &params, &endpoint).await?;
    match params.get("grant_type") {
        Some("authorization_code") => {}
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedGrantType,
                "only the authorization_code grant is supported",
            ));
        }
        None => {
            return Err(ApiError::invalid_request("grant_type is required"));
        }
    }
    let code = params
        .get("code")
        .ok_or_else(|| ApiError::invalid_request("code is required"))?;
    let id = check_authorization_code(&platform, code)
        .ok_or_else(|| invalid_grant("the code is not valid"))?;
    let now = crate::now();
    let sign_in = &platform.settings.sign_in;
    // The common case in one statement; anything off, and the slow path below finds out
    // what, with the precise error.
    let fast = match (params.get("redirect_uri"), params.get("code_verifier")) {
        (Some(redirect_uri), Some(verifier)) if well_formed_verifier(verifier) => {
            platform
                .store
                .redeem_code_if(
                    id,
                    &rp.client_id,
                    redirect_uri,
                    &b64::encode(sha256(verifier.as_bytes())),
                    now,
                )
                .await?
        }
        _ => None,
    };
    let (login, account) = match fast {
        Some(redeemed) => redeemed,
        None => redeem_checked(&platform, &rp, &params, id, now).await?,
    };
    if login
        .auth_time
        .is_some_and(|t| t + sign_in.code_seconds <= now)
    {
        return Err(invalid_grant("the code has expired"));
    }
    let account = account.ok_or_else(|| invalid_grant("the account no longer exists"))?;
    if account.status != AccountStatus::Active {
        return Err(invalid_grant(
            "the holder's Cyberspace ID is suspended or deregistered",
        ));
    }
    let level = login
        .level
        .ok_or_else(|| ApiError::internal("token", "approved without level"))?;

    let id_token_claims: Vec<Claim> = login
        .request
        .id_token_claims
        .iter()
        .filter(|c| login.claims.contains(c))
        .copied()
        .collect();
    let mut claims: Map<String, Value> = claim_values(
        &platform.keys,
        &account,
        &id_token_claims,
        time::OffsetDateTime::now_utc().date(),
    )?;
    claims.insert("iss".into(), json!(platform.issuer));
    claims.insert(
        "sub".into(),
        json!(pairwise_subject(
            &platform.keys,
            &rp.sector,
            &account.person_digest
        )),
    );
    claims.insert("aud".into(), json!(rp.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + sign_in.id_token_seconds));
    claims.insert("auth_time".into(), json!(login.auth_time.unwrap_or(now)));
    if let Some(nonce) = &login.request.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    claims.insert("acr".into(), json!(level.acr()));
    claims.insert("amr".into(), json!(level.amr()));
    claims.insert(VERIFIED_CLAIM.into(), json!(true));
    let id_token = platform
        .keys
        .current_issuer()
        .sign_jwt("JWT", &claims)
        .map_err(|e| ApiError::internal("ID token", e))?;

    let access_token = access_token(&platform, &login.id, now + sign_in.access_token_seconds);
    Ok((
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": sign_in.access_token_seconds,
            "id_token": id_token,
            "scope": std::iter::once("openid").chain(login.claims.iter().map(Claim::as_str)).collect::<Vec<_>>().join(" "),
        })),
    )
        .into_response())
}

/// An access token: `{sign-in id}.{expiry}.{MAC}`. Nothing is stored for it: userinfo
/// checks the MAC and expiry and reads the sign-in, whose replay mark revokes it.
pub fn access_token(platform: &Platform, login_id: &str, expires_at: i64) -> String {
    let body = format!("{login_id}.{expires_at}");
    let tag = platform.keys.mac.digest("access-token", body.as_bytes());
    format!("{body}.{}", b64::encode(&tag[..24]))
}

/// The sign-in id of an authentic, unexpired access token.
pub fn check_access_token<'a>(platform: &Platform, token: &'a str, now: i64) -> Option<&'a str> {
    let (body, _) = token.rsplit_once('.')?;
    let (login_id, expires_at) = body.split_once('.')?;
    let expires_at: i64 = expires_at.parse().ok()?;
    let expected = access_token(platform, login_id, expires_at);
    (cyberid_crypto::constant_time_eq(expected.as_bytes(), token.as_bytes()) && expires_at > now)
        .then_some(login_id)
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
fn check_pkce(verifier: Option<&str>, challenge: &str) -> Result<(), ApiError> {
    let verifier =
        verifier.ok_or_else(|| ApiError::invalid_request("code_verifier is required"))?;
    if !well_formed_verifier(verifier) || b64::encode(sha256(verifier.as_bytes())) != challenge {
        return Err(invalid_grant("PKCE verification failed"));
    }
    Ok(())
}
