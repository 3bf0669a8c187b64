//! The OpenID Connect provider: discovery, authorization (with PAR), token, userinfo.
//!
//! - [`authorize`]: `/authorize` and `/par` — the request checked ([`request`]) and
//!   stored as a sign-in.
//! - [`token`]: `/token` — client authentication ([`client_auth`]), the code redeemed, the
//!   ID token issued with typed [`claims`].
//! - [`userinfo`]: `/userinfo` — the claims the holder still consents to.
//! - [`discovery`]: what this provider supports.
//! - [`params`]: OAuth form and query parameters, parsed strictly.
//! - [`fuzzing`]: the token endpoint's parsers as plain functions, for the fuzz targets.

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod fuzzing;
pub mod params;
pub mod request;
pub mod token;
pub mod userinfo;
