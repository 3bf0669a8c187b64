//! The wallet's side of a sign-in: it opens the sign-in (`GET /api/v1/logins/{id}`), proves
//! the PIN if the level needs it (`POST …/pin`), and decides (`POST …/decision`).

use axum::Json;
use axum::extract::{Path, State};
use cyberid_crypto::jose::UnverifiedJws;
use cyberid_crypto::{constant_time_eq, pin, sha256};
use cyberid_domain::{AssuranceLevel, Claim};
use cyberid_protocol::{
    APPROVAL_TYP, ApprovalClaims, Decision, DecisionRequest, DecisionResponse, DecisionStatus,
    LoginDetails, PinRequest, PinResponse,
};
use cyberid_store::{
    AccountRecord, DeviceRecord, Factor, LoginOutcome, LoginRecord, PinCount, Refusal,
    RelyingParty, SignInRequest,
};

use super::device::{bound_device, check_fresh, device_key, invalid_device};
use super::page::describe;
use super::tokens::{number_match, wallet_challenge};
use crate::error::{ApiError, ErrorCode};
use crate::extract::JsonBody;
use crate::platform::Platform;

/// `GET /api/v1/logins/{id}`: what the wallet shows before the holder decides. It is what
/// the login page shows, so it needs no more than the sign-in's link; the wallet asks for
/// its remembered consents separately, and only when the service wants more than the
/// defaults (a device signature here would cost every sign-in one more verification).
pub async fn details(
    State(platform): State<Platform>,
    Path(id): Path<String>,
) -> Result<Json<LoginDetails>, ApiError> {
    let (login, rp) = open_sign_in(&platform, &id).await?;
    let subject_shared_with = platform.subject_shared_with(&rp).await?;
    let request = &login.request;
    Ok(Json(LoginDetails {
        transaction_id: login.id.clone(),
        client_id: request.client_id.clone(),
        rp_name: rp.name.clone(),
        legal_basis: rp.legal_basis.clone(),
        claims: describe(&request.claims),
        level: request.level,
        number_match: number_match(&platform, &login.id),
        challenge: wallet_challenge(&platform, &login.id),
        expires_at: login.expires_at,
        force_consent: request.force_consent,
        sector: rp.sector.clone(),
        subject_shared_with,
    }))
}

/// `POST /api/v1/logins/{id}/pin`: one OPRF evaluation of the blinded PIN, counted as an
/// attempt until a PIN proof succeeds.
pub async fn pin_evaluation(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PinRequest>,
) -> Result<Json<PinResponse>, ApiError> {
    let opened = open_with_approval(&platform, &id, &body.approval).await?;
    require_pin_level(&opened.approval)?;
    // Evaluating is pure: done first, so a malformed request is refused before anything is
    // counted; the evaluation leaves only after the attempt is counted.
    let evaluated_pin = evaluate_pin(&platform, &opened.account, &body.blinded_pin)?;
    let attempts = count_pin_attempt(&platform, &opened, &id, &body.approval).await?;
    Ok(Json(PinResponse {
        evaluated_pin,
        attempts_left: platform
            .settings
            .lockout
            .pin_attempts
            .saturating_sub(attempts),
    }))
}

/// `POST /api/v1/logins/{id}/decision`: approve (proving the level), decline, or report
/// that the wallet cannot reach the level.
pub async fn decision(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionResponse>, ApiError> {
    let Opened {
        login,
        account,
        approval,
        device,
    } = open_with_approval(&platform, &id, &body.approval).await?;
    let now = crate::now();
    // The service hears `access_denied` for a decline, `unmet_authentication_requirements`
    // when the wallet cannot reach the level (see `browser::destination`).
    let outcome = match approval.decision {
        Decision::Decline => LoginOutcome::Refused(Refusal::Declined),
        Decision::Unable => LoginOutcome::Refused(Refusal::Failed),
        Decision::Approve => approve(&platform, &login, &account, &approval, &body, now).await?,
    };
    finish(&platform, &id, &device, &outcome, now).await?;
    let status = decided_status(&outcome);
    tracing::info!(
        account = account.account_id,
        status = status.as_str(),
        "sign-in decided"
    );
    Ok(Json(DecisionResponse { status }))
}

/// The sign-in `id`, still waiting for the wallet, with its client.
async fn open_sign_in(
    platform: &Platform,
    id: &str,
) -> Result<(LoginRecord, RelyingParty), ApiError> {
    match platform.store.login_with_client(id).await? {
        Some((login, rp)) => Ok((still_waiting(Some(login))?, rp)),
        None => Err(sign_in_closed()),
    }
}

/// A pending sign-in opened by a wallet's signed approval.
struct Opened {
    login: LoginRecord,
    account: AccountRecord,
    approval: ApprovalClaims,
    /// The thumbprint of the device key that signed the approval.
    device: String,
}

/// The pending sign-in `id` and the approval sent for it, checked, with the account of the
/// device that signed it; refused if another device has taken the sign-in up. The sign-in
/// and the device come from one store read.
async fn open_with_approval(
    platform: &Platform,
    id: &str,
    approval: &str,
) -> Result<Opened, ApiError> {
    let jws = UnverifiedJws::parse(approval);
    let kid = jws.as_ref().ok().and_then(|jws| jws.header.kid.clone());
    let (login, device) = platform
        .store
        .login_and_device(id, kid.as_deref().unwrap_or_default())
        .await?;
    let login = still_waiting(login)?;
    let jws = jws.map_err(|e| ApiError::invalid_request(format!("approval: {e}")))?;
    let (account, device) = bound_device(kid.as_deref(), device)?;
    let kid = kid.unwrap_or_default();
    refuse_if_taken_by_another_device(&login, &kid)?;
    let claims = check_approval(platform, &login, approval, &jws, &device)?;
    Ok(Opened {
        login,
        account,
        approval: claims,
        device: kid,
    })
}

/// Once a device has taken a sign-in up (its first PIN evaluation or its decision), no
/// other device may act on it: refused before anything is counted.
fn refuse_if_taken_by_another_device(login: &LoginRecord, device: &str) -> Result<(), ApiError> {
    match login.device_thumbprint.as_deref() {
        Some(taken_by) if taken_by != device => Err(login_taken()),
        _ => Ok(()),
    }
}

fn login_taken() -> ApiError {
    ApiError::new(
        ErrorCode::LoginTaken,
        "another device has taken up this sign-in; only that device may act on it",
    )
}

/// What a locked PIN's holder is told: the way back.
pub const PIN_LOCKED: &str = "too many wrong PINs: the PIN is locked. Set a new PIN with a live \
     face match (L3): cyberid wallet pin reset --face FILE --pin NEW";

/// The sign-in if it is pending and unexpired.
fn still_waiting(login: Option<LoginRecord>) -> Result<LoginRecord, ApiError> {
    login
        .filter(|login| login.waits_for_wallet(crate::now()))
        .ok_or_else(sign_in_closed)
}

fn sign_in_closed() -> ApiError {
    ApiError::new(
        ErrorCode::LoginClosed,
        "this sign-in has already ended or expired; start again at the service",
    )
}

/// The approval's claims, checked: signed by the device key that named it, for this very
/// sign-in (id, client, challenge), fresh. An approval whose signature was already checked
/// at this sign-in's PIN evaluation (same bytes, by digest) is not checked twice.
fn check_approval(
    platform: &Platform,
    login: &LoginRecord,
    approval: &str,
    jws: &UnverifiedJws,
    device: &DeviceRecord,
) -> Result<ApprovalClaims, ApiError> {
    let checked_before = login
        .approval_digest
        .as_deref()
        .is_some_and(|digest| constant_time_eq(digest, &sha256(approval.as_bytes())));
    let claims: ApprovalClaims = if checked_before {
        // Verified at the PIN step already: the device key is not even parsed.
        jws.payload_unverified()
            .map_err(|e| ApiError::invalid_request(format!("approval: {e}")))?
    } else {
        jws.verify(&device_key(device)?, APPROVAL_TYP)
            .map_err(|e| invalid_device(&format!("the approval signature does not verify: {e}")))?
    };
    if claims.txn != login.id
        || claims.client_id != login.request.client_id
        || claims.challenge != wallet_challenge(platform, &login.id)
    {
        return Err(invalid_device("the approval is for another sign-in"));
    }
    check_fresh(platform, claims.iat)?;
    Ok(claims)
}

fn require_pin_level(approval: &ApprovalClaims) -> Result<(), ApiError> {
    if approval.decision != Decision::Approve || approval.level < AssuranceLevel::L2 {
        return Err(ApiError::invalid_request(
            "a PIN is evaluated only for an approval at L2 or above",
        ));
    }
    Ok(())
}

/// The OPRF evaluation of the blinded PIN under the account's PIN key.
fn evaluate_pin(
    platform: &Platform,
    account: &AccountRecord,
    blinded_pin: &str,
) -> Result<String, ApiError> {
    platform
        .keys
        .pin_oprf
        .evaluate(&account.pin_key_id, blinded_pin)
        .map_err(|e| ApiError::invalid_request(format!("blinded_pin: {e}")))
}

/// Counts the attempt (and marks the sign-in as having had one, with the approval's digest)
/// in one write; once the PIN is locked the level cannot be reached and the sign-in ends.
async fn count_pin_attempt(
    platform: &Platform,
    opened: &Opened,
    id: &str,
    approval: &str,
) -> Result<u32, ApiError> {
    let counted = platform
        .store
        .count_pin_evaluation(
            opened.account.account_id,
            id,
            &opened.device,
            platform.settings.lockout.pin_attempts,
            &sha256(approval.as_bytes()),
        )
        .await?;
    match counted {
        PinCount::Counted(attempts) => Ok(attempts),
        PinCount::TakenByAnotherDevice => Err(login_taken()),
        PinCount::Locked => {
            // The service hears `unmet_authentication_requirements`.
            let outcome = LoginOutcome::Refused(Refusal::Failed);
            platform
                .finish_login(id, &opened.device, &outcome, crate::now())
                .await?;
            Err(ApiError::new(ErrorCode::PinLocked, PIN_LOCKED))
        }
    }
}

/// Checks the proofs of an approval at its level. A level below the one requested is
/// refused, never accepted as a downgrade.
async fn approve(
    platform: &Platform,
    login: &LoginRecord,
    account: &AccountRecord,
    approval: &ApprovalClaims,
    body: &DecisionRequest,
    now: i64,
) -> Result<LoginOutcome, ApiError> {
    let request = &login.request;
    check_level(approval.level, request.level)?;
    let claims = released_claims(approval, request)?;
    if approval.level >= AssuranceLevel::L2 {
        check_pin_proof(platform, login, account, body)?;
    }
    if approval.level >= AssuranceLevel::L3 {
        // The PIN was right even if the face fails next: its count restarts now.
        platform
            .store
            .reset_attempts(account.account_id, Factor::Pin)
            .await?;
        check_face(platform, account, body.face_sample.as_deref()).await?;
    }
    Ok(LoginOutcome::Approved {
        account_id: account.account_id,
        level: approval.level,
        claims,
        auth_time: now,
        // The proved factors' failure counts restart from zero in the approval's own write.
        reset: match approval.level {
            AssuranceLevel::L1 => Vec::new(),
            AssuranceLevel::L2 => vec![Factor::Pin],
            AssuranceLevel::L3 => vec![Factor::Face],
        },
    })
}

fn check_level(proved: AssuranceLevel, required: AssuranceLevel) -> Result<(), ApiError> {
    if proved < required {
        return Err(ApiError::new(
            ErrorCode::LevelTooLow,
            format!(
                "this sign-in requires {}; approve at that level, or report that the wallet cannot reach it",
                required.as_str()
            ),
        ));
    }
    Ok(())
}

/// The claims the holder agreed to release: each one the service asked for, each once.
fn released_claims(
    approval: &ApprovalClaims,
    request: &SignInRequest,
) -> Result<Vec<Claim>, ApiError> {
    let mut released = Vec::with_capacity(approval.claims.len());
    for name in &approval.claims {
        let claim = Claim::parse(name)
            .filter(|claim| request.claims.contains(claim))
            .ok_or_else(|| ApiError::invalid_request(format!("{name} was not requested")))?;
        if !released.contains(&claim) {
            released.push(claim);
        }
    }
    Ok(released)
}

/// L2: the PIN key's signature over the approval, from an evaluation counted for this very
/// sign-in (refused once the PIN is locked), so a PIN key kept from an earlier sign-in
/// cannot skip the count.
fn check_pin_proof(
    platform: &Platform,
    login: &LoginRecord,
    account: &AccountRecord,
    body: &DecisionRequest,
) -> Result<(), ApiError> {
    let proof = body
        .pin_proof
        .as_deref()
        .ok_or_else(|| ApiError::invalid_request("an L2 approval needs the PIN proof"))?;
    if !login.pin_evaluated {
        return Err(ApiError::invalid_request(
            "evaluate the PIN for this sign-in first (POST …/pin)",
        ));
    }
    if pin::verify_proof(&account.pin_verifier, body.approval.as_bytes(), proof).is_err() {
        let left = platform
            .settings
            .lockout
            .pin_attempts
            .saturating_sub(account.pin_failures);
        return Err(ApiError::new(
            ErrorCode::InvalidPin,
            format!("wrong PIN; {left} attempts left before the PIN locks"),
        ));
    }
    Ok(())
}

/// L3: the live sample against the registry template, failures counted across nodes.
pub(crate) async fn check_face(
    platform: &Platform,
    account: &AccountRecord,
    sample: Option<&str>,
) -> Result<(), ApiError> {
    let sample =
        sample.ok_or_else(|| ApiError::invalid_request("an L3 approval needs a face sample"))?;
    let sample = cyberid_registry::face::sample_from_base64(sample)
        .map_err(|e| ApiError::invalid_request(format!("face_sample: {e}")))?;
    // Reserve an attempt before matching, so parallel tries cannot exceed the limit; the
    // approval gives it back.
    let limit = platform.settings.lockout.face_attempts;
    let Some(count) = platform
        .store
        .count_attempt(account.account_id, Factor::Face, limit)
        .await?
    else {
        return Err(ApiError::new(
            ErrorCode::FaceLocked,
            "too many failed face matches: face sign-in is locked for this account",
        ));
    };
    let attributes = crate::credential::holder_attributes(&platform.keys, account)?;
    let id = cyberid_domain::CitizenIdNumber::parse(&attributes.id_number)
        .map_err(|e| ApiError::internal("id number", e))?;
    let record = platform
        .registry
        .find(&id)
        .await
        .map_err(|e| ApiError::internal("registry lookup", e))?
        .ok_or_else(|| ApiError::internal("registry lookup", "holder missing from the registry"))?;
    if !platform.face_matcher.matches(&record.face, &sample) {
        return Err(ApiError::new(
            ErrorCode::FaceMismatch,
            format!(
                "the face sample does not match; {} attempts left",
                limit.saturating_sub(count)
            ),
        ));
    }
    Ok(())
}

/// Ends the sign-in with `outcome` (once) for `device` and wakes the login pages waiting
/// for it. Refused when it ended meanwhile, or another device took it up meanwhile.
async fn finish(
    platform: &Platform,
    id: &str,
    device: &str,
    outcome: &LoginOutcome,
    now: i64,
) -> Result<(), ApiError> {
    if !platform.finish_login(id, device, outcome, now).await? {
        let taken_elsewhere = platform
            .store
            .login(id)
            .await?
            .and_then(|login| login.device_thumbprint)
            .is_some_and(|taken_by| taken_by != device);
        return Err(if taken_elsewhere {
            login_taken()
        } else {
            ApiError::new(
                ErrorCode::LoginClosed,
                "this sign-in has already ended or expired",
            )
        });
    }
    Ok(())
}

fn decided_status(outcome: &LoginOutcome) -> DecisionStatus {
    match outcome {
        // The store remembered the consent in the approval's own transaction.
        LoginOutcome::Approved { .. } => DecisionStatus::Approved,
        LoginOutcome::Refused(Refusal::Declined) => DecisionStatus::Declined,
        LoginOutcome::Refused(Refusal::Failed) => DecisionStatus::Failed,
    }
}
