//! `cyberid registry …`: synthetic registries, bulk import, and the simulated camera.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use cyberid_domain::{CitizenIdNumber, PersonRecord};
use cyberid_protocol::ErrorCode;
use cyberid_registry::face::{encode_sample, live_sample};
use cyberid_registry::file::open_registry_file;
use cyberid_store::{Durability, RegistryChunk, RegistryImportError};
use rand::SeedableRng;
use serde_json::json;

use crate::output::{CliResult, Failure, invalid_input, print_json};
use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Write a deterministic synthetic registry file.
    Generate {
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Load a registry file into the platform's store (streaming, in batches).
    Import {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Records per transaction.
        #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        batch: u32,
        #[arg(long)]
        json: bool,
    },
    /// Simulate the camera: a noisy live sample of a person's face (or of someone else's).
    FaceSample {
        #[arg(long)]
        registry: PathBuf,
        #[arg(long)]
        id_number: String,
        /// Sample another person's face instead: what an impostor would show.
        #[arg(long)]
        impostor: bool,
        /// Seed for the camera noise (default: random).
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

impl RegistryArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            RegistryCommand::Generate { json, .. }
            | RegistryCommand::Import { json, .. }
            | RegistryCommand::FaceSample { json, .. } => *json,
        }
    }
}

pub async fn run(args: RegistryArgs) -> CliResult {
    match args.command {
        RegistryCommand::Generate {
            count,
            seed,
            out,
            json,
        } => {
            let started = Instant::now();
            let path = out.clone();
            let written = tokio::task::spawn_blocking(move || {
                cyberid_registry::generate::write_registry(&path, count, seed)
            })
            .await??;
            let seconds = started.elapsed().as_secs_f64();
            if json {
                print_json(
                    &json!({ "records": written, "file": out, "seed": seed, "seconds": seconds }),
                );
            } else {
                println!(
                    "wrote {written} records to {} in {seconds:.1} s",
                    out.display()
                );
            }
        }
        RegistryCommand::Import {
            file,
            store,
            batch,
            json,
        } => {
            let summary = import(&file, &store, batch as usize).await?;
            if json {
                print_json(&summary);
            } else {
                println!(
                    "imported {} records in {:.1} s ({:.0} records/s) into the {} store",
                    summary.records, summary.seconds, summary.records_per_second, summary.store
                );
            }
        }
        RegistryCommand::FaceSample {
            registry,
            id_number,
            impostor,
            seed,
            out,
            json,
        } => {
            let id = CitizenIdNumber::parse(&id_number)
                .map_err(|e| invalid_input(format!("id number: {e}")))?;
            let (person, other) =
                tokio::task::spawn_blocking(move || find_with_other(&registry, &id)).await??;
            let source = match (person, impostor, other) {
                (None, _, _) => {
                    return Err(Failure::new(
                        ErrorCode::NotFound,
                        "no record with this ID number in the registry file",
                    ));
                }
                (Some(person), false, _) => person,
                (Some(_), true, Some(other)) => other,
                (Some(_), true, None) => {
                    return Err(Failure::from(
                        "the registry file holds nobody else to impersonate",
                    ));
                }
            };
            let mut rng = match seed {
                Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
                None => rand::rngs::StdRng::from_os_rng(),
            };
            let sample = live_sample(&source.face, &mut rng);
            std::fs::write(&out, encode_sample(&sample))
                .map_err(|e| Failure::from(format!("cannot write {}: {e}", out.display())))?;
            if json {
                print_json(&json!({ "file": out, "impostor": impostor }));
            } else {
                println!(
                    "wrote a {} face sample to {}",
                    if impostor { "impostor" } else { "live" },
                    out.display()
                );
            }
        }
    }
    Ok(())
}

/// The record of `id` and, for impostor samples, the first record of somebody else.
fn find_with_other(
    path: &Path,
    id: &CitizenIdNumber,
) -> Result<(Option<PersonRecord>, Option<PersonRecord>), Failure> {
    let mut person = None;
    let mut other = None;
    for record in open_registry_file(path)? {
        let record = record?;
        if record.id_number == *id {
            person = Some(record);
        } else if other.is_none() {
            other = Some(record);
        }
        if person.is_some() && other.is_some() {
            break;
        }
    }
    Ok((person, other))
}

#[derive(serde::Serialize)]
struct ImportSummary {
    records: u64,
    seconds: f64,
    records_per_second: f64,
    store: &'static str,
}

/// Streams the file into the store: a reader thread parses batches while the store stages
/// the previous one (at most three batches in memory); the store then merges them all in
/// ID-number order. A bad line anywhere imports nothing.
async fn import(
    file: &Path,
    store_args: &StoreArgs,
    batch: usize,
) -> Result<ImportSummary, Failure> {
    // An import is idempotent (upserts), so a power cut mid-import is repaired by running
    // it again: skip the per-commit fsync.
    let mut settings = store_args.settings()?;
    settings.store.durability = Durability::Normal;
    let store = cyberid_store::open(&settings.store.location()).await?;
    let reader = open_registry_file(file).map_err(|e| invalid_input(e.to_string()))?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<RegistryChunk>(2);
    let producer = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(batch);
        let mut read = 0u64;
        for record in reader {
            match record {
                Ok(record) => chunk.push(record),
                Err(e) => {
                    let _ = sender.blocking_send(RegistryChunk::Failed(e.to_string()));
                    return;
                }
            }
            read += 1;
            if read.is_multiple_of(1_000_000) {
                eprintln!("… {read} records read");
            }
            if chunk.len() == batch {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(batch));
                if sender.blocking_send(RegistryChunk::Records(full)).is_err() {
                    return;
                }
            }
        }
        if !chunk.is_empty() && sender.blocking_send(RegistryChunk::Records(chunk)).is_err() {
            return;
        }
        // Only a reader that got to the end says so; anything else imports nothing.
        let _ = sender.blocking_send(RegistryChunk::End);
    });
    let started = Instant::now();
    let records = store.registry_import(receiver).await.map_err(|e| match e {
        RegistryImportError::Source { message, .. } => Failure::new(
            ErrorCode::InvalidRegistryFile,
            format!("{message} (nothing was imported: fix the file and import again)"),
        ),
        RegistryImportError::Store(e) => Failure::from(e),
    })?;
    producer.await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(ImportSummary {
        records,
        seconds,
        records_per_second: records as f64 / seconds.max(1e-9),
        store: store.backend(),
    })
}
