//! The population registry seam of cyberid.
//!
//! The authoritative population registry is an external system run by the state; cyberid
//! only ever asks it one question: "what is on record for this citizen ID number?". The
//! [`Registry`] trait is that seam, so the real registry client can replace the embedded
//! implementations here without touching the platform.
//!
//! - [`Registry`], [`RegistryError`] and [`InMemoryRegistry`]: the seam and an in-memory
//!   implementation.
//! - [`file`](mod@file): the streaming record file format ([`RegistryWriter`], [`RegistryReader`],
//!   [`find_in_file`]).
//! - [`generate`]: a deterministic generator of synthetic, realistic records ([`Generator`],
//!   [`write_registry`]).
//! - [`face`]: face matching behind [`FaceMatcher`] ([`CosineFaceMatcher`]), the simulated
//!   camera ([`live_sample`]) and the face sample format.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use cyberid_domain::{CitizenIdNumber, PersonRecord};

pub mod face;
pub mod file;
pub mod generate;
mod normal;

pub use face::{
    CosineFaceMatcher, DEFAULT_THRESHOLD, FACE_QUANT_SCALE, FACE_SAMPLE_FORMAT, FaceMatcher,
    FaceSampleError, FaceSampleFile, SAMPLE_NOISE_SIGMA, decode_sample, encode_sample, live_sample,
    sample_from_base64, sample_to_base64,
};
pub use file::{
    HEADER, RegistryFileError, RegistryReader, RegistryWriter, find_in_file, open_registry_file,
};
pub use generate::{Generator, REFERENCE_DATE, write_registry};

/// The registry could not answer (as opposed to answering "no such person").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry unavailable: {0}")]
pub struct RegistryError(pub String);

/// Looks people up in the authoritative population registry.
#[async_trait::async_trait]
pub trait Registry: Send + Sync {
    /// The record for `id`, `Ok(None)` if there is none, or an error if the registry cannot
    /// be reached.
    async fn find(&self, id: &CitizenIdNumber) -> Result<Option<PersonRecord>, RegistryError>;
}

/// A registry held in memory, keyed by the canonical ID number. For tests, demos and
/// registries small enough to load from a file.
#[derive(Default, Clone)]
pub struct InMemoryRegistry {
    records: HashMap<String, PersonRecord>,
}

impl InMemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding these records (a later record with the same ID replaces an earlier).
    pub fn from_records(records: impl IntoIterator<Item = PersonRecord>) -> Self {
        let mut registry = Self::new();
        for record in records {
            registry.insert(record);
        }
        registry
    }

    /// Loads every record of a registry file; stops at the first malformed line.
    pub fn load_file(path: &Path) -> Result<Self, file::RegistryFileError> {
        let mut registry = Self::new();
        for record in open_registry_file(path)? {
            registry.insert(record?);
        }
        Ok(registry)
    }

    /// Adds or replaces a record, returning the one it replaced.
    pub fn insert(&mut self, record: PersonRecord) -> Option<PersonRecord> {
        self.records
            .insert(record.id_number.as_str().to_owned(), record)
    }

    /// The record for `id`, if any.
    pub fn get(&self, id: &CitizenIdNumber) -> Option<&PersonRecord> {
        self.records.get(id.as_str())
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl fmt::Debug for InMemoryRegistry {
    // Only the size: the keys are ID numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InMemoryRegistry({} records)", self.records.len())
    }
}

#[async_trait::async_trait]
impl Registry for InMemoryRegistry {
    async fn find(&self, id: &CitizenIdNumber) -> Result<Option<PersonRecord>, RegistryError> {
        Ok(self.get(id).cloned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_memory_find() {
        let records: Vec<PersonRecord> = Generator::new(5).take(50).collect();
        let registry = InMemoryRegistry::from_records(records.clone());
        assert_eq!(registry.len(), 50);
        assert!(!registry.is_empty());
        assert_eq!(format!("{registry:?}"), "InMemoryRegistry(50 records)");
        let dyn_registry: &dyn Registry = &registry;
        for r in &records {
            assert_eq!(
                dyn_registry.find(&r.id_number).await.unwrap().as_ref(),
                Some(r)
            );
        }
        let other = Generator::new(6).next().unwrap();
        assert_eq!(dyn_registry.find(&other.id_number).await.unwrap(), None);
        assert_eq!(
            RegistryError("timeout".into()).to_string(),
            "registry unavailable: timeout"
        );
    }

    #[test]
    fn insert_replaces() {
        let mut registry = InMemoryRegistry::new();
        let mut record = Generator::new(1).next().unwrap();
        assert!(registry.insert(record.clone()).is_none());
        record.face = cyberid_domain::FaceTemplate::from_components([1; 128]);
        let old = registry.insert(record.clone()).unwrap();
        assert_ne!(old.face, record.face);
        assert_eq!(registry.get(&record.id_number), Some(&record));
        assert_eq!(registry.len(), 1);
    }
}
