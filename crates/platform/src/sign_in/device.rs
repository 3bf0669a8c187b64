//! Who a wallet's request comes from: the device key that signed it (`kid` = the key's JWK
//! thumbprint), bound to an active account, and a signature made just now.

use cyberid_crypto::jose::{EcPublicJwk, UnverifiedJws, VerifyingKey};
use cyberid_domain::AccountStatus;
use cyberid_protocol::{WALLET_PROOF_TYP, WalletProofClaims};
use cyberid_store::{AccountRecord, DeviceRecord};

use crate::error::{ApiError, ErrorCode};
use crate::platform::Platform;

/// The account behind a wallet proof (`typ` [`WALLET_PROOF_TYP`]) for `action` on `target`:
/// its device named, bound and active, its signature valid, its time fresh.
pub async fn authenticate_wallet(
    platform: &Platform,
    proof: &str,
    action: &str,
    target: &str,
) -> Result<AccountRecord, ApiError> {
    let jws = UnverifiedJws::parse(proof)
        .map_err(|e| ApiError::invalid_request(format!("proof: {e}")))?;
    let kid = jws.header.kid.as_deref();
    let found = match kid {
        Some(kid) => platform.store.account_by_device(kid).await?,
        None => None,
    };
    let (account, device) = bound_device(kid, found)?;
    let claims: WalletProofClaims = jws
        .verify(&device_key(&device)?, WALLET_PROOF_TYP)
        .map_err(|e| invalid_device(&format!("the device proof does not verify: {e}")))?;
    if claims.action != action || claims.target != target {
        return Err(invalid_device("the device proof is for another request"));
    }
    check_fresh(platform, claims.iat)?;
    Ok(account)
}

/// The active account of the device a proof names (`kid`), from what the store found.
pub fn bound_device(
    kid: Option<&str>,
    found: Option<(AccountRecord, DeviceRecord)>,
) -> Result<(AccountRecord, DeviceRecord), ApiError> {
    kid.ok_or_else(|| invalid_device("the proof names no device key (kid)"))?;
    let (account, device) =
        found.ok_or_else(|| invalid_device("this device is not bound to any account"))?;
    if account.status != AccountStatus::Active {
        return Err(ApiError::new(
            ErrorCode::AccountInactive,
            "this Cyberspace ID is suspended or deregistered",
        ));
    }
    Ok((account, device))
}

/// The device's public key, parsed only when a signature is to be checked with it.
pub fn device_key(device: &DeviceRecord) -> Result<VerifyingKey, ApiError> {
    let jwk: EcPublicJwk = serde_json::from_str(&device.public_jwk)
        .map_err(|e| ApiError::internal("stored device key", e))?;
    VerifyingKey::from_jwk(&jwk).map_err(|e| ApiError::internal("stored device key", e))
}

/// A wallet's signature is at most `sign_in.wallet_proof_max_skew_seconds` from the
/// platform's clock.
pub fn check_fresh(platform: &Platform, iat: i64) -> Result<(), ApiError> {
    if iat.abs_diff(crate::now()) > platform.settings.sign_in.wallet_proof_max_skew_seconds {
        return Err(invalid_device(
            "the proof's time is too far from the platform's clock; check the device clock",
        ));
    }
    Ok(())
}

pub fn invalid_device(description: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidDevice, description)
}
