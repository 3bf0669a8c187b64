//! The example relying party over HTTP: its password sign-in, and "Sign in with Cyberspace
//! ID" against a small stand-in provider (discovery, JWKS, token and userinfo endpoints)
//! that issues ES256 ID tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod password;
mod provider;
mod serving;
mod sign_in;
mod support;
