//! The embedded copy of the population registry, and the import of a whole registry source.

use cyberid_domain::{CitizenIdNumber, FaceTemplate, PersonName, PersonRecord, Sex};

use crate::StoreError;

/// What a registry source sends to [`crate::RegistryStore::registry_import`], in order.
#[derive(Debug)]
pub enum RegistryChunk {
    Records(Vec<PersonRecord>),
    /// The source ended cleanly: what was sent may be merged.
    End,
    /// The source failed (the text says where and why): nothing is imported.
    Failed(String),
}

/// The channel a registry source feeds. A source that stops without [`RegistryChunk::End`]
/// (its reader failed or panicked) imports nothing.
pub type RegistryBatches = tokio::sync::mpsc::Receiver<RegistryChunk>;

/// Why a registry import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RegistryImportError {
    /// The source failed or stopped early after `records_read` records reached the store;
    /// none were imported.
    #[error("{message}")]
    Source { message: String, records_read: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import does with the source's next message: `Some` batch to stage, `None` at the
/// source's end (merge now); a failed source, or one that stopped without saying it ended,
/// is an error and nothing is imported. `records_read` is how many came before.
pub(crate) fn next_registry_batch(
    received: Option<RegistryChunk>,
    records_read: u64,
) -> Result<Option<Vec<PersonRecord>>, RegistryImportError> {
    match received {
        Some(RegistryChunk::Records(batch)) => Ok(Some(batch)),
        Some(RegistryChunk::End) => Ok(None),
        Some(RegistryChunk::Failed(message)) => Err(RegistryImportError::Source {
            message,
            records_read,
        }),
        None => Err(RegistryImportError::Source {
            message: "the registry source stopped before its end".into(),
            records_read,
        }),
    }
}

/// A registry batch as SQLite's upsert stores it: one record per ID number (the last one
/// wins, as if applied in order) and sorted by ID number, which makes B-tree inserts local.
pub(crate) fn normalise_registry_batch(records: Vec<PersonRecord>) -> Vec<PersonRecord> {
    let mut records: Vec<(usize, PersonRecord)> = records.into_iter().enumerate().collect();
    records.sort_by(|(i, a), (j, b)| {
        a.id_number
            .as_str()
            .cmp(b.id_number.as_str())
            .then(j.cmp(i))
    });
    records.dedup_by(|later, earlier| later.1.id_number == earlier.1.id_number);
    records.into_iter().map(|(_, record)| record).collect()
}

/// Rebuilds a registry record from stored columns, re-validating it.
pub(crate) fn registry_record(
    id_number: &str,
    name: &str,
    birth_date: time::Date,
    sex: &str,
    face: &[u8],
) -> Result<PersonRecord, StoreError> {
    let corrupt = |column: &str| StoreError::Corrupt(format!("registry_people.{column}"));
    let id = CitizenIdNumber::parse(id_number).map_err(|_| corrupt("id_number"))?;
    let name = PersonName::parse(name).map_err(|_| corrupt("name"))?;
    let face = FaceTemplate::from_bytes(face).map_err(|_| corrupt("face"))?;
    let sex = Sex::parse(sex).ok_or_else(|| corrupt("sex"))?;
    PersonRecord::new(id, name, birth_date, sex, face).map_err(|_| corrupt("(the record)"))
}
