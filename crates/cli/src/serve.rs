//! `cyberid serve`

use std::net::SocketAddr;

use clap::Args;

use crate::output::CliResult;
use crate::store_args::{StoreArgs, load_settings};

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on; port 0 picks a free port (the URL is printed on stdout)
    /// [setting server.listen, CYBERID_LISTEN; default 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Public base URL (issuer) [setting server.issuer, CYBERID_ISSUER; default
    /// http://<listen address>].
    #[arg(long)]
    pub issuer: Option<String>,
}

pub async fn run(args: ServeArgs) -> CliResult {
    let mut flags = args.store.overrides();
    flags.listen = args.listen;
    flags.issuer = args.issuer;
    let settings = load_settings(args.store.config.as_deref(), &flags)?;
    cyberid_platform::serve(settings, |url| {
        // Scripts and tests read this line to learn the URL (port 0 picks a free port).
        println!("cyberid platform listening on {url}");
    })
    .await?;
    Ok(())
}
