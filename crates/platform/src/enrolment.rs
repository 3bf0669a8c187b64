//! Enrolment: a citizen gets an account, a network number and a network credential.
//!
//! Two requests. `start` evaluates the blinded PIN under a fresh per-account OPRF key and
//! hands out a ticket naming that key; the platform stores nothing yet. `enrol` then runs
//! the checks below in order — cheapest and least revealing first — and stores the account,
//! its device and its credential in one transaction.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cyberid_crypto::jose::{EcPublicJwk, UnverifiedJws, VerifyingKey};
use cyberid_crypto::seal::SealingKey;
use cyberid_crypto::{b64, constant_time_eq, pin, random};
use cyberid_domain::{
    CitizenIdNumber, FaceTemplate, MIN_SELF_ENROLMENT_AGE, NetworkNumber, PersonName, PersonRecord,
    age_on, format_iso_date,
};
use cyberid_protocol::{
    ENROLMENT_PROOF_TYP, EnrolmentProofClaims, EnrolmentRequest, EnrolmentResponse,
    EnrolmentStartRequest, EnrolmentStartResponse,
};
use cyberid_store::{EnrolError, EnrolledAccount, NewAccount};

use crate::credential::{self, CredentialRequest, HolderAttributes};
use crate::error::{ApiError, ErrorCode};
use crate::extract::JsonBody;
use crate::keys::PlatformKeys;
use crate::limits::ClientAddress;
use crate::platform::Platform;

const TICKET_PURPOSE: &str = "enrolment-ticket";
/// Fresh random network numbers collide with odds below 1e-6 even at 1.4e9 accounts;
/// a handful of draws is plenty.
const NUMBER_ATTEMPTS: usize = 8;

/// `POST /api/v1/enrolments/start`
pub async fn start(
    State(platform): State<Platform>,
    JsonBody(request): JsonBody<EnrolmentStartRequest>,
) -> Result<Json<EnrolmentStartResponse>, ApiError> {
    let pin_key_id = random::bytes::<16>();
    let evaluated_pin = platform
        .keys
        .pin_oprf
        .evaluate(&pin_key_id, &request.blinded_pin)
        .map_err(|e| ApiError::invalid_request(format!("blinded_pin: {e}")))?;
    let lifetime = platform.settings.credential.enrolment_ticket_seconds;
    Ok(Json(EnrolmentStartResponse {
        ticket: Ticket::new(pin_key_id, crate::now() + lifetime).encode(&platform),
        evaluated_pin,
        expires_in: lifetime,
    }))
}

/// `POST /api/v1/enrolments`
pub async fn enrol(
    State(platform): State<Platform>,
    address: ClientAddress,
    JsonBody(request): JsonBody<EnrolmentRequest>,
) -> Result<(StatusCode, Json<EnrolmentResponse>), ApiError> {
    let answer = enrol_checked(platform, address, request).await;
    crate::telemetry::enrolment_answered(match &answer {
        Ok(_) => "enrolled",
        Err(refusal) => refusal.code.as_str(),
    });
    answer
}

async fn enrol_checked(
    platform: Platform,
    address: ClientAddress,
    request: EnrolmentRequest,
) -> Result<(StatusCode, Json<EnrolmentResponse>), ApiError> {
    let ticket = check_ticket(&platform, &request.ticket)?;
    let device_key = check_device_key(&request.device_key)?;
    check_proof(
        &device_key,
        &request,
        platform
            .settings
            .credential
            .enrolment_proof_max_skew_seconds,
    )?;
    pin::check_verifier(&request.pin_verifier)
        .map_err(|e| ApiError::invalid_request(format!("pin_verifier: {e}")))?;
    let id_number = parse_id_number(&request.id_number)?;
    let name = parse_name(&request.name)?;
    let face_sample = parse_face_sample(&request.face_sample)?;
    let person =
        verify_identity_within_limits(&platform, address, &id_number, &name, &face_sample).await?;
    check_age(&person)?;
    let stored = store_account(
        &platform,
        &person,
        &device_key,
        &ticket,
        &request.pin_verifier,
    )
    .await?;
    let credential = credential::issue(
        platform.keys.current_issuer(),
        &CredentialRequest {
            issuer: &platform.issuer,
            holder_key: device_key.jwk(),
            network_number: &stored.network_number,
            attributes: &stored.attributes,
            status_index: stored.enrolled.status_index,
            issued_at: stored.issued_at,
            expires_at: stored.expires_at,
        },
    )
    .map_err(|e| ApiError::internal("credential issuance", e))?;
    tracing::info!(
        account = stored.enrolled.account_id,
        resumed = stored.resumed,
        "enrolled"
    );
    Ok((
        StatusCode::CREATED,
        Json(EnrolmentResponse {
            network_number: stored.network_number.to_string(),
            credential,
            issuer: platform.issuer.clone(),
        }),
    ))
}

/// The attributes the platform keeps for a registry record.
pub fn holder_attributes_of(person: &PersonRecord) -> HolderAttributes {
    HolderAttributes {
        id_number: person.id_number.as_str().to_owned(),
        name: person.name.as_str().to_owned(),
        birthdate: format_iso_date(person.birth_date),
        region: person.province().iso_3166_2.to_owned(),
    }
}

/// A new account for `person` with a freshly drawn network number: the digest of the ID
/// number, the attributes sealed under a new data key (bound to the number) and that key
/// wrapped by the platform key. Shared by enrolment and bulk provisioning.
#[allow(clippy::too_many_arguments)]
pub fn new_account(
    keys: &PlatformKeys,
    person: &PersonRecord,
    attributes: &HolderAttributes,
    device_key: &EcPublicJwk,
    pin_key_id: [u8; 16],
    pin_verifier: &str,
    created_at: i64,
    credential_expires_at: i64,
) -> Result<NewAccount, ApiError> {
    let plaintext =
        serde_json::to_vec(attributes).map_err(|e| ApiError::internal("attributes", e))?;
    let network_number = NetworkNumber::from_random_bytes(random::bytes::<16>());
    // The sealed data is bound to the account's network number, so it cannot be moved to
    // another account.
    let context = network_number.as_compact().as_bytes();
    let (data_key, data_key_bytes) = SealingKey::generate();
    let seal_failed = |e| ApiError::internal("sealing", e);
    Ok(NewAccount {
        person_digest: keys
            .person_digest
            .digest("citizen-id-number", person.id_number.as_str().as_bytes()),
        wrapped_data_key: keys
            .data_wrapping
            .wrap(context, &data_key_bytes)
            .map_err(seal_failed)?,
        sealed_attributes: data_key.seal(context, &plaintext).map_err(seal_failed)?,
        network_number,
        pin_key_id,
        pin_verifier: pin_verifier.to_owned(),
        device_thumbprint: device_key.thumbprint(),
        device_public_jwk: serde_json::to_string(&device_key.bare())
            .map_err(|e| ApiError::internal("jwk", e))?,
        created_at,
        credential_expires_at,
    })
}

/// A stateless, MAC-authenticated ticket: the PIN OPRF key id and an expiry.
pub(crate) struct Ticket {
    pub(crate) pin_key_id: [u8; 16],
    expires_at: i64,
}

impl Ticket {
    fn new(pin_key_id: [u8; 16], expires_at: i64) -> Self {
        Self {
            pin_key_id,
            expires_at,
        }
    }

    fn body(&self) -> [u8; 24] {
        let mut body = [0u8; 24];
        body[..16].copy_from_slice(&self.pin_key_id);
        body[16..].copy_from_slice(&self.expires_at.to_be_bytes());
        body
    }

    fn encode(&self, platform: &Platform) -> String {
        let body = self.body();
        let mac = platform.keys.mac.digest(TICKET_PURPOSE, &body);
        let mut out = body.to_vec();
        out.extend_from_slice(&mac[..16]);
        b64::encode(out)
    }
}

pub(crate) fn check_ticket(platform: &Platform, text: &str) -> Result<Ticket, ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidTicket,
            "the enrolment ticket is not one this platform issued; start the enrolment again",
        )
    };
    let bytes = b64::decode(text).map_err(|_| invalid())?;
    if bytes.len() != 40 {
        return Err(invalid());
    }
    let mut pin_key_id = [0u8; 16];
    pin_key_id.copy_from_slice(&bytes[..16]);
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&bytes[16..24]);
    let ticket = Ticket::new(pin_key_id, i64::from_be_bytes(expiry));
    let mac = platform.keys.mac.digest(TICKET_PURPOSE, &ticket.body());
    if !constant_time_eq(&mac[..16], &bytes[24..]) {
        return Err(invalid());
    }
    if ticket.expires_at <= crate::now() {
        return Err(ApiError::new(
            ErrorCode::InvalidTicket,
            "the enrolment ticket has expired; start the enrolment again",
        ));
    }
    Ok(ticket)
}

fn check_device_key(value: &serde_json::Value) -> Result<VerifyingKey, ApiError> {
    let invalid = |why: String| {
        ApiError::new(
            ErrorCode::InvalidDeviceKey,
            format!("device_key must be a P-256 public JWK: {why}"),
        )
    };
    let jwk: EcPublicJwk =
        serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
    VerifyingKey::from_jwk(&jwk).map_err(|e| invalid(e.to_string()))
}

/// The device key signs the ticket and PIN verifier, at a time at most `max_skew_seconds`
/// from the platform's clock.
fn check_proof(
    device_key: &VerifyingKey,
    request: &EnrolmentRequest,
    max_skew_seconds: u64,
) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            ErrorCode::InvalidProof,
            format!("the device key proof is not valid: {why}"),
        )
    };
    let jws = UnverifiedJws::parse(&request.proof).map_err(|e| invalid(&e.to_string()))?;
    let claims: EnrolmentProofClaims = jws
        .verify(device_key, ENROLMENT_PROOF_TYP)
        .map_err(|e| invalid(&e.to_string()))?;
    if claims.ticket != request.ticket || claims.pin_verifier != request.pin_verifier {
        return Err(invalid("it signs a different ticket or PIN verifier"));
    }
    if claims.iat.abs_diff(crate::now()) > max_skew_seconds {
        return Err(invalid(
            "its iat is too far from the current time; check the device clock",
        ));
    }
    Ok(())
}

fn parse_id_number(text: &str) -> Result<CitizenIdNumber, ApiError> {
    let id = CitizenIdNumber::parse(text)
        .map_err(|e| ApiError::new(ErrorCode::InvalidIdNumber, format!("id_number: {e}")))?;
    if id.birth_date() > time::OffsetDateTime::now_utc().date() {
        return Err(ApiError::new(
            ErrorCode::InvalidIdNumber,
            "id_number: the birth date it encodes is in the future",
        ));
    }
    Ok(id)
}

fn parse_name(text: &str) -> Result<PersonName, ApiError> {
    PersonName::parse(text).map_err(|e| ApiError::new(ErrorCode::InvalidName, format!("name: {e}")))
}

fn parse_face_sample(text: &str) -> Result<FaceTemplate, ApiError> {
    cyberid_registry::face::sample_from_base64(text)
        .map_err(|e| ApiError::new(ErrorCode::InvalidFaceSample, format!("face_sample: {e}")))
}

/// [`verify_identity`], counted against the limits on failed identity checks per ID number
/// and per address (a guesser's tries), which refuse it with `too_many_requests` once
/// reached. Only a failed check stays counted.
async fn verify_identity_within_limits(
    platform: &Platform,
    address: ClientAddress,
    id_number: &CitizenIdNumber,
    name: &PersonName,
    face_sample: &FaceTemplate,
) -> Result<PersonRecord, ApiError> {
    let store = platform.store.as_ref();
    let attempt = platform
        .limits
        .start_enrolment_attempt(store, id_number, address, crate::now())
        .await?;
    let verified = verify_identity(platform, id_number, name, face_sample).await;
    let failed = matches!(&verified, Err(e) if e.code == ErrorCode::IdentityMismatch);
    attempt.settle(store, failed).await;
    verified
}

/// The registry record, if the ID number, name and face all match it. One answer for
/// "no such person", "wrong name" and "wrong face": distinct answers would let anyone who
/// knows an ID number test which numbers exist and what name goes with each.
async fn verify_identity(
    platform: &Platform,
    id_number: &CitizenIdNumber,
    name: &PersonName,
    face_sample: &FaceTemplate,
) -> Result<PersonRecord, ApiError> {
    let record = platform
        .registry
        .find(id_number)
        .await
        .map_err(|e| ApiError::internal("registry lookup", e))?;
    match record {
        Some(record)
            if record.name == *name && platform.face_matcher.matches(&record.face, face_sample) =>
        {
            Ok(record)
        }
        _ => Err(ApiError::new(
            ErrorCode::IdentityMismatch,
            "the ID number, name and face sample do not match a registry record: check the number \
             and the name as registered, and retake the face sample in good light",
        )),
    }
}

fn check_age(person: &PersonRecord) -> Result<(), ApiError> {
    let today = time::OffsetDateTime::now_utc().date();
    let age = age_on(person.birth_date, today).unwrap_or(0);
    if age < MIN_SELF_ENROLMENT_AGE {
        return Err(ApiError::new(
            ErrorCode::GuardianRequired,
            format!(
                "people under {MIN_SELF_ENROLMENT_AGE} enrol with a guardian's approval; the guardian flow is not available yet"
            ),
        ));
    }
    Ok(())
}

/// The stored account behind a successful enrolment.
struct StoredEnrolment {
    network_number: NetworkNumber,
    attributes: HolderAttributes,
    enrolled: EnrolledAccount,
    issued_at: i64,
    expires_at: i64,
    /// A retry by the device that enrolled (its first answer was lost).
    resumed: bool,
}

/// Seals the attributes under a new data key and stores the account in one transaction,
/// drawing a new network number if the drawn one is taken. A person already enrolled from
/// this very device (proved by the proof of possession) gets a fresh credential instead:
/// a lost answer must not lock anyone out.
async fn store_account(
    platform: &Platform,
    person: &PersonRecord,
    device_key: &VerifyingKey,
    ticket: &Ticket,
    pin_verifier: &str,
) -> Result<StoredEnrolment, ApiError> {
    let attributes = holder_attributes_of(person);
    let issued_at = crate::now();
    let expires_at = issued_at + platform.settings.credential.lifetime_days * 86_400;

    for _ in 0..NUMBER_ATTEMPTS {
        let account = new_account(
            &platform.keys,
            person,
            &attributes,
            device_key.jwk(),
            ticket.pin_key_id,
            pin_verifier,
            issued_at,
            expires_at,
        )?;
        let network_number = account.network_number.clone();
        let attributes = attributes.clone();
        let stored = |enrolled, network_number, attributes, resumed| StoredEnrolment {
            network_number,
            attributes,
            enrolled,
            issued_at,
            expires_at,
            resumed,
        };
        match platform.store.enrol(&account).await {
            Ok(enrolled) => {
                // Crash test: committed, but the answer never leaves.
                cyberid_store::failpoint("enrol-after-commit");
                return Ok(stored(enrolled, network_number, attributes, false));
            }
            Err(EnrolError::NetworkNumberTaken) => continue,
            Err(EnrolError::PersonAlreadyEnrolled) => {
                return match platform
                    .store
                    .resume_enrolment(&account)
                    .await
                    .map_err(enrol_refusal)?
                {
                    Some(resumed) => {
                        let attributes = credential::unseal_attributes(
                            &platform.keys,
                            &resumed.network_number,
                            &resumed.wrapped_data_key,
                            &resumed.sealed_attributes,
                        )?;
                        Ok(stored(
                            resumed.enrolled,
                            resumed.network_number,
                            attributes,
                            true,
                        ))
                    }
                    None => Err(enrol_refusal(EnrolError::PersonAlreadyEnrolled)),
                };
            }
            Err(other) => return Err(enrol_refusal(other)),
        }
    }
    Err(ApiError::internal(
        "enrolment",
        "no free network number after several draws",
    ))
}

fn enrol_refusal(error: EnrolError) -> ApiError {
    match error {
        EnrolError::PersonAlreadyEnrolled => ApiError::new(
            ErrorCode::AlreadyEnrolled,
            "this person already has a Cyberspace ID; to use a new phone, re-bind the new device instead of enrolling again",
        ),
        EnrolError::DeviceAlreadyBound => ApiError::new(
            ErrorCode::DeviceAlreadyBound,
            "this device key already belongs to another account; a wallet must create a new key for each enrolment",
        ),
        EnrolError::PinKeyIdTaken => ApiError::new(
            ErrorCode::InvalidTicket,
            "the enrolment ticket was already used; start the enrolment again",
        ),
        EnrolError::NetworkNumberTaken => ApiError::internal("enrolment", "network number taken"),
        EnrolError::Store(e) => e.into(),
    }
}
