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
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (rp, method) = match presented_credentials(authorization, params)? {
        Presented::Basic { client_id, secret } => (
            basic_auth(platform, &client_id, &secret).await?,
            ClientAuthMethod::ClientSecretBasic,
        ),
        Presented::Assertion(assertion) => (
            assertion_auth(platform, assertion, endpoint_url).await?,
            ClientAuthMethod::PrivateKeyJwt,
        ),
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

/// The credentials a request presents, read before anything is looked up.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `client_secret_basic`, its two parts decoded.
    Basic { client_id: String, secret: String },
    /// `private_key_jwt`: the assertion, not yet parsed.
    Assertion(&'a str),
}

/// Exactly one authentication method, read from the `Authorization` header and the form.
pub(super) fn presented_credentials<'a>(
    authorization: Option<&str>,
    params: &'a Params,
) -> Result<Presented<'a>, ApiError> {
    // The scheme name is case-insensitive (RFC 7235 §2.1).
    let basic = authorization
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials);
    refuse_client_secret_post(basic.is_some(), params)?;
    match (basic, params.get("client_assertion")) {
        (Some(_), Some(_)) => Err(more_than_one_method()),
        (Some(credentials), None) => {
            let (client_id, secret) = decode_basic(credentials).ok_or_else(basic_failed)?;
            Ok(Presented::Basic { client_id, secret })
        }
        (None, Some(assertion)) => {
            if params.get("client_assertion_type") != Some(JWT_BEARER) {
                return Err(invalid_client("client_assertion_type must be jwt-bearer"));
            }
            Ok(Presented::Assertion(assertion))
        }
        (None, None) => Err(invalid_client("client authentication is required")
            .with_challenge("Basic realm=\"cyberid\"")),
    }
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

fn basic_failed() -> ApiError {
    invalid_client("client authentication failed").with_challenge("Basic realm=\"cyberid\"")
}

/// RFC 6749 §2.3.1: `base64(urlencode(id) ":" urlencode(secret))`, as client id and secret.
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |part: &str| {
        // Encoding escapes `&`; read as a form, a raw one would end the part early and
        // `client&anything` would name `client`.
        if part.contains('&') {
            return None;
        }
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

async fn basic_auth(
    platform: &Platform,
    client_id: &str,
    secret: &str,
) -> Result<Arc<RelyingParty>, ApiError> {
    let rp = load(platform, client_id).await?.ok_or_else(basic_failed)?;
    let stored = rp.secret_digest.as_deref().ok_or_else(basic_failed)?;
    if !constant_time_eq(&client_secret_digest(&platform.keys, secret), stored) {
        return Err(basic_failed());
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

/// RFC 7523 client assertion, signed with a key from the client's registered JWKS, used
/// once.
async fn assertion_auth(
    platform: &Platform,
    assertion: &str,
    endpoint_url: &str,
) -> Result<Arc<RelyingParty>, ApiError> {
    let (jws, claimed_client) = read_assertion(assertion)?;
    let rp = load(platform, &claimed_client)
        .await?
        .ok_or_else(|| invalid_client("unknown client"))?;
    let context = AssertionContext {
        issuer: &platform.issuer,
        endpoint_url,
        now: crate::now(),
        max_lifetime_seconds: platform
            .settings
            .sign_in
            .client_assertion_max_lifetime_seconds,
    };
    let checked = check_assertion(&rp, &jws, &context)?;
    // Single use (OIDC Core §9): the jti is remembered until the assertion expires.
    if !platform
        .store
        .use_client_assertion(&rp.client_id, &checked.jti, checked.exp)
        .await?
    {
        return Err(assertion_failed("this assertion was already used"));
    }
    Ok(rp)
}

fn assertion_failed(why: &str) -> ApiError {
    invalid_client(&format!("client assertion rejected: {why}"))
}

/// Where and when an assertion is checked.
#[derive(Debug, Clone, Copy)]
pub struct AssertionContext<'a> {
    /// The platform's issuer identifier; it and its `/token` are accepted audiences.
    pub issuer: &'a str,
    /// Where the request arrived, also an accepted audience.
    pub endpoint_url: &'a str,
    pub now: i64,
    /// `sign_in.client_assertion_max_lifetime_seconds`.
    pub max_lifetime_seconds: i64,
}

/// An assertion that passed every check but the single-use one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAssertion {
    pub jti: String,
    pub exp: i64,
}

/// The assertion split into its parts, and the client it claims to come from (`iss`, read
/// unverified to choose whose keys to verify it with).
pub(super) fn read_assertion(assertion: &str) -> Result<(UnverifiedJws<'_>, String), ApiError> {
    let jws = UnverifiedJws::parse(assertion).map_err(|_| assertion_failed("not a compact JWS"))?;
    let unverified: AssertionClaims = jws
        .payload_unverified()
        .map_err(|_| assertion_failed("missing iss, sub, aud or exp"))?;
    Ok((jws, unverified.iss))
}

/// Every check of an assertion that needs no store: signed by one of the client's registered
/// keys, `iss` and `sub` the client, addressed to this platform, short-lived, `nbf` and
/// `iat` not ahead of this node's clock by more than the skew, a `jti`.
pub(super) fn check_assertion(
    rp: &RelyingParty,
    jws: &UnverifiedJws<'_>,
    context: &AssertionContext<'_>,
) -> Result<CheckedAssertion, ApiError> {
    let failed = assertion_failed;
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
    let token_endpoint = format!("{}/token", context.issuer);
    if !audiences
        .iter()
        .any(|aud| *aud == context.endpoint_url || *aud == token_endpoint || *aud == context.issuer)
    {
        return Err(failed("aud must be the issuer or the token endpoint"));
    }
    let now = context.now;
    // Client assertions must be short-lived.
    let max_lifetime = context.max_lifetime_seconds;
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
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| failed("jti is required"))?;
    Ok(CheckedAssertion {
        jti,
        exp: claims.exp,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(
            decode_basic(&base64::engine::general_purpose::STANDARD.encode("a%3Ab:c+d%26")),
            Some(("a:b".to_owned(), "c d&".to_owned()))
        );
        // Found writing the token_form fuzz target: a raw `&` ended the part, so
        // `shop&x` was read as `shop`.
        for raw in ["shop&x:secret", "shop:sec&ret"] {
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
            assert_eq!(decode_basic(&encoded), None, "{raw}");
        }
    }

    #[test]
    fn exactly_one_method_is_presented() {
        let params = Params::parse(b"grant_type=authorization_code").unwrap();
        assert_eq!(
            presented_credentials(Some(&basic("shop:s")), &params).unwrap(),
            Presented::Basic {
                client_id: "shop".into(),
                secret: "s".into()
            }
        );
        let refused = presented_credentials(Some(&basic("shop&x:s")), &params).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidClient);
        let both = Params::parse(b"client_assertion=a.b.c&client_assertion_type=x").unwrap();
        let refused = presented_credentials(Some(&basic("shop:s")), &both).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidRequest);
    }
}
