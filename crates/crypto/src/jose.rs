//! ES256 keys, P-256 JWKs and compact JWS.
//!
//! Compact JWS is written here on top of aws-lc-rs rather than taken from `jsonwebtoken`,
//! because that crate re-parses the PKCS#8 key on every signature (a third of the cost of
//! an ES256 signature on the login hot path) while [`SigningKey`] keeps the parsed key.
//! `jsonwebtoken` is used in the tests as an independent verifier of what is signed here.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    ParsedPublicKey,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::b64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    #[error("unsupported JWS algorithm (only ES256 is accepted)")]
    UnsupportedAlgorithm,
    #[error("JWS type is {found:?}, expected {expected:?}")]
    WrongType {
        expected: &'static str,
        found: Option<String>,
    },
    #[error("JWS signature does not verify")]
    BadSignature,
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
}

/// A P-256 public key as a JWK (RFC 7517/7518). Only the members cyberid uses are kept;
/// a JWK carrying a private part (`d`) is refused when it is turned into a [`VerifyingKey`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcPublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing)]
    pub d: Option<PrivateMember>,
}

/// Marks that a JWK carried a private member; its value is dropped unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateMember;

impl<'de> Deserialize<'de> for PrivateMember {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| PrivateMember)
    }
}

impl EcPublicJwk {
    /// The bare key (kty, crv, x, y): the form put in `cnf.jwk`.
    pub fn bare(&self) -> EcPublicJwk {
        EcPublicJwk {
            kty: self.kty.clone(),
            crv: self.crv.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            kid: None,
            alg: None,
            use_: None,
            d: None,
        }
    }

    /// RFC 7638 thumbprint (SHA-256, base64url): a stable name for the key.
    pub fn thumbprint(&self) -> String {
        // Members in lexicographic order, no whitespace, as RFC 7638 §3 requires.
        let canonical = format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            self.crv, self.kty, self.x, self.y
        );
        b64::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }
}

/// A validated P-256 public key, parsed once for repeated verification.
#[derive(Clone)]
pub struct VerifyingKey {
    jwk: EcPublicJwk,
    parsed: ParsedPublicKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VerifyingKey")
            .field(&self.jwk.thumbprint())
            .finish()
    }
}

impl VerifyingKey {
    /// Validates a JWK: EC, P-256, 32-byte coordinates of a point on the curve, no private part.
    pub fn from_jwk(jwk: &EcPublicJwk) -> Result<Self, JoseError> {
        if jwk.kty != "EC" {
            return Err(JoseError::InvalidKey("kty must be \"EC\""));
        }
        if jwk.crv != "P-256" {
            return Err(JoseError::InvalidKey("crv must be \"P-256\""));
        }
        if jwk.d.is_some() {
            return Err(JoseError::InvalidKey(
                "the JWK contains a private key (\"d\"); send only the public key",
            ));
        }
        if jwk.alg.as_deref().is_some_and(|alg| alg != "ES256") {
            return Err(JoseError::InvalidKey("alg must be \"ES256\" when present"));
        }
        let x = b64::decode(&jwk.x).map_err(|_| JoseError::InvalidKey("x is not base64url"))?;
        let y = b64::decode(&jwk.y).map_err(|_| JoseError::InvalidKey("y is not base64url"))?;
        if x.len() != 32 || y.len() != 32 {
            return Err(JoseError::InvalidKey("x and y must be 32 bytes each"));
        }
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .map_err(|_| JoseError::InvalidKey("the point is not on the P-256 curve"))?;
        Ok(Self {
            jwk: EcPublicJwk {
                kid: jwk.kid.clone(),
                ..jwk.bare()
            },
            parsed,
        })
    }

    fn from_uncompressed_point(point: &[u8], kid: Option<String>) -> Result<Self, JoseError> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(JoseError::InvalidKey(
                "expected an uncompressed P-256 point",
            ));
        }
        let jwk = EcPublicJwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: b64::encode(&point[1..33]),
            y: b64::encode(&point[33..65]),
            kid,
            alg: None,
            use_: None,
            d: None,
        };
        Self::from_jwk(&jwk)
    }

    pub fn jwk(&self) -> &EcPublicJwk {
        &self.jwk
    }

    pub fn thumbprint(&self) -> String {
        self.jwk.thumbprint()
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| JoseError::BadSignature)
    }
}

/// An ES256 private key with its parsed form cached.
pub struct SigningKey {
    kid: Option<String>,
    key_pair: EcdsaKeyPair,
    public: VerifyingKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key and its PKCS#8 encoding (to be stored by the caller).
    pub fn generate() -> Result<(Self, Vec<u8>), JoseError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| JoseError::InvalidKey("key generation failed"))?;
        let bytes = pkcs8.as_ref().to_vec();
        Ok((Self::from_pkcs8(&bytes)?, bytes))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, JoseError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|_| JoseError::InvalidKey("not a PKCS#8 P-256 private key"))?;
        let public = VerifyingKey::from_uncompressed_point(key_pair.public_key().as_ref(), None)?;
        Ok(Self {
            kid: None,
            key_pair,
            public,
            rng: SystemRandom::new(),
        })
    }

    /// Names the key in JWS headers and in the published JWK (issuer keys; device keys have none).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        self.public.jwk.kid = Some(kid.clone());
        self.kid = Some(kid);
        self
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The public JWK as published in a JWKS (with kid, alg and use).
    pub fn public_jwk(&self) -> EcPublicJwk {
        EcPublicJwk {
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
            ..self.public.jwk.clone()
        }
    }

    /// An ES256 signature in JOSE form (r ‖ s, 64 bytes).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        self.key_pair
            .sign(&self.rng, message)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| JoseError::InvalidKey("signing failed"))
    }

    /// A compact JWS of `claims` with header `{"alg":"ES256","typ":typ[,"kid":kid]}`.
    pub fn sign_jwt<T: Serialize + ?Sized>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, JoseError> {
        let header = JwsHeader {
            alg: "ES256".into(),
            typ: Some(typ.into()),
            kid: self.kid.clone(),
        };
        let header = serde_json::to_vec(&header).map_err(|_| JoseError::Malformed("header"))?;
        let payload = serde_json::to_vec(claims).map_err(|_| JoseError::Malformed("payload"))?;
        let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 100);
        token.push_str(&b64::encode(&header));
        token.push('.');
        token.push_str(&b64::encode(&payload));
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&b64::encode(signature));
        Ok(token)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// A compact JWS split into its parts, not yet verified.
pub struct UnverifiedJws<'a> {
    pub header: JwsHeader,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: Vec<u8>,
}

impl<'a> UnverifiedJws<'a> {
    pub fn parse(token: &'a str) -> Result<Self, JoseError> {
        let (signing_input, signature_b64) = token
            .rsplit_once('.')
            .ok_or(JoseError::Malformed("expected three dot-separated parts"))?;
        let (header_b64, payload_b64) = signing_input
            .split_once('.')
            .ok_or(JoseError::Malformed("expected three dot-separated parts"))?;
        if payload_b64.contains('.') {
            return Err(JoseError::Malformed("expected three dot-separated parts"));
        }
        let header_bytes =
            b64::decode(header_b64).map_err(|_| JoseError::Malformed("header is not base64url"))?;
        let header: JwsHeader = json_text(&header_bytes)
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or(JoseError::Malformed("header is not a JOSE header"))?;
        let signature = b64::decode(signature_b64)
            .map_err(|_| JoseError::Malformed("signature is not base64url"))?;
        Ok(Self {
            header,
            signing_input,
            payload_b64,
            signature,
        })
    }

    /// Checks alg, typ and the signature, then decodes the payload.
    pub fn verify<T: DeserializeOwned>(
        &self,
        key: &VerifyingKey,
        expected_typ: &'static str,
    ) -> Result<T, JoseError> {
        if self.header.alg != "ES256" {
            return Err(JoseError::UnsupportedAlgorithm);
        }
        if self.header.typ.as_deref() != Some(expected_typ) {
            return Err(JoseError::WrongType {
                expected: expected_typ,
                found: self.header.typ.clone(),
            });
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        self.payload_unverified()
    }

    /// Checks alg and the signature but not `typ` (client assertions carry `JWT` or nothing),
    /// then decodes the payload.
    pub fn verify_untyped<T: DeserializeOwned>(&self, key: &VerifyingKey) -> Result<T, JoseError> {
        if self.header.alg != "ES256" {
            return Err(JoseError::UnsupportedAlgorithm);
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        self.payload_unverified()
    }

    /// The payload without any check: only for reading a token one has just received from
    /// a trusted channel, or before choosing the key to verify with.
    pub fn payload_unverified<T: DeserializeOwned>(&self) -> Result<T, JoseError> {
        let payload = b64::decode(self.payload_b64)
            .map_err(|_| JoseError::Malformed("payload is not base64url"))?;
        json_text(&payload)
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or(JoseError::Malformed("payload is not the expected JSON"))
    }
}

/// JOSE headers and JWT claims are UTF-8 JSON (RFC 7515 §4, RFC 7519 §7.2). Read from
/// bytes, serde_json checks UTF-8 only in the strings it keeps: a member it skips could
/// carry any bytes, and a header that is not JSON would pass for one.
fn json_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_then_verify_and_tamper() {
        let (key, _) = SigningKey::generate().unwrap();
        let key = key.with_kid("k1");
        let token = key
            .sign_jwt("test+jwt", &json!({"hello": "world"}))
            .unwrap();
        let jws = UnverifiedJws::parse(&token).unwrap();
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        let payload: serde_json::Value = jws.verify(key.verifying_key(), "test+jwt").unwrap();
        assert_eq!(payload["hello"], "world");
        assert!(matches!(
            jws.verify::<serde_json::Value>(key.verifying_key(), "other+jwt"),
            Err(JoseError::WrongType { .. })
        ));
        let (other, _) = SigningKey::generate().unwrap();
        assert_eq!(
            jws.verify::<serde_json::Value>(other.verifying_key(), "test+jwt")
                .unwrap_err(),
            JoseError::BadSignature
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64::encode(br#"{"hello":"mallory"}"#);
        parts[1] = &forged;
        let forged = parts.join(".");
        assert_eq!(
            UnverifiedJws::parse(&forged)
                .unwrap()
                .verify::<serde_json::Value>(key.verifying_key(), "test+jwt")
                .unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn independent_library_verifies_our_signature() {
        let (key, _) = SigningKey::generate().unwrap();
        let key = key.with_kid("issuer-1");
        let token = key
            .sign_jwt("JWT", &json!({"sub": "x", "exp": 4_000_000_000u64}))
            .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(serde_json::to_value(key.public_jwk()).unwrap()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "x");
    }

    #[test]
    fn jwk_validation() {
        let (key, pkcs8) = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(
            key.verifying_key().thumbprint(),
            again.verifying_key().thumbprint()
        );
        let good = key.verifying_key().jwk().clone();
        assert!(VerifyingKey::from_jwk(&good).is_ok());

        let mut off_curve = good.clone();
        let mut y = b64::decode(&off_curve.y).unwrap();
        y[31] ^= 1;
        off_curve.y = b64::encode(y);
        assert!(VerifyingKey::from_jwk(&off_curve).is_err());

        let wrong_curve = EcPublicJwk {
            crv: "P-384".into(),
            ..good.clone()
        };
        assert!(VerifyingKey::from_jwk(&wrong_curve).is_err());
        let wrong_kty = EcPublicJwk {
            kty: "RSA".into(),
            ..good.clone()
        };
        assert!(VerifyingKey::from_jwk(&wrong_kty).is_err());
        let short = EcPublicJwk {
            x: b64::encode([1u8; 31]),
            ..good.clone()
        };
        assert!(VerifyingKey::from_jwk(&short).is_err());
        let with_private: EcPublicJwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "x": good.x, "y": good.y, "d": "AAAA"
        }))
        .unwrap();
        assert!(VerifyingKey::from_jwk(&with_private).is_err());
    }

    #[test]
    fn thumbprint_matches_rfc7638_shape() {
        // RFC 7638's own example is an RSA key; check the EC member ordering by hand instead.
        let jwk: EcPublicJwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "kid": "ignored",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap();
        let expected = b64::encode(digest::digest(
            &digest::SHA256,
            br#"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
        ));
        assert_eq!(jwk.thumbprint(), expected);
    }

    #[test]
    fn malformed_tokens_are_errors_not_panics() {
        for bad in ["", ".", "..", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.!!"] {
            let parsed = UnverifiedJws::parse(bad);
            if let Ok(jws) = parsed {
                let (key, _) = SigningKey::generate().unwrap();
                assert!(
                    jws.verify::<serde_json::Value>(key.verifying_key(), "x")
                        .is_err()
                );
            }
        }
    }

    #[test]
    fn headers_and_payloads_are_utf8_json() {
        // Found by the client_assertion fuzz target: a byte that is not UTF-8, inside a
        // member the header type skips, was accepted.
        let (key, _) = SigningKey::generate().unwrap();
        let sign = |header: &[u8], payload: &[u8]| {
            let mut token = b64::encode(header);
            token.push('.');
            token.push_str(&b64::encode(payload));
            let signature = key.sign(token.as_bytes()).unwrap();
            format!("{token}.{}", b64::encode(signature))
        };
        let good = sign(br#"{"alg":"ES256","typ":"JWT"}"#, br#"{"sub":"a"}"#);
        let claims: serde_json::Value = UnverifiedJws::parse(&good)
            .unwrap()
            .verify(key.verifying_key(), "JWT")
            .unwrap();
        assert_eq!(claims["sub"], "a");

        let header = sign(b"{\"alg\":\"ES256\",\"x\":\"\xb1\"}", b"{}");
        assert_eq!(
            UnverifiedJws::parse(&header).err(),
            Some(JoseError::Malformed("header is not a JOSE header"))
        );
        let payload = sign(br#"{"alg":"ES256","typ":"JWT"}"#, b"{\"x\":\"\xb1\"}");
        let refused = UnverifiedJws::parse(&payload)
            .unwrap()
            .verify::<serde::de::IgnoredAny>(key.verifying_key(), "JWT");
        assert_eq!(
            refused.err(),
            Some(JoseError::Malformed("payload is not the expected JSON"))
        );
    }
}
