//! The token endpoint's parsers as plain functions, for the fuzz targets in `fuzz/`: each
//! runs the endpoint's own steps, in its order, up to the first that needs the store, and
//! takes what it would read from the platform (the client, the clock, the issuer) as
//! values. The authorization request needs no such door: [`super::params::Params`] and
//! [`super::request`] are public already.

use cyberid_store::RelyingParty;

pub use super::client_auth::{AssertionContext, CheckedAssertion, Presented};
use super::client_auth::{check_assertion, presented_credentials, read_assertion};
use super::params::Params;
use super::token::{check_grant_type, check_pkce};
use crate::error::{ApiError, ErrorCode};

/// A `/token` request before anything is looked up: exactly one client authentication
/// method (`authorization` is the `Authorization` header), then the grant type.
pub fn check_token_request<'a>(
    authorization: Option<&str>,
    params: &'a Params,
) -> Result<Presented<'a>, ApiError> {
    let presented = presented_credentials(authorization, params)?;
    check_grant_type(params)?;
    Ok(presented)
}

/// The PKCE step of a code exchange: `verifier` against the sign-in's S256 `challenge`.
pub fn check_code_verifier(verifier: Option<&str>, challenge: &str) -> Result<(), ApiError> {
    check_pkce(verifier, challenge)
}

/// A client assertion from `rp`, checked as `/token` and `/par` check it, but for its
/// single use (which the store records). An assertion claiming another client is `unknown
/// client`, as it is when the store has no client by that name.
pub fn check_client_assertion(
    rp: &RelyingParty,
    assertion: &str,
    context: &AssertionContext<'_>,
) -> Result<CheckedAssertion, ApiError> {
    let (jws, claimed_client) = read_assertion(assertion)?;
    if claimed_client != rp.client_id {
        return Err(ApiError::new(ErrorCode::InvalidClient, "unknown client"));
    }
    check_assertion(rp, &jws, context)
}
