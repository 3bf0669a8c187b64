//! The platform: what every request handler needs (settings, store, registry, face matcher,
//! keys), this node's cache of relying parties, and the requests it holds waiting for a
//! sign-in's decision.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cyberid_registry::Registry;
use cyberid_registry::face::{CosineFaceMatcher, FaceMatcher};
use cyberid_store::{LoginOutcome, RelyingParty, Store, StoreError};

use crate::clients::ClientCache;
use crate::decisions::DecisionWatch;
use crate::keys::PlatformKeys;
use crate::limits::Limiter;
use crate::registry::StoreRegistry;
use crate::settings::Settings;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct Platform(Arc<PlatformParts>);

pub struct PlatformParts {
    pub settings: Settings,
    /// Public base URL: `iss` of everything the platform signs.
    pub issuer: String,
    /// The issuer's path (empty at the root), for cookie paths and page links when the
    /// platform is served under a prefix.
    pub issuer_path: String,
    pub store: Arc<dyn Store>,
    pub registry: Arc<dyn Registry>,
    pub face_matcher: Arc<dyn FaceMatcher>,
    pub keys: PlatformKeys,
    /// This node's rate-limit counters, added to the store's every
    /// `limits.sync_interval_ms`.
    pub limits: Limiter,
    clients: ClientCache,
    pub(crate) decisions: DecisionWatch,
}

impl Deref for Platform {
    type Target = PlatformParts;
    fn deref(&self) -> &PlatformParts {
        &self.0
    }
}

impl Platform {
    /// Opens the store, loads (or creates) the keys and checks that the store was set up
    /// with the same keys. The registry is the store's embedded copy and faces are matched
    /// by the simulated matcher; [`Platform::from_parts`] takes other implementations.
    pub async fn open(settings: Settings, issuer: String) -> anyhow::Result<Self> {
        let store = cyberid_store::open(&settings.store.location()).await?;
        let keys = PlatformKeys::load_or_create(&settings.store.data)?;
        let recorded = store.claim_key_fingerprint(&keys.fingerprint).await?;
        if recorded != keys.fingerprint {
            anyhow::bail!(
                "the store was set up with other platform keys (fingerprint {recorded}; this node's keys in {} have {}): \
                 every node of a platform must use the same keys/{}",
                settings.store.data.display(),
                keys.fingerprint,
                crate::keys::KEYS_FILE,
            );
        }
        let registry = Arc::new(StoreRegistry(Arc::clone(&store)));
        let face_matcher = Arc::new(CosineFaceMatcher::new(settings.face.matcher_threshold()));
        Ok(Self::from_parts(
            settings,
            issuer,
            store,
            keys,
            registry,
            face_matcher,
        ))
    }

    pub fn from_parts(
        settings: Settings,
        issuer: String,
        store: Arc<dyn Store>,
        keys: PlatformKeys,
        registry: Arc<dyn Registry>,
        face_matcher: Arc<dyn FaceMatcher>,
    ) -> Self {
        let decisions = DecisionWatch::new(
            settings.sign_in.max_waiting_requests,
            settings.sign_in.max_waiting_per_sign_in,
        );
        let limits = Limiter::new(
            settings.limits.clone(),
            settings.sign_in.lifetime_seconds,
            keys.mac.clone(),
        );
        Self(Arc::new(PlatformParts {
            limits,
            registry,
            face_matcher,
            settings,
            issuer_path: url::Url::parse(&issuer)
                .map(|u| u.path().trim_end_matches('/').to_owned())
                .unwrap_or_default(),
            issuer: issuer.trim_end_matches('/').to_owned(),
            store,
            keys,
            clients: ClientCache::default(),
            decisions,
        }))
    }

    /// A relying party's registration, remembered by this node; its `suspended` flag may
    /// be stale when `false` (see [`crate::clients`]).
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<RelyingParty>>, StoreError> {
        self.clients.get(self.store.as_ref(), client_id).await
    }

    /// The other services of `rp`'s sector, by name: they see the same subject for a holder
    /// as `rp` does. Empty when the subject is `rp`'s alone.
    pub async fn subject_shared_with(&self, rp: &RelyingParty) -> Result<Vec<String>, StoreError> {
        let members = self
            .clients
            .sector_members(self.store.as_ref(), &rp.sector)
            .await?;
        Ok(members
            .iter()
            .filter(|(client_id, _)| *client_id != rp.client_id)
            .map(|(_, name)| name.clone())
            .collect())
    }

    /// Called where a store call found `client_id` suspended (or gone) although this node's
    /// copy let the request through: the next request reads the registration afresh.
    pub fn saw_client_suspended(&self, client_id: &str) {
        self.clients.forget(client_id);
    }

    /// Starts (once) the task that looks, every `sign_in.decision_recheck_ms`, for decisions on the
    /// sign-ins this node holds login pages for, taken on other nodes; it ends with the
    /// platform.
    pub(crate) fn check_decisions_elsewhere(&self) {
        if self.decisions.checking.swap(true, Ordering::SeqCst) {
            return;
        }
        let platform = Arc::downgrade(&self.0);
        // (A zero period would make `interval` panic.)
        let interval = self
            .settings
            .sign_in
            .decision_recheck()
            .max(std::time::Duration::from_millis(10));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(platform) = platform.upgrade() else {
                    return;
                };
                let watched = platform.decisions.watched();
                if watched.is_empty() {
                    continue;
                }
                match platform.store.ended_sign_ins(&watched, crate::now()).await {
                    Ok(ended) => {
                        for id in ended {
                            platform.decisions.decided(&id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "checking waiting sign-ins failed"),
                }
            }
        });
    }

    /// How many requests wait for the decision on sign-in `id` on this node.
    pub fn waiting_for_decision(&self, id: &str) -> usize {
        self.decisions.waiting_for(id)
    }

    /// Ends a pending sign-in for the wallet of device key `device` in the store and wakes the login pages waiting for it on this
    /// node. `false`: it had already ended or expired.
    pub async fn finish_login(
        &self,
        id: &str,
        device: &str,
        outcome: &LoginOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let finished = self.store.finish_login(id, device, outcome, now).await?;
        if finished {
            self.decisions.decided(id);
            crate::telemetry::sign_in_ended(outcome);
        }
        Ok(finished)
    }
}
