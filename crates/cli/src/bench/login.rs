//! `cyberid bench login` and `cyberid bench token`: sign-ins driven exactly as a relying
//! party and a wallet drive them (their steps in `sign_in`), timed, over keep-alive
//! HTTP/1.1 on 127.0.0.1.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use cyberid_crypto::jose::{SigningKey, UnverifiedJws, VerifyingKey};
use cyberid_crypto::pin::Pin;
use cyberid_domain::{ClientAuthMethod, MIN_SELF_ENROLMENT_AGE, age_on};
use cyberid_platform::keys::PlatformKeys;
use cyberid_platform::rp::{Registration, register};
use cyberid_protocol::ErrorCode;
use cyberid_registry::face::live_sample;
use cyberid_registry::file::open_registry_file;
use cyberid_wallet::{EnrolmentInput, PlatformClient, WalletError};
use serde_json::{Value, json};

use super::measure::{Measured, process_cpu_seconds, report, require_local};
use super::sign_in::{
    BenchWallet, Context, Level, Minted, REDIRECT_URI, approve, back_to_client, exchange, failure,
};
use crate::output::{CliResult, Failure, print_json};
use crate::store_args::StoreArgs;

const PIN: &str = "135790";
/// People of the registry file looked at per wallet to enrol (some may be enrolled already).
pub(super) const CANDIDATES_PER_WALLET: usize = 50;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Login,
    Token,
}

#[derive(Args)]
pub struct LoginArgs {
    /// The platform's URL; must be on this machine.
    #[arg(long)]
    server: String,
    /// The platform's store and keys, to register the benchmark's relying party.
    #[command(flatten)]
    store: StoreArgs,
    /// The registry file the platform imported; wallets are enrolled from its people.
    #[arg(long)]
    registry: PathBuf,
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: u32,
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// Operations run first, untimed.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    warmup: u32,
    /// Assurance level: 1 (device key) or 2 (device key and PIN).
    #[arg(long, value_enum, default_value = "1")]
    level: Level,
    /// The server's process id, to report its CPU time per operation and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Skip this many people of the registry file before enrolling the benchmark's wallets
    /// (past a population made with `bench populate`).
    #[arg(long, default_value_t = 0)]
    skip: usize,
    /// Full sign-ins only: the holder takes this long to approve (milliseconds), as a person
    /// scanning the QR code does, while the login page's status request is held waiting
    /// for the decision. 0: the wallet approves at once and the page asks afterwards.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=20_000))]
    hold_ms: u32,
    #[arg(long)]
    pub(crate) json: bool,
}

pub async fn run(args: LoginArgs, mode: Mode) -> CliResult {
    require_local(&args.server)?;
    if mode == Mode::Token && args.hold_ms > 0 {
        return Err(Failure::new(
            ErrorCode::InvalidInput,
            "--hold-ms is for full sign-ins (bench login); bench token approves untimed",
        ));
    }
    // Two connections per worker (the wallet's and the page's held status request): more
    // than the default soft limit of 1,024 files at high concurrency.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("the open-file limit could not be raised: {e}");
    }
    let server = args.server.trim_end_matches('/').to_owned();
    let concurrency = args.concurrency as usize;
    let context = Arc::new(prepare(&args, &server, concurrency).await?);
    let operation = match mode {
        Mode::Login => "login",
        Mode::Token => "token",
    };
    if !args.json {
        eprintln!(
            "{} wallets enrolled; warming up with {} operations",
            context.wallets.len(),
            args.warmup
        );
    }
    if args.warmup > 0 {
        let warm = measure(&context, mode, args.warmup as usize, concurrency, None).await?;
        if warm.errors > 0 {
            eprintln!(
                "warm-up: {} errors; first: {}",
                warm.errors,
                warm.first_error.unwrap_or_default()
            );
        }
    }
    let measured = measure(
        &context,
        mode,
        args.count as usize,
        concurrency,
        args.server_pid,
    )
    .await?;
    let mut report = report(operation, &server, concurrency, &measured, args.server_pid)?;
    report["level"] = json!(match args.level {
        Level::L1 => 1,
        Level::L2 => 2,
    });
    if args.json {
        print_json(&report);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// What a run prepares before it loads the platform.
pub(super) struct Preparation<'a> {
    pub store: &'a StoreArgs,
    pub registry: &'a Path,
    /// People of the registry file passed over first.
    pub skip: usize,
    /// Wallets to enrol, one per worker.
    pub wallets: usize,
    pub level: Level,
    pub hold: Duration,
}

/// Registers the benchmark's relying party and enrols one wallet per worker (untimed).
async fn prepare(args: &LoginArgs, server: &str, concurrency: usize) -> Result<Context, Failure> {
    prepare_wallets(
        &Preparation {
            store: &args.store,
            registry: &args.registry,
            skip: args.skip,
            wallets: concurrency,
            level: args.level,
            hold: Duration::from_millis(u64::from(args.hold_ms)),
        },
        server,
    )
    .await
}

/// Registers a relying party and enrols `wallets` wallets (untimed).
pub(super) async fn prepare_wallets(
    preparation: &Preparation<'_>,
    server: &str,
) -> Result<Context, Failure> {
    let concurrency = preparation.wallets;
    let settings = preparation.store.settings()?;
    let keys = PlatformKeys::load(&settings.store.data)?;
    let (rp, registered) = register(
        &keys,
        &Registration {
            name: "Benchmark client".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            auth_method: ClientAuthMethod::ClientSecretBasic,
            ..Registration::default()
        },
        cyberid_platform::now(),
    )
    .map_err(Failure::from)?;
    cyberid_store::open(&settings.store.location())
        .await?
        .insert_relying_party(&rp)
        .await?;

    let client = PlatformClient::new(server)?;
    let today = time::OffsetDateTime::now_utc().date();
    let mut rng = rand::rng();
    let mut wallets = Vec::with_capacity(concurrency);
    let registry = preparation.registry.to_path_buf();
    let skip = preparation.skip;
    let people: Vec<_> = tokio::task::spawn_blocking(move || {
        open_registry_file(&registry).map(|reader| {
            reader
                .skip(skip)
                .filter_map(Result::ok)
                .filter(|r| age_on(r.birth_date, today).unwrap_or(0) >= MIN_SELF_ENROLMENT_AGE)
                .take(concurrency * CANDIDATES_PER_WALLET)
                .collect()
        })
    })
    .await??;
    for person in people {
        if wallets.len() == concurrency {
            break;
        }
        let (device_key, _) = SigningKey::generate().map_err(Failure::from)?;
        let pin = Pin::parse(PIN).map_err(Failure::from)?;
        let sample = live_sample(&person.face, &mut rng);
        let input = EnrolmentInput {
            id_number: person.id_number.as_str(),
            name: person.name.as_str(),
            face_sample: &sample,
            pin: PIN,
        };
        match cyberid_wallet::enrol_device(&client, &input, &pin, &device_key).await {
            Ok(_) => {
                let kid = device_key.verifying_key().thumbprint();
                wallets.push(BenchWallet {
                    device_key: device_key.with_kid(kid),
                    pin,
                });
            }
            // People already enrolled (by an earlier run or a population) are passed over.
            Err(WalletError::Refused { code, .. })
                if code == "already_enrolled" || code == "identity_mismatch" =>
            {
                continue;
            }
            Err(e) => return Err(Failure::from(format!("enrolling a benchmark wallet: {e}"))),
        }
    }
    if wallets.len() < concurrency {
        return Err(Failure::from(
            "the registry file has too few people who are not enrolled yet",
        ));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency * 2)
        .build()
        .map_err(Failure::from)?;
    let jwks: Value = http
        .get(format!("{server}/jwks.json"))
        .send()
        .await?
        .json()
        .await?;
    let issuer_keys = jwks["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| serde_json::from_value(k.clone()).ok())
                .filter_map(|jwk| VerifyingKey::from_jwk(&jwk).ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Ok(Context {
        server: server.to_owned(),
        http,
        client_id: registered.client_id,
        client_secret: registered.client_secret.unwrap_or_default(),
        issuer_keys,
        wallets,
        level: preparation.level,
        hold: preparation.hold,
    })
}

/// Runs `count` operations with `concurrency` workers; worker `w` uses wallet `w`.
async fn measure(
    context: &Arc<Context>,
    mode: Mode,
    count: usize,
    concurrency: usize,
    server_pid: Option<u32>,
) -> Result<Measured, Failure> {
    // Token mode: approve every sign-in first, untimed; time only the code exchanges.
    let codes = match mode {
        Mode::Login => None,
        Mode::Token => {
            let minted = run_workers(
                context,
                count,
                concurrency,
                |context, worker, _| async move { approved_code(&context, worker, false).await },
            )
            .await;
            let codes: Vec<Minted> = minted.into_iter().filter_map(|(r, _)| r.ok()).collect();
            if codes.len() < count {
                return Err(Failure::from(format!(
                    "only {} of {count} codes could be minted",
                    codes.len()
                )));
            }
            Some(Arc::new(codes))
        }
    };
    let cpu_before = server_pid.map(process_cpu_seconds).transpose()?;
    let started = Instant::now();
    let results = run_workers(
        context,
        count,
        concurrency,
        move |context, worker, index| {
            let codes = codes.clone();
            async move {
                match &codes {
                    None => {
                        let minted = approved_code(&context, worker, true).await?;
                        redeem(&context, &minted, Mode::Login).await
                    }
                    Some(codes) => redeem(&context, &codes[index], Mode::Token).await,
                }
            }
        },
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = server_pid.map(process_cpu_seconds).transpose()?;
    let mut latencies = Vec::with_capacity(count);
    let (mut errors, mut first_error) = (0, None);
    for (result, latency) in results {
        match result {
            Ok(_) => latencies.push(latency),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    latencies.sort();
    Ok(Measured {
        latencies,
        errors,
        first_error,
        seconds,
        server_cpu_seconds: cpu_before
            .zip(cpu_after)
            .map(|(before, after)| after - before),
    })
}

/// `count` operations over `concurrency` workers, each timed.
async fn run_workers<F, Fut, T>(
    context: &Arc<Context>,
    count: usize,
    concurrency: usize,
    operation: F,
) -> Vec<(Result<T, String>, Duration)>
where
    F: Fn(Arc<Context>, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let operation = Arc::new(operation);
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (context, next, operation) = (
                Arc::clone(context),
                Arc::clone(&next),
                Arc::clone(&operation),
            );
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let begun = Instant::now();
                    let result = operation(Arc::clone(&context), worker, index).await;
                    done.push((result, begun.elapsed()));
                }
                done
            })
        })
        .collect();
    let mut all = Vec::with_capacity(count);
    for worker in workers {
        if let Ok(done) = worker.await {
            all.extend(done);
        }
    }
    all
}

/// Steps 1–6: authorize, login page, wallet open (+ PIN) and approval, the page's status
/// request with where to go: back to the client.
async fn approved_code(context: &Context, worker: usize, timed: bool) -> Result<Minted, String> {
    let approved = approve(context, worker, context.level, timed).await?;
    back_to_client(context, approved).await
}

/// Steps 7–9: code exchange with client authentication, ID-token verification, and, for a
/// full login, userinfo (`bench token` times the code exchange alone, as the reference
/// harness's token mode does).
pub(super) async fn redeem(context: &Context, minted: &Minted, mode: Mode) -> Result<(), String> {
    let http = &context.http;
    let tokens = exchange(context, minted).await?;
    let id_token = tokens["id_token"]
        .as_str()
        .ok_or_else(|| format!("token: {tokens}"))?;
    let jws = UnverifiedJws::parse(id_token).map_err(|e| e.to_string())?;
    let key = context
        .issuer_keys
        .iter()
        .find(|k| k.jwk().kid == jws.header.kid)
        .ok_or("ID token signed by an unknown key")?;
    let claims: Value = jws
        .verify(key, "JWT")
        .map_err(|e| format!("ID token: {e}"))?;
    let now = cyberid_platform::now();
    if claims["iss"] != context.server.as_str()
        || claims["aud"] != context.client_id.as_str()
        || claims["nonce"] != minted.nonce.as_str()
        || claims["exp"].as_i64().unwrap_or(0) <= now
    {
        return Err("ID token claims do not check".into());
    }
    let access_token = tokens["access_token"]
        .as_str()
        .ok_or_else(|| format!("token: no access token in {tokens}"))?;
    if mode == Mode::Login {
        let info: Value = http
            .get(format!("{}/userinfo", context.server))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(failure("userinfo"))?
            .json()
            .await
            .map_err(failure("userinfo"))?;
        if info["sub"] != claims["sub"] {
            return Err("userinfo sub differs from the ID token".into());
        }
    }
    Ok(())
}
