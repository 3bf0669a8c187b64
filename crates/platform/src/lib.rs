//! The cyberid platform server.
//!
//! [`Platform`] holds what every request needs (store, registry, face matcher, keys,
//! [`Settings`]); [`router`] maps HTTP routes to handlers; [`bind`] brings a node up and
//! [`serve`] runs it with graceful shutdown. Handlers are thin: each endpoint is a short,
//! ordered list of named steps, and every refusal is an [`error::ApiError`] with an
//! OAuth-style error code.
//!
//! Nodes are stateless: all state lives in the store, so any number of nodes can serve
//! one PostgreSQL database, given the same platform keys. Each node caches relying-party
//! registrations (which never change once written); whether a client is suspended is
//! always read from the store. A node also knows which of its requests wait for a
//! sign-in's decision ([`decisions`]); a decision taken elsewhere reaches them through one
//! store read per node every half second.

mod clients;
pub mod connections;
pub mod credential;
mod decisions;
pub mod enrolment;
pub mod error;
mod extract;
mod guards;
pub mod keys;
pub mod limits;
pub mod metadata;
pub mod oidc;
mod pages;
pub mod platform;
mod qr;
pub mod registry;
mod routes;
pub mod rp;
pub mod server;
pub mod settings;
pub mod sign_in;
pub mod status;
pub mod telemetry;

pub use platform::Platform;
pub use routes::router;
pub use server::{Bound, bind, serve};
pub use settings::{Overrides, Secret, Settings, SettingsError};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
