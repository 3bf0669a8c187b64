//! SD-JWT (RFC 9901) and the SD-JWT VC profile (draft-ietf-oauth-sd-jwt-vc, `typ`
//! `dc+sd-jwt`) as cyberid uses them: a flat credential whose top-level claims are each
//! selectively disclosable, holder binding by `cnf.jwk`, and key-binding JWTs (`kb+jwt`).
//!
//! Issuance, presentation and verification live here, in one small module, instead of in
//! a general SD-JWT crate: the cyberid credential is flat (no nested or array disclosures),
//! signatures use the cached keys of [`crate::jose`], and the tests check everything this
//! module writes with `sd-jwt-payload`, an independent implementation of RFC 9901.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jose::{EcPublicJwk, JoseError, SigningKey, UnverifiedJws, VerifyingKey};
use crate::{UnixTime, b64, random};

/// `typ` of an SD-JWT VC issuer-signed JWT.
pub const SD_JWT_VC_TYP: &str = "dc+sd-jwt";
/// `typ` of a key-binding JWT.
pub const KB_JWT_TYP: &str = "kb+jwt";
const SD_ALG: &str = "sha-256";
/// Claims that are part of the JWT machinery and may never be disclosable.
const RESERVED: [&str; 10] = [
    "_sd", "_sd_alg", "...", "iss", "iat", "exp", "nbf", "cnf", "vct", "status",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdJwtError {
    #[error("malformed SD-JWT: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Jose(#[from] JoseError),
    #[error("the issuer key {0:?} is unknown")]
    UnknownIssuerKey(Option<String>),
    #[error("a disclosure does not match any digest in the credential")]
    UnmatchedDisclosure,
    #[error("claim {0:?} is disclosed twice or collides with a plain claim")]
    DuplicateClaim(String),
    #[error("claim {0:?} cannot be selectively disclosable")]
    ReservedClaim(String),
    #[error("the credential has expired")]
    Expired,
    #[error("the credential is not valid yet")]
    NotYetValid,
    #[error("key binding: {0}")]
    KeyBinding(&'static str),
}

/// One disclosure, `[salt, claim name, claim value]`, with its encoded form.
#[derive(Clone, Debug, PartialEq)]
pub struct Disclosure {
    pub encoded: String,
    pub name: String,
    pub value: Value,
}

impl Disclosure {
    fn new(name: &str, value: Value) -> Result<Self, SdJwtError> {
        let salt = random::token::<16>();
        let json = serde_json::to_vec(&(salt, name, &value))
            .map_err(|_| SdJwtError::Malformed("disclosure value"))?;
        Ok(Self {
            encoded: b64::encode(json),
            name: name.to_owned(),
            value,
        })
    }

    fn parse(encoded: &str) -> Result<Self, SdJwtError> {
        let json = b64::decode(encoded)
            .map_err(|_| SdJwtError::Malformed("disclosure is not base64url"))?;
        let array: Vec<Value> = serde_json::from_slice(&json)
            .map_err(|_| SdJwtError::Malformed("disclosure is not a JSON array"))?;
        match <[Value; 3]>::try_from(array) {
            Ok([Value::String(_salt), Value::String(name), value]) => Ok(Self {
                encoded: encoded.to_owned(),
                name,
                value,
            }),
            Ok(_) => Err(SdJwtError::Malformed(
                "disclosure must be [salt, name, value] with string salt and name",
            )),
            Err(_) => Err(SdJwtError::Malformed(
                "only object-property disclosures ([salt, name, value]) are used in cyberid credentials",
            )),
        }
    }

    /// base64url(SHA-256(ASCII(disclosure))), as RFC 9901 §4.2.3 defines the digest.
    pub fn digest(&self) -> String {
        sd_hash(&self.encoded)
    }
}

fn sd_hash(text: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, text.as_bytes()))
}

/// What an issuer puts into a credential: claims always visible and claims the holder may
/// disclose one by one.
#[derive(Clone, Debug, Default)]
pub struct CredentialDraft {
    pub visible: Map<String, Value>,
    pub disclosable: Vec<(String, Value)>,
}

/// Issues an SD-JWT VC: `<issuer-signed JWT>~<disclosure>~…~`.
pub fn issue(issuer: &SigningKey, draft: &CredentialDraft) -> Result<String, SdJwtError> {
    let mut payload = draft.visible.clone();
    let mut disclosures = Vec::with_capacity(draft.disclosable.len());
    for (name, value) in &draft.disclosable {
        if RESERVED.contains(&name.as_str()) {
            return Err(SdJwtError::ReservedClaim(name.clone()));
        }
        if payload.contains_key(name) {
            return Err(SdJwtError::DuplicateClaim(name.clone()));
        }
        disclosures.push(Disclosure::new(name, value.clone())?);
    }
    // Sorted digests reveal nothing about the order in which claims were added.
    let mut digests: Vec<String> = disclosures.iter().map(Disclosure::digest).collect();
    digests.sort_unstable();
    payload.insert("_sd".into(), Value::from(digests));
    payload.insert("_sd_alg".into(), Value::from(SD_ALG));
    let jwt = issuer.sign_jwt(SD_JWT_VC_TYP, &payload)?;
    let mut out = jwt;
    for disclosure in &disclosures {
        out.push('~');
        out.push_str(&disclosure.encoded);
    }
    out.push('~');
    Ok(out)
}

/// A parsed SD-JWT or SD-JWT+KB (signatures not yet checked).
#[derive(Clone, Debug)]
pub struct SdJwt {
    pub jwt: String,
    pub disclosures: Vec<Disclosure>,
    pub key_binding: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct KeyBindingClaims {
    iat: UnixTime,
    aud: String,
    nonce: String,
    sd_hash: String,
}

impl SdJwt {
    pub fn parse(compact: &str) -> Result<Self, SdJwtError> {
        let mut parts = compact.split('~');
        let jwt = parts
            .next()
            .filter(|jwt| !jwt.is_empty())
            .ok_or(SdJwtError::Malformed("missing issuer-signed JWT"))?
            .to_owned();
        let rest: Vec<&str> = parts.collect();
        let Some((last, disclosures)) = rest.split_last() else {
            return Err(SdJwtError::Malformed(
                "an SD-JWT ends with '~' or a key-binding JWT",
            ));
        };
        let disclosures = disclosures
            .iter()
            .map(|d| Disclosure::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        let key_binding = (!last.is_empty()).then(|| (*last).to_owned());
        Ok(Self {
            jwt,
            disclosures,
            key_binding,
        })
    }

    /// The SD-JWT without key binding: `<JWT>~<D1>~…~`; the input of `sd_hash`.
    fn without_key_binding(&self, disclosures: &[&Disclosure]) -> String {
        let mut out = self.jwt.clone();
        for disclosure in disclosures {
            out.push('~');
            out.push_str(&disclosure.encoded);
        }
        out.push('~');
        out
    }

    /// The claims as the holder sees them: plain claims plus every disclosure it holds.
    /// No signature check: the holder reads its own credential.
    pub fn claims_unverified(&self) -> Result<Map<String, Value>, SdJwtError> {
        let jws = UnverifiedJws::parse(&self.jwt)?;
        let payload: Map<String, Value> = jws.payload_unverified()?;
        let all: Vec<&Disclosure> = self.disclosures.iter().collect();
        merge_disclosures(payload, &all)
    }

    /// A presentation disclosing only `names`, bound to `aud` and `nonce` by a key-binding
    /// JWT signed with the holder's device key.
    pub fn present(
        &self,
        names: &[&str],
        holder: &SigningKey,
        aud: &str,
        nonce: &str,
        iat: UnixTime,
    ) -> Result<String, SdJwtError> {
        let mut chosen = Vec::with_capacity(names.len());
        for name in names {
            let disclosure =
                self.disclosures
                    .iter()
                    .find(|d| d.name == *name)
                    .ok_or(SdJwtError::Malformed(
                        "the credential has no such claim to disclose",
                    ))?;
            chosen.push(disclosure);
        }
        let mut presentation = self.without_key_binding(&chosen);
        let kb = KeyBindingClaims {
            iat,
            aud: aud.to_owned(),
            nonce: nonce.to_owned(),
            sd_hash: sd_hash(&presentation),
        };
        presentation.push_str(&holder.sign_jwt(KB_JWT_TYP, &kb)?);
        Ok(presentation)
    }
}

fn merge_disclosures(
    mut payload: Map<String, Value>,
    disclosures: &[&Disclosure],
) -> Result<Map<String, Value>, SdJwtError> {
    if payload.get("_sd_alg").is_some_and(|alg| alg != SD_ALG) {
        return Err(SdJwtError::Malformed("unsupported _sd_alg"));
    }
    let digests: Vec<String> = match payload.remove("_sd") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|d| match d {
                Value::String(s) => Ok(s),
                _ => Err(SdJwtError::Malformed("_sd must hold strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(SdJwtError::Malformed("_sd must be an array")),
        None => Vec::new(),
    };
    payload.remove("_sd_alg");
    let mut used = vec![false; digests.len()];
    for disclosure in disclosures {
        let digest = disclosure.digest();
        let position = digests
            .iter()
            .position(|d| *d == digest)
            .ok_or(SdJwtError::UnmatchedDisclosure)?;
        if used[position] {
            return Err(SdJwtError::DuplicateClaim(disclosure.name.clone()));
        }
        used[position] = true;
        if RESERVED.contains(&disclosure.name.as_str()) {
            return Err(SdJwtError::ReservedClaim(disclosure.name.clone()));
        }
        if payload
            .insert(disclosure.name.clone(), disclosure.value.clone())
            .is_some()
        {
            return Err(SdJwtError::DuplicateClaim(disclosure.name.clone()));
        }
    }
    Ok(payload)
}

/// What a verifier learned from a valid SD-JWT VC.
#[derive(Debug)]
pub struct Verified {
    /// Plain claims plus the disclosed ones (`_sd` and `_sd_alg` removed).
    pub claims: Map<String, Value>,
    /// The holder key from `cnf.jwk`.
    pub holder_key: VerifyingKey,
}

/// What a verifier expects of a key-binding JWT.
pub struct KeyBindingCheck<'a> {
    pub audience: &'a str,
    pub nonce: &'a str,
    /// Accepted age of the key-binding JWT, either way (clock skew).
    pub max_age_seconds: i64,
}

/// Verifies an SD-JWT VC: issuer signature (key chosen by `kid`), `typ`, disclosure digests,
/// `exp`/`nbf`, `cnf`, and — when `key_binding` is given — the key-binding JWT.
pub fn verify<'k>(
    compact: &str,
    issuer_key: impl Fn(Option<&str>) -> Option<&'k VerifyingKey>,
    now: UnixTime,
    key_binding: Option<KeyBindingCheck<'_>>,
) -> Result<Verified, SdJwtError> {
    let sd_jwt = SdJwt::parse(compact)?;
    let jws = UnverifiedJws::parse(&sd_jwt.jwt)?;
    let key = issuer_key(jws.header.kid.as_deref())
        .ok_or_else(|| SdJwtError::UnknownIssuerKey(jws.header.kid.clone()))?;
    let payload: Map<String, Value> = jws.verify(key, SD_JWT_VC_TYP)?;
    let disclosures: Vec<&Disclosure> = sd_jwt.disclosures.iter().collect();
    let claims = merge_disclosures(payload, &disclosures)?;
    let time_claim = |name: &str| -> Result<Option<i64>, SdJwtError> {
        claims
            .get(name)
            .map(|value| {
                value
                    .as_i64()
                    .ok_or(SdJwtError::Malformed("exp and nbf must be numbers"))
            })
            .transpose()
    };
    if time_claim("exp")?.is_some_and(|exp| exp <= now) {
        return Err(SdJwtError::Expired);
    }
    if time_claim("nbf")?.is_some_and(|nbf| nbf > now) {
        return Err(SdJwtError::NotYetValid);
    }
    let holder_jwk: EcPublicJwk = claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jwk"))
        .cloned()
        .and_then(|jwk| serde_json::from_value(jwk).ok())
        .ok_or(SdJwtError::Malformed("cnf.jwk is missing or not an EC JWK"))?;
    let holder_key = VerifyingKey::from_jwk(&holder_jwk)?;

    match (key_binding, &sd_jwt.key_binding) {
        (None, None) => {}
        (None, Some(_)) => return Err(SdJwtError::KeyBinding("unexpected key-binding JWT")),
        (Some(_), None) => {
            return Err(SdJwtError::KeyBinding(
                "the presentation has no key-binding JWT",
            ));
        }
        (Some(check), Some(kb)) => {
            let kb_jws = UnverifiedJws::parse(kb)?;
            let kb_claims: KeyBindingClaims =
                kb_jws.verify(&holder_key, KB_JWT_TYP).map_err(|_| {
                    SdJwtError::KeyBinding("signature by the holder key does not verify")
                })?;
            if kb_claims.aud != check.audience {
                return Err(SdJwtError::KeyBinding("audience does not match"));
            }
            if kb_claims.nonce != check.nonce {
                return Err(SdJwtError::KeyBinding("nonce does not match"));
            }
            // abs_diff: `iat` is the holder's input and must not overflow the check.
            if now.abs_diff(kb_claims.iat) > check.max_age_seconds.unsigned_abs() {
                return Err(SdJwtError::KeyBinding(
                    "issued too long ago or in the future",
                ));
            }
            if kb_claims.sd_hash != sd_hash(&sd_jwt.without_key_binding(&disclosures)) {
                return Err(SdJwtError::KeyBinding(
                    "sd_hash does not match the presented SD-JWT",
                ));
            }
        }
    }
    Ok(Verified { claims, holder_key })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(holder: &SigningKey) -> CredentialDraft {
        let mut visible = Map::new();
        visible.insert("iss".into(), json!("https://id.example"));
        visible.insert("vct".into(), json!("https://id.example/vct/network"));
        visible.insert("iat".into(), json!(1_700_000_000));
        visible.insert("exp".into(), json!(4_000_000_000u64));
        visible.insert("cnf".into(), json!({"jwk": holder.verifying_key().jwk()}));
        CredentialDraft {
            visible,
            disclosable: vec![
                ("age_over_18".into(), json!(true)),
                ("name".into(), json!("王小明")),
                ("region".into(), json!("CN-BJ")),
            ],
        }
    }

    fn keys() -> (SigningKey, SigningKey) {
        let (issuer, _) = SigningKey::generate().unwrap();
        let (holder, _) = SigningKey::generate().unwrap();
        (issuer.with_kid("i1"), holder)
    }

    #[test]
    fn issue_verify_present() {
        let (issuer, holder) = keys();
        let credential = issue(&issuer, &draft(&holder)).unwrap();
        let lookup = |kid: Option<&str>| (kid == Some("i1")).then_some(issuer.verifying_key());
        let verified = verify(&credential, lookup, 1_800_000_000, None).unwrap();
        assert_eq!(verified.claims["name"], "王小明");
        assert!(verified.claims.get("_sd").is_none());

        let presentation = SdJwt::parse(&credential)
            .unwrap()
            .present(
                &["age_over_18"],
                &holder,
                "https://rp.example",
                "n-1",
                1_800_000_000,
            )
            .unwrap();
        let check = || KeyBindingCheck {
            audience: "https://rp.example",
            nonce: "n-1",
            max_age_seconds: 300,
        };
        let verified = verify(&presentation, lookup, 1_800_000_010, Some(check())).unwrap();
        assert_eq!(verified.claims["age_over_18"], true);
        assert!(
            verified.claims.get("name").is_none(),
            "undisclosed claim leaked"
        );

        let wrong_nonce = KeyBindingCheck {
            nonce: "n-2",
            ..check()
        };
        assert!(verify(&presentation, lookup, 1_800_000_010, Some(wrong_nonce)).is_err());
        let wrong_aud = KeyBindingCheck {
            audience: "https://evil.example",
            ..check()
        };
        assert!(verify(&presentation, lookup, 1_800_000_010, Some(wrong_aud)).is_err());
        assert!(verify(&presentation, lookup, 1_800_009_999, Some(check())).is_err());
        // An `iat` at the far end of the range must neither panic nor pass.
        let parsed = SdJwt::parse(&credential).unwrap();
        let ancient = parsed
            .present(
                &["age_over_18"],
                &holder,
                "https://rp.example",
                "n-1",
                i64::MIN,
            )
            .unwrap();
        assert!(verify(&ancient, lookup, 1_800_000_010, Some(check())).is_err());
        assert_eq!(
            verify(&credential, lookup, 4_000_000_001, None).unwrap_err(),
            SdJwtError::Expired
        );
    }

    #[test]
    fn tampering_is_detected() {
        let (issuer, holder) = keys();
        let credential = issue(&issuer, &draft(&holder)).unwrap();
        let lookup = |_: Option<&str>| Some(issuer.verifying_key());
        let parsed = SdJwt::parse(&credential).unwrap();

        // A disclosure forged by the holder (a different value) matches no digest.
        let forged = Disclosure::new("age_over_18", json!(true)).unwrap();
        let mut tampered = parsed.jwt.clone();
        tampered.push('~');
        tampered.push_str(&forged.encoded);
        tampered.push('~');
        assert_eq!(
            verify(&tampered, lookup, 1_800_000_000, None).unwrap_err(),
            SdJwtError::UnmatchedDisclosure
        );

        // A disclosure repeated twice is refused.
        let d = &parsed.disclosures[0].encoded;
        let doubled = format!("{}~{d}~{d}~", parsed.jwt);
        assert!(matches!(
            verify(&doubled, lookup, 1_800_000_000, None),
            Err(SdJwtError::DuplicateClaim(_))
        ));

        // A key-binding JWT signed by another key is refused.
        let (stranger, _) = SigningKey::generate().unwrap();
        let presentation = parsed
            .present(&["region"], &stranger, "aud", "n", 1_800_000_000)
            .unwrap();
        let check = KeyBindingCheck {
            audience: "aud",
            nonce: "n",
            max_age_seconds: 60,
        };
        assert!(matches!(
            verify(&presentation, lookup, 1_800_000_000, Some(check)),
            Err(SdJwtError::KeyBinding(_))
        ));

        // An unknown kid is refused.
        let none = |_: Option<&str>| None;
        assert!(matches!(
            verify(&credential, none, 1_800_000_000, None),
            Err(SdJwtError::UnknownIssuerKey(_))
        ));
    }

    #[test]
    fn reserved_claims_cannot_be_disclosable() {
        let (issuer, holder) = keys();
        let mut d = draft(&holder);
        d.disclosable.push(("cnf".into(), json!({})));
        assert!(matches!(
            issue(&issuer, &d),
            Err(SdJwtError::ReservedClaim(_))
        ));
    }

    #[test]
    fn parse_never_panics_on_junk() {
        for junk in [
            "",
            "~",
            "~~",
            "a~",
            "a~b~",
            "a~!!~",
            "a~W10~",
            "a~WzEsMiwzXQ~",
        ] {
            let _ = SdJwt::parse(junk);
        }
        assert!(SdJwt::parse("").is_err());
        assert!(SdJwt::parse("abc").is_err());
    }

    /// The credential and presentation as read by `sd-jwt-payload`, an independent RFC 9901
    /// implementation: it must find the same disclosures and the same digests.
    #[test]
    fn independent_implementation_reads_our_sd_jwt() {
        let (issuer, holder) = keys();
        let credential = issue(&issuer, &draft(&holder)).unwrap();
        let theirs = sd_jwt_payload::SdJwt::parse(&credential).unwrap();
        assert_eq!(theirs.disclosures().len(), 3);
        let claims = theirs
            .into_disclosed_object(&sd_jwt_payload::Sha256Hasher::new())
            .unwrap();
        assert_eq!(claims["name"], "王小明");
        assert_eq!(claims["age_over_18"], true);
        assert!(claims.get("_sd").is_none());

        let presentation = SdJwt::parse(&credential)
            .unwrap()
            .present(&["region"], &holder, "aud", "n", 1_800_000_000)
            .unwrap();
        let theirs = sd_jwt_payload::SdJwt::parse(&presentation).unwrap();
        let kb_sd_hash = theirs.key_binding_jwt().unwrap().claims().sd_hash.clone();
        let (without_kb, _) = presentation.rsplit_once('~').unwrap();
        let hasher = sd_jwt_payload::Sha256Hasher::new();
        use sd_jwt_payload::Hasher as _;
        assert_eq!(kb_sd_hash, hasher.encoded_digest(&format!("{without_kb}~")));
        let claims = theirs
            .into_disclosed_object(&sd_jwt_payload::Sha256Hasher::new())
            .unwrap();
        assert_eq!(claims["region"], "CN-BJ");
        assert!(claims.get("name").is_none());
    }
}
