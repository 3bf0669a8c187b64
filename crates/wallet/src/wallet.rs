//! The wallet directory and what it does on its own: enrol, show, present.

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::{self, Pin};
use cyberid_crypto::sd_jwt::{self, SdJwt};
use cyberid_domain::{CitizenIdNumber, Claim, FaceTemplate, PersonName};
use cyberid_protocol::{
    ENROLMENT_PROOF_TYP, EnrolmentProofClaims, EnrolmentRequest, EnrolmentStartRequest,
};
use serde_json::{Map, Value};

use crate::client::PlatformClient;
use crate::error::WalletError;
use crate::storage::{Enrolment, WalletFile, WalletStorage};

/// What `enrol` needs from the citizen.
pub struct EnrolmentInput<'a> {
    pub id_number: &'a str,
    pub name: &'a str,
    pub face_sample: &'a FaceTemplate,
    pub pin: &'a str,
}

/// The wallet's view of its credential. `Debug` is redacted: it holds personal data.
#[derive(Clone, serde::Serialize)]
pub struct WalletView {
    pub network_number: String,
    pub issuer: String,
    pub server: String,
    /// All claims of the credential, disclosable ones included.
    pub claims: Map<String, Value>,
    pub expires_at: i64,
}

impl std::fmt::Debug for WalletView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalletView(<redacted>)")
    }
}

pub struct Wallet {
    pub(crate) storage: WalletStorage,
}

impl Wallet {
    /// Opens the wallet in `dir`, creating the directory if needed.
    pub fn open(dir: &std::path::Path) -> Result<Self, WalletError> {
        Ok(Self {
            storage: WalletStorage::open(dir)?,
        })
    }

    /// Enrols: creates the device key, runs the PIN OPRF, sends the enrolment, checks
    /// and stores the returned credential.
    pub async fn enrol(
        &self,
        server: &str,
        input: EnrolmentInput<'_>,
    ) -> Result<WalletView, WalletError> {
        let pending = self.storage.load()?;
        if let Some(enrolment) = pending.as_ref().and_then(|file| file.enrolment.as_ref()) {
            return Err(WalletError::AlreadyEnrolled(
                enrolment.network_number.clone(),
            ));
        }
        // Local checks first: a typo is reported without a round trip.
        CitizenIdNumber::parse(input.id_number)
            .map_err(|e| WalletError::Input(format!("ID number: {e}")))?;
        PersonName::parse(input.name).map_err(|e| WalletError::Input(format!("name: {e}")))?;
        let pin = Pin::parse(input.pin).map_err(|e| WalletError::Input(e.to_string()))?;
        let client = PlatformClient::new(server)?;

        // The device key is kept before the enrolment is sent: if the answer is lost, the
        // next attempt proves the same device and the platform re-issues the credential.
        let mut file = match pending {
            Some(file) => file,
            None => {
                let (_, pkcs8) =
                    SigningKey::generate().map_err(|e| WalletError::Storage(e.to_string()))?;
                let file = WalletFile {
                    version: 1,
                    server: server.trim_end_matches('/').to_owned(),
                    sealed_device_key: self.storage.seal_device_key(&pkcs8)?,
                    enrolment: None,
                };
                self.storage.save(&file)?;
                file
            }
        };
        let device_key = self.storage.device_key(&file)?;
        let enrolled = enrol_device(&client, &input, &pin, &device_key).await?;

        // Accept the credential only if it verifies under the issuer's published keys and
        // is bound to this device's key.
        let issuer_keys = client.issuer_keys(&enrolled.issuer).await?;
        let lookup = |kid: Option<&str>| issuer_keys.iter().find(|k| k.jwk().kid.as_deref() == kid);
        let verified = sd_jwt::verify(&enrolled.credential, lookup, now(), None)
            .map_err(|e| WalletError::BadResponse(format!("credential: {e}")))?;
        if verified.holder_key.thumbprint() != device_key.verifying_key().thumbprint() {
            return Err(WalletError::BadResponse(
                "credential is bound to another key".into(),
            ));
        }
        file.server = server.trim_end_matches('/').to_owned();
        file.enrolment = Some(Enrolment {
            issuer: enrolled.issuer,
            network_number: enrolled.network_number,
            credential: enrolled.credential,
        });
        self.storage.save(&file)?;
        self.view()
    }

    /// The network number and every claim of the held credential.
    pub fn view(&self) -> Result<WalletView, WalletError> {
        let file = self.storage.load()?.ok_or(WalletError::NotEnrolled)?;
        let enrolment = file.enrolment.as_ref().ok_or(WalletError::NotEnrolled)?;
        let claims = SdJwt::parse(&enrolment.credential)
            .and_then(|sd| sd.claims_unverified())
            .map_err(|e| WalletError::Storage(format!("stored credential: {e}")))?;
        Ok(WalletView {
            network_number: enrolment.network_number.clone(),
            issuer: enrolment.issuer.clone(),
            server: file.server.clone(),
            expires_at: claims
                .get("exp")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            claims,
        })
    }

    /// An SD-JWT + key-binding JWT presentation disclosing exactly `disclose`.
    pub fn present(
        &self,
        disclose: &[Claim],
        audience: &str,
        nonce: &str,
    ) -> Result<String, WalletError> {
        if audience.is_empty() || nonce.is_empty() {
            return Err(WalletError::Input(
                "audience and nonce must not be empty".into(),
            ));
        }
        let file = self.storage.load()?.ok_or(WalletError::NotEnrolled)?;
        let enrolment = file.enrolment.as_ref().ok_or(WalletError::NotEnrolled)?;
        let device_key = self.storage.device_key(&file)?;
        let names: Vec<&str> = disclose.iter().map(Claim::as_str).collect();
        SdJwt::parse(&enrolment.credential)
            .and_then(|sd| sd.present(&names, &device_key, audience, nonce, now()))
            .map_err(|e| WalletError::Input(format!("cannot present: {e}")))
    }
}

/// The enrolment protocol for one device key, without touching storage (also used by
/// `cyberid bench enrol`): PIN OPRF, proof of possession, enrolment.
pub async fn enrol_device(
    client: &PlatformClient,
    input: &EnrolmentInput<'_>,
    pin: &Pin,
    device_key: &SigningKey,
) -> Result<cyberid_protocol::EnrolmentResponse, WalletError> {
    let (blinding, blinded_pin) = pin::blind(pin).map_err(|e| WalletError::Input(e.to_string()))?;
    let started = client
        .start_enrolment(&EnrolmentStartRequest { blinded_pin })
        .await?;
    let pin_key = blinding
        .finish(pin, &started.evaluated_pin)
        .map_err(|e| WalletError::BadResponse(e.to_string()))?;
    let pin_verifier = pin_key.verifier();
    let proof = device_key
        .sign_jwt(
            ENROLMENT_PROOF_TYP,
            &EnrolmentProofClaims {
                ticket: started.ticket.clone(),
                pin_verifier: pin_verifier.clone(),
                iat: now(),
            },
        )
        .map_err(|e| WalletError::Storage(e.to_string()))?;
    let request = EnrolmentRequest {
        ticket: started.ticket,
        id_number: input.id_number.trim().to_owned(),
        name: input.name.trim().to_owned(),
        face_sample: cyberid_registry::face::sample_to_base64(input.face_sample),
        device_key: serde_json::to_value(device_key.verifying_key().jwk())
            .map_err(|e| WalletError::Storage(e.to_string()))?,
        pin_verifier,
        proof,
    };
    client.enrol(&request).await
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
