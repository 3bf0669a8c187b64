//! SD-JWT VCs, their disclosures and key-binding JWTs (`SdJwt::parse`, `sd_jwt::verify`):
//! what a verifier and the wallet read. The input is read two ways:
//! - as a presentation as sent: it parses into parts that join back into exactly the input,
//!   and verifying it, with or without a key-binding check, never panics;
//! - as lines the target turns into a credential: line 1 the issuer-signed payload (a JSON
//!   object), each further line a disclosure's JSON (the target base64url-encodes it and
//!   adds its digest to `_sd`), and a line `#kb <JSON>` the key-binding JWT's claims, which
//!   the holder key signs (`"@sd_hash@"` in it becomes the right `sd_hash`). A credential
//!   that verifies shows exactly its plain and disclosed claims, the holder key of its
//!   `cnf`, times that hold at the clock; every presentation the wallet makes of it
//!   verifies with its nonce and audience, and not with another nonce or without the
//!   key-binding check.
#![no_main]

use cyberid_crypto::jose::{EcPublicJwk, VerifyingKey};
use cyberid_crypto::sd_jwt::{
    self, Disclosure, KB_JWT_TYP, KeyBindingCheck, SD_JWT_VC_TYP, SdJwt, SdJwtError, Verified,
};
use cyberid_crypto::sha256;
use cyberid_fuzz::{NOW, b64, holder_key, issuer_key};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const AUDIENCE: &str = "https://rp.example";
const NONCE: &str = "nonce-1";
const MAX_AGE: i64 = 300;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    as_sent(text);
    built(text);
});

fn issuer(kid: Option<&str>) -> Option<&'static VerifyingKey> {
    (kid == Some("issuer-1")).then(|| issuer_key().verifying_key())
}

fn check() -> KeyBindingCheck<'static> {
    KeyBindingCheck {
        audience: AUDIENCE,
        nonce: NONCE,
        max_age_seconds: MAX_AGE,
    }
}

fn joined(parsed: &SdJwt) -> String {
    let mut out = parsed.jwt.clone();
    for disclosure in &parsed.disclosures {
        out.push('~');
        out.push_str(&disclosure.encoded);
    }
    out.push('~');
    out.push_str(parsed.key_binding.as_deref().unwrap_or_default());
    out
}

fn as_sent(text: &str) {
    if let Ok(parsed) = SdJwt::parse(text) {
        assert_eq!(
            joined(&parsed),
            text,
            "parts do not join back into the input"
        );
        let _ = parsed.claims_unverified();
    }
    for key_binding in [None, Some(check())] {
        if let Ok(verified) = sd_jwt::verify(text, issuer, NOW, key_binding) {
            check_verified(text, &verified);
        }
    }
}

fn built(text: &str) {
    let mut lines = text.split('\n');
    let Some(Ok(Value::Object(mut payload))) = lines.next().map(serde_json::from_str::<Value>)
    else {
        return;
    };
    let mut disclosures = Vec::new();
    let mut key_binding = None;
    for line in lines {
        match line.strip_prefix("#kb ") {
            Some(claims) => key_binding = Some(claims),
            None => disclosures.push(b64(line)),
        }
    }
    let digests = disclosures.iter().map(|d| b64(sha256(d.as_bytes())));
    match payload.get_mut("_sd") {
        Some(Value::Array(sd)) => sd.extend(digests.map(Value::from)),
        Some(_) => {}
        None => {
            payload.insert("_sd".into(), digests.map(Value::from).collect());
        }
    }
    let jwt = issuer_key()
        .sign_jwt(SD_JWT_VC_TYP, &payload)
        .expect("signs");
    let mut compact = jwt;
    for disclosure in &disclosures {
        compact.push('~');
        compact.push_str(disclosure);
    }
    compact.push('~');

    let parsed = SdJwt::parse(&compact);
    let all_disclosures_parse = disclosures.iter().all(|d| {
        matches!(
            serde_json::from_slice::<Value>(&cyberid_crypto::b64::decode(d).unwrap_or_default()),
            Ok(Value::Array(a)) if a.len() == 3 && a[0].is_string() && a[1].is_string()
        )
    });
    assert_eq!(parsed.is_ok(), all_disclosures_parse, "{parsed:?}");
    let Ok(parsed) = parsed else { return };
    assert_eq!(joined(&parsed), compact);

    let verified = sd_jwt::verify(&compact, issuer, NOW, None);
    if let Ok(verified) = &verified {
        check_verified(&compact, verified);
        let claims = parsed.claims_unverified().expect("what verifies reads");
        assert_eq!(claims, verified.claims);
        check_claims(&payload, &parsed.disclosures, &verified.claims);
        check_cnf(&payload, verified);
        check_presentations(&parsed, &compact, verified);
    }
    if let Some(kb_claims) = key_binding {
        let sd_hash = b64(sha256(compact.as_bytes()));
        let kb_claims = kb_claims.replace("@sd_hash@", &sd_hash);
        let kb = holder_key()
            .sign_jwt(
                KB_JWT_TYP,
                &serde_json::from_str::<Value>(&kb_claims).unwrap_or_default(),
            )
            .expect("signs");
        let presentation = format!("{compact}{kb}");
        if let Ok(with_kb) = sd_jwt::verify(&presentation, issuer, NOW, Some(check())) {
            let kb: Value = serde_json::from_str(&kb_claims).expect("verified claims are JSON");
            assert_eq!(kb["aud"], AUDIENCE);
            assert_eq!(kb["nonce"], NONCE);
            assert_eq!(kb["sd_hash"], sd_hash.as_str());
            let iat = kb["iat"].as_i64().expect("iat is a number");
            assert!(iat.abs_diff(NOW) <= MAX_AGE.unsigned_abs());
            assert!(verified.is_ok(), "only a valid credential presents");
            assert_eq!(
                with_kb.holder_key.thumbprint(),
                holder_key().verifying_key().thumbprint()
            );
        }
    }
}

/// What holds of any credential that verifies, whoever built it.
fn check_verified(compact: &str, verified: &Verified) {
    assert!(!verified.claims.contains_key("_sd"));
    assert!(!verified.claims.contains_key("_sd_alg"));
    if let Some(exp) = verified.claims.get("exp") {
        assert!(
            exp.as_i64().expect("exp is a number") > NOW,
            "expired, yet verified"
        );
    }
    if let Some(nbf) = verified.claims.get("nbf") {
        assert!(
            nbf.as_i64().expect("nbf is a number") <= NOW,
            "not yet valid, yet verified"
        );
    }
    let parsed = SdJwt::parse(compact).expect("what verifies parses");
    for disclosure in &parsed.disclosures {
        assert_eq!(
            verified.claims.get(&disclosure.name),
            Some(&disclosure.value)
        );
    }
}

/// Exactly the plain claims and the disclosed ones.
fn check_claims(
    payload: &Map<String, Value>,
    disclosures: &[Disclosure],
    claims: &Map<String, Value>,
) {
    let mut expected = payload.clone();
    expected.remove("_sd");
    expected.remove("_sd_alg");
    for disclosure in disclosures {
        let before = expected.insert(disclosure.name.clone(), disclosure.value.clone());
        assert!(
            before.is_none(),
            "{} given twice, yet verified",
            disclosure.name
        );
    }
    assert_eq!(&expected, claims);
}

fn check_cnf(payload: &Map<String, Value>, verified: &Verified) {
    let jwk: EcPublicJwk = payload
        .get("cnf")
        .and_then(|cnf| cnf.get("jwk"))
        .and_then(|jwk| serde_json::from_value(jwk.clone()).ok())
        .expect("a verified credential names its holder key");
    assert_eq!(verified.holder_key.thumbprint(), jwk.thumbprint());
}

/// Presentations the holder makes: all disclosures, none, and every other one.
fn check_presentations(parsed: &SdJwt, compact: &str, verified: &Verified) {
    let names: Vec<&str> = parsed.disclosures.iter().map(|d| d.name.as_str()).collect();
    let alternate: Vec<&str> = names.iter().copied().step_by(2).collect();
    let holder_is_ours =
        verified.holder_key.thumbprint() == holder_key().verifying_key().thumbprint();
    for chosen in [names.clone(), Vec::new(), alternate] {
        let presentation = parsed
            .present(&chosen, holder_key(), AUDIENCE, NONCE, NOW)
            .expect("the holder presents what it holds");
        assert!(presentation.starts_with(compact.split('~').next().unwrap_or_default()));
        let shown = sd_jwt::verify(&presentation, issuer, NOW, Some(check()));
        if !holder_is_ours {
            assert!(matches!(shown, Err(SdJwtError::KeyBinding(_))), "{shown:?}");
            continue;
        }
        let shown = shown.expect("a presentation of a valid credential verifies");
        let mut expected = verified.claims.clone();
        expected
            .retain(|name, _| chosen.contains(&name.as_str()) || !names.contains(&name.as_str()));
        assert_eq!(
            shown.claims, expected,
            "a presentation shows other claims than chosen"
        );
        let other_nonce = KeyBindingCheck {
            nonce: "another nonce",
            ..check()
        };
        assert!(sd_jwt::verify(&presentation, issuer, NOW, Some(other_nonce)).is_err());
        assert!(sd_jwt::verify(&presentation, issuer, NOW, None).is_err());
    }
}
