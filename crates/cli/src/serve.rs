//! `cyberid serve`

use std::net::SocketAddr;

use clap::Args;
use cyberid_platform::PlatformConfig;

use crate::CliResult;
use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on; port 0 picks a free port (the URL is printed on stdout).
    #[arg(long, env = "CYBERID_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Public base URL (issuer); default: http://<listen address>.
    #[arg(long, env = "CYBERID_ISSUER")]
    pub issuer: Option<String>,
}

pub async fn run(args: ServeArgs) -> CliResult {
    let mut config = PlatformConfig::new(args.store.data.clone(), args.store.location());
    config.issuer = args.issuer;
    cyberid_platform::serve(config, args.listen, |url| {
        // Scripts and tests read this line to learn the URL (port 0 picks a free port).
        println!("cyberid platform listening on {url}");
    })
    .await?;
    Ok(())
}
