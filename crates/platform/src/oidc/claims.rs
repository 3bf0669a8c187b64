//! What a relying party learns about a holder, as typed claim sets: the pairwise subject,
//! the claims released to it, and the ID token and userinfo answer that carry them.

use cyberid_crypto::b64;
use cyberid_domain::{AgePredicates, Claim, NetworkNumber, age_on, parse_iso_date};
use cyberid_store::AccountRecord;
use serde::Serialize;

use crate::credential::holder_attributes;
use crate::error::ApiError;
use crate::keys::PlatformKeys;

/// Claim every relying party receives: the holder is real-name verified.
pub const VERIFIED_CLAIM: &str = "cyberid_verified";

/// The `sub` of a holder for a sector: a keyed hash of sector and person, so services in
/// different sectors cannot join their users, and never the network number. It depends
/// only on the person (the digest of the citizen ID number), so it survives key rotation
/// of devices and device re-binding.
pub fn pairwise_subject(keys: &PlatformKeys, sector: &str, person_digest: &[u8]) -> String {
    let mut input = Vec::with_capacity(sector.len() + 1 + person_digest.len());
    input.extend_from_slice(sector.as_bytes());
    input.push(0);
    input.extend_from_slice(person_digest);
    b64::encode(keys.pairwise_subject.digest("pairwise-subject", &input))
}

/// The values of the claims released to a service; a claim not released is left out. The
/// field names are the claims' names ([`Claim::as_str`]).
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct ReleasedClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_number: Option<NetworkNumber>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_name_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_over_14: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_over_16: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_over_18: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_over_60: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
}

impl ReleasedClaims {
    /// The values of `claims`, computed from the sealed attributes; the attributes are
    /// opened only when a claim is released at all.
    pub fn of(
        keys: &PlatformKeys,
        account: &AccountRecord,
        claims: &[Claim],
        today: time::Date,
    ) -> Result<Self, ApiError> {
        let mut released = Self::default();
        if claims.is_empty() {
            return Ok(released);
        }
        let number = NetworkNumber::parse(&account.network_number)
            .map_err(|e| ApiError::internal("stored network number", e))?;
        let attributes = holder_attributes(keys, account)?;
        // A stored birth date that cannot be read, or lies after today, is a fault:
        // reporting every predicate as false would be a silent wrong answer.
        let age = parse_iso_date(&attributes.birthdate)
            .and_then(|birth| age_on(birth, today))
            .ok_or_else(|| {
                ApiError::internal("stored birth date", "unreadable or in the future")
            })?;
        let predicates = AgePredicates::at(age);
        for claim in claims {
            match claim {
                Claim::NetworkNumber => released.network_number = Some(number.clone()),
                Claim::RealNameVerified => released.real_name_verified = Some(true),
                Claim::AgeOver14 => released.age_over_14 = Some(predicates.over_14),
                Claim::AgeOver16 => released.age_over_16 = Some(predicates.over_16),
                Claim::AgeOver18 => released.age_over_18 = Some(predicates.over_18),
                Claim::AgeOver60 => released.age_over_60 = Some(predicates.over_60),
                Claim::Region => released.region = Some(attributes.region.clone()),
                Claim::Name => released.name = Some(attributes.name.clone()),
                Claim::Birthdate => released.birthdate = Some(attributes.birthdate.clone()),
            }
        }
        Ok(released)
    }
}

/// The ID token's claims (OIDC Core §2), signed ES256.
#[derive(Debug, Serialize)]
pub struct IdTokenClaims<'a> {
    pub iss: &'a str,
    pub sub: String,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    pub acr: &'static str,
    pub amr: &'static [&'static str],
    pub cyberid_verified: bool,
    /// Released claims asked for the ID token (`claims.id_token`).
    #[serde(flatten)]
    pub released: ReleasedClaims,
}

/// `/userinfo`'s answer: the subject, the verified flag and the claims the holder still
/// consents to.
#[derive(Debug, Serialize)]
pub struct UserinfoClaims {
    pub sub: String,
    pub cyberid_verified: bool,
    #[serde(flatten)]
    pub released: ReleasedClaims,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every claim, released, appears under its own name: the struct's field names are the
    /// vocabulary services read.
    #[test]
    fn released_claims_are_named_as_the_claims_are() {
        let released = ReleasedClaims {
            network_number: Some(NetworkNumber::from_random_bytes([7; 16])),
            real_name_verified: Some(true),
            age_over_14: Some(true),
            age_over_16: Some(true),
            age_over_18: Some(false),
            age_over_60: Some(false),
            region: Some("CN-GD".into()),
            name: Some("x".into()),
            birthdate: Some("2010-01-01".into()),
        };
        let json = serde_json::to_value(&released).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let mut expected: Vec<&str> = Claim::ALL.iter().map(Claim::as_str).collect();
        expected.sort_unstable();
        assert_eq!(names, expected);
        assert_eq!(
            serde_json::to_value(ReleasedClaims::default()).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn the_verified_flag_has_its_documented_name() {
        let userinfo = UserinfoClaims {
            sub: "s".into(),
            cyberid_verified: true,
            released: ReleasedClaims {
                age_over_18: Some(true),
                ..ReleasedClaims::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&userinfo).unwrap(),
            serde_json::json!({ "sub": "s", "cyberid_verified": true, "age_over_18": true })
        );
        assert_eq!(VERIFIED_CLAIM, "cyberid_verified");
    }
}
