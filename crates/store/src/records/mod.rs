//! What the store keeps and hands back, one module per aggregate. These types are the
//! contract's vocabulary; how each backend lays them out in tables is its own business.

use cyberid_domain::{AccountStatus, AssuranceLevel, Claim, ClientAuthMethod};

mod accounts;
mod clients;
mod consents;
mod limits;
mod registry;
mod sign_ins;

pub use accounts::{
    AccountRecord, DeviceRecord, EnrolError, EnrolledAccount, Factor, NewAccount, ResumedEnrolment,
};
pub(crate) use clients::ClientStatus;
pub use clients::RelyingParty;
pub use consents::ConsentRecord;
pub use limits::CounterIncrease;
pub use registry::{RegistryBatches, RegistryChunk, RegistryImportError};
pub(crate) use registry::{next_registry_batch, normalise_registry_batch, registry_record};
pub use sign_ins::{
    CodeRedemption, LoginAndDevice, LoginOutcome, LoginRecord, LoginStatus, NewLogin, PinCount,
    Refusal, SignInRequest,
};

/// What a purge deletes: client-assertion ids expired before `now`; sign-ins that were
/// never approved (pushed, pending, declined, failed) and expired before
/// `unfinished_before`; approved ones (the holder's login records) expired before
/// `approved_before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeCutoffs {
    pub now: i64,
    pub unfinished_before: i64,
    pub approved_before: i64,
}

impl PurgeCutoffs {
    /// Whichever cutoff is later: no sign-in that expired after it is deleted.
    pub fn latest(&self) -> i64 {
        self.unfinished_before.max(self.approved_before)
    }
}

/// Row counts, for operators' aggregates and for tests that assert nothing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub registry_people: u64,
    pub accounts: u64,
    pub devices: u64,
    pub credentials: u64,
    /// Sign-ins of any status not purged yet.
    pub sign_ins: u64,
}

/// A list stored whole as a JSON array of strings (read and written in Rust only).
pub(crate) fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// A claim list stored whole as a JSON array of claim names (`Claim` serialises as its name).
pub(crate) fn claims_json(claims: &[Claim]) -> String {
    serde_json::to_string(claims).unwrap_or_else(|_| "[]".into())
}

/// The names of `claims`, as a PostgreSQL `TEXT[]` parameter takes them.
pub(crate) fn claim_names(claims: &[Claim]) -> Vec<&'static str> {
    claims.iter().map(Claim::as_str).collect()
}

/// A closed set of values stored as TEXT under fixed names. Each backend reads them through
/// one function (`Fields::text`), which makes an unknown name [`crate::StoreError::Corrupt`]
/// naming the column; the SQL only ever sees the names.
pub(crate) trait StoredText: Sized + Copy {
    fn from_stored(text: &str) -> Option<Self>;
}

macro_rules! stored_text {
    ($($kind:ty),+) => {$(
        impl StoredText for $kind {
            fn from_stored(text: &str) -> Option<Self> {
                Self::parse(text)
            }
        }
    )+};
}

stored_text!(
    AccountStatus,
    AssuranceLevel,
    ClientAuthMethod,
    ClientStatus,
    LoginStatus
);
