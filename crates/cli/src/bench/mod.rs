//! `cyberid bench …`: bounded load tests against a platform on this machine.

use cyberid_protocol::ErrorCode;
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

mod floor;
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
            BenchCommand::Floor(args) => args.json,
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

/// Load tests target this machine only: `http://` to a loopback address or `localhost`,
/// with no user information (`http://127.0.0.1:1@elsewhere/` names the host `elsewhere`).
pub(crate) fn require_local(server: &str) -> Result<(), Failure> {
    let local = reqwest::Url::parse(server).is_ok_and(|url| {
        url.scheme() == "http"
            && url.username().is_empty()
            && url.password().is_none()
            && url.host_str().is_some_and(|host| {
                host.eq_ignore_ascii_case("localhost")
                    || host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            })
    });
    if local {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::InvalidInput,
            "load tests only target this machine (http://127.0.0.1:PORT)",
        ))
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

/// What one timed load run saw.
pub(crate) struct Measured {
    /// Latencies of the operations that completed, sorted.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// The server's CPU seconds over the run (with `--server-pid`).
    pub server_cpu_seconds: Option<f64>,
}

/// The report of a load run, as every `cyberid bench` mode prints it; an error when no
/// operation completed (a run of failures is not a measurement).
pub(crate) fn report(
    operation: &str,
    server: &str,
    concurrency: usize,
    measured: &Measured,
    server_pid: Option<u32>,
) -> Result<serde_json::Value, Failure> {
    if let Some(error) = &measured.first_error {
        eprintln!("{} errors; first: {error}", measured.errors);
    }
    let completed = measured.latencies.len();
    if completed == 0 {
        return Err(Failure::new(
            ErrorCode::BenchFailed,
            format!(
                "no {operation} completed ({} errors; first: {})",
                measured.errors,
                measured.first_error.as_deref().unwrap_or("none")
            ),
        ));
    }
    // Below one tick of the kernel's CPU clock (10 ms) nothing was measured: no figure.
    let server_cpu = measured.server_cpu_seconds.filter(|cpu| *cpu > 0.0);
    Ok(json!({
        "operation": operation,
        "server": server,
        "concurrency": concurrency,
        "completed": completed,
        "errors": measured.errors,
        "seconds": measured.seconds,
        "per_second": completed as f64 / measured.seconds.max(1e-9),
        "latency_ms": {
            "p50": percentile_ms(&measured.latencies, 0.50),
            "p90": percentile_ms(&measured.latencies, 0.90),
            "p99": percentile_ms(&measured.latencies, 0.99),
        },
        "server_cpu_ms_per_op": server_cpu.map(|cpu| cpu * 1000.0 / completed as f64),
        "ops_per_server_cpu_second": server_cpu.map(|cpu| completed as f64 / cpu),
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

#[cfg(test)]
mod tests {
    use super::{Measured, report, require_local};

    #[test]
    fn a_run_in_which_nothing_completed_is_an_error_not_a_report() {
        let failed = Measured {
            latencies: Vec::new(),
            errors: 3,
            first_error: Some("state or iss does not match".into()),
            seconds: 0.5,
            server_cpu_seconds: Some(0.2),
        };
        let Err(error) = report("login", "http://localhost:1", 3, &failed, None) else {
            panic!("a report of nothing");
        };
        assert_eq!(error.code, "bench_failed");
        assert!(
            error.description.contains("state or iss"),
            "{}",
            error.description
        );
        let one = Measured {
            latencies: vec![std::time::Duration::from_millis(2)],
            errors: 2,
            ..failed
        };
        let Ok(reported) = report("login", "http://localhost:1", 3, &one, None) else {
            panic!("no report of one completed operation");
        };
        assert_eq!(reported["completed"], 1);
        assert_eq!(reported["server_cpu_ms_per_op"], 200.0);
    }

    #[test]
    fn only_this_machine_is_a_target() {
        for local in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3:80",
            "http://[::1]:8080",
            "http://localhost:8080",
        ] {
            assert!(require_local(local).is_ok(), "{local}");
        }
        for remote in [
            "http://192.0.2.1:8080",
            "http://127.0.0.1:1@192.0.2.1:8080",
            "http://user:pw@127.0.0.1:8080",
            "http://127.0.0.1.example:8080",
            "http://localhost.example:8080",
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "",
        ] {
            assert!(require_local(remote).is_err(), "{remote}");
        }
    }
}
