//! The OIDC `claims` parameter of an authorization request (OIDC Core §5.5), fed straight
//! in as the parameter's value beside an otherwise valid request: an accepted one asks
//! for the level its `acr` names and releases only permitted claims (the checks shared
//! with `authorization_request`); one whose members are all `null` is never refused.
#![no_main]

use cyberid_fuzz::authorization::{check_accepted, check_refused};
use cyberid_fuzz::relying_party;
use cyberid_platform::oidc::params::Params;
use cyberid_platform::oidc::request::validate;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const REDIRECT_URI: &str = "https://shop.example/cb";

fuzz_target!(|data: &[u8]| {
    let Ok(claims) = std::str::from_utf8(data) else {
        return;
    };
    if claims.is_empty() || claims.contains('\0') {
        return;
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "shop")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid region")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256")
        .append_pair("claims", claims)
        .finish();
    let params = Params::parse(encoded.as_bytes()).expect("a well-formed form");
    assert_eq!(params.get("claims"), Some(claims));
    for legal_basis in [false, true] {
        let rp = relying_party(legal_basis, None);
        match validate(&rp, &params, REDIRECT_URI) {
            Ok(request) => check_accepted(&rp, &params, &request),
            Err(error) => {
                check_refused(&error);
                assert!(!only_nulls(claims), "{}", error.description);
            }
        }
    }
});

/// `{"userinfo": {...}, "id_token": {...}}` with only `null` requests: always well formed.
fn only_nulls(claims: &str) -> bool {
    let Ok(Value::Object(members)) = serde_json::from_str::<Value>(claims) else {
        return false;
    };
    ["userinfo", "id_token"]
        .iter()
        .all(|target| match members.get(*target) {
            None => true,
            Some(Value::Object(requests)) => requests.values().all(Value::is_null),
            Some(_) => false,
        })
}
