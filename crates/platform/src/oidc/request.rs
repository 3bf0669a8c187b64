//! Authorization request parameters: parsed strictly, then validated into the
//! [`SignInRequest`] that the sign-in keeps.

use std::collections::HashMap;

use cyberid_domain::{AssuranceLevel, Claim};
use cyberid_store::{RelyingParty, SignInRequest};
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

/// Form or query parameters, each at most once (RFC 6749 §3.1); empty values count as absent.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(encoded: &[u8]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            // No OAuth parameter has a use for NUL, and what is stored of a request must
            // stay valid for PostgreSQL, whose text refuses it.
            if name.contains('\0') || value.contains('\0') {
                return Err(format!("the parameter {name} contains a NUL character"));
            }
            if map.insert(name.to_string(), value.to_string()).is_some() {
                return Err(format!("the parameter {name} is given more than once"));
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn invalid(description: impl Into<String>) -> ApiError {
    ApiError::invalid_request(description)
}

/// Checks an already-authenticated client's request (redirect URI already checked) and
/// returns it as the sign-in stores it.
pub fn validate(
    rp: &RelyingParty,
    params: &Params,
    redirect_uri: &str,
) -> Result<SignInRequest, ApiError> {
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => return Err(invalid("response_type is required")),
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return Err(invalid("only response_mode=query is supported"));
    }
    if params.get("request").is_some() {
        return Err(ApiError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported; use pushed authorization requests",
        ));
    }
    let scope: Vec<&str> = params
        .get("scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if !scope.contains(&"openid") {
        return Err(ApiError::new(
            ErrorCode::InvalidScope,
            "the scope must include openid",
        ));
    }
    let code_challenge = check_pkce(params)?;
    let prompt: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if prompt.contains(&"none") {
        // Every sign-in needs the holder's wallet, so nothing can happen silently.
        return Err(ApiError::new(
            ErrorCode::InteractionRequired,
            "signing in with Cyberspace ID always needs the holder's approval in the wallet",
        ));
    }
    let requested_claims = parse_claims_parameter(params.get("claims"))?;
    let mut level = parse_acr_values(params.get("acr_values"))?.unwrap_or(AssuranceLevel::L1);
    if let Some(acr_level) = requested_claims.acr_level {
        level = level.max(acr_level);
    }

    // Requested claims: named by scope or by the claims parameter; released only if the
    // operator registered them for this client and, for raw identity data, recorded a
    // legal basis. Others are dropped, never released.
    let mut claims = Vec::new();
    let mut id_token_claims = Vec::new();
    let candidates = scope
        .iter()
        .map(|s| (*s, false))
        .chain(
            requested_claims
                .userinfo
                .iter()
                .map(|c| (c.as_str(), false)),
        )
        .chain(requested_claims.id_token.iter().map(|c| (c.as_str(), true)));
    for (name, for_id_token) in candidates {
        let Some(claim) = Claim::parse(name) else {
            continue;
        };
        let permitted = claim != Claim::RealNameVerified
            && rp.allowed_claims.contains(&claim)
            && (!claim.requires_legal_basis() || rp.legal_basis.is_some());
        if !permitted {
            continue;
        }
        if !claims.contains(&claim) {
            claims.push(claim);
        }
        if for_id_token && !id_token_claims.contains(&claim) {
            id_token_claims.push(claim);
        }
    }
    Ok(SignInRequest {
        client_id: rp.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state: params.get("state").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        claims,
        id_token_claims,
        level,
        code_challenge,
        force_consent: prompt.contains(&"consent"),
    })
}

/// PKCE (RFC 7636) with S256 only: `plain` would hand the verifier to anyone who sees the
/// authorization request.
fn check_pkce(params: &Params) -> Result<String, ApiError> {
    let challenge = params.get("code_challenge").ok_or_else(|| {
        invalid("PKCE is required: send code_challenge with code_challenge_method=S256")
    })?;
    match params.get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") | None => {
            return Err(invalid(
                "code_challenge_method must be S256; plain is not accepted",
            ));
        }
        Some(_) => return Err(invalid("unknown code_challenge_method; use S256")),
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(invalid(
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        ));
    }
    Ok(challenge.to_owned())
}

/// The lowest level named in `acr_values` (any listed level is acceptable to the client).
fn parse_acr_values(value: Option<&str>) -> Result<Option<AssuranceLevel>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let levels: Vec<AssuranceLevel> = value
        .split(' ')
        .filter_map(AssuranceLevel::from_acr)
        .collect();
    if levels.is_empty() {
        return Err(invalid(format!(
            "acr_values names no level this platform offers ({})",
            AssuranceLevel::ALL.map(|l| l.acr()).join(", ")
        )));
    }
    Ok(levels.into_iter().min())
}

#[derive(Default)]
struct RequestedClaims {
    userinfo: Vec<String>,
    id_token: Vec<String>,
    acr_level: Option<AssuranceLevel>,
}

/// The OIDC `claims` parameter: `{"userinfo": {...}, "id_token": {...}}`.
fn parse_claims_parameter(value: Option<&str>) -> Result<RequestedClaims, ApiError> {
    let Some(value) = value else {
        return Ok(RequestedClaims::default());
    };
    let parsed: Value =
        serde_json::from_str(value).map_err(|_| invalid("the claims parameter is not JSON"))?;
    let Value::Object(members) = parsed else {
        return Err(invalid("the claims parameter must be a JSON object"));
    };
    let mut out = RequestedClaims::default();
    for (target, requests) in members {
        let Value::Object(requests) = requests else {
            return Err(invalid(
                "claims.userinfo and claims.id_token must be objects",
            ));
        };
        let names: Vec<String> = requests.keys().cloned().collect();
        match target.as_str() {
            "userinfo" => out.userinfo = names,
            "id_token" => {
                if let Some(acr) = requests.get("acr") {
                    let values = acr
                        .get("values")
                        .and_then(Value::as_array)
                        .map(|v| {
                            v.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .or_else(|| acr.get("value").and_then(Value::as_str).map(str::to_owned));
                    if let Some(values) = values {
                        out.acr_level = parse_acr_values(Some(&values))?;
                    }
                }
                out.id_token = names;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The redirect URI, which must be registered exactly.
pub fn check_redirect_uri<'a>(
    rp: &RelyingParty,
    given: Option<&'a str>,
) -> Result<&'a str, ApiError> {
    let given = given.ok_or_else(|| invalid("redirect_uri is required"))?;
    if rp
        .redirect_uris
        .iter()
        .any(|registered| registered == given)
    {
        Ok(given)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the redirect_uri is not registered for this client",
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parameters_may_not_repeat() {
        assert!(Params::parse(b"a=1&b=2").is_ok());
        assert!(Params::parse(b"a=1&a=2").is_err());
        assert!(Params::parse(b"state=x%00y").is_err());
        assert!(Params::parse(b"st%00ate=x").is_err());
        assert_eq!(Params::parse(b"a=&b=x").unwrap().get("a"), None);
    }

    #[test]
    fn acr_values_pick_the_lowest_known_level() {
        assert_eq!(
            parse_acr_values(Some("urn:cyberid:acr:l3 urn:cyberid:acr:l2")).unwrap(),
            Some(AssuranceLevel::L2)
        );
        assert_eq!(
            parse_acr_values(Some("other urn:cyberid:acr:l3")).unwrap(),
            Some(AssuranceLevel::L3)
        );
        assert!(parse_acr_values(Some("urn:other")).is_err());
    }

    #[test]
    fn claims_parameter() {
        let parsed = parse_claims_parameter(Some(
            r#"{"userinfo":{"region":null},"id_token":{"age_over_18":{"essential":true},"acr":{"values":["urn:cyberid:acr:l2"]}}}"#,
        ))
        .unwrap();
        assert_eq!(parsed.userinfo, vec!["region"]);
        assert!(parsed.id_token.contains(&"age_over_18".to_owned()));
        assert_eq!(parsed.acr_level, Some(AssuranceLevel::L2));
        assert!(parse_claims_parameter(Some("[]")).is_err());
        assert!(parse_claims_parameter(Some("{")).is_err());
    }
}
