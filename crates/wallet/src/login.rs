//! Signing in: the wallet opens a sign-in from its login page URL or wallet link, shows
//! what the service asks for, proves the level and decides.

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::{self, Pin};
use cyberid_domain::{AssuranceLevel, FaceTemplate};
use cyberid_protocol::{
    APPROVAL_TYP, ApprovalClaims, ConsentEntry, Decision as WireDecision, DecisionRequest,
    DecisionStatus, LOGIN_PAGE_PREFIX, LoginDetails, PinRequest, ProofRequest, WALLET_PROOF_TYP,
    WalletProofClaims,
};

use crate::client::PlatformClient;
use crate::error::WalletError;
use crate::wallet::{Wallet, now};

/// A sign-in the wallet has opened.
pub struct OpenedLogin {
    pub details: LoginDetails,
    /// The platform's base URL, from the login page URL.
    pub server: String,
    /// Claims this holder already agreed to release to this service.
    pub consented: Vec<String>,
}

/// What the holder decided.
pub enum Decision {
    /// Approve at the required level, releasing `claims`. L2 needs the PIN; L3 the PIN and
    /// a face sample.
    Approve {
        claims: Vec<String>,
        pin: Option<Pin>,
        face: Option<FaceTemplate>,
    },
    Decline,
    /// The wallet cannot reach the required level (e.g. no camera for L3).
    Unable,
}

/// Splits a login page URL (`{server}/login/{id}`) or a wallet link
/// (`cyberid-wallet:?login=<URL>`) into the platform's base URL and the sign-in id.
pub fn parse_login_reference(reference: &str) -> Result<(String, String), WalletError> {
    let reference = reference.trim();
    let url =
        cyberid_protocol::login_page_url_of(reference).unwrap_or_else(|| reference.to_owned());
    let bad = || {
        WalletError::Input(format!(
            "{reference:?} is not a Cyberspace ID login page URL or wallet link"
        ))
    };
    let (server, id) = url.rsplit_once(LOGIN_PAGE_PREFIX).ok_or_else(bad)?;
    // The scheme and a host before the login path: in `http://login/x` the path's `/login/`
    // is the scheme's `//` and the host, and there is no platform to ask.
    let host = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"));
    let id = id.split(['?', '#', '/']).next().unwrap_or_default();
    if host.is_none_or(str::is_empty)
        || id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad());
    }
    Ok((server.to_owned(), id.to_owned()))
}

/// The device key's signed decision on a sign-in (`typ` [`APPROVAL_TYP`]): bound to the
/// sign-in, its client and challenge, the level proved and the claims released, and dated
/// now. `key` carries the device key's thumbprint as `kid`.
pub fn sign_approval(
    key: &SigningKey,
    details: &LoginDetails,
    decision: WireDecision,
    level: AssuranceLevel,
    claims: Vec<String>,
) -> Result<String, WalletError> {
    key.sign_jwt(
        APPROVAL_TYP,
        &ApprovalClaims {
            txn: details.transaction_id.clone(),
            client_id: details.client_id.clone(),
            claims,
            challenge: details.challenge.clone(),
            level,
            decision,
            iat: now(),
        },
    )
    .map_err(|e| WalletError::Storage(e.to_string()))
}

impl Wallet {
    fn device_key_with_kid(&self) -> Result<(SigningKey, String), WalletError> {
        let file = self.storage.load()?.ok_or(WalletError::NotEnrolled)?;
        if file.enrolment.is_none() {
            return Err(WalletError::NotEnrolled);
        }
        let key = self.storage.device_key(&file)?;
        let kid = key.verifying_key().thumbprint();
        Ok((key.with_kid(kid), enrolment_server(&file)))
    }

    fn proof(key: &SigningKey, action: &str, target: &str) -> Result<String, WalletError> {
        key.sign_jwt(
            WALLET_PROOF_TYP,
            &WalletProofClaims {
                action: action.to_owned(),
                target: target.to_owned(),
                iat: now(),
            },
        )
        .map_err(|e| WalletError::Storage(e.to_string()))
    }

    /// Opens a sign-in. The link must belong to the platform this wallet is enrolled with.
    pub async fn open_login(&self, reference: &str) -> Result<OpenedLogin, WalletError> {
        let (server, id) = parse_login_reference(reference)?;
        let (_, enrolled_with) = self.device_key_with_kid()?;
        if server.trim_end_matches('/') != enrolled_with {
            return Err(WalletError::Input(format!(
                "this sign-in is on {server}, but the wallet is enrolled with {enrolled_with}"
            )));
        }
        let client = PlatformClient::new(&server)?;
        let details: LoginDetails = client
            .get(&cyberid_protocol::login_api_path(&id, ""))
            .await?;
        if details.transaction_id != id {
            return Err(WalletError::BadResponse(
                "the platform answered for another sign-in".into(),
            ));
        }
        // Remembered consent matters only when the service asks for more than the defaults.
        let consented = if details.claims.is_empty() || details.force_consent {
            Vec::new()
        } else {
            self.consents()
                .await?
                .into_iter()
                .find(|c| c.client_id == details.client_id)
                .map(|c| c.claims)
                .unwrap_or_default()
        };
        Ok(OpenedLogin {
            details,
            server,
            consented,
        })
    }

    /// Sends the decision; returns how the sign-in ended.
    pub async fn decide(
        &self,
        opened: &OpenedLogin,
        decision: Decision,
    ) -> Result<DecisionStatus, WalletError> {
        let (key, _) = self.device_key_with_kid()?;
        let client = PlatformClient::new(&opened.server)?;
        let details = &opened.details;
        let id = &details.transaction_id;
        let (decided, claims, pin, face) = match decision {
            Decision::Approve { claims, pin, face } => (WireDecision::Approve, claims, pin, face),
            Decision::Decline => (WireDecision::Decline, Vec::new(), None, None),
            Decision::Unable => (WireDecision::Unable, Vec::new(), None, None),
        };
        let approving = decided == WireDecision::Approve;
        let needs_pin = approving && details.level >= AssuranceLevel::L2;
        let needs_face = approving && details.level >= AssuranceLevel::L3;
        if needs_pin && pin.is_none() {
            return Err(WalletError::Input(format!(
                "this sign-in requires {}: the PIN is needed",
                details.level
            )));
        }
        if needs_face && face.is_none() {
            return Err(WalletError::Input(
                "this sign-in requires L3: a face sample is needed".into(),
            ));
        }
        let approval = sign_approval(&key, details, decided, details.level, claims)?;
        // The PIN key comes from a fresh OPRF evaluation, which the platform counts; the
        // evaluation carries the approval, which the platform checks once, there.
        let pin_key = match (needs_pin, pin) {
            (true, Some(pin)) => {
                let (blinding, blinded_pin) =
                    pin::blind(&pin).map_err(|e| WalletError::Input(e.to_string()))?;
                let evaluated: cyberid_protocol::PinResponse = client
                    .post(
                        &cyberid_protocol::login_api_path(id, "pin"),
                        &PinRequest {
                            approval: approval.clone(),
                            blinded_pin,
                        },
                    )
                    .await?;
                Some(
                    blinding
                        .finish(&pin, &evaluated.evaluated_pin)
                        .map_err(|e| WalletError::BadResponse(e.to_string()))?,
                )
            }
            _ => None,
        };
        let request = DecisionRequest {
            pin_proof: pin_key.map(|k| k.sign(approval.as_bytes())),
            face_sample: face
                .filter(|_| needs_face)
                .map(|f| cyberid_registry::face::sample_to_base64(&f)),
            approval,
        };
        let response: cyberid_protocol::DecisionResponse = client
            .post(&cyberid_protocol::login_api_path(id, "decision"), &request)
            .await?;
        Ok(response.status)
    }

    /// The services this holder agreed to release data to, and what.
    pub async fn consents(&self) -> Result<Vec<ConsentEntry>, WalletError> {
        let (key, server) = self.device_key_with_kid()?;
        let list: cyberid_protocol::ConsentList = PlatformClient::new(&server)?
            .post(
                cyberid_protocol::CONSENTS_PATH,
                &ProofRequest {
                    proof: Self::proof(&key, "list-consents", "")?,
                },
            )
            .await?;
        Ok(list.consents)
    }

    /// Sets a new PIN at L3: the device key and a live face sample, the way back from a
    /// locked or forgotten PIN. The new PIN is blinded as at enrolment: the platform never
    /// sees it.
    pub async fn reset_pin(&self, new_pin: &str, face: &FaceTemplate) -> Result<(), WalletError> {
        let pin = Pin::parse(new_pin).map_err(|e| WalletError::Input(e.to_string()))?;
        let (key, server) = self.device_key_with_kid()?;
        let client = PlatformClient::new(&server)?;
        let (blinding, blinded_pin) =
            pin::blind(&pin).map_err(|e| WalletError::Input(e.to_string()))?;
        let started = client
            .start_enrolment(&cyberid_protocol::EnrolmentStartRequest { blinded_pin })
            .await?;
        let pin_verifier = blinding
            .finish(&pin, &started.evaluated_pin)
            .map_err(|e| WalletError::BadResponse(e.to_string()))?
            .verifier();
        let target = cyberid_protocol::pin_reset_target(&started.ticket, &pin_verifier);
        let request = cyberid_protocol::PinResetRequest {
            proof: Self::proof(&key, cyberid_protocol::PIN_RESET_ACTION, &target)?,
            ticket: started.ticket,
            pin_verifier,
            face_sample: cyberid_registry::face::sample_to_base64(face),
        };
        let _: cyberid_protocol::PinResetResponse = client
            .post(cyberid_protocol::PIN_RESET_PATH, &request)
            .await?;
        Ok(())
    }

    /// Forgets the consent given to one service (by client id).
    pub async fn revoke_consent(&self, client_id: &str) -> Result<(), WalletError> {
        let (key, server) = self.device_key_with_kid()?;
        let _: serde_json::Value = PlatformClient::new(&server)?
            .post(
                cyberid_protocol::REVOKE_CONSENT_PATH,
                &ProofRequest {
                    proof: Self::proof(&key, "revoke-consent", client_id)?,
                },
            )
            .await?;
        Ok(())
    }
}

fn enrolment_server(file: &crate::storage::WalletFile) -> String {
    file.server.trim_end_matches('/').to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn login_references() {
        let (server, id) = parse_login_reference("http://127.0.0.1:8080/login/abc_DEF-1").unwrap();
        assert_eq!(
            (server.as_str(), id.as_str()),
            ("http://127.0.0.1:8080", "abc_DEF-1")
        );
        let link = "cyberid-wallet:?login=https%3A%2F%2Fid.example%2Fbase%2Flogin%2Fxyz";
        let (server, id) = parse_login_reference(link).unwrap();
        assert_eq!(
            (server.as_str(), id.as_str()),
            ("https://id.example/base", "xyz")
        );
        // The links the platform writes: only what a query value needs is escaped.
        for page in [
            "http://127.0.0.1:8080/login/abc_DEF-1",
            "https://id.example/base/login/xyz",
            "https://id.example/a+b&c=d%20e#f/login/xyz",
            "https://id.example/身份/login/xyz",
        ] {
            let link = cyberid_protocol::wallet_link(page);
            let (server, id) = parse_login_reference(&link).unwrap();
            assert_eq!(format!("{server}{LOGIN_PAGE_PREFIX}{id}"), page, "{link}");
        }
        assert_eq!(
            cyberid_protocol::wallet_link("http://127.0.0.1:8080/login/abc"),
            "cyberid-wallet:?login=http://127.0.0.1:8080/login/abc"
        );
        for bad in [
            "",
            "ftp://x/login/a",
            "http://x/other/a",
            "http://x/login/",
            "http://x/login/a b",
            "cyberid-wallet:?login=junk",
            // Found by fuzzing: the login path overlapping the scheme's `//` left no host
            // (the server was read as `http:/`).
            "  http://login/ab#c \n",
            "https://login/x",
            "cyberid-wallet:?login=http%3A%2F%2Flogin%2Fab",
        ] {
            assert!(parse_login_reference(bad).is_err(), "{bad}");
        }
    }
}
