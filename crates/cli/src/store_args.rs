//! Where a command finds the store: `--data DIR` (embedded SQLite) or `--database-url`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cyberid_store::{Durability, StoreLocation};

#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Data directory: platform keys and, without --database-url, the SQLite database.
    #[arg(long, env = "CYBERID_DATA", default_value = "cyberid-data")]
    pub data: PathBuf,
    /// PostgreSQL URL; when given, the store lives there instead of the data directory.
    #[arg(long, env = "CYBERID_DATABASE_URL")]
    pub database_url: Option<String>,
    /// PostgreSQL connections per node.
    #[arg(long, env = "CYBERID_DB_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,
    /// SQLite commit durability: `full` survives power loss, `normal` only process crashes.
    #[arg(long, env = "CYBERID_DURABILITY", value_enum, default_value = "full")]
    pub durability: DurabilityArg,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DurabilityArg {
    Full,
    Normal,
}

impl StoreArgs {
    pub fn location(&self) -> StoreLocation {
        self.location_with(match self.durability {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Normal => Durability::Normal,
        })
    }

    pub fn location_with(&self, durability: Durability) -> StoreLocation {
        match &self.database_url {
            Some(url) => StoreLocation::Postgres {
                url: url.clone(),
                pool_size: self.pool_size,
            },
            None => StoreLocation::Sqlite {
                data_dir: self.data.clone(),
                durability,
            },
        }
    }
}
