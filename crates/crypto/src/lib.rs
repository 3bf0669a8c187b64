//! Cryptography and credential formats of cyberid.
//!
//! - [`jose`]: ES256 signing keys ([`jose::SigningKey`]), P-256 public JWKs
//!   ([`jose::EcPublicJwk`], [`jose::VerifyingKey`]) and compact JWS.
//! - [`sd_jwt`]: SD-JWT (RFC 9901) and SD-JWT VC (draft-ietf-oauth-sd-jwt-vc-13) issuance,
//!   holder presentation with a key-binding JWT, and verification.
//! - [`status_list`]: IETF Token Status List (draft-ietf-oauth-status-list-12) as a JWT.
//! - [`seal`]: AES-256-GCM envelopes for personal data under per-person keys.
//! - [`pin`]: the OPRF (RFC 9497, ristretto255) that lets the platform rate-limit PIN checks.
//! - [`keyed_digest`]: HMAC-SHA-256 digests such as the citizen ID number digest.
//!
//! All primitives come from aws-lc-rs; this crate performs no I/O.

pub mod b64;
pub mod jose;
pub mod keyed_digest;
pub mod pin;
pub mod random;
pub mod sd_jwt;
pub mod seal;
pub mod status_list;

/// Seconds since the Unix epoch; the time unit of every JWT claim.
pub type UnixTime = i64;

/// Compares secrets (MACs, tokens) in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    out
}
