//! What an authorization request may ask, checked step by step into the [`SignInRequest`]
//! that the sign-in keeps; the redirect URI checked exactly.

use cyberid_domain::{AssuranceLevel, Claim};
use cyberid_store::{RelyingParty, SignInRequest};
use serde_json::Value;

use super::params::{Params, shown_name};
use crate::error::{ApiError, ErrorCode};

fn invalid(description: impl Into<String>) -> ApiError {
    ApiError::invalid_request(description)
}

/// The longest value a parameter of an authorization request may have, in bytes
/// (docs/limits.md): what the platform stores of a request stays small whoever sends it,
/// and a value that long is never echoed back to a client.
pub const PARAMETER_MAXIMA: &[(&str, usize)] = &[
    ("state", 1024),
    ("nonce", 512),
    ("claims", 4096),
    ("acr_values", 512),
    ("scope", 1024),
    ("redirect_uri", 2048),
    ("login_hint", 256),
    ("ui_locales", 128),
    // Signed JWTs: client assertions at `/par`; request objects and ID token hints are
    // refused or ignored, but must reach the step that says so.
    ("client_assertion", 4096),
    ("request", 8192),
    ("id_token_hint", 4096),
];

/// Any other parameter.
pub const DEFAULT_PARAMETER_MAXIMUM: usize = 256;

/// Refuses a parameter longer than its maximum, naming it and the maximum.
pub fn check_lengths(params: &Params) -> Result<(), String> {
    for (name, value) in params.iter() {
        let maximum = PARAMETER_MAXIMA
            .iter()
            .find(|(known, _)| *known == name)
            .map_or(DEFAULT_PARAMETER_MAXIMUM, |(_, maximum)| *maximum);
        if value.len() > maximum {
            return Err(format!(
                "the parameter {} is longer than {maximum} bytes",
                shown_name(name)
            ));
        }
    }
    Ok(())
}

/// Checks an already-authenticated client's request (redirect URI already checked) and
/// returns it as the sign-in stores it.
pub fn validate(
    rp: &RelyingParty,
    params: &Params,
    redirect_uri: &str,
) -> Result<SignInRequest, ApiError> {
    check_response_type(params)?;
    check_response_mode(params)?;
    refuse_request_object(params)?;
    let scope = openid_scope(params)?;
    let code_challenge = check_pkce(params)?;
    let prompt = check_prompt(params)?;
    let asked = parse_claims_parameter(params.get("claims"))?;
    let level = required_level(params, &asked)?;
    let (claims, id_token_claims) = permitted_claims(rp, &scope, &asked);
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

fn check_response_type(params: &Params) -> Result<(), ApiError> {
    match params.get("response_type") {
        Some("code") => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::UnsupportedResponseType,
            "only response_type=code is supported",
        )),
        None => Err(invalid("response_type is required")),
    }
}

fn check_response_mode(params: &Params) -> Result<(), ApiError> {
    match params.get("response_mode") {
        None | Some("query") => Ok(()),
        Some(_) => Err(invalid("only response_mode=query is supported")),
    }
}

fn refuse_request_object(params: &Params) -> Result<(), ApiError> {
    if params.get("request").is_some() {
        return Err(ApiError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported; use pushed authorization requests",
        ));
    }
    Ok(())
}

/// The scope's words; it must include `openid`.
fn openid_scope(params: &Params) -> Result<Vec<&str>, ApiError> {
    let scope = params.words("scope");
    if !scope.contains(&"openid") {
        return Err(ApiError::new(
            ErrorCode::InvalidScope,
            "the scope must include openid",
        ));
    }
    Ok(scope)
}

/// The prompt's words; `none` cannot be honoured, since every sign-in needs the holder's
/// wallet and so nothing can happen silently.
fn check_prompt(params: &Params) -> Result<Vec<&str>, ApiError> {
    let prompt = params.words("prompt");
    if prompt.contains(&"none") {
        return Err(ApiError::new(
            ErrorCode::InteractionRequired,
            "signing in with Cyberspace ID always needs the holder's approval in the wallet",
        ));
    }
    Ok(prompt)
}

/// The lowest level `acr_values` accepts, raised by an `acr` asked in the `claims`
/// parameter's ID token; L1 when neither asks.
fn required_level(params: &Params, asked: &RequestedClaims) -> Result<AssuranceLevel, ApiError> {
    let level = parse_acr_values(params.get("acr_values"))?.unwrap_or(AssuranceLevel::L1);
    Ok(asked.acr_level.map_or(level, |acr| level.max(acr)))
}

/// The claims the sign-in may release, and which of them go into the ID token: named by
/// scope or by the claims parameter, and kept only if the operator registered them for this
/// client and, for raw identity data, recorded a legal basis. Others are dropped (OIDC lets
/// a provider ignore requests), never released.
fn permitted_claims(
    rp: &RelyingParty,
    scope: &[&str],
    asked: &RequestedClaims,
) -> (Vec<Claim>, Vec<Claim>) {
    let mut claims = Vec::new();
    let mut id_token_claims = Vec::new();
    let candidates = scope
        .iter()
        .map(|s| (*s, false))
        .chain(asked.userinfo.iter().map(|c| (c.as_str(), false)))
        .chain(asked.id_token.iter().map(|c| (c.as_str(), true)));
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
    (claims, id_token_claims)
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

/// The OIDC `claims` parameter (OIDC Core §5.5): `{"userinfo": {...}, "id_token": {...}}`,
/// each member `null` or an object whose `essential` is a boolean, `values` an array and, for
/// `acr`, `value` a string and `values` strings. Anything else is malformed: refused, never
/// read as if it had not been sent (an `acr` asked for and ignored would run the sign-in at
/// a lower level than the client wanted). Members this platform does not define are left to
/// their definers (ignored), as §5.5 says.
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
        if !matches!(target.as_str(), "userinfo" | "id_token") {
            continue;
        }
        let Value::Object(requests) = requests else {
            return Err(invalid(format!("claims.{target} must be an object")));
        };
        for (name, request) in &requests {
            check_claim_request(&target, name, request)?;
        }
        let names: Vec<String> = requests.keys().cloned().collect();
        if target == "id_token" {
            if let Some(acr) = requests.get("acr") {
                out.acr_level = requested_acr(acr)?;
            }
            out.id_token = names;
        } else {
            out.userinfo = names;
        }
    }
    Ok(out)
}

/// One claim's request: `null`, or an object with a boolean `essential` and an array
/// `values` when they are present.
fn check_claim_request(target: &str, name: &str, request: &Value) -> Result<(), ApiError> {
    let malformed = |why: &str| invalid(format!("claims.{target}.{}: {why}", shown_name(name)));
    let request = match request {
        Value::Null => return Ok(()),
        Value::Object(request) => request,
        _ => return Err(malformed("must be null or an object")),
    };
    if request.get("essential").is_some_and(|e| !e.is_boolean()) {
        return Err(malformed("essential must be true or false"));
    }
    if request.get("values").is_some_and(|v| !v.is_array()) {
        return Err(malformed("values must be an array"));
    }
    if request.contains_key("value") && request.contains_key("values") {
        return Err(malformed("give value or values, not both"));
    }
    Ok(())
}

/// The lowest level an `acr` request in the ID token accepts: its `value` (a string) or
/// `values` (strings); `None` when it names none.
fn requested_acr(acr: &Value) -> Result<Option<AssuranceLevel>, ApiError> {
    let malformed = |why: &str| invalid(format!("claims.id_token.acr: {why}"));
    let named: Vec<&str> = match (acr.get("value"), acr.get("values")) {
        (Some(Value::String(one)), None) => vec![one.as_str()],
        (Some(_), None) => return Err(malformed("value must be a string")),
        (None, Some(Value::Array(many))) => many
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| malformed("values must be strings"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Ok(None),
    };
    if named.is_empty() {
        return Err(malformed("values names no level"));
    }
    // Each value is one acr: unlike `acr_values`, not a list to split at spaces.
    let lowest = named
        .iter()
        .filter_map(|acr| AssuranceLevel::from_acr(acr))
        .min();
    match lowest {
        Some(level) => Ok(Some(level)),
        None => Err(malformed(&format!(
            "names no level this platform offers ({})",
            AssuranceLevel::ALL.map(|l| l.acr()).join(", ")
        ))),
    }
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
        let value = parse_claims_parameter(Some(
            r#"{"id_token":{"acr":{"essential":true,"value":"urn:cyberid:acr:l3"}},"other":1}"#,
        ))
        .unwrap();
        assert_eq!(value.acr_level, Some(AssuranceLevel::L3));
    }

    #[test]
    fn malformed_claims_parameters_are_refused() {
        for malformed in [
            // An essential acr written wrongly must not be read as no acr at all.
            r#"{"id_token":{"acr":{"essential":true,"values":"urn:cyberid:acr:l2"}}}"#,
            r#"{"id_token":{"acr":{"essential":true,"value":["urn:cyberid:acr:l2"]}}}"#,
            r#"{"id_token":{"acr":{"values":[2]}}}"#,
            r#"{"id_token":{"acr":{"values":[]}}}"#,
            // Found with the claims_parameter fuzz target: one value holding two acrs was
            // split at the space and read as asking for the lower.
            r#"{"id_token":{"acr":{"value":"urn:cyberid:acr:l3 urn:cyberid:acr:l1"}}}"#,
            r#"{"id_token":{"acr":{"values":["urn:cyberid:acr:l3 urn:cyberid:acr:l1"]}}}"#,
            r#"{"id_token":{"acr":{"values":["urn:other"]}}}"#,
            r#"{"id_token":{"acr":{"value":"urn:cyberid:acr:l2","values":["urn:cyberid:acr:l3"]}}}"#,
            r#"{"id_token":{"age_over_18":{"essential":"yes"}}}"#,
            r#"{"userinfo":{"region":true}}"#,
            r#"{"userinfo":{"region":{"values":"x"}}}"#,
            r#"{"userinfo":[]}"#,
            r#"{"id_token":null}"#,
        ] {
            let refused = parse_claims_parameter(Some(malformed));
            assert!(refused.is_err(), "{malformed} accepted");
        }
    }

    #[test]
    fn refusals_do_not_echo_long_names() {
        // Found by fuzzing: a malformed claim request, or a parameter over its maximum,
        // was refused with its whole name in the description.
        let name = "x".repeat(4000);
        let claims = format!(r#"{{"userinfo":{{"{name}":true}}}}"#);
        let refused = parse_claims_parameter(Some(&claims)).err().unwrap();
        assert!(refused.description.len() < 200, "{}", refused.description);
        assert!(refused.description.starts_with("claims.userinfo.xxxx"));

        let form = format!("{name}={}", "v".repeat(300));
        let refused = check_lengths(&Params::parse(form.as_bytes()).unwrap()).unwrap_err();
        assert!(refused.len() < 200, "{refused}");
    }
}
