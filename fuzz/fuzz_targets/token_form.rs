//! The `/token` request before anything is looked up (`oidc::fuzzing`): the form, exactly
//! one client authentication method from the `Authorization` header (the input's first
//! line) and the form (the rest), the grant type; then the PKCE step with the request's
//! `code_verifier`. Basic credentials decode as RFC 6749 §2.3.1 says (percent-decoding
//! each part, compared with an independent decoder) and encode back to themselves; an
//! assertion is taken only with its type; a verifier passes exactly when RFC 7636 §4.1
//! allows its form and it hashes to the challenge.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cyberid_crypto::sha256;
use cyberid_fuzz::{MAX_DESCRIPTION_BYTES, b64, split_line};
use cyberid_platform::error::{ApiError, ErrorCode};
use cyberid_platform::oidc::fuzzing::{Presented, check_code_verifier, check_token_request};
use cyberid_platform::oidc::params::Params;
use libfuzzer_sys::fuzz_target;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fuzz_target!(|data: &[u8]| {
    let (header, body) = split_line(data);
    let authorization = std::str::from_utf8(header).ok().filter(|h| !h.is_empty());
    let params = match Params::parse(body) {
        Ok(params) => params,
        Err(description) => {
            assert!(description.len() <= MAX_DESCRIPTION_BYTES, "{description}");
            return;
        }
    };
    match check_token_request(authorization, &params) {
        Ok(presented) => check_presented(authorization, &params, &presented),
        Err(error) => check_refused(&error),
    }
    check_pkce(params.get("code_verifier"));
});

fn basic_credentials(authorization: Option<&str>) -> Option<&str> {
    let (scheme, credentials) = authorization?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then_some(credentials)
}

fn check_presented(authorization: Option<&str>, params: &Params, presented: &Presented<'_>) {
    assert_eq!(params.get("grant_type"), Some("authorization_code"));
    assert!(
        params.get("client_secret").is_none(),
        "client_secret_post accepted"
    );
    match presented {
        Presented::Basic { client_id, secret } => {
            assert!(
                params.get("client_assertion").is_none(),
                "two methods accepted"
            );
            let credentials = basic_credentials(authorization).expect("Basic was sent");
            assert_eq!(
                reference_decode(credentials),
                Some((client_id.clone(), secret.clone())),
                "Basic credentials decoded otherwise than RFC 6749 says"
            );
            let encoded = format!(
                "Basic {}",
                STANDARD.encode(format!(
                    "{}:{}",
                    form_encode(client_id),
                    form_encode(secret)
                ))
            );
            let again = check_token_request(Some(&encoded), params).expect("encoded again");
            assert_eq!(&again, presented);
        }
        Presented::Assertion(assertion) => {
            assert!(
                basic_credentials(authorization).is_none(),
                "two methods accepted"
            );
            assert_eq!(params.get("client_assertion"), Some(*assertion));
            assert_eq!(params.get("client_assertion_type"), Some(JWT_BEARER));
        }
    }
}

/// RFC 6749 §2.3.1 read independently: base64, one `:`, each side form-decoded (`+` a
/// space, `%XX` a byte), and no raw `&` (form encoding always escapes it).
fn reference_decode(credentials: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(credentials.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let part = |p: &str| -> Option<String> {
        if p.contains('&') {
            return None;
        }
        let spaced = p.replace('+', " ");
        Some(
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8_lossy()
                .into_owned(),
        )
    };
    Some((part(id)?, part(secret)?))
}

fn form_encode(part: &str) -> String {
    form_urlencoded::byte_serialize(part.as_bytes()).collect()
}

fn check_refused(error: &ApiError) {
    assert!(
        matches!(
            error.code,
            ErrorCode::InvalidRequest | ErrorCode::InvalidClient | ErrorCode::UnsupportedGrantType
        ),
        "{:?}",
        error.code
    );
    assert!(error.status.is_client_error());
    assert!(
        error.description.len() <= MAX_DESCRIPTION_BYTES,
        "{}",
        error.description
    );
}

fn check_pkce(verifier: Option<&str>) {
    let Some(verifier) = verifier else {
        let refused = check_code_verifier(None, "x").expect_err("no verifier, no code");
        assert_eq!(refused.code, ErrorCode::InvalidRequest);
        return;
    };
    let challenge = b64(sha256(verifier.as_bytes()));
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let checked = check_code_verifier(Some(verifier), &challenge);
    assert_eq!(checked.is_ok(), well_formed, "{verifier:?}");
    if let Err(error) = checked {
        assert_eq!(error.code, ErrorCode::InvalidGrant);
    }
    let other = b64(sha256(format!("{verifier}-other").as_bytes()));
    assert!(check_code_verifier(Some(verifier), &other).is_err());
}
