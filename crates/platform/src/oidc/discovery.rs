//! `GET /.well-known/openid-configuration`: what this provider really supports.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use cyberid_domain::{AssuranceLevel, Claim, ClientAuthMethod};
use serde_json::json;

use super::claims::VERIFIED_CLAIM;
use crate::platform::Platform;

pub async fn openid_configuration(State(platform): State<Platform>) -> impl IntoResponse {
    let issuer = &platform.issuer;
    let disclosable: Vec<&str> = Claim::ALL
        .iter()
        .filter(|c| **c != Claim::RealNameVerified)
        .map(Claim::as_str)
        .collect();
    let mut claims_supported = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        VERIFIED_CLAIM,
    ];
    claims_supported.extend(&disclosable);
    let mut scopes_supported = vec!["openid"];
    scopes_supported.extend(&disclosable);
    crate::metadata::public(Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "pushed_authorization_request_endpoint": format!("{issuer}/par"),
        "require_pushed_authorization_requests": false,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ClientAuthMethod::ALL.map(|m| m.as_str()),
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes_supported,
        "claims_supported": claims_supported,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "acr_values_supported": AssuranceLevel::ALL.map(|l| l.acr()),
        "prompt_values_supported": ["login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "claim_types_supported": ["normal"],
        "ui_locales_supported": ["en"],
    })))
}
