//! Accounts with their devices and credentials, and the failure counts of their factors.

use cyberid_domain::{AccountStatus, NetworkNumber};

use crate::StoreError;

/// A new account with its first device and first credential, stored in one transaction.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub person_digest: [u8; 32],
    pub network_number: NetworkNumber,
    /// The per-person data key, wrapped by the platform's key.
    pub wrapped_data_key: Vec<u8>,
    /// The attributes authentication needs, sealed under the data key.
    pub sealed_attributes: Vec<u8>,
    pub pin_key_id: [u8; 16],
    pub pin_verifier: String,
    pub device_thumbprint: String,
    pub device_public_jwk: String,
    pub created_at: i64,
    pub credential_expires_at: i64,
}

/// An enrolment retried by the device that made it (e.g. after the answer was lost): the
/// stored account with a fresh credential row.
#[derive(Clone, Debug)]
pub struct ResumedEnrolment {
    pub enrolled: EnrolledAccount,
    pub network_number: NetworkNumber,
    pub wrapped_data_key: Vec<u8>,
    pub sealed_attributes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnrolledAccount {
    pub account_id: i64,
    pub device_id: i64,
    /// The credential's index in the status lists.
    pub status_index: u64,
}

/// Why an enrolment was not stored. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("this person already has an account")]
    PersonAlreadyEnrolled,
    #[error("the network number is already taken")]
    NetworkNumberTaken,
    #[error("this device key is already bound to an account")]
    DeviceAlreadyBound,
    #[error("this PIN key id (enrolment ticket) was already used")]
    PinKeyIdTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a sign-in needs to know of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub account_id: i64,
    pub status: AccountStatus,
    pub person_digest: Vec<u8>,
    pub network_number: String,
    pub wrapped_data_key: Option<Vec<u8>>,
    pub sealed_attributes: Option<Vec<u8>>,
    pub pin_key_id: Vec<u8>,
    pub pin_verifier: String,
    pub pin_failures: u32,
    pub face_failures: u32,
}

#[derive(Clone, Debug)]
pub struct DeviceRecord {
    pub device_id: i64,
    pub public_jwk: String,
}

/// A factor whose failed attempts are counted across nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    Pin,
    Face,
}
