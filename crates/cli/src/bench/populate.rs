//! `cyberid bench populate`: large populations, quickly, through the store's bulk paths —
//! a synthetic registry and accounts provisioned as enrolment would leave them (real device
//! keys, PIN verifiers from the platform's OPRF key, sealed attributes), without the
//! per-enrolment checks and round trips.

use std::path::Path;
use std::time::Instant;

use clap::Args;
use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::Pin;
use cyberid_crypto::random;
use cyberid_domain::{MIN_SELF_ENROLMENT_AGE, PersonRecord, age_on};
use cyberid_platform::enrolment::{holder_attributes_of, new_account};
use cyberid_platform::keys::PlatformKeys;
use cyberid_registry::generate::{Generator, REFERENCE_DATE};
use cyberid_store::{NewAccount, RegistryChunk};
use serde_json::json;

use crate::output::{CliResult, Failure, print_json};
use crate::store_args::StoreArgs;

const BATCH: usize = 10_000;

#[derive(Args)]
pub struct PopulateArgs {
    /// Accounts to create (people of the registry aged 14 or more, in generator order).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    accounts: u64,
    /// Registry records to generate and import first (default: as many as needed).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=2_000_000_000))]
    registry: Option<u64>,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip this many of the generator's records first: with the same seed and the size of
    /// an earlier population, the new people are all new (people who already have an
    /// account are passed over either way).
    #[arg(long, default_value_t = 0)]
    offset: u64,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    pub(crate) json: bool,
}

fn database_bytes(data: &Path) -> u64 {
    ["cyberid.db", "cyberid.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

pub async fn run(args: PopulateArgs) -> CliResult {
    let mut settings = args.store.settings()?;
    // A population for measurement is built again after a crash: no fsync per commit.
    settings.store.durability = cyberid_store::Durability::Normal;
    let data = settings.store.data.as_path();
    let keys = PlatformKeys::load_or_create(data)?;
    let store = cyberid_store::open(&settings.store.location()).await?;
    let sqlite = settings.store.database_url.is_none();
    let bytes_before = database_bytes(data);
    let counts_before = store.counts().await?;

    // The registry first, streamed in batches through the store's bulk import.
    let registry_records = args
        .registry
        .unwrap_or(args.accounts * 100 / 80 + 1000)
        .max(args.accounts);
    let started = Instant::now();
    let (seed, offset) = (args.seed, args.offset);
    let (sender, batches) = tokio::sync::mpsc::channel::<RegistryChunk>(2);
    let producer = tokio::task::spawn_blocking(move || {
        let mut generator = Generator::new(seed).skip(offset as usize);
        let mut left = registry_records;
        while left > 0 {
            let take = left.min(20_000) as usize;
            let batch: Vec<PersonRecord> = generator.by_ref().take(take).collect();
            left -= take as u64;
            if batch.is_empty() {
                break;
            }
            if sender.blocking_send(RegistryChunk::Records(batch)).is_err() {
                return;
            }
        }
        let _ = sender.blocking_send(RegistryChunk::End);
    });
    store.registry_import(batches).await?;
    producer.await?;
    let registry_seconds = started.elapsed().as_secs_f64();
    // Measured between the phases so that the per-account figure excludes registry growth.
    let bytes_after_registry = database_bytes(data);

    // Then the accounts: prepared on a blocking thread (key generation, OPRF, sealing),
    // stored in batches of one transaction each.
    let started = Instant::now();
    let accounts = args.accounts;
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Result<Vec<NewAccount>, String>>(2);
    let producer = tokio::task::spawn_blocking(move || {
        let pin = match Pin::parse("135790") {
            Ok(pin) => pin,
            Err(e) => return drop(sender.blocking_send(Err(e.to_string()))),
        };
        let now = cyberid_platform::now();
        let mut made = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        for person in Generator::new(seed).skip(offset as usize) {
            if made == accounts {
                break;
            }
            if age_on(person.birth_date, REFERENCE_DATE).unwrap_or(0) < MIN_SELF_ENROLMENT_AGE {
                continue;
            }
            let prepared = (|| -> Result<NewAccount, String> {
                let (device, _) = SigningKey::generate().map_err(|e| e.to_string())?;
                let pin_key_id = random::bytes::<16>();
                let verifier = keys
                    .pin_oprf
                    .verifier_for(&pin_key_id, &pin)
                    .map_err(|e| e.to_string())?;
                let attributes = holder_attributes_of(&person);
                new_account(
                    &keys,
                    &person,
                    &attributes,
                    device.verifying_key().jwk(),
                    pin_key_id,
                    &verifier,
                    now,
                    now + 365 * 86_400,
                )
                .map_err(|e| e.description)
            })();
            match prepared {
                Ok(account) => batch.push(account),
                Err(e) => return drop(sender.blocking_send(Err(e))),
            }
            made += 1;
            if batch.len() == BATCH
                && sender
                    .blocking_send(Ok(std::mem::take(&mut batch)))
                    .is_err()
            {
                return;
            }
        }
        if !batch.is_empty() {
            let _ = sender.blocking_send(Ok(batch));
        }
    });
    let mut created = 0u64;
    while let Some(batch) = batches.recv().await {
        let batch = batch.map_err(Failure::from)?;
        created += batch.len() as u64;
        store.enrol_many(batch).await.map_err(|e| {
            Failure::from(format!(
                "{e} (after {created} accounts; was this seed used before?)"
            ))
        })?;
        if !args.json && created.is_multiple_of(100_000) {
            eprintln!("… {created} accounts");
        }
    }
    producer.await?;
    let account_seconds = started.elapsed().as_secs_f64();
    let counts = store.counts().await?;
    let new_accounts = counts.accounts - counts_before.accounts;
    let bytes_after = database_bytes(data);
    let account_bytes = bytes_after.saturating_sub(bytes_after_registry);
    let report = json!({
        "registry_records": registry_records,
        "registry_seconds": registry_seconds,
        "registry_per_second": registry_records as f64 / registry_seconds.max(1e-9),
        "accounts": new_accounts,
        "account_seconds": account_seconds,
        "accounts_per_second": new_accounts as f64 / account_seconds.max(1e-9),
        "total_accounts": counts.accounts,
        "store": store.backend(),
        "sqlite_bytes_added": sqlite.then_some(bytes_after.saturating_sub(bytes_before)),
        "sqlite_bytes_per_account": (sqlite && new_accounts > 0)
            .then(|| account_bytes as f64 / new_accounts as f64),
    });
    if args.json {
        print_json(&report);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
