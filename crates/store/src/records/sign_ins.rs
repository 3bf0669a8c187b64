//! Sign-ins from `/authorize` (or a pushed request) to the code exchange.

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
    /// Ended with another error (e.g. the level could not be reached).
    Failed,
}

impl LoginStatus {
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
        [
            Self::Pushed,
            Self::Pending,
            Self::Approved,
            Self::Declined,
            Self::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

#[derive(Clone, Debug)]
pub struct NewLogin {
    pub id: String,
    pub client_id: String,
    /// The validated authorization request as JSON (the platform's own format).
    pub request: String,
    pub par_handle: Option<String>,
    pub browser_digest: Option<Vec<u8>>,
    pub status: LoginStatus,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRecord {
    pub id: String,
    pub client_id: String,
    pub request: String,
    pub browser_digest: Option<Vec<u8>>,
    pub status: LoginStatus,
    pub error: Option<String>,
    pub account_id: Option<i64>,
    pub level: Option<String>,
    pub claims: Vec<String>,
    pub auth_time: Option<i64>,
    pub code_redeemed_at: Option<i64>,
    /// Set when the code was presented again: what it issued is revoked.
    pub code_replayed_at: Option<i64>,
    pub pin_evaluated: bool,
    /// SHA-256 of the approval whose signature was checked at the PIN evaluation.
    pub approval_digest: Option<Vec<u8>>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// How a pending sign-in ends.
#[derive(Clone, Debug)]
pub enum LoginOutcome {
    Approved {
        account_id: i64,
        level: String,
        claims: Vec<String>,
        auth_time: i64,
        /// Factors proved at this sign-in, whose failure counts start again from zero.
        reset: Vec<Factor>,
    },
    /// Declined by the holder (`access_denied`) or failed with another OAuth error code.
    Refused { status: LoginStatus, error: String },
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
