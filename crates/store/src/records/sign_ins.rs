//! Sign-ins from `/authorize` (or a pushed request) to the code exchange.

use cyberid_domain::{AssuranceLevel, Claim};

use super::accounts::{AccountRecord, DeviceRecord, Factor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginStatus {
    /// Pushed by PAR; the browser has not arrived yet.
    Pushed,
    /// Waiting for the wallet.
    Pending,
    Approved,
    /// The holder said no.
    Declined,
    /// The wallet could not reach the level (or the PIN locked on the way).
    Failed,
}

impl LoginStatus {
    pub const ALL: [LoginStatus; 5] = [
        Self::Pushed,
        Self::Pending,
        Self::Approved,
        Self::Declined,
        Self::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pushed => "pushed",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// The authorization request a sign-in was started with, as the platform validated it:
/// what the sign-in shows, what the approval may release, and what the code exchange must
/// match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// Claims requested, registered for the client and permitted to it: what the wallet
    /// asks consent for.
    pub claims: Vec<Claim>,
    /// Of those, the ones requested for the ID token (`claims.id_token`).
    pub id_token_claims: Vec<Claim>,
    /// The lowest level the client accepts.
    pub level: AssuranceLevel,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `prompt=consent`: ask even if consent was given before.
    pub force_consent: bool,
}

#[derive(Clone, Debug)]
pub struct NewLogin {
    pub id: String,
    pub request: SignInRequest,
    pub par_handle: Option<String>,
    pub browser_digest: Option<Vec<u8>>,
    pub status: LoginStatus,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRecord {
    pub id: String,
    pub request: SignInRequest,
    pub browser_digest: Option<Vec<u8>>,
    pub status: LoginStatus,
    /// The approving account, once approved.
    pub account_id: Option<i64>,
    /// The level the approval proved.
    pub level: Option<AssuranceLevel>,
    /// The claims the approval released.
    pub claims: Vec<Claim>,
    pub auth_time: Option<i64>,
    pub code_redeemed_at: Option<i64>,
    /// Set when the code was presented again: what it issued is revoked.
    pub code_replayed_at: Option<i64>,
    pub pin_evaluated: bool,
    /// SHA-256 of the approval whose signature was checked at the PIN evaluation.
    pub approval_digest: Option<Vec<u8>>,
    /// The thumbprint of the device key that took the sign-in up (its first PIN
    /// evaluation or its decision); no other device may act on it after.
    pub device_thumbprint: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl LoginRecord {
    /// Whether the sign-in still waits for the wallet at `now`: pending and unexpired.
    pub fn waits_for_wallet(&self, now: i64) -> bool {
        self.status == LoginStatus::Pending && self.expires_at > now
    }
}

/// How a pending sign-in ends.
#[derive(Clone, Debug)]
pub enum LoginOutcome {
    Approved {
        account_id: i64,
        level: AssuranceLevel,
        claims: Vec<Claim>,
        auth_time: i64,
        /// Factors proved at this sign-in, whose failure counts start again from zero.
        reset: Vec<Factor>,
    },
    /// Ended without an approval; the platform tells the service why from the status.
    Refused(Refusal),
}

/// Why a sign-in ended without an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The holder said no.
    Declined,
    /// The wallet could not reach the level the service asked for.
    Failed,
}

impl Refusal {
    /// The status the sign-in ends in.
    pub fn status(&self) -> LoginStatus {
        match self {
            Self::Declined => LoginStatus::Declined,
            Self::Failed => LoginStatus::Failed,
        }
    }
}

/// The result of presenting an authorization code.
#[derive(Clone, Debug)]
pub enum CodeRedemption {
    /// First use: the sign-in, now marked redeemed, with its account as it stands (read in
    /// the same round trip; `None` if the account is gone).
    Redeemed {
        login: Box<LoginRecord>,
        account: Option<Box<AccountRecord>>,
    },
    /// Used before: a replay.
    AlreadyRedeemed,
    /// No approved sign-in with this id.
    NotApproved,
}

/// What [`crate::SignInStore::login_and_device`] found.
pub type LoginAndDevice = (Option<LoginRecord>, Option<(AccountRecord, DeviceRecord)>);

/// What counting a PIN evaluation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinCount {
    /// Counted: the account's failures now (before the proof is seen).
    Counted(u32),
    /// The PIN is locked: nothing counted.
    Locked,
    /// Another device took the sign-in up: nothing counted, nothing changed.
    TakenByAnotherDevice,
}
