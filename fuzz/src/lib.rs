//! What the fuzz targets share: fixed keys (so that a target can sign what the fuzzer
//! writes and reach the checks behind a signature), a fixed clock, and input splitting.
//!
//! The keys are test keys generated for this purpose only; they sign nothing else.

pub mod authorization;

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cyberid_crypto::jose::SigningKey;

/// The clock of every target: 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000;

const ISSUER_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgN05hX0uumadoAMWwxw+zAgQkB+7RIlDB8tOoZlIklpqhRANCAASzpQB9nu9taSxNPLUA7HUBrmOXxPPrHXi/eywWJcI1AEdG4zkuFflB6fbeboI+UlxTeoKpkBihTebos7+AhC/L";
const HOLDER_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/hkooiS+kMchef5UySCpz8AOo3AKZax9wvu687WstJqhRANCAAQSdLyXBC31afb9LhwJWCeKnRTsm6aKgoe8rmGF/ggwe9H5niQTSjsTwo6h5aTY7kZsTtxGv6ufd5HpULM60BwM";
const CLIENT_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyMg/m/+bnlxDYQygZoXxXTZMgkcNRQgTAbPjSvwEBv+hRANCAASwqJU6FcqcCkEgs2+BV0XYr/ehAiMuOCW7AWF9zpUOwKwlP6UmSMaz8eQ1DOgttZqclVdl5MLInGkj5PlgTQEy";

fn load(pkcs8: &str, kid: &str) -> SigningKey {
    let der = STANDARD.decode(pkcs8).expect("the fixed key is base64");
    SigningKey::from_pkcs8(&der)
        .expect("the fixed key is a P-256 PKCS#8 key")
        .with_kid(kid)
}

/// Signs SD-JWT VCs and status lists (kid `issuer-1`).
pub fn issuer_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| load(ISSUER_PKCS8, "issuer-1"))
}

/// A wallet's device key (kid `holder-1`).
pub fn holder_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| load(HOLDER_PKCS8, "holder-1"))
}

/// A relying party's `private_key_jwt` key (kid `client-1`).
pub fn client_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| load(CLIENT_PKCS8, "client-1"))
}

/// The input up to its first newline, and the rest (empty when there is none).
pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// A compact JWS of exactly these header and payload bytes, signed by `key`: lets the
/// fuzzer choose what stands behind a valid signature.
pub fn sign_compact(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key
        .sign(token.as_bytes())
        .expect("ES256 signing does not fail");
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    token
}

/// base64url without padding, as JOSE writes it.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A registered relying party as the store returns it. With `legal_basis`, it may receive
/// the raw identity claims it registered; `jwks` are its `private_key_jwt` keys.
pub fn relying_party(legal_basis: bool, jwks: Option<String>) -> cyberid_store::RelyingParty {
    use cyberid_domain::{Claim, ClientAuthMethod};
    cyberid_store::RelyingParty {
        client_id: "shop".into(),
        name: "Shop".into(),
        redirect_uris: vec![
            "https://shop.example/cb".into(),
            "http://127.0.0.1:8080/cb".into(),
        ],
        sector: "shop.example".into(),
        allowed_claims: vec![
            Claim::AgeOver18,
            Claim::Region,
            Claim::Name,
            Claim::NetworkNumber,
            Claim::RealNameVerified,
        ],
        legal_basis: legal_basis.then(|| "contract".into()),
        auth_method: if jwks.is_some() {
            ClientAuthMethod::PrivateKeyJwt
        } else {
            ClientAuthMethod::ClientSecretBasic
        },
        secret_digest: None,
        jwks,
        require_par: false,
        suspended: false,
        created_at: 0,
    }
}

/// The longest error description the platform should send back: descriptions name what
/// is wrong and never echo a long value (or a long name) from the request.
pub const MAX_DESCRIPTION_BYTES: usize = 400;
