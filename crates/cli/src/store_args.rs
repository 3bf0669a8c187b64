//! Where a command finds its settings and the store: `--config FILE`, the `CYBERID_*`
//! environment, and the flags `--data DIR` (embedded SQLite) or `--database-url`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use cyberid_platform::settings::{SETTINGS, misspelt_variables};
use cyberid_platform::{Overrides, Secret, Settings};
use cyberid_protocol::ErrorCode;
use cyberid_store::Durability;

use crate::output::Failure;

/// The store flags. None has a default of its own: an absent flag leaves the value of the
/// settings file, the environment or the built-in default (see docs/settings.md).
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Settings file (TOML; see docs/settings.md); the environment and flags override it.
    #[arg(long, env = "CYBERID_CONFIG", value_name = "FILE", value_parser = config_file)]
    pub config: Option<PathBuf>,
    /// Data directory: platform keys and, without --database-url, the SQLite database
    /// [setting store.data, CYBERID_DATA; default cyberid-data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// PostgreSQL URL; when given, the store lives there instead of the data directory
    /// [setting store.database_url, CYBERID_DATABASE_URL].
    #[arg(long)]
    pub database_url: Option<String>,
    /// PostgreSQL connections per node [setting store.pool_size, CYBERID_DB_POOL_SIZE;
    /// default 16].
    #[arg(long)]
    pub pool_size: Option<usize>,
    /// SQLite commit durability: `full` survives power loss, `normal` only process crashes
    /// [setting store.durability, CYBERID_DURABILITY; default full].
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DurabilityArg {
    Full,
    Normal,
}

impl StoreArgs {
    /// The settings with these flags on top.
    pub fn settings(&self) -> Result<Settings, Failure> {
        load_settings(self.config.as_deref(), &self.overrides())
    }

    pub fn overrides(&self) -> Overrides {
        Overrides {
            data: self.data.clone(),
            database_url: self.database_url.clone().map(Secret::new),
            pool_size: self.pool_size,
            durability: self.durability.map(|durability| match durability {
                DurabilityArg::Full => Durability::Full,
                DurabilityArg::Normal => Durability::Normal,
            }),
            ..Overrides::default()
        }
    }
}

/// `--config FILE` as given; empty (`CYBERID_CONFIG=`) means no file, as an empty setting
/// variable means unset.
pub fn config_file(value: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(value))
}

/// Defaults, then `file`, then this process's `CYBERID_*` environment, then `flags`.
pub fn load_settings(file: Option<&Path>, flags: &Overrides) -> Result<Settings, Failure> {
    let file = file.filter(|path| !path.as_os_str().is_empty());
    let environment = environment()?;
    for name in misspelt_variables(environment.iter().map(|(name, _)| name.as_str())) {
        tracing::warn!("{name} is not a setting and is ignored (see docs/settings.md)");
    }
    Settings::load(file, environment.into_iter(), flags).map_err(invalid_settings)
}

fn invalid_settings(error: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorCode::InvalidSettings, error.to_string())
}

/// The process's `CYBERID_*` variables. One that names a setting must be valid Unicode (as
/// a TOML file must); the others belong to other commands and are left alone.
fn environment() -> Result<Vec<(String, String)>, Failure> {
    let mut variables = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|name| name.starts_with("CYBERID_")) else {
            continue;
        };
        match value.into_string() {
            Ok(value) => variables.push((name.to_owned(), value)),
            Err(_) if SETTINGS.iter().any(|setting| setting.env == name) => {
                return Err(invalid_settings(format!(
                    "environment variable {name} is not valid UTF-8"
                )));
            }
            Err(_) => {}
        }
    }
    Ok(variables)
}
