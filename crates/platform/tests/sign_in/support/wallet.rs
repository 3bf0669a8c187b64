//! The wallet: it opens a sign-in, signs its decision with the device key, runs the PIN
//! through the OPRF, adds a face sample, and lists and revokes remembered consents.

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::{self, Pin};
use cyberid_domain::{AssuranceLevel, FaceTemplate};
use cyberid_protocol::{Decision, LoginDetails, WALLET_PROOF_TYP, WalletProofClaims};
use cyberid_registry::face::sample_to_base64;
use cyberid_wallet::sign_approval;
use serde_json::{Value, json};

use crate::common::Harness;

/// The device key's proof for a wallet call that names no sign-in (`action` on `target`).
pub fn proof(key: &SigningKey, action: &str, target: &str) -> String {
    key.sign_jwt(
        WALLET_PROOF_TYP,
        &WalletProofClaims {
            action: action.into(),
            target: target.into(),
            iat: cyberid_platform::now(),
        },
    )
    .unwrap()
}

/// The sign-in as the wallet fetches it (no proof needed: it is what the login page shows).
pub async fn open(h: &Harness, base: &str, id: &str) -> (u16, Value) {
    let response = h
        .http
        .get(format!("{base}/api/v1/logins/{id}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// [`open`], which must succeed.
pub async fn details(h: &Harness, base: &str, id: &str) -> LoginDetails {
    let (status, body) = open(h, base, id).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

/// The claims this holder agreed to release to `client_id`, as the wallet asks for them.
pub async fn consented(h: &Harness, key: &SigningKey, client_id: &str) -> Vec<String> {
    let (status, list) = post(
        h,
        &format!("{}/api/v1/wallet/consents", h.url),
        &json!({ "proof": proof(key, "list-consents", "") }),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == client_id)
        .map(|c| {
            c["claims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Posts `body` as JSON to `url`: the status and the JSON answer (null if none).
pub async fn post(h: &Harness, url: &str, body: &Value) -> (u16, Value) {
    let response = h.http.post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What the holder decides, and what the wallet proves with it.
pub struct Decide<'a> {
    pub decision: Decision,
    pub claims: Vec<String>,
    pub level: AssuranceLevel,
    pub pin: Option<&'a str>,
    pub face: Option<FaceTemplate>,
}

/// Approve at L1, releasing nothing but the defaults.
impl Default for Decide<'_> {
    fn default() -> Self {
        Self {
            decision: Decision::Approve,
            claims: Vec::new(),
            level: AssuranceLevel::L1,
            pin: None,
            face: None,
        }
    }
}

/// The wallet's decision, with a PIN run through the OPRF when given.
pub async fn decide(
    h: &Harness,
    base: &str,
    key: &SigningKey,
    details: &LoginDetails,
    decide: Decide<'_>,
) -> (u16, Value) {
    let id = &details.transaction_id;
    let Decide {
        decision,
        claims,
        level,
        pin,
        face,
    } = decide;
    let approval = sign_approval(key, details, decision, level, claims).unwrap();
    let mut body = json!({ "approval": approval });
    if let Some(pin_text) = pin {
        let pin = Pin::parse(pin_text).unwrap();
        let (blinding, blinded_pin) = pin::blind(&pin).unwrap();
        let (status, evaluated) = post(
            h,
            &format!("{base}/api/v1/logins/{id}/pin"),
            &json!({ "approval": approval, "blinded_pin": blinded_pin }),
        )
        .await;
        if status != 200 {
            return (status, evaluated);
        }
        let pin_key = blinding
            .finish(&pin, evaluated["evaluated_pin"].as_str().unwrap())
            .unwrap();
        body["pin_proof"] = json!(pin_key.sign(approval.as_bytes()));
    }
    if let Some(face) = &face {
        body["face_sample"] = json!(sample_to_base64(face));
    }
    post(h, &format!("{base}/api/v1/logins/{id}/decision"), &body).await
}
