//! `cyberid admin …`: operator commands, run on a platform host against its store and keys
//! (a running server honours changes at once: it reads relying parties from the store).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use cyberid_domain::{Claim, ClientAuthMethod, parse_claim_list};
use cyberid_platform::keys::PlatformKeys;
use cyberid_platform::rp::{Registration, register};
use cyberid_protocol::ErrorCode;
use serde_json::json;

use crate::output::{CliResult, Failure, invalid_input, print_json};
use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Relying parties (the services that sign citizens in).
    Rp {
        #[command(subcommand)]
        command: RpCommand,
    },
}

#[derive(Subcommand)]
enum RpCommand {
    /// Register a relying party; prints its client_id (and client_secret, shown only once).
    Add {
        #[arg(long)]
        name: String,
        /// Exact redirect URI; repeat for several.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// The sector its pairwise subjects belong to (default: the redirect URIs' host).
        #[arg(long)]
        sector: Option<String>,
        /// Claims it may request (e.g. age_over_18,region); none by default.
        #[arg(long, default_value = "")]
        claims: String,
        /// The law that entitles it to raw identity data (name, birthdate, network_number).
        #[arg(long)]
        legal_basis: Option<String>,
        /// How it authenticates at the token endpoint: client_secret_basic or private_key_jwt.
        #[arg(long, default_value = ClientAuthMethod::default().as_str(), value_parser = auth_method)]
        auth: ClientAuthMethod,
        /// Its public keys (JWKS file), for private_key_jwt.
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// Require pushed authorization requests (RFC 9126).
        #[arg(long)]
        require_par: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// List relying parties.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Stop a relying party from signing anyone in (takes effect at once).
    Suspend {
        client_id: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Let a suspended relying party sign citizens in again.
    Resume {
        client_id: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
}

impl AdminArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            AdminCommand::Rp { command } => match command {
                RpCommand::Add { json, .. }
                | RpCommand::List { json, .. }
                | RpCommand::Suspend { json, .. }
                | RpCommand::Resume { json, .. } => *json,
            },
        }
    }
}

/// `--auth`, parsed.
fn auth_method(name: &str) -> Result<ClientAuthMethod, String> {
    ClientAuthMethod::parse(name).ok_or_else(|| {
        let known: Vec<&str> = ClientAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
        format!(
            "unknown client authentication {name}; use {}",
            known.join(" or ")
        )
    })
}

pub async fn run(args: AdminArgs) -> CliResult {
    let AdminCommand::Rp { command } = args.command;
    match command {
        RpCommand::Add {
            name,
            redirect_uris,
            sector,
            claims,
            legal_basis,
            auth,
            jwks,
            require_par,
            store,
            json,
        } => {
            let claims = parse_claim_list(&claims).map_err(|e| invalid_input(e.to_string()))?;
            let jwks = jwks
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .map_err(|e| invalid_input(format!("cannot read {}: {e}", path.display())))
                })
                .transpose()?;
            let settings = store.settings()?;
            let keys = PlatformKeys::load(&settings.store.data)?;
            let registration = Registration {
                name,
                redirect_uris,
                sector,
                claims,
                legal_basis,
                auth_method: auth,
                jwks,
                require_par,
            };
            let (rp, shown) = register(&keys, &registration, cyberid_platform::now())
                .map_err(|e| invalid_input(e.to_string()))?;
            let db = cyberid_store::open(&settings.store.location()).await?;
            // Services of one sector see the same subject for a holder: say so, by name,
            // so that sharing is a decision and not an accident of hosting.
            let shares_subject_with: Vec<String> = db
                .relying_parties_in_sector(&rp.sector)
                .await?
                .into_iter()
                .map(|other| other.name)
                .collect();
            db.insert_relying_party(&rp).await?;
            if json {
                let mut shown = serde_json::to_value(&shown)?;
                shown["shares_subject_with"] = json!(shares_subject_with);
                print_json(&shown);
            } else {
                println!("client_id: {}", shown.client_id);
                if let Some(secret) = &shown.client_secret {
                    println!("client_secret: {secret}   (shown only now; store it safely)");
                }
                println!("sector: {}", shown.sector);
                if !shares_subject_with.is_empty() {
                    println!(
                        "note: {} of sector {} already see the same subject for each holder as this service will \
                         (give it a sector of its own with --sector to keep its subjects apart)",
                        shares_subject_with.join(", "),
                        shown.sector
                    );
                }
            }
        }
        RpCommand::List { store, json } => {
            let db = cyberid_store::open(&store.settings()?.store.location()).await?;
            let rps = db.relying_parties().await?;
            let listed: Vec<_> = rps
                .iter()
                .map(|rp| {
                    json!({
                        "client_id": rp.client_id,
                        "name": rp.name,
                        "redirect_uris": rp.redirect_uris,
                        "sector": rp.sector,
                        "claims": rp.allowed_claims,
                        "legal_basis": rp.legal_basis,
                        "auth": rp.auth_method,
                        "require_par": rp.require_par,
                        "status": if rp.suspended { "suspended" } else { "active" },
                    })
                })
                .collect();
            if json {
                print_json(&json!({ "relying_parties": listed }));
            } else {
                for rp in &rps {
                    let status = if rp.suspended { "suspended" } else { "active" };
                    println!(
                        "{}  {}  [{status}]  claims: {}",
                        rp.client_id,
                        rp.name,
                        rp.allowed_claims
                            .iter()
                            .map(Claim::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            }
        }
        RpCommand::Suspend {
            client_id,
            store,
            json,
        } => set_suspended(&client_id, &store, true, json).await?,
        RpCommand::Resume {
            client_id,
            store,
            json,
        } => set_suspended(&client_id, &store, false, json).await?,
    }
    Ok(())
}

async fn set_suspended(
    client_id: &str,
    store: &StoreArgs,
    suspended: bool,
    json: bool,
) -> CliResult {
    let db = cyberid_store::open(&store.settings()?.store.location()).await?;
    if !db.set_relying_party_suspended(client_id, suspended).await? {
        return Err(Failure::new(
            ErrorCode::NotFound,
            format!("no relying party {client_id}"),
        ));
    }
    let status = if suspended { "suspended" } else { "active" };
    if json {
        print_json(&json!({ "client_id": client_id, "status": status }));
    } else {
        println!("{client_id} is now {status}");
    }
    Ok(())
}
