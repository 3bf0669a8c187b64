//! Client authentication at the token and PAR endpoints: `client_secret_basic` and
//! `private_key_jwt` (ES256), whichever the client was registered with.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use cyberid_crypto::constant_time_eq;
use cyberid_crypto::jose::UnverifiedJws;
use cyberid_domain::ClientAuthMethod;
use cyberid_store::RelyingParty;
use serde::Deserialize;
use serde_json::Value;

use super::params::Params;
use crate::error::{ApiError, ErrorCode};
use crate::platform::Platform;
use crate::rp::{client_keys, client_secret_digest};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn invalid_client(description: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidClient, description)
}

/// The authenticated client, active as far as this node's cache knows (callers check a
/// suspension again in a store call they make anyway; see `crate::clients`).
/// `endpoint_url` is where the request arrived; client assertions may name it, the token
/// endpoint or the issuer as audience (RFC 7523, RFC 9126 §2).
pub async fn authenticate(
    platform: &Platform,
    headers: &HeaderMap,
    params: &Params,
    endpoint_url: &str,
) -> Result<Arc<RelyingParty>, ApiError> {
    // The scheme name is case-insensitive (RFC 7235 §2.1).
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials);
    refuse_client_secret_post(basic.is_some(), params)?;
    let (rp, method) = match (basic, params.get("client_assertion")) {
        (Some(_), Some(_)) => return Err(more_than_one_method()),
        (Some(credentials), None) => (
            basic_auth(platform, credentials).await?,
            ClientAuthMethod::ClientSecretBasic,
        ),
        (None, Some(assertion)) => {
            if params.get("client_assertion_type") != Some(JWT_BEARER) {
                return Err(invalid_client("client_assertion_type must be jwt-bearer"));
            }
            (
                assertion_auth(platform, assertion, endpoint_url).await?,
                ClientAuthMethod::PrivateKeyJwt,
            )
        }
        (None, None) => {
            return Err(invalid_client("client authentication is required")
                .with_challenge("Basic realm=\"cyberid\""));
        }
    };
    if rp.auth_method != method {
        return Err(invalid_client(
            "this client is registered for another authentication method",
        ));
    }
    if params.get("client_id").is_some_and(|id| id != rp.client_id) {
        return Err(invalid_client(
            "client_id does not match the authenticated client",
        ));
    }
    if rp.suspended {
        return Err(invalid_client("this client is suspended"));
    }
    Ok(rp)
}

/// RFC 6749 §2.3: a client "MUST NOT use more than one authentication method in each
/// request", and §5.2 names that `invalid_request`.
fn more_than_one_method() -> ApiError {
    ApiError::invalid_request(
        "the request uses more than one client authentication method; use exactly one",
    )
}

/// A `client_secret` in the body (`client_secret_post`) is not offered: next to HTTP Basic
/// it is a second method (refused, even when it is wrong, rather than ignored), and alone it
/// is a method this platform does not accept.
fn refuse_client_secret_post(basic: bool, params: &Params) -> Result<(), ApiError> {
    if params.get("client_secret").is_none() {
        return Ok(());
    }
    if basic || params.get("client_assertion").is_some() {
        return Err(more_than_one_method());
    }
    Err(invalid_client(
        "client_secret_post is not supported: send the secret with HTTP Basic \
         (client_secret_basic), or use private_key_jwt",
    ))
}

/// The client, or `invalid_client`; a store fault stays a server error.
async fn load(platform: &Platform, client_id: &str) -> Result<Option<Arc<RelyingParty>>, ApiError> {
    Ok(platform.client(client_id).await?)
}

/// RFC 6749 §2.3.1: `base64(urlencode(id) ":" urlencode(secret))`.
async fn basic_auth(platform: &Platform, credentials: &str) -> Result<Arc<RelyingParty>, ApiError> {
    let failed =
        || invalid_client("client authentication failed").with_challenge("Basic realm=\"cyberid\"");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .map_err(|_| failed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| failed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(failed)?;
    let decode = |part: &str| {
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let (id, secret) = (
        decode(id).ok_or_else(failed)?,
        decode(secret).ok_or_else(failed)?,
    );
    let rp = load(platform, &id).await?.ok_or_else(failed)?;
    let stored = rp.secret_digest.as_deref().ok_or_else(failed)?;
    if !constant_time_eq(&client_secret_digest(&platform.keys, &secret), stored) {
        return Err(failed());
    }
    Ok(rp)
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: Value,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// How far ahead of this node's clock a client's clock may be: an assertion not valid yet
/// (`nbf`) or issued (`iat`) further in the future is refused.
const CLIENT_CLOCK_SKEW_SECONDS: i64 = 60;

/// RFC 7523 client assertion, signed with a key from the client's registered JWKS.
async fn assertion_auth(
    platform: &Platform,
    assertion: &str,
    endpoint_url: &str,
) -> Result<Arc<RelyingParty>, ApiError> {
    let failed = |why: &str| invalid_client(&format!("client assertion rejected: {why}"));
    let jws = UnverifiedJws::parse(assertion).map_err(|_| failed("not a compact JWS"))?;
    let unverified: AssertionClaims = jws
        .payload_unverified()
        .map_err(|_| failed("missing iss, sub, aud or exp"))?;
    let rp = load(platform, &unverified.iss)
        .await?
        .ok_or_else(|| invalid_client("unknown client"))?;
    let jwks = rp
        .jwks
        .as_deref()
        .ok_or_else(|| failed("the client has no registered keys"))?;
    let keys =
        client_keys(jwks).map_err(|_| failed("the client's registered keys are unusable"))?;
    let kid = jws.header.kid.as_deref();
    let claims: AssertionClaims = keys
        .iter()
        .filter(|key| kid.is_none() || key.jwk().kid.as_deref() == kid)
        .find_map(|key| jws.verify_untyped(key).ok())
        .ok_or_else(|| failed("the signature does not verify with the client's keys"))?;
    if claims.iss != rp.client_id || claims.sub != rp.client_id {
        return Err(failed("iss and sub must be the client_id"));
    }
    let audiences: Vec<&str> = match &claims.aud {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let token_endpoint = format!("{}/token", platform.issuer);
    if !audiences
        .iter()
        .any(|aud| *aud == endpoint_url || *aud == token_endpoint || *aud == platform.issuer)
    {
        return Err(failed("aud must be the issuer or the token endpoint"));
    }
    let now = crate::now();
    // Client assertions must be short-lived.
    let max_lifetime = platform
        .settings
        .sign_in
        .client_assertion_max_lifetime_seconds;
    if claims.exp <= now || claims.exp > now + max_lifetime {
        return Err(failed(&format!(
            "expired, or valid for more than {max_lifetime} seconds"
        )));
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now + CLIENT_CLOCK_SKEW_SECONDS)
    {
        return Err(failed("not valid yet (nbf is in the future)"));
    }
    if claims
        .iat
        .is_some_and(|iat| iat > now + CLIENT_CLOCK_SKEW_SECONDS)
    {
        return Err(failed("issued in the future (iat)"));
    }
    // Single use (OIDC Core §9): the jti is remembered until the assertion expires.
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| failed("jti is required"))?;
    if !platform
        .store
        .use_client_assertion(&rp.client_id, &jti, claims.exp)
        .await?
    {
        return Err(failed("this assertion was already used"));
    }
    Ok(rp)
}
