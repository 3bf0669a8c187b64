//! Checks of an authorization request's outcome, shared by the targets that reach it.

use cyberid_domain::{AssuranceLevel, Claim};
use cyberid_platform::error::{ApiError, ErrorCode};
use cyberid_platform::oidc::params::Params;
use cyberid_store::{RelyingParty, SignInRequest};
use serde_json::Value;

use crate::MAX_DESCRIPTION_BYTES;

/// A refusal is one of the codes `/authorize` documents, a client error, with a short
/// description.
pub fn check_refused(error: &ApiError) {
    assert!(
        matches!(
            error.code,
            ErrorCode::InvalidRequest
                | ErrorCode::UnsupportedResponseType
                | ErrorCode::RequestNotSupported
                | ErrorCode::InvalidScope
                | ErrorCode::InteractionRequired
        ),
        "{:?}",
        error.code
    );
    assert!(error.status.is_client_error());
    assert!(!error.description.is_empty());
    assert!(
        error.description.len() <= MAX_DESCRIPTION_BYTES,
        "{}",
        error.description
    );
}

fn words<'a>(params: &'a Params, name: &str) -> Vec<&'a str> {
    params
        .get(name)
        .unwrap_or_default()
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect()
}

/// An accepted request stores only what was asked, registered and permitted, at the
/// level asked.
pub fn check_accepted(rp: &RelyingParty, params: &Params, request: &SignInRequest) {
    assert_eq!(params.get("response_type"), Some("code"));
    assert!(words(params, "scope").contains(&"openid"));
    assert!(!words(params, "prompt").contains(&"none"));
    assert_eq!(
        request.force_consent,
        words(params, "prompt").contains(&"consent")
    );
    assert_eq!(request.client_id, rp.client_id);
    assert_eq!(
        Some(request.redirect_uri.as_str()),
        params.get("redirect_uri")
    );
    assert_eq!(request.state.as_deref(), params.get("state"));
    assert_eq!(request.nonce.as_deref(), params.get("nonce"));
    assert_eq!(
        Some(request.code_challenge.as_str()),
        params.get("code_challenge")
    );
    assert_eq!(params.get("code_challenge_method"), Some("S256"));
    assert_eq!(request.code_challenge.len(), 43);
    assert!(params.get("request").is_none());

    // Only claims asked for, registered, and permitted; each once.
    let claims_param: Value = params
        .get("claims")
        .map(|c| serde_json::from_str(c).expect("an accepted claims parameter is JSON"))
        .unwrap_or(Value::Null);
    let asked_in = |target: &str| -> Vec<String> {
        claims_param[target]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let scope = words(params, "scope");
    let (userinfo, id_token) = (asked_in("userinfo"), asked_in("id_token"));
    for (i, claim) in request.claims.iter().enumerate() {
        let name = claim.as_str();
        assert!(
            scope.contains(&name) || userinfo.iter().chain(&id_token).any(|n| n == name),
            "{name} was not asked for"
        );
        assert!(rp.allowed_claims.contains(claim));
        assert_ne!(*claim, Claim::RealNameVerified);
        assert!(!claim.requires_legal_basis() || rp.legal_basis.is_some());
        assert!(!request.claims[..i].contains(claim), "{name} twice");
    }
    for (i, claim) in request.id_token_claims.iter().enumerate() {
        assert!(request.claims.contains(claim));
        assert!(id_token.iter().any(|n| n == claim.as_str()));
        assert!(!request.id_token_claims[..i].contains(claim));
    }

    // The level: at least the lowest of acr_values, raised to the lowest acr asked for.
    let named_levels = |words: &[&str]| -> Option<AssuranceLevel> {
        words
            .iter()
            .filter_map(|w| AssuranceLevel::from_acr(w))
            .min()
    };
    let from_acr_values = named_levels(&words(params, "acr_values"));
    if params.get("acr_values").is_some() {
        assert!(
            from_acr_values.is_some(),
            "acr_values naming no level was accepted"
        );
    }
    let acr = &claims_param["id_token"]["acr"];
    let asked: Vec<&str> = match (acr.get("value"), acr.get("values")) {
        (Some(Value::String(one)), None) => vec![one.as_str()],
        (None, Some(Value::Array(many))) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let from_claims = named_levels(&asked);
    if !asked.is_empty() {
        assert!(from_claims.is_some(), "an acr naming no level was accepted");
    }
    let expected = from_acr_values
        .unwrap_or(AssuranceLevel::L1)
        .max(from_claims.unwrap_or(AssuranceLevel::L1));
    assert_eq!(request.level, expected);
}
