//! `cyberid config check`: the settings a node would run with, or the first bad key.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use cyberid_platform::Overrides;

use crate::output::{CliResult, print_json};
use crate::store_args::{config_file, load_settings};

#[derive(Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the settings (defaults, the file, the CYBERID_* environment) and print them as
    /// TOML with secrets redacted; fails naming the first unknown or bad key.
    Check {
        /// Settings file (TOML; see docs/settings.md).
        #[arg(long, env = "CYBERID_CONFIG", value_name = "FILE", value_parser = config_file)]
        config: Option<PathBuf>,
        /// Print one JSON object instead of TOML.
        #[arg(long)]
        json: bool,
    },
}

impl ConfigArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            ConfigCommand::Check { json, .. } => *json,
        }
    }
}

pub async fn run(args: ConfigArgs) -> CliResult {
    let ConfigCommand::Check { config, json } = args.command;
    let settings = load_settings(config.as_deref(), &Overrides::default())?;
    if json {
        print_json(&settings);
    } else {
        print!("{}", toml::to_string(&settings)?);
    }
    Ok(())
}
