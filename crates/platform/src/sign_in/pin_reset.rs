//! `POST /api/v1/wallet/pin/reset`: the way back from a locked (or forgotten) PIN. The
//! enrolled device and a live face match (L3) set a new PIN; the PIN and face failure counts
//! start again from zero. The new PIN was evaluated at enrolment start under a fresh PIN
//! key, as at enrolment, so the platform never sees it.

use axum::Json;
use axum::extract::State;
use cyberid_crypto::pin;
use cyberid_protocol::{PIN_RESET_ACTION, PinResetRequest, PinResetResponse, pin_reset_target};

use super::decision::check_face;
use super::device::authenticate_wallet;
use crate::enrolment::check_ticket;
use crate::error::{ApiError, ErrorCode};
use crate::extract::JsonBody;
use crate::platform::Platform;

pub async fn reset_pin(
    State(platform): State<Platform>,
    JsonBody(request): JsonBody<PinResetRequest>,
) -> Result<Json<PinResetResponse>, ApiError> {
    let ticket = check_ticket(&platform, &request.ticket)?;
    pin::check_verifier(&request.pin_verifier)
        .map_err(|e| ApiError::invalid_request(format!("pin_verifier: {e}")))?;
    let target = pin_reset_target(&request.ticket, &request.pin_verifier);
    let account = authenticate_wallet(&platform, &request.proof, PIN_RESET_ACTION, &target).await?;
    // A face attempt is counted before matching, as at an L3 sign-in; the reset gives it back.
    check_face(&platform, &account, Some(&request.face_sample)).await?;
    let replaced = platform
        .store
        .replace_pin(
            account.account_id,
            &ticket.pin_key_id,
            &request.pin_verifier,
        )
        .await?;
    if !replaced {
        return Err(ApiError::new(
            ErrorCode::AccountInactive,
            "this Cyberspace ID is suspended or deregistered",
        ));
    }
    tracing::info!(account = account.account_id, "PIN reset");
    Ok(Json(PinResetResponse {
        status: "pin_reset".into(),
    }))
}
