//! Why a wallet operation failed, and the code a script sees for it.

use cyberid_protocol::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("{0}")]
    Input(String),
    /// The platform refused; `code` is as sent, so that one from a newer platform still
    /// reaches the holder.
    #[error("the platform refused: {description} ({code})")]
    Refused {
        status: u16,
        code: String,
        description: String,
    },
    #[error("cannot reach the platform: {0}")]
    Network(String),
    #[error("wallet storage: {0}")]
    Storage(String),
    #[error("this wallet holds no credential yet; enrol first")]
    NotEnrolled,
    #[error("this wallet is already enrolled (network number {0}); use another wallet directory")]
    AlreadyEnrolled(String),
    #[error("the platform's answer is not acceptable: {0}")]
    BadResponse(String),
}

impl WalletError {
    /// The code a script sees for this failure (`--json`): the platform's own for a
    /// refusal, else the wallet's.
    pub fn code(&self) -> String {
        let local = match self {
            Self::Refused { code, .. } => return code.clone(),
            Self::Input(_) => ErrorCode::InvalidInput,
            Self::Network(_) => ErrorCode::NetworkError,
            Self::Storage(_) => ErrorCode::StorageError,
            Self::NotEnrolled => ErrorCode::NotEnrolled,
            Self::AlreadyEnrolled(_) => ErrorCode::AlreadyEnrolled,
            Self::BadResponse(_) => ErrorCode::BadResponse,
        };
        local.as_str().to_owned()
    }
}
