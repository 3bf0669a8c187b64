//! `cyberid bench …`: bounded load tests against a platform on this machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::Pin;
use cyberid_domain::{FaceTemplate, MIN_SELF_ENROLMENT_AGE, PersonRecord, age_on};
use cyberid_registry::face::live_sample;
use cyberid_registry::file::open_registry_file;
use cyberid_wallet::{EnrolmentInput, PlatformClient};
use serde_json::json;

use crate::{CliResult, Failure, print_json};

mod login;
mod populate;

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

pub(crate) fn require_local(server: &str) -> Result<(), Failure> {
    let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if local.iter().any(|prefix| server.starts_with(prefix)) {
        Ok(())
    } else {
        Err(Failure {
            code: "invalid_input".into(),
            description: "load tests only target this machine (http://127.0.0.1:PORT)".into(),
        })
    }
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
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = server_pid.map(process_cpu_seconds).transpose()?;
    latencies.sort();
    let ok = latencies.len();
    // Below one tick of the kernel's CPU clock (10 ms) nothing was measured: no figure.
    let cpu_ms_per_op = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) if ok > 0 && after > before => {
            Some((after - before) * 1000.0 / ok as f64)
        }
        _ => None,
    };
    if let Some(first) = errors.first() {
        eprintln!("{} errors; first: {first}", errors.len());
    }
    Ok(json!({
        "operation": "enrol",
        "server": server,
        "concurrency": concurrency,
        "completed": ok,
        "errors": errors.len(),
        "seconds": elapsed,
        "per_second": ok as f64 / elapsed.max(1e-9),
        "latency_ms": {
            "p50": percentile_ms(&latencies, 0.50),
            "p90": percentile_ms(&latencies, 0.90),
            "p99": percentile_ms(&latencies, 0.99),
        },
        "server_cpu_ms_per_op": cpu_ms_per_op,
        "server_rss_mb": server_pid.and_then(process_rss_mb),
    }))
}

pub(crate) fn percentile_ms(sorted: &[Duration], quantile: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[rank].as_secs_f64() * 1000.0)
}

/// User + system CPU seconds of a process (all threads), from /proc/PID/stat. Linux
/// reports them in clock ticks of 1/100 s (USER_HZ).
pub(crate) fn process_cpu_seconds(pid: u32) -> Result<f64, Failure> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| Failure::from(format!("cannot read /proc/{pid}/stat: {e}")))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((ticks(11) + ticks(12)) / 100.0)
}

pub(crate) fn process_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
