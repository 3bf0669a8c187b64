//! `cyberid bench …`: bounded load tests against a platform on this machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::{Args, Subcommand};
use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::Pin;
use cyberid_domain::{FaceTemplate, MIN_SELF_ENROLMENT_AGE, PersonRecord, age_on};
use cyberid_registry::face::live_sample;
use cyberid_registry::file::open_registry_file;
use cyberid_wallet::{EnrolmentInput, PlatformClient};

use crate::output::{CliResult, Failure, print_json};

mod floor;
mod login;
mod measure;
mod populate;
mod sign_in;
mod storm;

use measure::{Measured, process_cpu_seconds, report, require_local};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

impl BenchArgs {
    /// Whether the command asked for JSON (then failures are JSON too).
    pub fn json(&self) -> bool {
        match &self.command {
            BenchCommand::Login(args) | BenchCommand::Token(args) => args.json,
            BenchCommand::Populate(args) => args.json,
            BenchCommand::Floor(args) => args.json,
            BenchCommand::Storm(args) => args.json,
            BenchCommand::Enrol { json, .. } => *json,
        }
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Full sign-ins as a relying party and a wallet make them: authorize (answered with the
    /// login page), wallet open and approval (device-key signature, PIN at L2), back to the
    /// client, token with client authentication, ID-token verification, userinfo.
    Login(login::LoginArgs),
    /// Code exchanges only: sign-ins are approved untimed first, then each code is exchanged
    /// at the token endpoint (client authentication, PKCE), timed; the ID token is checked,
    /// userinfo is not called.
    Token(login::LoginArgs),
    /// Create a large population quickly (registry and accounts through the bulk paths).
    Populate(populate::PopulateArgs),
    /// The crypto floor of a sign-in on this machine: one ES256 verification and one ES256
    /// signature, and at L2 one PIN OPRF evaluation and one PIN proof verification more,
    /// timed in this process (no server), for server CPU as a multiple of it.
    Floor(floor::FloorArgs),
    /// Mixed load that outlives the server it loads (for bench/crash-storm.sh, which kills
    /// and restarts it): enrolments, sign-ins at L1 and L2, code exchanges and replays, what
    /// the platform confirmed appended to journals as it is confirmed.
    Storm(storm::StormArgs),
    /// Full enrolments (PIN OPRF, proof of possession, registry and face checks, issuance).
    Enrol {
        /// The platform's URL; must be on this machine.
        #[arg(long)]
        server: String,
        /// The registry file the platform imported; enrols its people in file order.
        #[arg(long)]
        registry: PathBuf,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        count: u32,
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
        concurrency: u32,
        /// Skip this many eligible people first (to run again against the same store).
        #[arg(long, default_value_t = 0)]
        skip: usize,
        /// The server's process id, to report its CPU time per operation and memory.
        #[arg(long)]
        server_pid: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

struct Citizen {
    record: PersonRecord,
    sample: FaceTemplate,
    device_key: SigningKey,
}

pub async fn run(args: BenchArgs) -> CliResult {
    match args.command {
        BenchCommand::Login(args) => login::run(args, login::Mode::Login).await?,
        BenchCommand::Token(args) => login::run(args, login::Mode::Token).await?,
        BenchCommand::Populate(args) => populate::run(args).await?,
        BenchCommand::Floor(args) => floor::run(args)?,
        BenchCommand::Storm(args) => storm::run(args).await?,
        BenchCommand::Enrol {
            server,
            registry,
            count,
            concurrency,
            skip,
            server_pid,
            json,
        } => {
            require_local(&server)?;
            let citizens = tokio::task::spawn_blocking(move || {
                prepare_citizens(&registry, skip, count as usize)
            })
            .await??;
            let report = enrol_load(&server, citizens, concurrency as usize, server_pid).await?;
            if json {
                print_json(&report);
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
        }
    }
    Ok(())
}

/// Eligible people with their camera samples and device keys, prepared before timing.
fn prepare_citizens(
    registry: &std::path::Path,
    skip: usize,
    count: usize,
) -> Result<Vec<Citizen>, Failure> {
    let today = time::OffsetDateTime::now_utc().date();
    let mut rng = rand::rng();
    let mut citizens = Vec::with_capacity(count);
    let eligible = open_registry_file(registry)?
        .filter_map(Result::ok)
        .filter(|r| age_on(r.birth_date, today).unwrap_or(0) >= MIN_SELF_ENROLMENT_AGE)
        .skip(skip)
        .take(count);
    for record in eligible {
        let sample = live_sample(&record.face, &mut rng);
        let (device_key, _) = SigningKey::generate().map_err(Failure::from)?;
        citizens.push(Citizen {
            record,
            sample,
            device_key,
        });
    }
    if citizens.len() < count {
        return Err(Failure::from(format!(
            "the registry file has only {} eligible people after skipping {skip}",
            citizens.len()
        )));
    }
    Ok(citizens)
}

async fn enrol_load(
    server: &str,
    citizens: Vec<Citizen>,
    concurrency: usize,
    server_pid: Option<u32>,
) -> Result<serde_json::Value, Failure> {
    let client = Arc::new(PlatformClient::new(server)?);
    let citizens = Arc::new(citizens);
    let next = Arc::new(AtomicUsize::new(0));
    let pin = Arc::new(Pin::parse("135790").map_err(Failure::from)?);
    let cpu_before = server_pid.map(process_cpu_seconds).transpose()?;
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, citizens, next, pin) = (
                Arc::clone(&client),
                Arc::clone(&citizens),
                Arc::clone(&next),
                Arc::clone(&pin),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(citizen) = citizens.get(index) else {
                        break;
                    };
                    let input = EnrolmentInput {
                        id_number: citizen.record.id_number.as_str(),
                        name: citizen.record.name.as_str(),
                        face_sample: &citizen.sample,
                        pin: "135790",
                    };
                    let begun = Instant::now();
                    match cyberid_wallet::enrol_device(&client, &input, &pin, &citizen.device_key)
                        .await
                    {
                        Ok(_) => latencies.push(begun.elapsed()),
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for worker in workers {
        let (l, e) = worker.await?;
        latencies.extend(l);
        errors.extend(e);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = server_pid.map(process_cpu_seconds).transpose()?;
    latencies.sort();
    let measured = Measured {
        latencies,
        errors: errors.len(),
        first_error: errors.into_iter().next(),
        seconds,
        server_cpu_seconds: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
    };
    report("enrol", server, concurrency, &measured, server_pid)
}
