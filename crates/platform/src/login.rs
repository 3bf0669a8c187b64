//! The sign-in between `/authorize` and the code: the login page the browser shows, its
//! status for polling, and the wallet's API to open, prove and decide a sign-in.

use askama::Template;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cyberid_crypto::jose::{EcPublicJwk, UnverifiedJws, VerifyingKey};
use cyberid_crypto::{b64, constant_time_eq, pin, sha256};
use cyberid_domain::{AccountStatus, AssuranceLevel, Claim};
use cyberid_protocol::{
    APPROVAL_TYP, ApprovalClaims, ConsentEntry, ConsentList, Decision, DecisionRequest,
    DecisionResponse, DecisionStatus, LOGIN_PAGE_PREFIX, LoginDetails, PinRequest, PinResponse,
    ProofRequest, RequestedClaim, WALLET_PROOF_TYP, WalletProofClaims,
};
use cyberid_store::{
    AccountRecord, DeviceRecord, Factor, LoginOutcome, LoginRecord, LoginStatus, Refusal,
    RelyingParty, SignInRequest,
};
use serde_json::json;

use crate::error::{ApiError, ErrorCode};
use crate::extract::JsonBody;
use crate::oidc::authorize::{LOGIN_COOKIE, authorization_code, client_redirect_url, see_other};
use crate::pages::{error_page, render};
use crate::server::Platform;

fn level_text(level: AssuranceLevel) -> &'static str {
    match level {
        AssuranceLevel::L1 => "L1 — your phone",
        AssuranceLevel::L2 => "L2 — your phone and your PIN",
        AssuranceLevel::L3 => "L3 — your phone, your PIN and your face",
    }
}

/// Two digits shown on the page and in the wallet, derived from the sign-in.
pub fn number_match(platform: &Platform, id: &str) -> String {
    let tag = platform.keys.mac.digest("number-match", id.as_bytes());
    format!("{:02}", u16::from_be_bytes([tag[0], tag[1]]) % 100)
}

fn challenge(platform: &Platform, id: &str) -> String {
    b64::encode(&platform.keys.mac.digest("wallet-challenge", id.as_bytes())[..16])
}

fn describe(claims: &[Claim]) -> Vec<RequestedClaim> {
    claims
        .iter()
        .map(|claim| RequestedClaim {
            name: claim.as_str().to_owned(),
            description: claim.description().to_owned(),
            raw_identity: claim.requires_legal_basis(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    rp_name: &'a str,
    claims: Vec<RequestedClaim>,
    legal_basis: Option<&'a str>,
    level_text: &'a str,
    qr_svg: String,
    wallet_link: String,
    number_match: String,
    minutes: i64,
    page_url: String,
    status_url: String,
    script_url: String,
}

/// `GET /login/{id}`: the login page while the wallet decides; afterwards the redirect to
/// the client (with the code only in the browser that started the sign-in).
pub async fn page(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match page_inner(&platform, &id, &headers).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn page_inner(
    platform: &Platform,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let unknown = || {
        error_page(
            StatusCode::NOT_FOUND,
            "Unknown sign-in",
            "This sign-in does not exist. Please start again at the service.",
        )
    };
    let Some((login, rp)) = platform.store.login_with_client(id).await? else {
        return Ok(unknown());
    };
    let pending = is_open(&login, crate::now());
    // Every answer that goes back to the client (code or error, with its state) is for the
    // browser that started the sign-in only.
    if !pending && login.status != LoginStatus::Pushed && !same_browser(headers, &login) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "Open this in your own browser",
            "This sign-in belongs to the browser in which it was started. Continue there.",
        ));
    }
    Ok(match login.status {
        LoginStatus::Pushed => unknown(),
        LoginStatus::Pending if pending => {
            login_page(platform, &login.id, login.expires_at, &rp, &login.request)?
        }
        _ => see_other(&destination(platform, &login)),
    })
}

/// Where the browser goes once sign-in `login` has ended (it is not pending, or has
/// expired): back to the client with the code, or with the error and why.
fn destination(platform: &Platform, login: &LoginRecord) -> String {
    let request = &login.request;
    let state = request.state.as_deref();
    let error = |code: ErrorCode, description: &str| {
        client_redirect_url(
            platform,
            &request.redirect_uri,
            state,
            &[("error", code.as_str()), ("error_description", description)],
        )
    };
    match login.status {
        LoginStatus::Approved => {
            let code = authorization_code(platform, &login.id);
            client_redirect_url(platform, &request.redirect_uri, state, &[("code", &code)])
        }
        LoginStatus::Declined => error(ErrorCode::AccessDenied, "the holder declined the sign-in"),
        LoginStatus::Failed => error(
            ErrorCode::UnmetAuthenticationRequirements,
            "the holder's wallet could not reach the requested level",
        ),
        // Pending past its expiry (a pushed request that was never claimed has no page).
        LoginStatus::Pending | LoginStatus::Pushed => error(
            ErrorCode::AccessDenied,
            "the sign-in request expired before it was approved",
        ),
    }
}

fn same_browser(headers: &HeaderMap, login: &LoginRecord) -> bool {
    let Some(expected) = login.browser_digest.as_deref() else {
        return false;
    };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == LOGIN_COOKIE)
        .any(|(_, value)| constant_time_eq(&sha256(value.as_bytes()), expected))
}

/// The page a browser shows while sign-in `id` waits for the wallet: who asks, for what, at
/// which level, the QR code and link for the wallet, and the number to compare.
pub(crate) fn login_page(
    platform: &Platform,
    id: &str,
    expires_at: i64,
    rp: &RelyingParty,
    request: &SignInRequest,
) -> Result<Response, ApiError> {
    let page_url = format!("{}{LOGIN_PAGE_PREFIX}{id}", platform.issuer);
    let wallet_link = cyberid_protocol::wallet_link(&page_url);
    let qr_svg = crate::qr::svg(wallet_link.as_bytes())
        .ok_or_else(|| ApiError::internal("QR code", "the wallet link is too long"))?;
    let page = LoginPage {
        rp_name: &rp.name,
        claims: describe(&request.claims),
        legal_basis: rp.legal_basis.as_deref(),
        level_text: level_text(request.level),
        qr_svg,
        wallet_link,
        number_match: number_match(platform, id),
        minutes: ((expires_at - crate::now()).max(0) + 59) / 60,
        status_url: format!("{page_url}/status"),
        script_url: format!("{}/static/login.js", platform.issuer_path),
        page_url,
    };
    Ok(render(StatusCode::OK, &page))
}

/// `GET /login/{id}/status`: `pending` until the wallet decides or the sign-in expires,
/// then `done`, with the `location` to go to when asked by the browser that started the
/// sign-in (its cookie): the client's redirect URI with the code or the error, as
/// `/login/{id}` would redirect, one exchange sooner. With `?wait=1` (the login page's
/// script) a pending answer waits first, until the decision, the sign-in's expiry or
/// `sign_in.decision_wait_seconds`, whichever comes first (see [`crate::decisions`]); the
/// page asks again.
pub async fn status(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let wait = query.as_deref().is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "wait" && v == "1")
    });
    let status = if wait {
        wait_for_decision(&platform, &id, &headers).await?
    } else {
        status_now(&platform, &id, &headers).await?
    };
    let body = match status {
        Status::Pending { .. } => json!({ "status": "pending" }),
        Status::Done { location: None } => json!({ "status": "done" }),
        Status::Done {
            location: Some(location),
        } => json!({ "status": "done", "location": location }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

enum Status {
    /// Waiting for the wallet until `expires_at`.
    Pending { expires_at: i64 },
    /// Ended; where the browser that started it goes next.
    Done { location: Option<String> },
}

/// The sign-in's status as the store has it now.
async fn status_now(
    platform: &Platform,
    id: &str,
    headers: &HeaderMap,
) -> Result<Status, ApiError> {
    let login = platform
        .store
        .login(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such sign-in"))?;
    if is_open(&login, crate::now()) {
        return Ok(Status::Pending {
            expires_at: login.expires_at,
        });
    }
    let location = if login.status != LoginStatus::Pushed && same_browser(headers, &login) {
        Some(destination(platform, &login))
    } else {
        None
    };
    Ok(Status::Done { location })
}

/// [`status_now`], answered once the sign-in has ended or when the wait is over: woken by a
/// decision on this node or one found on another, or by the node's closing; over at
/// `sign_in.decision_wait_seconds` or the sign-in's expiry. Beyond the bounds on waiting
/// requests it answers at once.
async fn wait_for_decision(
    platform: &Platform,
    id: &str,
    headers: &HeaderMap,
) -> Result<Status, ApiError> {
    let started = tokio::time::Instant::now();
    let Some(waiter) = platform.decisions.wait_for(id) else {
        return status_now(platform, id, headers).await;
    };
    // Enabled before the read: a decision between the read and the wait still wakes it.
    let decided = waiter.notified();
    tokio::pin!(decided);
    decided.as_mut().enable();
    let expires_at = match status_now(platform, id, headers).await? {
        Status::Pending { expires_at } if !platform.decisions.is_closing() => expires_at,
        answer => return Ok(answer),
    };
    platform.check_decisions_elsewhere();
    // A second past the expiry, so that the read after it finds the sign-in expired.
    let to_expiry = u64::try_from(expires_at.saturating_sub(crate::now())).unwrap_or(0) + 1;
    let until = started
        + platform
            .settings
            .sign_in
            .decision_wait()
            .min(std::time::Duration::from_secs(to_expiry));
    let _ = tokio::time::timeout_at(until, decided).await;
    status_now(platform, id, headers).await
}

/// The account and device behind a wallet proof (`typ` [`WALLET_PROOF_TYP`], `kid` = the
/// device key's thumbprint), for `action` on `target`.
async fn authenticate_wallet(
    platform: &Platform,
    proof: &str,
    action: &str,
    target: &str,
) -> Result<AccountRecord, ApiError> {
    let jws = UnverifiedJws::parse(proof)
        .map_err(|e| ApiError::invalid_request(format!("proof: {e}")))?;
    let (account, key) = device_account(platform, jws.header.kid.as_deref()).await?;
    let claims: WalletProofClaims = jws
        .verify(&key, WALLET_PROOF_TYP)
        .map_err(|e| unauthorized(&format!("the device proof does not verify: {e}")))?;
    if claims.action != action || claims.target != target {
        return Err(unauthorized("the device proof is for another request"));
    }
    check_fresh(platform, claims.iat)?;
    Ok(account)
}

fn unauthorized(description: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidDevice, description)
}

/// A wallet proof's `iat` is at most `sign_in.wallet_proof_max_skew_seconds` from the
/// platform's clock.
fn check_fresh(platform: &Platform, iat: i64) -> Result<(), ApiError> {
    if iat.abs_diff(crate::now()) > platform.settings.sign_in.wallet_proof_max_skew_seconds {
        return Err(unauthorized(
            "the proof's time is too far from the platform's clock; check the device clock",
        ));
    }
    Ok(())
}

async fn device_account(
    platform: &Platform,
    kid: Option<&str>,
) -> Result<(AccountRecord, VerifyingKey), ApiError> {
    let kid = kid.ok_or_else(no_device_key)?;
    let found = platform.store.account_by_device(kid).await?;
    let (account, device) = bound_device(Some(kid), found)?;
    Ok((account, device_key(&device)?))
}

fn no_device_key() -> ApiError {
    unauthorized("the proof names no device key (kid)")
}

/// The active account of the device a proof names (`kid`), from what the store found.
fn bound_device(
    kid: Option<&str>,
    found: Option<(AccountRecord, DeviceRecord)>,
) -> Result<(AccountRecord, DeviceRecord), ApiError> {
    kid.ok_or_else(no_device_key)?;
    let (account, device) =
        found.ok_or_else(|| unauthorized("this device is not bound to any account"))?;
    if account.status != AccountStatus::Active {
        return Err(ApiError::new(
            ErrorCode::AccountInactive,
            "this Cyberspace ID is suspended or deregistered",
        ));
    }
    Ok((account, device))
}

/// The device's public key, parsed only when a signature is to be checked with it.
fn device_key(device: &DeviceRecord) -> Result<VerifyingKey, ApiError> {
    let jwk: EcPublicJwk = serde_json::from_str(&device.public_jwk)
        .map_err(|e| ApiError::internal("stored device key", e))?;
    VerifyingKey::from_jwk(&jwk).map_err(|e| ApiError::internal("stored device key", e))
}

/// Whether sign-in `login` still waits for the wallet at `now`: pending and unexpired.
fn is_open(login: &LoginRecord, now: i64) -> bool {
    login.status == LoginStatus::Pending && login.expires_at > now
}

/// The sign-in if it is pending and unexpired.
fn still_open(login: Option<LoginRecord>) -> Result<LoginRecord, ApiError> {
    login
        .filter(|login| is_open(login, crate::now()))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::LoginClosed,
                "this sign-in has already ended or expired; start again at the service",
            )
        })
}

/// `GET /api/v1/logins/{id}`: what the wallet shows before the holder decides. It is what
/// the login page shows, so it needs no more than the sign-in's link; the wallet asks for
/// its remembered consents separately, and only when the service wants more than the
/// defaults (a device signature here would cost every sign-in one more verification).
pub async fn details(
    State(platform): State<Platform>,
    Path(id): Path<String>,
) -> Result<Json<LoginDetails>, ApiError> {
    let (login, rp) = match platform.store.login_with_client(&id).await? {
        Some((login, rp)) => (Some(login), Some(rp)),
        None => (None, None),
    };
    let login = still_open(login)?;
    let rp = rp.ok_or_else(|| ApiError::internal("open", "client vanished"))?;
    let request = &login.request;
    Ok(Json(LoginDetails {
        transaction_id: login.id.clone(),
        client_id: request.client_id.clone(),
        rp_name: rp.name,
        legal_basis: rp.legal_basis,
        claims: describe(&request.claims),
        level: request.level,
        number_match: number_match(&platform, &login.id),
        challenge: challenge(&platform, &login.id),
        expires_at: login.expires_at,
        force_consent: request.force_consent,
        sector: rp.sector,
        subject_shared_with: Vec::new(),
    }))
}

/// `POST /api/v1/logins/{id}/pin`: one OPRF evaluation of the blinded PIN, counted as an
/// attempt until a PIN proof succeeds.
pub async fn pin_evaluation(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PinRequest>,
) -> Result<Json<PinResponse>, ApiError> {
    let (_, account, approval) = open_with_approval(&platform, &id, &body.approval).await?;
    if approval.decision != Decision::Approve || approval.level < AssuranceLevel::L2 {
        return Err(ApiError::invalid_request(
            "a PIN is evaluated only for an approval at L2 or above",
        ));
    }
    // Evaluating is pure: do it first, so a malformed request is refused before anything is
    // counted; the evaluation leaves only after the attempt is counted.
    let evaluated_pin = platform
        .keys
        .pin_oprf
        .evaluate(&account.pin_key_id, &body.blinded_pin)
        .map_err(|e| ApiError::invalid_request(format!("blinded_pin: {e}")))?;
    let Some(count) = platform
        .store
        .count_pin_evaluation(
            account.account_id,
            &id,
            platform.settings.lockout.pin_attempts,
            &sha256(body.approval.as_bytes()),
        )
        .await?
    else {
        // The level cannot be reached any more: end the sign-in with the standard error.
        fail_unreachable(&platform, &id).await?;
        return Err(pin_locked());
    };
    Ok(Json(PinResponse {
        evaluated_pin,
        attempts_left: platform.settings.lockout.pin_attempts.saturating_sub(count),
    }))
}

async fn fail_unreachable(platform: &Platform, id: &str) -> Result<(), ApiError> {
    // The service hears `unmet_authentication_requirements`.
    let outcome = LoginOutcome::Refused(Refusal::Failed);
    platform.finish_login(id, &outcome, crate::now()).await?;
    Ok(())
}

fn pin_locked() -> ApiError {
    ApiError::new(
        ErrorCode::PinLocked,
        "too many wrong PINs: the PIN is locked; sign in at L3 or re-bind the device to set a new one",
    )
}

/// `POST /api/v1/logins/{id}/decision`: approve (proving the level), decline, or report
/// that the wallet cannot reach the level.
pub async fn decision(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionResponse>, ApiError> {
    let (login, account, approval) = open_with_approval(&platform, &id, &body.approval).await?;
    let now = crate::now();
    // The service hears `access_denied` for a decline, `unmet_authentication_requirements`
    // when the wallet cannot reach the level (see `destination`).
    let outcome = match approval.decision {
        Decision::Decline => LoginOutcome::Refused(Refusal::Declined),
        Decision::Unable => LoginOutcome::Refused(Refusal::Failed),
        Decision::Approve => approve(&platform, &login, &account, &approval, &body, now).await?,
    };
    if !platform.finish_login(&id, &outcome, now).await? {
        return Err(ApiError::new(
            ErrorCode::LoginClosed,
            "this sign-in has already ended or expired",
        ));
    }
    let status = match &outcome {
        // The store remembered the consent in the approval's own transaction.
        LoginOutcome::Approved { .. } => DecisionStatus::Approved,
        LoginOutcome::Refused(Refusal::Declined) => DecisionStatus::Declined,
        LoginOutcome::Refused(Refusal::Failed) => DecisionStatus::Failed,
    };
    tracing::info!(
        account = account.account_id,
        status = status.as_str(),
        "sign-in decided"
    );
    Ok(Json(DecisionResponse { status }))
}

/// The pending sign-in `id` and the approval sent for it, checked, with the account of the
/// device that signed it. The sign-in and the device come from one store read.
async fn open_with_approval(
    platform: &Platform,
    id: &str,
    approval: &str,
) -> Result<(LoginRecord, AccountRecord, ApprovalClaims), ApiError> {
    let jws = UnverifiedJws::parse(approval);
    let kid = jws.as_ref().ok().and_then(|jws| jws.header.kid.clone());
    let (login, device) = platform
        .store
        .login_and_device(id, kid.as_deref().unwrap_or_default())
        .await?;
    let login = still_open(login)?;
    let jws = jws.map_err(|e| ApiError::invalid_request(format!("approval: {e}")))?;
    let (account, device) = bound_device(kid.as_deref(), device)?;
    let claims = check_approval(platform, &login, approval, &jws, &device)?;
    Ok((login, account, claims))
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
            .map_err(|e| unauthorized(&format!("the approval signature does not verify: {e}")))?
    };
    if claims.txn != login.id
        || claims.client_id != login.request.client_id
        || claims.challenge != challenge(platform, &login.id)
    {
        return Err(unauthorized("the approval is for another sign-in"));
    }
    check_fresh(platform, claims.iat)?;
    Ok(claims)
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
    let level = approval.level;
    if level < request.level {
        return Err(ApiError::new(
            ErrorCode::LevelTooLow,
            format!(
                "this sign-in requires {}; approve at that level, or report that the wallet cannot reach it",
                request.level.as_str()
            ),
        ));
    }
    let mut claims = Vec::with_capacity(approval.claims.len());
    for name in &approval.claims {
        let Some(claim) = Claim::parse(name).filter(|claim| request.claims.contains(claim)) else {
            return Err(ApiError::invalid_request(format!(
                "{name} was not requested"
            )));
        };
        claims.push(claim);
    }
    if level >= AssuranceLevel::L2 {
        let proof = body
            .pin_proof
            .as_deref()
            .ok_or_else(|| ApiError::invalid_request("an L2 approval needs the PIN proof"))?;
        // The proof must come from an evaluation counted for this sign-in (refused once the
        // PIN is locked), so a PIN key kept from an earlier sign-in cannot skip the count.
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
    }
    if level >= AssuranceLevel::L3 {
        // The PIN was right even if the face fails next: its count restarts now.
        platform
            .store
            .reset_attempts(account.account_id, Factor::Pin)
            .await?;
        check_face(platform, account, body.face_sample.as_deref()).await?;
    }
    // The proved factors' failure counts restart from zero with the approval, in the same
    // write as the approval.
    let reset = match level {
        AssuranceLevel::L1 => Vec::new(),
        AssuranceLevel::L2 => vec![Factor::Pin],
        AssuranceLevel::L3 => vec![Factor::Face],
    };
    Ok(LoginOutcome::Approved {
        account_id: account.account_id,
        level,
        claims,
        auth_time: now,
        reset,
    })
}

/// L3: the live sample against the registry template, failures counted across nodes.
async fn check_face(
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
        return Err(face_locked());
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

fn face_locked() -> ApiError {
    ApiError::new(
        ErrorCode::FaceLocked,
        "too many failed face matches: face sign-in is locked for this account",
    )
}

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
    let jws = UnverifiedJws::parse(&body.proof)
        .map_err(|e| ApiError::invalid_request(format!("proof: {e}")))?;
    let target: WalletProofClaims = jws
        .payload_unverified()
        .map_err(|_| ApiError::invalid_request("proof: no claims"))?;
    let account =
        authenticate_wallet(&platform, &body.proof, "revoke-consent", &target.target).await?;
    let revoked = platform
        .store
        .revoke_consent(account.account_id, &target.target)
        .await?;

    if !revoked {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no consent is remembered for this service",
        ));
    }
    Ok(Json(json!({ "revoked": target.target })).into_response())
}
