//! Client assertions (`private_key_jwt`, RFC 7523) as `/token` and `/par` check them
//! (`oidc::fuzzing::check_client_assertion`), for a client whose registered key is the
//! fixed client key. The input is read as an assertion as sent, and as `header JSON \n
//! claims JSON` which the target signs with the client's key (and, to compare, with a key
//! the client never registered). An accepted assertion is signed by the registered key,
//! names the client as `iss` and `sub`, is addressed to this platform, lives at most the
//! maximum, is not dated ahead of the clock by more than the skew, and has a `jti`.
#![no_main]

use cyberid_fuzz::{
    MAX_DESCRIPTION_BYTES, NOW, client_key, holder_key, relying_party, sign_compact, split_line,
};
use cyberid_platform::error::{ApiError, ErrorCode};
use cyberid_platform::oidc::fuzzing::{AssertionContext, CheckedAssertion, check_client_assertion};
use cyberid_store::RelyingParty;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::sync::OnceLock;

const ISSUER: &str = "https://id.example";
const ENDPOINT: &str = "https://id.example/par";
const MAX_LIFETIME: i64 = 300;
const SKEW: i64 = 60;

fn client() -> &'static RelyingParty {
    static CLIENT: OnceLock<RelyingParty> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let jwks = json!({ "keys": [client_key().public_jwk()] }).to_string();
        relying_party(false, Some(jwks))
    })
}

fn context() -> AssertionContext<'static> {
    AssertionContext {
        issuer: ISSUER,
        endpoint_url: ENDPOINT,
        now: NOW,
        max_lifetime_seconds: MAX_LIFETIME,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match check_client_assertion(client(), text, &context()) {
            Ok(checked) => check_accepted(text, &checked),
            Err(error) => check_refused(&error),
        }
    }
    let (header, claims) = split_line(data);
    let assertion = sign_compact(client_key(), header, claims);
    match check_client_assertion(client(), &assertion, &context()) {
        Ok(checked) => check_accepted(&assertion, &checked),
        Err(error) => check_refused(&error),
    }
    let unregistered = sign_compact(holder_key(), header, claims);
    let refused = check_client_assertion(client(), &unregistered, &context());
    assert!(
        refused.is_err(),
        "accepted with a key the client never registered"
    );
});

fn check_accepted(assertion: &str, checked: &CheckedAssertion) {
    let mut parts = assertion.split('.');
    let mut json_of = |what: &str| -> Value {
        let part = parts.next().unwrap_or_else(|| panic!("no {what}"));
        let bytes = cyberid_crypto::b64::decode(part).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    let header = json_of("header");
    let claims = json_of("claims");
    assert_eq!(header["alg"], "ES256");
    assert!(
        header.get("kid").is_none_or(|kid| kid == "client-1"),
        "{header}"
    );
    assert_eq!(claims["iss"], "shop");
    assert_eq!(claims["sub"], "shop");
    let addressed =
        |aud: &Value| aud == ISSUER || *aud == format!("{ISSUER}/token") || aud == ENDPOINT;
    match &claims["aud"] {
        Value::Array(many) => assert!(many.iter().any(addressed), "{claims}"),
        one => assert!(addressed(one), "{claims}"),
    }
    let exp = claims["exp"].as_i64().expect("exp is a number");
    assert!(
        exp > NOW && exp <= NOW + MAX_LIFETIME,
        "lifetime {}",
        exp - NOW
    );
    assert_eq!(checked.exp, exp);
    for dated in ["nbf", "iat"] {
        if let Some(at) = claims.get(dated).filter(|v| !v.is_null()) {
            assert!(
                at.as_i64().expect("a number") <= NOW + SKEW,
                "{dated} ahead"
            );
        }
    }
    assert_eq!(claims["jti"], checked.jti.as_str());
    assert!(!checked.jti.is_empty() && checked.jti.len() <= 256);
}

fn check_refused(error: &ApiError) {
    assert_eq!(
        error.code,
        ErrorCode::InvalidClient,
        "{}",
        error.description
    );
    assert!(
        error.description.len() <= MAX_DESCRIPTION_BYTES,
        "{}",
        error.description
    );
}
