//! The wallet's HTTP client for the platform's API.

use cyberid_crypto::jose::{EcPublicJwk, VerifyingKey};
use cyberid_protocol::{
    ENROLMENT_PATH, ENROLMENT_START_PATH, EnrolmentRequest, EnrolmentResponse,
    EnrolmentStartRequest, EnrolmentStartResponse, ErrorBody,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::WalletError;

pub struct PlatformClient {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct IssuerMetadata {
    issuer: String,
    jwks: JwkSet,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<EcPublicJwk>,
}

impl PlatformClient {
    pub fn new(base: &str) -> Result<Self, WalletError> {
        let base = base.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(WalletError::Input(format!(
                "server must be an http(s) URL, not {base:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| WalletError::Network(e.to_string()))?;
        Ok(Self {
            base: base.to_owned(),
            http,
        })
    }

    pub(crate) async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, WalletError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| WalletError::Network(e.to_string()))?;
        decode(response).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, WalletError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| WalletError::Network(e.to_string()))?;
        decode(response).await
    }

    pub async fn start_enrolment(
        &self,
        body: &EnrolmentStartRequest,
    ) -> Result<EnrolmentStartResponse, WalletError> {
        self.post(ENROLMENT_START_PATH, body).await
    }

    pub async fn enrol(&self, body: &EnrolmentRequest) -> Result<EnrolmentResponse, WalletError> {
        self.post(ENROLMENT_PATH, body).await
    }

    /// The issuer's keys from its SD-JWT VC issuer metadata; the metadata must name the
    /// same issuer.
    pub async fn issuer_keys(&self, issuer: &str) -> Result<Vec<VerifyingKey>, WalletError> {
        let response = self
            .http
            .get(format!("{}/.well-known/jwt-vc-issuer", self.base))
            .send()
            .await
            .map_err(|e| WalletError::Network(e.to_string()))?;
        let metadata: IssuerMetadata = decode(response).await?;
        if metadata.issuer != issuer {
            return Err(WalletError::BadResponse(
                "issuer metadata names another issuer".into(),
            ));
        }
        metadata
            .jwks
            .keys
            .iter()
            .map(|jwk| {
                VerifyingKey::from_jwk(jwk).map_err(|e| WalletError::BadResponse(e.to_string()))
            })
            .collect()
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, WalletError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| WalletError::Network(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| WalletError::BadResponse(e.to_string()));
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(error) => Err(WalletError::Refused {
            status: status.as_u16(),
            code: error.error,
            description: error.error_description,
        }),
        // Not the platform's answer (a proxy's page, say).
        Err(_) => Err(WalletError::BadResponse(format!(
            "HTTP {status} without an error code"
        ))),
    }
}
