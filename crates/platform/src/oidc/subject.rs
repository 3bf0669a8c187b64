//! What a relying party learns about a holder: the pairwise subject and released claims.

use cyberid_crypto::b64;
use cyberid_domain::{AgePredicates, Claim, NetworkNumber, age_on, parse_iso_date};
use cyberid_store::AccountRecord;
use serde_json::{Map, Value, json};

use crate::credential::holder_attributes;
use crate::error::ApiError;
use crate::keys::PlatformKeys;

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

/// Values of released claims, computed from the sealed attributes; the attributes are
/// opened only when a claim needs them.
pub fn claim_values(
    keys: &PlatformKeys,
    account: &AccountRecord,
    claims: &[Claim],
    today: time::Date,
) -> Result<Map<String, Value>, ApiError> {
    let mut values = Map::new();
    if claims.is_empty() {
        return Ok(values);
    }
    let number = NetworkNumber::parse(&account.network_number)
        .map_err(|e| ApiError::internal("stored network number", e))?;
    let attributes = holder_attributes(keys, account)?;
    // A stored birth date that cannot be read, or lies after today, is a fault: reporting
    // every predicate as false would be a silent wrong answer.
    let age = parse_iso_date(&attributes.birthdate)
        .and_then(|birth| age_on(birth, today))
        .ok_or_else(|| ApiError::internal("stored birth date", "unreadable or in the future"))?;
    let predicates = AgePredicates::at(age);
    for claim in claims {
        let value = match claim {
            Claim::NetworkNumber => json!(number),
            Claim::RealNameVerified => json!(true),
            Claim::AgeOver14 => json!(predicates.over_14),
            Claim::AgeOver16 => json!(predicates.over_16),
            Claim::AgeOver18 => json!(predicates.over_18),
            Claim::AgeOver60 => json!(predicates.over_60),
            Claim::Region => json!(attributes.region),
            Claim::Name => json!(attributes.name),
            Claim::Birthdate => json!(attributes.birthdate),
        };
        values.insert(claim.as_str().to_owned(), value);
    }
    Ok(values)
}
