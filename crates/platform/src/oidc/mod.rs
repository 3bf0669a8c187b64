//! The OpenID Connect provider: discovery, authorization (with PAR), token, userinfo.
//!
//! Each endpoint is a short list of named steps. Until the client and its redirect URI are
//! validated, errors are shown on a platform page and never redirected; after that they go
//! back to the client as OAuth errors with `state` and `iss` (RFC 9207).

pub mod authorize;
pub mod client_auth;
pub mod discovery;
pub mod request;
pub mod subject;
pub mod token;
pub mod userinfo;

/// Claim every relying party receives: the holder is real-name verified.
pub const VERIFIED_CLAIM: &str = "cyberid_verified";
