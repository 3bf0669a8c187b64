//! The platform's settings: one typed [`Settings`], loaded in layers — defaults, then a TOML
//! file, then `CYBERID_*` environment variables, then command-line flags — validated once,
//! and passed explicitly (no globals).
//!
//! [`SETTINGS`] is the one table of keys, environment variables and descriptions: loading
//! reads the environment through it, and `docs/settings.md` is generated from it.
//!
//! The layering is done here by hand rather than with a configuration crate because two
//! rules fit none of them: six variables keep the flat names they had before the file
//! existed (`CYBERID_LISTEN`, not `CYBERID_SERVER_LISTEN`), and the environment holds
//! `CYBERID_*` variables of other commands (the wallet's, `CYBERID_LOG`) that must be
//! ignored, while a misspelt key in the file must be an error naming it.

mod load;
mod sections;
mod table;

pub use load::{SettingsError, misspelt_variables};
pub use sections::*;
pub use table::{SECTIONS, SETTINGS, Setting, reference};
