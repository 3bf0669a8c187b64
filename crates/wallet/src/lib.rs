//! The cyberid wallet as a library, so that the CLI and any other front end share it.
//!
//! A [`Wallet`] lives in a directory: `wallet.json` (network number, credential, the
//! device private key sealed at rest) and `keystore/` (the key that seals it). The
//! keystore stands in for a phone's hardware-backed keystore; a real wallet app keeps the
//! device key there, non-exportable. The PIN is never stored, not even as a hash: it is
//! checked by the platform through an OPRF, so a copied wallet directory gives an attacker
//! nothing to guess the PIN against offline.

mod client;
mod error;
mod login;
mod storage;
mod wallet;

pub use client::PlatformClient;
pub use error::WalletError;
pub use login::{Decision, OpenedLogin, parse_login_reference, sign_approval};
pub use wallet::{EnrolmentInput, Wallet, WalletView, enrol_device};
