//! The network credential: an SD-JWT VC bound to the holder's device key.

use cyberid_crypto::jose::{EcPublicJwk, SigningKey};
use cyberid_crypto::sd_jwt::{self, CredentialDraft};
use cyberid_domain::{AgePredicates, Claim, NetworkNumber, age_on, parse_iso_date};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use cyberid_store::STATUS_LIST_CAPACITY;

/// The credential type (`vct`).
pub const NETWORK_CREDENTIAL_VCT: &str = "urn:cyberid:network-credential:1";

/// The personal attributes the platform keeps for a holder, sealed under the holder's data
/// key: what claims and (later) legal-basis disclosures need, nothing more. The sex and
/// the face template stay in the registry.
#[derive(Clone, Serialize, Deserialize)]
pub struct HolderAttributes {
    pub id_number: String,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birthdate: String,
    /// ISO 3166-2 code of the province (e.g. `CN-GD`).
    pub region: String,
}

/// The URL a status list is served at.
pub fn status_list_uri(issuer: &str, list: u64) -> String {
    format!("{issuer}/status/{list}")
}

pub struct CredentialRequest<'a> {
    pub issuer: &'a str,
    pub holder_key: &'a EcPublicJwk,
    pub network_number: &'a NetworkNumber,
    pub attributes: &'a HolderAttributes,
    pub status_index: u64,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Issues the credential: `iss`, `iat`, `exp`, `vct`, `cnf` and `status` in clear; every
/// claim of SPEC §2 selectively disclosable.
pub fn issue(
    key: &SigningKey,
    request: &CredentialRequest<'_>,
) -> Result<String, sd_jwt::SdJwtError> {
    let today = time::OffsetDateTime::from_unix_timestamp(request.issued_at)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    // An unreadable birth date or one after the issue date cannot come from the registry;
    // every predicate is then false, never wrongly true.
    let age = parse_iso_date(&request.attributes.birthdate)
        .and_then(|birth| age_on(birth, today))
        .unwrap_or(0);
    let predicates = AgePredicates::at(age);

    let mut visible = Map::new();
    visible.insert("iss".into(), json!(request.issuer));
    visible.insert("iat".into(), json!(request.issued_at));
    visible.insert("exp".into(), json!(request.expires_at));
    visible.insert("vct".into(), json!(NETWORK_CREDENTIAL_VCT));
    visible.insert("cnf".into(), json!({ "jwk": request.holder_key.bare() }));
    visible.insert(
        "status".into(),
        json!({ "status_list": {
            "idx": request.status_index % STATUS_LIST_CAPACITY,
            "uri": status_list_uri(request.issuer, request.status_index / STATUS_LIST_CAPACITY),
        }}),
    );
    let attributes = request.attributes;
    let disclosable: Vec<(String, Value)> = [
        (Claim::NetworkNumber, json!(request.network_number)),
        (Claim::RealNameVerified, json!(true)),
        (Claim::AgeOver14, json!(predicates.over_14)),
        (Claim::AgeOver16, json!(predicates.over_16)),
        (Claim::AgeOver18, json!(predicates.over_18)),
        (Claim::AgeOver60, json!(predicates.over_60)),
        (Claim::Region, json!(attributes.region)),
        (Claim::Name, json!(attributes.name)),
        (Claim::Birthdate, json!(attributes.birthdate)),
    ]
    .into_iter()
    .map(|(claim, value)| (claim.as_str().to_owned(), value))
    .collect();
    sd_jwt::issue(
        key,
        &CredentialDraft {
            visible,
            disclosable,
        },
    )
}

/// Opens a holder's sealed attributes: unwraps the data key with the platform key, then the
/// attributes with the data key; both are bound to the account's network number.
pub fn unseal_attributes(
    keys: &crate::keys::PlatformKeys,
    network_number: &NetworkNumber,
    wrapped_data_key: &[u8],
    sealed_attributes: &[u8],
) -> Result<HolderAttributes, crate::error::ApiError> {
    use crate::error::ApiError;
    let context = network_number.as_compact().as_bytes();
    let data_key = keys
        .data_wrapping
        .unwrap_key(context, wrapped_data_key)
        .map_err(|e| ApiError::internal("data key", e))?;
    let plaintext = data_key
        .open(context, sealed_attributes)
        .map_err(|e| ApiError::internal("attributes", e))?;
    serde_json::from_slice(&plaintext).map_err(|e| ApiError::internal("attributes", e))
}

/// A holder's attributes from their account row; the data key must still exist (it is
/// destroyed at deregistration).
pub fn holder_attributes(
    keys: &crate::keys::PlatformKeys,
    account: &cyberid_store::AccountRecord,
) -> Result<HolderAttributes, crate::error::ApiError> {
    use crate::error::ApiError;
    let number = NetworkNumber::parse(&account.network_number)
        .map_err(|e| ApiError::internal("stored network number", e))?;
    let (Some(wrapped), Some(sealed)) = (&account.wrapped_data_key, &account.sealed_attributes)
    else {
        return Err(ApiError::new(
            crate::error::ErrorCode::AccountInactive,
            "the holder's data no longer exists",
        ));
    };
    unseal_attributes(keys, &number, wrapped, sealed)
}
