//! Federated sign-in over real HTTP: the test is the browser (no redirects followed, cookies
//! by hand), the wallet (device-key proofs, PIN OPRF, face samples) and the relying party
//! (PKCE, client authentication, ID tokens checked with `jsonwebtoken`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The harness the enrolment tests use as well.
#[path = "../common/mod.rs"]
mod common;
mod support;

mod authorize;
mod claims;
mod connections;
mod levels;
mod limits;
mod login_page;
mod metrics;
mod nodes;
mod refusals;
mod strictness;
mod token;
mod wallet;
