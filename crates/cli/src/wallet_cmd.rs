//! `cyberid wallet …`

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use cyberid_crypto::pin::Pin;
use cyberid_domain::{AssuranceLevel, FaceTemplate, parse_claim_list};
use cyberid_protocol::ErrorCode;
use cyberid_wallet::{Decision, EnrolmentInput, Wallet, WalletError, WalletView};
use serde_json::json;

use crate::output::{CliResult, Failure, invalid_input, print_json};

#[derive(Args)]
pub struct WalletArgs {
    /// The wallet directory (device key, credential).
    #[arg(long, env = "CYBERID_WALLET", default_value = "cyberid-wallet")]
    wallet: PathBuf,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Subcommand)]
enum WalletCommand {
    /// Enrol: create the device key, prove who you are, receive a network number and credential.
    Enrol {
        /// The platform's URL.
        #[arg(long, env = "CYBERID_SERVER")]
        server: String,
        #[arg(long)]
        id_number: String,
        #[arg(long)]
        name: String,
        /// A face sample file from the camera (see `cyberid registry face-sample`).
        #[arg(long)]
        face: PathBuf,
        /// The 6-digit PIN to set (never stored; checked by the platform).
        #[arg(long, env = "CYBERID_PIN")]
        pin: String,
        #[arg(long)]
        json: bool,
    },
    /// Show the network number and the credential's claims.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Approve (or decline) a sign-in shown on a login page: give its URL or wallet link.
    Approve {
        /// The login page URL or the `cyberid-wallet:` link (from the QR code).
        login: String,
        /// Approve without asking (consenting to every claim the service may receive).
        #[arg(long, conflicts_with = "decline")]
        yes: bool,
        /// Decline without asking.
        #[arg(long)]
        decline: bool,
        /// The PIN, for sign-ins at L2 or L3 (asked for when missing).
        #[arg(long, env = "CYBERID_PIN")]
        pin: Option<String>,
        /// A face sample from the camera, for sign-ins at L3.
        #[arg(long)]
        face: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List the services you agreed to release data to.
    Consents {
        #[arg(long)]
        json: bool,
    },
    /// Forget your consent for one service (its client id); its next sign-in asks again.
    Revoke {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// The PIN: `pin reset` sets a new one with a live face sample (the way back from a
    /// locked or forgotten PIN).
    Pin {
        #[command(subcommand)]
        command: PinCommand,
    },
    /// Print a presentation (SD-JWT + key-binding JWT) disclosing only the chosen claims.
    Present {
        /// Comma-separated claims, e.g. age_over_18,region.
        #[arg(long)]
        disclose: String,
        /// The verifier's identifier (the key-binding JWT's `aud`).
        #[arg(long)]
        audience: String,
        /// The verifier's fresh nonce.
        #[arg(long)]
        nonce: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PinCommand {
    /// Set a new PIN, proving who you are with a live face sample (L3).
    Reset {
        /// A face sample from the camera (see `cyberid registry face-sample`).
        #[arg(long)]
        face: PathBuf,
        /// The new 6-digit PIN.
        #[arg(long, env = "CYBERID_PIN")]
        pin: String,
        #[arg(long)]
        json: bool,
    },
}

impl WalletArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            WalletCommand::Pin {
                command: PinCommand::Reset { json, .. },
            } => *json,
            WalletCommand::Enrol { json, .. }
            | WalletCommand::Show { json }
            | WalletCommand::Approve { json, .. }
            | WalletCommand::Consents { json }
            | WalletCommand::Revoke { json, .. }
            | WalletCommand::Present { json, .. } => *json,
        }
    }
}

/// Keeps the platform's error code (e.g. `identity_mismatch`) for `--json` output.
fn wallet_failure(error: WalletError) -> Failure {
    Failure {
        code: error.code(),
        description: error.to_string(),
    }
}

pub async fn run(args: WalletArgs) -> CliResult {
    let wallet = Wallet::open(&args.wallet).map_err(wallet_failure)?;
    match args.command {
        WalletCommand::Enrol {
            server,
            id_number,
            name,
            face,
            pin,
            json,
        } => {
            let face_sample = read_face_sample(&face)?;
            let view = wallet
                .enrol(
                    &server,
                    EnrolmentInput {
                        id_number: &id_number,
                        name: &name,
                        face_sample: &face_sample,
                        pin: &pin,
                    },
                )
                .await
                .map_err(wallet_failure)?;
            if json {
                print_json(&view);
            } else {
                println!("Enrolled. Your network number is {}.", view.network_number);
                print_claims(&view);
            }
        }
        WalletCommand::Show { json } => {
            let view = wallet.view().map_err(wallet_failure)?;
            if json {
                print_json(&view);
            } else {
                println!("Network number: {}", view.network_number);
                print_claims(&view);
            }
        }
        WalletCommand::Approve {
            login,
            yes,
            decline,
            pin,
            face,
            json,
        } => approve(&wallet, &login, yes, decline, pin, face, json).await?,
        WalletCommand::Consents { json } => {
            let consents = wallet.consents().await.map_err(wallet_failure)?;
            if json {
                print_json(&json!({ "consents": consents }));
            } else if consents.is_empty() {
                println!("You have not agreed to release data to any service.");
            } else {
                for consent in consents {
                    let claims = if consent.claims.is_empty() {
                        "only the defaults".to_owned()
                    } else {
                        consent.claims.join(", ")
                    };
                    println!("{} ({}): {claims}", consent.rp_name, consent.client_id);
                }
            }
        }
        WalletCommand::Pin {
            command: PinCommand::Reset { face, pin, json },
        } => {
            Pin::parse(&pin).map_err(|e| invalid_input(e.to_string()))?;
            let face = read_face_sample(&face)?;
            wallet
                .reset_pin(&pin, &face)
                .await
                .map_err(wallet_failure)?;
            if json {
                print_json(&json!({ "status": "pin_reset" }));
            } else {
                println!("New PIN set. Sign-ins at L2 and L3 use it from now on.");
            }
        }
        WalletCommand::Revoke { client_id, json } => {
            wallet
                .revoke_consent(&client_id)
                .await
                .map_err(wallet_failure)?;
            if json {
                print_json(&json!({ "revoked": client_id }));
            } else {
                println!("Consent for {client_id} revoked; its next sign-in will ask again.");
            }
        }
        WalletCommand::Present {
            disclose,
            audience,
            nonce,
            json,
        } => {
            let claims = parse_claim_list(&disclose).map_err(|e| invalid_input(e.to_string()))?;
            let presentation = wallet
                .present(&claims, &audience, &nonce)
                .map_err(wallet_failure)?;
            if json {
                print_json(&json!({ "presentation": presentation }));
            } else {
                println!("{presentation}");
            }
        }
    }
    Ok(())
}

fn print_claims(view: &WalletView) {
    println!("Issuer: {}", view.issuer);
    if let Ok(expiry) = time::OffsetDateTime::from_unix_timestamp(view.expires_at) {
        println!("Valid until: {}", expiry.date());
    }
    println!("Claims (each one is disclosed only when you choose to):");
    for claim in cyberid_domain::Claim::ALL {
        if let Some(value) = view.claims.get(claim.as_str()) {
            println!("  {:<20} {}", claim.as_str(), value);
        }
    }
}

/// A face sample file from the camera (`cyberid registry face-sample`).
fn read_face_sample(path: &Path) -> Result<FaceTemplate, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid_input(format!("cannot read face sample {}: {e}", path.display())))?;
    cyberid_registry::face::decode_sample(&text)
        .map_err(|e| invalid_input(format!("face sample {}: {e}", path.display())))
}

/// Asks a yes/no question on the terminal.
fn confirm(question: &str) -> Result<bool, Failure> {
    use std::io::Write;
    print!("{question} [y/N] ");
    std::io::stdout().flush().map_err(Failure::from)?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(Failure::from)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn number_matches(expected: &str) -> Result<bool, Failure> {
    use std::io::Write;
    print!("Type the two-digit number shown on the login page: ");
    std::io::stdout().flush().map_err(Failure::from)?;
    let mut typed = String::new();
    std::io::stdin()
        .read_line(&mut typed)
        .map_err(Failure::from)?;
    Ok(typed.trim() == expected)
}

fn read_pin() -> Result<String, Failure> {
    use std::io::Write;
    print!("PIN: ");
    std::io::stdout().flush().map_err(Failure::from)?;
    let mut pin = String::new();
    std::io::stdin()
        .read_line(&mut pin)
        .map_err(Failure::from)?;
    Ok(pin.trim().to_owned())
}

async fn approve(
    wallet: &Wallet,
    login: &str,
    yes: bool,
    decline: bool,
    pin: Option<String>,
    face: Option<PathBuf>,
    json: bool,
) -> CliResult {
    if json && !yes && !decline {
        return Err(invalid_input(
            "with --json, decide with --yes or --decline (no questions are asked)",
        ));
    }
    let opened = wallet.open_login(login).await.map_err(wallet_failure)?;
    let details = &opened.details;
    let new_claims: Vec<&cyberid_protocol::RequestedClaim> = details
        .claims
        .iter()
        .filter(|c| !opened.consented.contains(&c.name))
        .collect();
    if !json {
        println!(
            "{} asks you to sign in with Cyberspace ID.",
            details.rp_name
        );
        println!(
            "Check that the login page shows the number {}.",
            details.number_match
        );
        println!("Level: {}", details.level);
        println!(
            "It will learn that you are real-name verified, and {}.",
            cyberid_protocol::subject_scope(
                &details.rp_name,
                &details.sector,
                &details.subject_shared_with
            )
        );
        for claim in &details.claims {
            let remembered = if opened.consented.contains(&claim.name) {
                " (you agreed before)"
            } else {
                ""
            };
            let raw = if claim.raw_identity {
                " [identity data]"
            } else {
                ""
            };
            println!("  also: {}{raw}{remembered}", claim.description);
        }
        if let Some(basis) = &details.legal_basis
            && details.claims.iter().any(|c| c.raw_identity)
        {
            println!("Identity data is released under this legal basis: {basis}");
        }
    }
    let approved = if decline {
        false
    } else if yes {
        true
    } else if !number_matches(&details.number_match)? {
        // The holder types the number from the login page: a relayed QR code or link shows
        // its number on someone else's screen, so the holder cannot type it.
        println!("The numbers differ: this sign-in was not started by you. Declining.");
        false
    } else {
        let question = if new_claims.is_empty() {
            format!("Sign in to {}?", details.rp_name)
        } else {
            format!(
                "Sign in to {} and release the data listed above?",
                details.rp_name
            )
        };
        confirm(&question)?
    };
    let decision = if !approved {
        Decision::Decline
    } else if details.level >= AssuranceLevel::L3 && face.is_none() {
        if !json {
            println!(
                "This sign-in needs your face (L3); without a face sample the wallet cannot reach that level."
            );
        }
        Decision::Unable
    } else {
        let pin = match (details.level, pin) {
            (AssuranceLevel::L1, _) => None,
            (_, Some(pin)) => Some(pin),
            // Output is one JSON object: never a prompt on stdout.
            (level, None) if json => {
                return Err(Failure::new(
                    ErrorCode::InvalidArguments,
                    format!(
                        "this sign-in needs the PIN ({level:?}): give --pin PIN \
                         (with --json the wallet never prompts)"
                    ),
                ));
            }
            (_, None) => Some(read_pin()?),
        };
        let pin = pin
            .map(|p| Pin::parse(&p).map_err(|e| invalid_input(e.to_string())))
            .transpose()?;
        let face = face.as_deref().map(read_face_sample).transpose()?;
        Decision::Approve {
            claims: details.claims.iter().map(|c| c.name.clone()).collect(),
            pin,
            face,
        }
    };
    let status = wallet
        .decide(&opened, decision)
        .await
        .map_err(wallet_failure)?;
    if json {
        print_json(&json!({
            "status": status,
            "rp": details.rp_name,
            "client_id": details.client_id,
            "level": details.level,
            "number_match": details.number_match,
            "claims": details.claims.iter().map(|c| &c.name).collect::<Vec<_>>(),
        }));
    } else {
        println!("Sign-in {}.", status.as_str());
    }
    Ok(())
}
