//! The store's own metrics, through the `metrics` facade: how long each read and write took,
//! and how many failed, by backend. Without a recorder installed (metrics off) each is a
//! clock read and an empty call.

use std::time::Instant;

use crate::StoreError;

/// What kind of work a timing is of.
#[derive(Clone, Copy)]
pub(crate) enum Work {
    Read,
    Write,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// Records `result`, which took since `started`.
pub(crate) fn record<T, E>(
    backend: &'static str,
    work: Work,
    started: Instant,
    result: &Result<T, E>,
) where
    E: AsStoreError,
{
    metrics::histogram!("cyberid_store_seconds", "backend" => backend, "work" => work.name())
        .record(started.elapsed().as_secs_f64());
    if let Err(e) = result
        && e.is_database_failure()
    {
        metrics::counter!("cyberid_store_errors_total", "backend" => backend, "work" => work.name())
            .increment(1);
    }
}

/// Whether an error is the database failing (counted), rather than a refusal the store
/// reports as an error (a constraint, an enrolment conflict).
pub(crate) trait AsStoreError {
    fn is_database_failure(&self) -> bool;
}

impl AsStoreError for StoreError {
    fn is_database_failure(&self) -> bool {
        true
    }
}

impl AsStoreError for crate::EnrolError {
    fn is_database_failure(&self) -> bool {
        matches!(self, crate::EnrolError::Store(_))
    }
}
