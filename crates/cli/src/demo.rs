//! `cyberid demo`: a platform on the embedded store with a synthetic registry, a citizen
//! who enrols from a demo wallet and presents one claim to a verifier, and an example
//! service whose "Sign in with Cyberspace ID" the demo wallet approves.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use cyberid_crypto::jose::VerifyingKey;
use cyberid_crypto::sd_jwt::{self, KeyBindingCheck};
use cyberid_domain::{Claim, ClientAuthMethod, MIN_SELF_ENROLMENT_AGE, PersonRecord, age_on};
use cyberid_platform::Overrides;
use cyberid_registry::face::{encode_sample, live_sample};
use cyberid_registry::file::open_registry_file;
use cyberid_wallet::{EnrolmentInput, Wallet};

use crate::output::{CliResult, Failure};
use crate::store_args::{config_file, load_settings};

#[derive(Args)]
pub struct DemoArgs {
    /// Where to keep the demo's data (default: a new temporary directory).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Settings file (TOML; see docs/settings.md); the demo's store is always the embedded
    /// one in its data directory.
    #[arg(long, env = "CYBERID_CONFIG", value_name = "FILE", value_parser = config_file)]
    config: Option<PathBuf>,
    /// Where the platform listens [setting server.listen, CYBERID_LISTEN; default
    /// 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Where the example service (a relying party) listens.
    #[arg(long, default_value = "127.0.0.1:8081")]
    rp_listen: SocketAddr,
    /// People in the synthetic registry.
    #[arg(long, default_value_t = 1000)]
    people: u64,
    /// Exit after the demonstration instead of serving until Ctrl-C.
    #[arg(long)]
    once: bool,
}

pub async fn run(args: DemoArgs) -> CliResult {
    let flags = Overrides {
        listen: args.listen,
        ..Overrides::default()
    };
    let mut settings = load_settings(args.config.as_deref(), &flags)?;
    let temporary;
    let data = match args.data {
        Some(dir) => dir,
        None => {
            temporary = tempfile::Builder::new().prefix("cyberid-demo-").tempdir()?;
            temporary.path().to_owned()
        }
    };
    std::fs::create_dir_all(&data)?;
    // The demo imports its registry into the embedded store in its own directory, so the
    // platform must serve from there, whatever a file or the environment says.
    settings.store.data = data.clone();
    settings.store.database_url = None;
    let registry_file = data.join("registry.tsv");
    let people = args.people.max(10);
    println!(
        "1. Synthetic population registry: {people} people → {}",
        registry_file.display()
    );
    cyberid_registry::generate::write_registry(&registry_file, people, 2026)?;

    println!("2. Platform (embedded SQLite in {})", data.display());
    // Bound but not yet serving: its own store takes the registry (and, below, the example
    // service's registration), with no second store open on the same file.
    let bound = cyberid_platform::bind(settings).await?;
    let platform = bound.platform.clone();
    let mut batch = Vec::new();
    for record in open_registry_file(&registry_file)? {
        batch.push(record?);
    }
    platform.store.registry_upsert(batch).await?;
    let url = bound.url.clone();
    let server = tokio::spawn(bound.serve(cyberid_platform::server::shutdown_signal()));
    println!("   listening on {url}");

    let today = time::OffsetDateTime::now_utc().date();
    let citizen = pick_adult(&registry_file, today)?;
    let face_file = data.join("face-sample.json");
    let sample = live_sample(&citizen.face, &mut rand::rng());
    std::fs::write(&face_file, encode_sample(&sample))?;
    let wallet_dir = data.join("wallet");
    println!(
        "3. A citizen (ID {}, born {}) enrols from the wallet in {}",
        citizen.id_number.masked(),
        citizen.birth_date.year(),
        wallet_dir.display()
    );
    let wallet = Wallet::open(&wallet_dir)?;
    let view = wallet
        .enrol(
            &url,
            EnrolmentInput {
                id_number: citizen.id_number.as_str(),
                name: citizen.name.as_str(),
                face_sample: &sample,
                pin: DEMO_PIN,
            },
        )
        .await?;
    println!("   network number: {}", view.network_number);
    println!("   credential claims held by the wallet (all selectively disclosable):");
    for claim in Claim::ALL {
        if let Some(value) = view.claims.get(claim.as_str()) {
            println!("     {:<20} {value}", claim.as_str());
        }
    }

    println!("4. The wallet shows a shop only that the citizen is over 18:");
    let nonce = cyberid_crypto::random::token::<16>();
    let presentation = wallet.present(&[Claim::AgeOver18], "https://shop.example", &nonce)?;
    let keys = cyberid_wallet::PlatformClient::new(&url)?
        .issuer_keys(&url)
        .await?;
    let lookup = |kid: Option<&str>| {
        keys.iter()
            .find(|k: &&VerifyingKey| k.jwk().kid.as_deref() == kid)
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let check = KeyBindingCheck {
        audience: "https://shop.example",
        nonce: &nonce,
        max_age_seconds: 300,
    };
    let verified = sd_jwt::verify(&presentation, lookup, now, Some(check))
        .map_err(|e| Failure::from(format!("presentation did not verify: {e}")))?;
    let disclosed: Vec<String> = Claim::ALL
        .iter()
        .filter_map(|c| {
            verified
                .claims
                .get(c.as_str())
                .map(|v| format!("{}={v}", c.as_str()))
        })
        .collect();
    println!(
        "   the shop verified the signature and holder binding and sees: {}",
        disclosed.join(", ")
    );

    println!(
        "5. An example service that offers \"Sign in with Cyberspace ID\" beside its own password sign-in"
    );
    let mut example = cyberid_example_rp::ExampleRp::bind(cyberid_example_rp::ExampleRpConfig {
        listen: args.rp_listen,
        ..cyberid_example_rp::ExampleRpConfig::new(url.clone(), "", "")
    })
    .await?;
    let (rp, registered) = cyberid_platform::rp::register(
        &platform.keys,
        &cyberid_platform::rp::Registration {
            name: "Example Service".into(),
            redirect_uris: vec![example.redirect_uri()],
            auth_method: ClientAuthMethod::ClientSecretBasic,
            ..Default::default()
        },
        cyberid_platform::now(),
    )
    .map_err(Failure::from)?;
    platform.store.insert_relying_party(&rp).await?;
    example.set_client(
        registered.client_id.clone(),
        registered.client_secret.clone().unwrap_or_default(),
    );
    let example_url = example.public_url().to_owned();
    let example_server = tokio::spawn(example.serve());
    println!("   example service: {example_url}");
    println!(
        "   registered as client {} (it receives only the defaults: a pairwise subject, the level, real-name verified)",
        registered.client_id
    );
    println!("   wallet directory: {}", wallet_dir.display());
    println!("   the wallet's PIN: {DEMO_PIN} (sign-ins at L2 and L3 ask for it)");
    println!("   a face sample for L3: {}", face_file.display());

    let exe = "cargo run --release --";
    let approve = format!("{exe} wallet --wallet {} approve", wallet_dir.display());
    println!("\nTry it: open {example_url} (or sign in there with demo / demo-password).");
    println!(
        "The login page shows a QR code and its own URL in the address bar; the wallet takes either."
    );
    println!("  L1, your phone: choose \"Sign in with Cyberspace ID\", then");
    println!("    {approve} <login page URL>");
    println!("  L2, phone and PIN: choose \"with your PIN (L2)\", then");
    println!("    {approve} <login page URL> --pin {DEMO_PIN}");
    println!("  L3, phone, PIN and face: choose \"with your PIN and face (L3)\", then");
    println!(
        "    {approve} <login page URL> --pin {DEMO_PIN} --face {}",
        face_file.display()
    );
    println!("\nMore:");
    println!(
        "  {exe} registry face-sample --registry {} --id-number <ID> --out face.json",
        registry_file.display()
    );
    println!(
        "  {exe} wallet --wallet my-wallet enrol --server {url} --id-number <ID> --name <NAME> --face face.json --pin 246802"
    );
    println!("  {exe} wallet --wallet {} show", wallet_dir.display());
    println!("  {exe} wallet --wallet {} consents", wallet_dir.display());
    println!(
        "  {exe} wallet --wallet {} present --disclose age_over_18,region --audience https://shop.example --nonce n-123",
        wallet_dir.display()
    );
    println!("  (people to try: `head -5 {}`)", registry_file.display());
    println!(
        "Published: {url}/.well-known/openid-configuration  {url}/.well-known/jwt-vc-issuer  {url}/status/0"
    );

    if args.once {
        return Ok(());
    }
    println!("\nServing until Ctrl-C.");
    tokio::select! {
        finished = server => finished??,
        finished = example_server => finished??,
    }
    Ok(())
}

/// The demo wallet's PIN: printed, so that nobody has to guess it (five wrong guesses lock it).
const DEMO_PIN: &str = "135790";

fn pick_adult(registry: &std::path::Path, today: time::Date) -> Result<PersonRecord, Failure> {
    for record in open_registry_file(registry)? {
        let record = record?;
        let age = age_on(record.birth_date, today).unwrap_or(0);
        if age >= 18.max(MIN_SELF_ENROLMENT_AGE) {
            return Ok(record);
        }
    }
    Err(Failure::from("the registry holds no adult"))
}
