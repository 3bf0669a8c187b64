//! A sign-in between `/authorize` and the code exchange: the login page the browser shows
//! and its held status request, and the wallet's API to open, prove and decide a sign-in.
//!
//! - [`page`]: `GET /login/{id}` — the login page, then the way back to the client.
//! - [`waiting`]: `GET /login/{id}/status` — the page's status request, held until the
//!   decision.
//! - [`decision`]: the wallet opens the sign-in, evaluates the PIN, and decides.
//! - [`consents`]: the holder's remembered consents.
//! - [`pin_reset`]: a new PIN at L3, the way back from a locked one.
//! - [`device`]: which account and device a wallet's signature comes from.
//! - [`tokens`]: codes, access tokens, the number match and the wallet's challenge, all
//!   derived from the sign-in's id with the platform's MAC key.
//! - [`browser`]: the sign-in cookie and the redirects back to the client.

pub mod browser;
pub mod consents;
pub mod decision;
pub mod device;
pub mod page;
pub mod pin_reset;
pub mod tokens;
pub mod waiting;
