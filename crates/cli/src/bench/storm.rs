//! `cyberid bench storm`: mixed load that outlives the server it loads, for
//! `bench/crash-storm.sh`, which kills that server with `kill -9` at random moments and
//! restarts it on the same store. Enrolments (retried from the same device after a lost
//! answer, as a wallet does), sign-ins at L1 and L2 approved by the wallet, code exchanges,
//! and replays of codes already redeemed. Whatever the platform confirmed is appended to a
//! journal the moment it is confirmed, so that after each crash the script can check in
//! the store that nothing confirmed was lost; what must never happen (a replayed code
//! answered with tokens, a retried enrolment refused) is appended to `violations`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use cyberid_crypto::b64;
use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::Pin;
use cyberid_domain::{MIN_SELF_ENROLMENT_AGE, age_on};
use cyberid_registry::face::live_sample;
use cyberid_registry::file::open_registry_file;
use cyberid_wallet::{EnrolmentInput, PlatformClient, WalletError};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::Citizen;
use super::login::{self, Preparation};
use super::measure::require_local;
use super::sign_in::{self, Context, Level, Minted};
use crate::output::{CliResult, Failure, print_json};
use crate::store_args::StoreArgs;

const PIN: &str = "135790";

/// How long a worker waits after a failure before it tries again (the server may be down).
const PAUSE: Duration = Duration::from_millis(50);

#[derive(Args)]
pub struct StormArgs {
    /// The platform's URL; must be on this machine, and stay the same across restarts.
    #[arg(long)]
    server: String,
    /// The platform's store and keys, to register the storm's relying party.
    #[command(flatten)]
    store: StoreArgs,
    /// The registry file the platform imported.
    #[arg(long)]
    registry: PathBuf,
    /// Directory for the journals (created if missing): `enrolled` (network number and
    /// status index), `approved`, `redeemed`, `replay-refused` (sign-in ids) and
    /// `violations`.
    #[arg(long)]
    journal: PathBuf,
    /// Workers signing in, each with a wallet of its own enrolled first.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    sign_in_workers: u32,
    /// Workers enrolling new people.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=256))]
    enrolment_workers: u32,
    /// Stops after this long (or at SIGTERM or SIGINT), then prints what it did.
    #[arg(long, default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    #[arg(long)]
    pub(crate) json: bool,
}

/// Appends one line per confirmation, each written at once: a crash of the server never
/// finds a confirmation that is not yet on disk, and a kill of this process loses at most
/// the line being written.
struct Journal {
    enrolled: File,
    approved: File,
    redeemed: File,
    replay_refused: File,
    violations: File,
}

impl Journal {
    fn create(dir: &Path) -> Result<Self, Failure> {
        std::fs::create_dir_all(dir)?;
        let open = |name: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))
        };
        Ok(Self {
            enrolled: open("enrolled")?,
            approved: open("approved")?,
            redeemed: open("redeemed")?,
            replay_refused: open("replay-refused")?,
            violations: open("violations")?,
        })
    }

    fn append(mut file: &File, line: &str) {
        if let Err(e) = file.write_all(format!("{line}\n").as_bytes()) {
            eprintln!("journal: {e}");
        }
    }
}

/// What the storm did, by kind.
#[derive(Default)]
struct Counts {
    enrolled: AtomicU64,
    /// Enrolments confirmed after an attempt whose answer was lost.
    resumed: AtomicU64,
    approved: AtomicU64,
    redeemed: AtomicU64,
    replays_refused: AtomicU64,
    /// Operations that did not complete (the server was down, or refused).
    failed: AtomicU64,
    violations: AtomicU64,
}

struct Storm {
    context: Context,
    journal: Journal,
    counts: Counts,
    running: AtomicBool,
    /// Redeemed codes, replayed later (often across a restart).
    redeemed: Mutex<VecDeque<(String, Minted)>>,
    citizens: Vec<Citizen>,
    next_citizen: AtomicUsize,
    enrolment_client: PlatformClient,
    pin: Pin,
}

impl Storm {
    fn violation(&self, what: String) {
        eprintln!("violation: {what}");
        self.counts.violations.fetch_add(1, Ordering::Relaxed);
        Journal::append(&self.journal.violations, &what);
    }

    fn failed(&self) {
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

pub async fn run(args: StormArgs) -> CliResult {
    require_local(&args.server)?;
    let server = args.server.trim_end_matches('/').to_owned();
    let journal = Journal::create(&args.journal)?;
    let context = login::prepare_wallets(
        &Preparation {
            store: &args.store,
            registry: &args.registry,
            skip: 0,
            wallets: args.sign_in_workers as usize,
            level: Level::L1,
            hold: Duration::ZERO,
        },
        &server,
    )
    .await?;
    let registry = args.registry.clone();
    let reserved = args.sign_in_workers as usize * login::CANDIDATES_PER_WALLET;
    let citizens =
        tokio::task::spawn_blocking(move || enrolment_citizens(&registry, reserved)).await??;
    let storm = Arc::new(Storm {
        context,
        journal,
        counts: Counts::default(),
        running: AtomicBool::new(true),
        redeemed: Mutex::new(VecDeque::new()),
        citizens,
        next_citizen: AtomicUsize::new(0),
        enrolment_client: PlatformClient::new(&server)?,
        pin: Pin::parse(PIN).map_err(Failure::from)?,
    });
    if !args.json {
        eprintln!("storm running; stop it with SIGTERM");
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.sign_in_workers as usize {
        workers.push(tokio::spawn(sign_in_worker(Arc::clone(&storm), worker)));
    }
    for _ in 0..args.enrolment_workers {
        workers.push(tokio::spawn(enrolment_worker(Arc::clone(&storm))));
    }
    until_stopped(Duration::from_secs(args.seconds)).await?;
    storm.running.store(false, Ordering::Relaxed);
    // A worker mid-request finishes it; one the server never answers is not waited for.
    let finishing = async {
        for worker in workers {
            let _ = worker.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), finishing)
        .await
        .is_err()
    {
        eprintln!("some workers did not finish within 30 s");
    }
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let counts = &storm.counts;
    let report = json!({
        "operation": "storm",
        "seconds": started.elapsed().as_secs_f64(),
        "enrolled": count(&counts.enrolled),
        "enrolments_resumed": count(&counts.resumed),
        "sign_ins_approved": count(&counts.approved),
        "codes_redeemed": count(&counts.redeemed),
        "replays_refused": count(&counts.replays_refused),
        "failed": count(&counts.failed),
        "violations": count(&counts.violations),
    });
    if args.json {
        print_json(&report);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// After `limit`, or at SIGTERM or SIGINT, whichever comes first.
async fn until_stopped(limit: Duration) -> Result<(), Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = tokio::time::sleep(limit) => {}
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

/// Eligible people from the end of the registry file, clear of the `reserved` first ones,
/// among whom the sign-in workers' wallets were enrolled.
fn enrolment_citizens(registry: &Path, reserved: usize) -> Result<Vec<Citizen>, Failure> {
    let today = time::OffsetDateTime::now_utc().date();
    let eligible: Vec<_> = open_registry_file(registry)?
        .filter_map(Result::ok)
        .filter(|r| age_on(r.birth_date, today).unwrap_or(0) >= MIN_SELF_ENROLMENT_AGE)
        .collect();
    let mut rng = rand::rng();
    let mut citizens = Vec::new();
    for record in eligible.into_iter().skip(reserved).rev() {
        let sample = live_sample(&record.face, &mut rng);
        let (device_key, _) = SigningKey::generate().map_err(Failure::from)?;
        citizens.push(Citizen {
            record,
            sample,
            device_key,
        });
    }
    Ok(citizens)
}

/// Enrols the next person until stopped or out of people: an attempt whose answer was lost
/// is repeated from the same device until it is answered, as a wallet would.
async fn enrolment_worker(storm: Arc<Storm>) {
    while storm.running() {
        let index = storm.next_citizen.fetch_add(1, Ordering::Relaxed);
        let Some(citizen) = storm.citizens.get(index) else {
            return;
        };
        let input = EnrolmentInput {
            id_number: citizen.record.id_number.as_str(),
            name: citizen.record.name.as_str(),
            face_sample: &citizen.sample,
            pin: PIN,
        };
        let mut lost = false;
        while storm.running() {
            let enrolled = cyberid_wallet::enrol_device(
                &storm.enrolment_client,
                &input,
                &storm.pin,
                &citizen.device_key,
            )
            .await;
            match enrolled {
                Ok(response) => {
                    record_enrolment(&storm, &response, lost);
                    break;
                }
                // Nobody else enrols this person: only a lost answer of this very device's
                // own enrolment can have enrolled them, and its retry must be answered
                // with the credential.
                Err(WalletError::Refused { code, .. }) if code == "already_enrolled" => {
                    storm.violation(format!(
                        "enrolment retried from the same device refused as already_enrolled (lost answer before: {lost})"
                    ));
                    break;
                }
                Err(WalletError::Refused { code, .. }) if code != "temporarily_unavailable" => {
                    storm.failed();
                    break;
                }
                Err(_) => {
                    lost = true;
                    storm.failed();
                    tokio::time::sleep(PAUSE).await;
                }
            }
        }
    }
}

/// The confirmed enrolment's network number (as stored, without dashes) and its
/// credential's status index, from the credential itself.
fn record_enrolment(storm: &Storm, response: &cyberid_protocol::EnrolmentResponse, lost: bool) {
    let number = response.network_number.replace('-', "");
    let index = response
        .credential
        .split('~')
        .next()
        .and_then(|jwt| jwt.split('.').nth(1))
        .and_then(|payload| b64::decode(payload).ok())
        .and_then(|payload| serde_json::from_slice::<Value>(&payload).ok())
        .and_then(|claims| claims["status"]["status_list"]["idx"].as_u64());
    let Some(index) = index else {
        storm.violation(format!("credential for {number} has no status index"));
        return;
    };
    Journal::append(&storm.journal.enrolled, &format!("{number} {index}"));
    storm.counts.enrolled.fetch_add(1, Ordering::Relaxed);
    if lost {
        storm.counts.resumed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sign-ins of this worker's wallet, L1 and L2 in turn, each code exchanged; every third
/// round an earlier code is replayed.
async fn sign_in_worker(storm: Arc<Storm>, worker: usize) {
    let mut round = 0usize;
    while storm.running() {
        round += 1;
        let level = if round.is_multiple_of(2) {
            Level::L2
        } else {
            Level::L1
        };
        if !sign_in(&storm, worker, level).await {
            storm.failed();
            tokio::time::sleep(PAUSE).await;
        }
        if round.is_multiple_of(3) {
            replay(&storm).await;
        }
    }
}

/// One sign-in to its code exchange; whether it completed.
async fn sign_in(storm: &Storm, worker: usize, level: Level) -> bool {
    let context = &storm.context;
    let Ok(approved) = sign_in::approve(context, worker, level, false).await else {
        return false;
    };
    let id = approved.id.clone();
    Journal::append(&storm.journal.approved, &id);
    storm.counts.approved.fetch_add(1, Ordering::Relaxed);
    let Ok(minted) = sign_in::back_to_client(context, approved).await else {
        return false;
    };
    match sign_in::exchange(context, &minted).await {
        Ok(tokens) if tokens["id_token"].is_string() => {
            Journal::append(&storm.journal.redeemed, &id);
            storm.counts.redeemed.fetch_add(1, Ordering::Relaxed);
            storm.redeemed.lock().await.push_back((id, minted));
            true
        }
        _ => false,
    }
}

/// An earlier code exchanged again: it must be refused, never answered with tokens.
async fn replay(storm: &Storm) {
    // The oldest first: most were redeemed before a restart.
    let oldest = storm.redeemed.lock().await.pop_front();
    let Some((id, minted)) = oldest else {
        return;
    };
    match sign_in::exchange(&storm.context, &minted).await {
        Ok(answer) if answer["id_token"].is_string() => {
            storm.violation(format!("the code of sign-in {id} was redeemed twice"));
        }
        Ok(answer) if answer["error"] == "invalid_grant" => {
            Journal::append(&storm.journal.replay_refused, &id);
            storm.counts.replays_refused.fetch_add(1, Ordering::Relaxed);
        }
        // Unanswered (the server is down) or unavailable: tried again later.
        _ => storm.redeemed.lock().await.push_back((id, minted)),
    }
}
