//! Wire types of the platform's own HTTP API (enrolment now; wallet, portal and operator
//! later), shared by the server, the wallet library and the tools, so both ends of a
//! request are compiled from one definition. [`ErrorCode`] is the one vocabulary of error
//! codes.

use cyberid_domain::AssuranceLevel;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod errors;
pub use errors::{Audience, ErrorCode, errors_document};

pub const ENROLMENT_START_PATH: &str = "/api/v1/enrolments/start";
pub const ENROLMENT_PATH: &str = "/api/v1/enrolments";

/// `typ` of the JWS by which the wallet proves it holds the device key it enrols.
pub const ENROLMENT_PROOF_TYP: &str = "cyberid-enrolment+jwt";

/// Step 1: the wallet sends its blinded PIN; the platform returns a ticket and the OPRF
/// evaluation under the key that the ticket names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrolmentStartRequest {
    /// RFC 9497 blinded element, base64url.
    pub blinded_pin: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrolmentStartResponse {
    /// Opaque, authenticated by the platform, valid for `expires_in` seconds, single use.
    pub ticket: String,
    /// RFC 9497 evaluated element, base64url.
    pub evaluated_pin: String,
    pub expires_in: i64,
}

/// Step 2: the enrolment itself. `Debug` is redacted: it carries personal data.
#[derive(Clone, Serialize, Deserialize)]
pub struct EnrolmentRequest {
    pub ticket: String,
    /// 18-character citizen ID number.
    pub id_number: String,
    /// The name as registered.
    pub name: String,
    /// The camera's face embedding, base64url of 128 signed bytes.
    pub face_sample: String,
    /// The device's P-256 public key as a JWK. Kept as JSON so that a malformed key is
    /// reported as such rather than as a generic body error.
    pub device_key: Value,
    /// The Ed25519 public key derived from the PIN through the OPRF, base64url.
    pub pin_verifier: String,
    /// A compact JWS (`typ` [`ENROLMENT_PROOF_TYP`]) by the device key over
    /// [`EnrolmentProofClaims`].
    pub proof: String,
}

impl std::fmt::Debug for EnrolmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrolmentRequest(<redacted>)")
    }
}

/// What the device key signs at enrolment: the fresh ticket (proof of possession now) and
/// the PIN verifier (so nobody in between can swap it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentProofClaims {
    pub ticket: String,
    pub pin_verifier: String,
    pub iat: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrolmentResponse {
    /// Grouped for reading aloud, e.g. `7K3M-9QXP-2B4H`.
    pub network_number: String,
    /// The SD-JWT VC (`<JWT>~<disclosures>~`).
    pub credential: String,
    pub issuer: String,
}

/// Every error of the API: OAuth-style code and a sentence for people. The code is kept as
/// sent, so that a code from a newer platform still reaches the holder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: String,
}

/// `typ` of the JWS by which a wallet authenticates a request with its device key; the
/// header's `kid` is the device key's JWK thumbprint.
pub const WALLET_PROOF_TYP: &str = "cyberid-wallet+jwt";
/// `typ` of the JWS by which a wallet approves, declines or gives up on a sign-in.
pub const APPROVAL_TYP: &str = "cyberid-approval+jwt";
/// The login page of sign-in `{id}` is `{issuer}/login/{id}`.
pub const LOGIN_PAGE_PREFIX: &str = "/login/";
/// Same-device links: `cyberid-wallet:?login=<login page URL>`, the URL percent-encoded
/// where a query value needs it (see [`wallet_link`]); wallets read either form.
pub const WALLET_LINK_PREFIX: &str = "cyberid-wallet:?login=";

/// What [`wallet_link`] escapes: what cannot stand for itself in a query value read as
/// `application/x-www-form-urlencoded` — controls, space, the characters
/// `" # % & + < > \ ^ { | }` and the backquote — and all non-ASCII. `:` and `/` may (RFC
/// 3986, section 3.4), and leaving them keeps the QR code a version smaller: its modules
/// bigger on the screen, and a fifth less to draw.
const LINK_VALUE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The wallet link (cross-device QR code and same-device link) for a login page URL.
pub fn wallet_link(login_page_url: &str) -> String {
    format!(
        "{WALLET_LINK_PREFIX}{}",
        percent_encoding::utf8_percent_encode(login_page_url, LINK_VALUE)
    )
}

/// The login page URL a wallet link carries (the inverse of [`wallet_link`]; links that
/// escape every reserved character, as form encoding does, read the same); `None` if
/// `link` is not a wallet link.
pub fn login_page_url_of(link: &str) -> Option<String> {
    let value = link.strip_prefix(WALLET_LINK_PREFIX)?;
    // Read as the form value it is: `+` is a space there, and `%XX` a byte.
    let value = value.replace('+', " ");
    percent_encoding::percent_decode_str(&value)
        .decode_utf8()
        .ok()
        .map(|url| url.into_owned())
}

/// What a wallet proof signs: an action, its target (a sign-in id, a client id) and a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletProofClaims {
    pub action: String,
    pub target: String,
    pub iat: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProofRequest {
    pub proof: String,
}

/// A sign-in as the wallet shows it to the holder: what the login page shows, fetched by
/// anyone holding the sign-in's link (`GET /api/v1/logins/{id}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginDetails {
    pub transaction_id: String,
    pub client_id: String,
    pub rp_name: String,
    /// Present when the service may receive raw identity data.
    pub legal_basis: Option<String>,
    /// The data the service asks for beyond the defaults, each in plain words.
    pub claims: Vec<RequestedClaim>,
    /// Required level.
    pub level: AssuranceLevel,
    /// The two digits the login page shows too.
    pub number_match: String,
    /// Signed back in the approval.
    pub challenge: String,
    pub expires_at: i64,
    /// `prompt=consent`: ask the holder even for claims agreed to before.
    pub force_consent: bool,
    /// The sector whose services all see the same subject for the holder (by default the
    /// host of the service's redirect URIs).
    #[serde(default)]
    pub sector: String,
    /// The other services of that sector, by name: they see the same subject. Empty when
    /// the subject is this service's alone.
    #[serde(default)]
    pub subject_shared_with: Vec<String>,
}

/// Who can recognise the holder by the subject a service receives, in words: the service
/// alone, or every service of its sector, named. The login page and the wallet say the same.
pub fn subject_scope(rp_name: &str, sector: &str, shared_with: &[String]) -> String {
    match shared_with {
        [] => format!("a number that identifies you to {rp_name} only"),
        others => format!(
            "a number that {rp_name} shares with the other services of {sector} ({}): they all see the same number",
            join_names(others)
        ),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedClaim {
    pub name: String,
    pub description: String,
    /// Raw identity data (name, birth date, network number), released only under the
    /// service's legal basis.
    pub raw_identity: bool,
}

/// A PIN evaluation for a sign-in. It carries the approval the wallet will send with its
/// decision (a JWS by the device key, [`APPROVAL_TYP`]): it identifies the device (whose
/// account's OPRF key is used and whose attempts are counted), and once checked here it
/// need not be checked again at the decision.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PinRequest {
    pub approval: String,
    pub blinded_pin: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PinResponse {
    pub evaluated_pin: String,
    /// Attempts left before the PIN locks.
    pub attempts_left: u32,
}

/// The wallet's decision on a sign-in.
#[derive(Clone, Serialize, Deserialize)]
pub struct DecisionRequest {
    /// A compact JWS (`typ` [`APPROVAL_TYP`]) by the device key over [`ApprovalClaims`].
    pub approval: String,
    /// For L2 and up: the PIN key's signature over the `approval` string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_proof: Option<String>,
    /// For L3: the camera's face embedding, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_sample: Option<String>,
}

impl std::fmt::Debug for DecisionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecisionRequest(<redacted>)")
    }
}

/// What the device key signs to decide a sign-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalClaims {
    pub txn: String,
    pub client_id: String,
    /// The claims the holder agrees to release (a subset of those requested).
    pub claims: Vec<String>,
    pub challenge: String,
    /// The level proved.
    pub level: AssuranceLevel,
    pub decision: Decision,
    pub iat: i64,
}

/// What the holder decided about a sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Approve at the level the sign-in requires, proving it.
    Approve,
    /// The holder says no: the service hears `access_denied`.
    Decline,
    /// The wallet cannot reach the level (no PIN, no camera): the service hears
    /// `unmet_authentication_requirements`.
    Unable,
}

/// How a decided sign-in ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionStatus {
    Approved,
    Declined,
    /// Ended without approval for another reason (the level could not be reached).
    Failed,
}

impl DecisionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecisionResponse {
    pub status: DecisionStatus,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsentEntry {
    pub client_id: String,
    pub rp_name: String,
    pub claims: Vec<String>,
    pub granted_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsentList {
    pub consents: Vec<ConsentEntry>,
}

/// Paths of the wallet's sign-in API: `step` is `pin` or `decision`, or empty for the
/// sign-in itself.
pub fn login_api_path(transaction_id: &str, step: &str) -> String {
    if step.is_empty() {
        format!("/api/v1/logins/{transaction_id}")
    } else {
        format!("/api/v1/logins/{transaction_id}/{step}")
    }
}
pub const CONSENTS_PATH: &str = "/api/v1/wallet/consents";
/// A new PIN, set at L3 (device key and a live face match): the way back from a locked PIN.
pub const PIN_RESET_PATH: &str = "/api/v1/wallet/pin/reset";
/// The wallet proof's `action` for a PIN reset; its `target` is [`pin_reset_target`].
pub const PIN_RESET_ACTION: &str = "reset-pin";

/// What a PIN reset's device proof signs: the ticket and the new PIN's verifier, so that
/// neither can be swapped under the signature.
pub fn pin_reset_target(ticket: &str, pin_verifier: &str) -> String {
    format!("{ticket}.{pin_verifier}")
}

/// `POST` [`PIN_RESET_PATH`]: a ticket from enrolment start (which evaluated the blinded
/// new PIN under a fresh PIN key), the new PIN's verifier, a live face sample, and the
/// enrolled device's proof over ticket and verifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PinResetRequest {
    pub ticket: String,
    pub pin_verifier: String,
    pub face_sample: String,
    pub proof: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PinResetResponse {
    /// `pin_reset`.
    pub status: String,
}
pub const REVOKE_CONSENT_PATH: &str = "/api/v1/wallet/consents/revoke";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_scope_names_everyone_who_shares_it() {
        assert_eq!(
            subject_scope("Shop", "shop.example", &[]),
            "a number that identifies you to Shop only"
        );
        let shared = subject_scope(
            "Shop",
            "127.0.0.1",
            &["Tax Office".into(), "Library".into(), "Clinic".into()],
        );
        assert_eq!(
            shared,
            "a number that Shop shares with the other services of 127.0.0.1 (Tax Office, Library and Clinic): they all see the same number"
        );
        assert!(subject_scope("A", "s", &["B".into()]).contains("of s (B): they"));
    }

    #[test]
    fn a_wallet_link_carries_its_login_page_url_back() {
        for url in [
            "https://id.example/login/--0k3Zx1abc_DEF-ghi",
            "http://127.0.0.1:8080/login/x?y=1&z=%2F",
        ] {
            let link = wallet_link(url);
            assert_eq!(login_page_url_of(&link).as_deref(), Some(url), "{link}");
        }
        // Escaped as a form value escapes everything reserved, it reads the same.
        assert_eq!(
            login_page_url_of("cyberid-wallet:?login=https%3A%2F%2Fid.example%2Flogin%2Fab")
                .unwrap(),
            "https://id.example/login/ab"
        );
        // `+` in a form value is a space.
        assert_eq!(
            login_page_url_of("cyberid-wallet:?login=a+b").unwrap(),
            "a b"
        );
        // Not a wallet link, or not UTF-8 once decoded: nothing.
        assert_eq!(login_page_url_of("https://id.example/login/ab"), None);
        assert_eq!(login_page_url_of("cyberid-wallet:?login=%FF"), None);
    }
}
