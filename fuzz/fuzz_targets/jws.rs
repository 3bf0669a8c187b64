//! Compact JWS (`UnverifiedJws`) and P-256 JWKs (`VerifyingKey::from_jwk`): every token and
//! device key the platform and the wallet receive. The input is read three ways:
//! - as a token as sent: it parses into the header its first part says, and nothing
//!   verifies unless its algorithm and type are the expected ones;
//! - as `header JSON \n payload JSON`, which the target signs: parsing accepts exactly the
//!   headers that are JOSE headers, and verification gives back exactly the payload when
//!   algorithm, type and key are right, and the precise refusal when one is not;
//! - as a JWK: an accepted key is the key it names (its thumbprint, its JSON round trip),
//!   and it verifies a signature exactly when it is the key that made it.
#![no_main]

use cyberid_crypto::jose::{EcPublicJwk, JoseError, JwsHeader, UnverifiedJws, VerifyingKey};
use cyberid_fuzz::{holder_key, issuer_key, sign_compact, split_line};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    signed(data);
    if let Ok(text) = std::str::from_utf8(data) {
        as_sent(text);
        as_jwk(text);
    }
});

fn as_sent(text: &str) {
    let Ok(jws) = UnverifiedJws::parse(text) else {
        return;
    };
    let header_b64 = text.split('.').next().unwrap_or_default();
    let header_json = base64_decode(header_b64).expect("a parsed header is base64url");
    let header: JwsHeader = serde_json::from_slice(&header_json).expect("and a JOSE header");
    assert_eq!(header, jws.header);
    assert_eq!(
        text.matches('.').count(),
        2,
        "a compact JWS has three parts"
    );
    let _ = jws.payload_unverified::<Value>();
    if jws
        .verify::<Value>(issuer_key().verifying_key(), "JWT")
        .is_ok()
    {
        assert_eq!(jws.header.alg, "ES256");
        assert_eq!(jws.header.typ.as_deref(), Some("JWT"));
    }
}

fn signed(data: &[u8]) {
    let (header_bytes, payload_bytes) = split_line(data);
    let token = sign_compact(issuer_key(), header_bytes, payload_bytes);
    // RFC 7515 §4: a header is UTF-8 JSON, every member of it.
    let expected_header = std::str::from_utf8(header_bytes)
        .map_err(|_| "not UTF-8")
        .and_then(|text| serde_json::from_str::<JwsHeader>(text).map_err(|_| "not a header"));
    let jws = match UnverifiedJws::parse(&token) {
        Ok(jws) => jws,
        Err(error) => {
            assert!(expected_header.is_err(), "a JOSE header refused: {error}");
            return;
        }
    };
    let header = expected_header.expect("only JOSE headers parse");
    assert_eq!(jws.header, header);

    let payload = serde_json::from_slice::<Value>(payload_bytes);
    let key = issuer_key().verifying_key();
    let verified = jws.verify::<Value>(key, "JWT");
    if header.alg != "ES256" {
        assert_eq!(verified, Err(JoseError::UnsupportedAlgorithm));
    } else if header.typ.as_deref() != Some("JWT") {
        assert!(
            matches!(verified, Err(JoseError::WrongType { .. })),
            "{verified:?}"
        );
    } else {
        match (&verified, &payload) {
            (Ok(got), Ok(sent)) => assert_eq!(got, sent),
            (Err(JoseError::Malformed(_)), Err(_)) => {}
            _ => panic!("payload {payload:?} verified as {verified:?}"),
        }
    }
    let untyped = jws.verify_untyped::<Value>(key);
    if header.alg == "ES256" {
        assert_eq!(untyped.is_ok(), payload.is_ok());
    }
    // Another key never verifies it.
    assert!(
        jws.verify::<Value>(holder_key().verifying_key(), "JWT")
            .is_err()
    );
    assert!(
        jws.verify_untyped::<Value>(holder_key().verifying_key())
            .is_err()
    );
}

fn as_jwk(text: &str) {
    let Ok(jwk) = serde_json::from_str::<EcPublicJwk>(text) else {
        return;
    };
    let Ok(key) = VerifyingKey::from_jwk(&jwk) else {
        return;
    };
    assert!(
        jwk.d.is_none(),
        "a private key was accepted as a public one"
    );
    assert_eq!((jwk.kty.as_str(), jwk.crv.as_str()), ("EC", "P-256"));
    assert_eq!(key.thumbprint(), jwk.thumbprint());
    assert_eq!(key.jwk().x, jwk.x);
    assert_eq!(key.jwk().y, jwk.y);
    let json = serde_json::to_string(&key.jwk().bare()).expect("serialises");
    let again: EcPublicJwk = serde_json::from_str(&json).expect("parses");
    let again = VerifyingKey::from_jwk(&again).expect("a published key is accepted");
    assert_eq!(again.thumbprint(), key.thumbprint());

    let message = b"cyberid fuzz";
    let signature = holder_key().sign(message).expect("signs");
    let is_holder = key.thumbprint() == holder_key().verifying_key().thumbprint();
    assert_eq!(key.verify(message, &signature).is_ok(), is_holder);
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    cyberid_crypto::b64::decode(text).ok()
}
