//! `cyberid`: one binary for the platform server, the wallet, the registry tools, the demo
//! and the benchmarks. Every command runs non-interactively from its flags; with `--json`
//! it prints exactly one JSON object on stdout (also on failure), logs go to stderr.

mod admin;
mod bench;
mod config_cmd;
mod demo;
mod output;
mod registry_cmd;
mod serve;
mod store_args;
mod wallet_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cyberid_protocol::ErrorCode;

use crate::output::print_json;

/// A sign-in allocates and frees many small buffers across threads (requests, JSON, SQLite
/// rows); mimalloc's per-thread free lists cost less than glibc's arenas there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cyberid",
    version,
    about = "Cyberspace ID: a federated digital identity platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a platform node.
    Serve(serve::ServeArgs),
    /// The citizen's wallet.
    Wallet(wallet_cmd::WalletArgs),
    /// Operator commands: relying parties.
    Admin(admin::AdminArgs),
    /// Settings: check a settings file and the environment, print the result.
    Config(config_cmd::ConfigArgs),
    /// Population registry tools: synthetic data, import, camera simulation.
    Registry(registry_cmd::RegistryArgs),
    /// Start a platform on the embedded store with a synthetic registry and enrol a demo citizen.
    Demo(demo::DemoArgs),
    /// Load tests against a running platform (127.0.0.1, bounded counts).
    Bench(bench::BenchArgs),
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CYBERID_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // With --json, even a usage error is one JSON object on stdout.
            let wants_json = std::env::args().any(|arg| arg == "--json");
            if wants_json && error.use_stderr() {
                print_json(&serde_json::json!({
                    "error": ErrorCode::InvalidArguments,
                    "error_description": error.kind().to_string(),
                    "usage": error.render().to_string(),
                }));
                return ExitCode::from(2);
            }
            error.exit();
        }
    };
    let (json, log_level) = match &cli.command {
        Command::Serve(_) | Command::Demo(_) => (false, "info"),
        Command::Wallet(args) => (args.json(), "warn"),
        Command::Registry(args) => (args.json(), "warn"),
        Command::Admin(args) => (args.json(), "warn"),
        Command::Config(args) => (args.json(), "warn"),
        Command::Bench(args) => (args.json(), "warn"),
    };
    init_logging(log_level);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if matches!(cli.command, Command::Serve(_) | Command::Demo(_)) {
        // A serving platform's SQLite writer holds its commits while every worker is busy
        // (see cyberid_store::pacing): bigger groups, fewer fsyncs. Tools commit at once.
        builder
            .on_thread_park(cyberid_store::pacing::worker_parked)
            .on_thread_unpark(cyberid_store::pacing::worker_unparked);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Wallet(args) => wallet_cmd::run(args).await,
            Command::Registry(args) => registry_cmd::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Config(args) => config_cmd::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if json {
                print_json(&serde_json::json!({
                    "error": failure.code,
                    "error_description": failure.description,
                }));
            } else {
                eprintln!("error: {}", failure.description);
            }
            ExitCode::FAILURE
        }
    }
}
