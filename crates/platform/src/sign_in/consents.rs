//! The holder's remembered consents, for the wallet: which services may receive what, and
//! forgetting one (`POST /api/v1/wallet/consents[/revoke]`, authenticated by a device proof).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cyberid_crypto::jose::UnverifiedJws;
use cyberid_protocol::{ConsentEntry, ConsentList, ProofRequest, WalletProofClaims};
use serde_json::json;

use super::device::authenticate_wallet;
use crate::error::{ApiError, ErrorCode};
use crate::extract::JsonBody;
use crate::platform::Platform;

/// `POST /api/v1/wallet/consents`: the holder's remembered consents.
pub async fn consents(
    State(platform): State<Platform>,
    JsonBody(body): JsonBody<ProofRequest>,
) -> Result<Json<ConsentList>, ApiError> {
    let account = authenticate_wallet(&platform, &body.proof, "list-consents", "").await?;
    let mut consents = Vec::new();
    for consent in platform.store.consents(account.account_id).await? {
        let rp_name = platform
            .client(&consent.client_id)
            .await?
            .map(|rp| rp.name.clone())
            .unwrap_or_else(|| consent.client_id.clone());
        consents.push(ConsentEntry {
            client_id: consent.client_id,
            rp_name,
            claims: consent
                .claims
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            granted_at: consent.granted_at,
        });
    }
    Ok(Json(ConsentList { consents }))
}

/// `POST /api/v1/wallet/consents/revoke`: forget the consent for one service (the proof's
/// target); the next sign-in asks again.
pub async fn revoke_consent(
    State(platform): State<Platform>,
    JsonBody(body): JsonBody<ProofRequest>,
) -> Result<Response, ApiError> {
    let client_id = proof_target(&body.proof)?;
    let account = authenticate_wallet(&platform, &body.proof, "revoke-consent", &client_id).await?;
    let revoked = platform
        .store
        .revoke_consent(account.account_id, &client_id)
        .await?;
    if !revoked {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no consent is remembered for this service",
        ));
    }
    Ok(Json(json!({ "revoked": client_id })).into_response())
}

/// The target a proof names, read before the proof is verified (verifying needs it).
fn proof_target(proof: &str) -> Result<String, ApiError> {
    let jws = UnverifiedJws::parse(proof)
        .map_err(|e| ApiError::invalid_request(format!("proof: {e}")))?;
    let claims: WalletProofClaims = jws
        .payload_unverified()
        .map_err(|_| ApiError::invalid_request("proof: no claims"))?;
    Ok(claims.target)
}
