//! What the store keeps and hands back, one module per aggregate. These types are the
//! contract's vocabulary; how each backend lays them out in tables is its own business.

mod accounts;
mod clients;
mod consents;
mod registry;
mod sign_ins;

pub use accounts::{
    AccountRecord, DeviceRecord, EnrolError, EnrolledAccount, Factor, NewAccount, ResumedEnrolment,
};
pub use clients::RelyingParty;
pub use consents::ConsentRecord;
pub use registry::{RegistryBatches, RegistryChunk, RegistryImportError};
pub(crate) use registry::{next_registry_batch, normalise_registry_batch, registry_record};
pub use sign_ins::{
    CodeRedemption, LoginAndDevice, LoginOutcome, LoginRecord, LoginStatus, NewLogin,
};

/// Row counts, for operators' aggregates and for tests that assert nothing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub registry_people: u64,
    pub accounts: u64,
    pub devices: u64,
    pub credentials: u64,
}

/// A list stored whole as a JSON array of strings (read and written in Rust only).
pub(crate) fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}
