//! The platform state, the routes, and the server loop.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use cyberid_registry::Registry;
use cyberid_registry::face::{CosineFaceMatcher, FaceMatcher};
use cyberid_store::{LoginOutcome, RelyingParty, Store, StoreError};
use tokio::net::TcpListener;

use crate::clients::ClientCache;
use crate::decisions::DecisionWatch;
use crate::error::{ApiError, ErrorCode};
use crate::keys::PlatformKeys;
use crate::registry::StoreRegistry;
use crate::settings::Settings;
use crate::{enrolment, login, metadata, oidc, pages, status};

/// Bodies of the platform's own API are small JSON documents.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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
        Self(Arc::new(PlatformParts {
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

    /// Ends a pending sign-in in the store and wakes the login pages waiting for it on this
    /// node. `false`: it had already ended or expired.
    pub async fn finish_login(
        &self,
        id: &str,
        outcome: &LoginOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let finished = self.store.finish_login(id, outcome, now).await?;
        if finished {
            self.decisions.decided(id);
        }
        Ok(finished)
    }
}

pub fn router(platform: Platform) -> Router {
    Router::new()
        .route("/healthz", get(metadata::healthz))
        .route("/readyz", get(metadata::readyz))
        .route("/jwks.json", get(metadata::jwks))
        .route("/.well-known/jwt-vc-issuer", get(metadata::jwt_vc_issuer))
        .route("/status/{list}", get(status::status_list))
        .route(
            cyberid_protocol::ENROLMENT_START_PATH,
            post(enrolment::start),
        )
        .route(cyberid_protocol::ENROLMENT_PATH, post(enrolment::enrol))
        .route(
            "/.well-known/openid-configuration",
            get(oidc::discovery::openid_configuration),
        )
        .route(
            "/authorize",
            get(oidc::authorize::authorize_get).post(oidc::authorize::authorize_post),
        )
        .route("/par", post(oidc::authorize::par))
        .route("/token", post(oidc::token::token))
        .route(
            "/userinfo",
            get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo),
        )
        .route("/login/{id}", get(login::page))
        .route("/login/{id}/status", get(login::status))
        .route("/static/login.js", get(pages::login_script))
        .route("/api/v1/logins/{id}", get(login::details))
        .route("/api/v1/logins/{id}/pin", post(login::pin_evaluation))
        .route("/api/v1/logins/{id}/decision", post(login::decision))
        .route(cyberid_protocol::CONSENTS_PATH, post(login::consents))
        .route(
            cyberid_protocol::REVOKE_CONSENT_PATH,
            post(login::revoke_consent),
        )
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "this endpoint does not accept that HTTP method",
            )
            .with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(platform)
}

/// A platform node bound to its address, not yet serving: its URL is known (port 0 picks a
/// free port), and the store can be prepared before the first request.
pub struct Bound {
    pub platform: Platform,
    /// The public base URL: `server.issuer`, or `http://` and the bound address.
    pub url: String,
    /// The address the node listens on.
    pub address: SocketAddr,
    listener: TcpListener,
}

/// Binds `server.listen`, opens the platform (store, keys) and returns it unstarted: the
/// one way a node comes up, for `cyberid serve` and tests alike.
pub async fn bind(mut settings: Settings) -> anyhow::Result<Bound> {
    // Each connection is a file; login pages hold theirs while they wait for the decision
    // (up to `sign_in.decision_wait_seconds`), so the default soft limit of 1,024 would
    // stop a busy node accepting.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(open_files) => tracing::debug!(open_files, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "the open-file limit could not be raised"),
    }
    let listen = settings.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr()?;
    let issuer = settings
        .server
        .issuer
        .take()
        .unwrap_or_else(|| format!("http://{address}"));
    let platform = Platform::open(settings, issuer).await?;
    Ok(Bound {
        url: platform.issuer.clone(),
        platform,
        address,
        listener,
    })
}

impl Bound {
    /// Serves until `shutdown` resolves, then finishes the requests in flight; purges
    /// expired data every `retention.purge_interval_seconds` meanwhile.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            platform,
            address,
            listener,
            ..
        } = self;
        tracing::info!(address = %address, issuer = %platform.issuer, store = platform.store.backend(), "platform listening");
        let purging = tokio::spawn(purge_periodically(platform.clone()));
        let stopping = platform.clone();
        // Responses go out whole: Nagle's algorithm would only hold back the tail of one that
        // is written in parts until the client's delayed acknowledgement.
        let listener = listener.tap_io(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        let served = axum::serve(listener, router(platform))
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Login pages waiting for a decision answer now instead of holding the shutdown.
                stopping.decisions.close();
            })
            .await;
        purging.abort();
        served?;
        tracing::info!("platform stopped");
        Ok(())
    }
}

/// Binds `server.listen`, opens the platform, reports the public URL through `on_ready`, and
/// serves until SIGINT or SIGTERM, finishing requests in flight.
pub async fn serve(settings: Settings, on_ready: impl FnOnce(&str)) -> anyhow::Result<()> {
    let bound = bind(settings).await?;
    on_ready(&bound.url);
    bound.serve(shutdown_signal()).await
}

/// Deletes expired tokens and assertion ids, and sign-ins past their retention, every
/// `retention.purge_interval_seconds`. Every node does it; the deletes are idempotent.
async fn purge_periodically(platform: Platform) {
    let retention = &platform.settings.retention;
    // (A zero period would make `interval` panic.)
    let every = std::time::Duration::from_secs(retention.purge_interval_seconds.max(1));
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let now = crate::now();
        let before = now - retention.sign_ins_seconds;
        match platform
            .store
            .purge_expired(now, before, retention.purge_batch)
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired sign-in data purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired sign-in data failed"),
        }
    }
}

/// Resolves at SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
