//! Relying parties as a node remembers them between requests.
//!
//! A registration never changes after `admin rp add` (there is no update), so a node keeps
//! what it read; only `suspended` changes, and for it the cache is never the last word: an
//! entry read as suspended is read again on every use (so a resumed service works at
//! once), and every step that lets an active-looking service proceed checks the flag
//! again inside a store call it makes anyway (creating or claiming a sign-in, the
//! sign-in read before a code exchange, userinfo). A suspension therefore takes effect
//! at once on every node, as without the cache, and the common path saves a store round
//! trip per `/authorize`, pushed request and code exchange. When one of those checks
//! finds the client suspended, the node forgets its copy, so that the next request is
//! refused by its read of the registration rather than by a failed insert or claim
//! further on.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cyberid_store::{RelyingParty, Store, StoreError};

/// Beyond this many services the cache starts again empty (far above any real federation;
/// it only bounds memory against a flood of lookups of distinct registered ids).
const MAX_ENTRIES: usize = 100_000;

/// How long a node keeps the list of a sector's services. A service registered into a
/// sector shows on that sector's login pages within this time; before its first sign-in it
/// has seen no subject anyway.
const SECTOR_LIST_SECONDS: u64 = 30;

#[derive(Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, Arc<RelyingParty>>>,
    sectors: RwLock<HashMap<String, SectorList>>,
}

/// The services of a sector (client id, name), as read at `read_at`.
struct SectorList {
    members: Arc<Vec<(String, String)>>,
    read_at: Instant,
}

impl ClientCache {
    /// The registration of `client_id`; `suspended` is current when it is `true` and may
    /// be stale when it is `false` (see the module documentation).
    pub async fn get(
        &self,
        store: &dyn Store,
        client_id: &str,
    ) -> Result<Option<Arc<RelyingParty>>, StoreError> {
        let cached = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(client_id)
            .cloned();
        if let Some(rp) = cached.filter(|rp| !rp.suspended) {
            return Ok(Some(rp));
        }
        let Some(rp) = store.relying_party(client_id).await? else {
            return Ok(None);
        };
        let rp = Arc::new(rp);
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(client_id.to_owned(), Arc::clone(&rp));
        Ok(Some(rp))
    }

    /// The services of `sector` (client id and name), read from the store at most every
    /// [`SECTOR_LIST_SECONDS`]: the login page of every sign-in names them.
    pub async fn sector_members(
        &self,
        store: &dyn Store,
        sector: &str,
    ) -> Result<Arc<Vec<(String, String)>>, StoreError> {
        let fresh = Duration::from_secs(SECTOR_LIST_SECONDS);
        let cached = self
            .sectors
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(sector)
            .filter(|list| list.read_at.elapsed() < fresh)
            .map(|list| Arc::clone(&list.members));
        if let Some(members) = cached {
            return Ok(members);
        }
        let members: Arc<Vec<(String, String)>> = Arc::new(
            store
                .relying_parties_in_sector(sector)
                .await?
                .into_iter()
                .map(|rp| (rp.client_id, rp.name))
                .collect(),
        );
        let mut sectors = self
            .sectors
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if sectors.len() >= MAX_ENTRIES {
            sectors.clear();
        }
        sectors.insert(
            sector.to_owned(),
            SectorList {
                members: Arc::clone(&members),
                read_at: Instant::now(),
            },
        );
        Ok(members)
    }

    /// Drops this node's copy of `client_id`: the store has just shown it out of date.
    pub fn forget(&self, client_id: &str) {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(client_id);
    }
}
