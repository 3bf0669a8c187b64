//! A platform node's life: bound to its address ([`bind`]), served until a signal
//! ([`Bound::serve`], [`serve`]), purging expired data meanwhile.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use cyberid_store::{PurgeCutoffs, StoreError};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::connections;
use crate::platform::Platform;
use crate::routes::router;
use crate::settings::Settings;
use crate::telemetry;

/// A platform node bound to its address, not yet serving: its URL is known (port 0 picks a
/// free port), and the store can be prepared before the first request.
pub struct Bound {
    pub platform: Platform,
    /// The public base URL: `server.issuer`, or `http://` and the bound address.
    pub url: String,
    /// The address the node listens on.
    pub address: SocketAddr,
    /// The metrics listener's address, when `metrics.listen` is set.
    pub metrics_address: Option<SocketAddr>,
    listener: TcpListener,
    metrics: Option<(TcpListener, PrometheusHandle)>,
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
    let metrics = match settings.metrics.listen {
        Some(listen) => {
            let handle = telemetry::recorder()
                .map_err(|e| anyhow::anyhow!("the metrics recorder could not be installed: {e}"))?;
            let listener = TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {listen}: {e}"))?;
            Some((listener, handle))
        }
        None => None,
    };
    let metrics_address = match &metrics {
        Some((listener, _)) => Some(listener.local_addr()?),
        None => None,
    };
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
        metrics_address,
        listener,
        metrics,
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
            metrics,
            metrics_address,
            ..
        } = self;
        tracing::info!(address = %address, issuer = %platform.issuer, store = platform.store.backend(), "platform listening");
        let purging = tokio::spawn(purge_periodically(platform.clone()));
        let syncing = tokio::spawn(sync_limits_periodically(platform.clone()));
        let limits = platform.settings.server.connection_limits();
        let exporting = metrics.map(|(listener, handle)| {
            if let Some(metrics_address) = metrics_address {
                tracing::info!(address = %metrics_address, "metrics listening");
            }
            tokio::spawn(serve_metrics(listener, handle, limits))
        });
        let stopping = platform.clone();
        let node = platform.clone();
        connections::serve(listener, router(platform), limits, async move {
            shutdown.await;
            // Login pages waiting for a decision answer now instead of holding the shutdown.
            stopping.decisions.close();
        })
        .await;
        purging.abort();
        syncing.abort();
        if let Some(exporting) = exporting {
            exporting.abort();
        }
        // Counts admitted since the last sync reach the store before the node goes.
        if let Err(e) = node.limits.sync(node.store.as_ref(), crate::now()).await {
            tracing::warn!(error = %e, "rate-limit counts could not be saved at shutdown");
        }
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

/// Deletes expired assertion ids, sign-ins past their retention and ended rate-limit
/// counters, every `retention.purge_interval_seconds`. Every node does it; the deletes are
/// idempotent.
async fn purge_periodically(platform: Platform) {
    let retention = &platform.settings.retention;
    // (A zero period would make `interval` panic.)
    let every = std::time::Duration::from_secs(retention.purge_interval_seconds.max(1));
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let now = crate::now();
        let cutoffs = PurgeCutoffs {
            now,
            unfinished_before: now - retention.unfinished_sign_ins_seconds,
            approved_before: now - retention.sign_ins_seconds,
        };
        match platform
            .store
            .purge_expired(cutoffs, retention.purge_batch)
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired sign-in data purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired sign-in data failed"),
        }
        match purge_counters(&platform, now).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "ended rate-limit counters purged"),
            Err(e) => tracing::warn!(error = %e, "purging rate-limit counters failed"),
        }
    }
}

async fn purge_counters(platform: &Platform, now: i64) -> Result<u64, StoreError> {
    let batch = platform.settings.retention.purge_batch.max(1);
    let mut purged = 0;
    loop {
        let deleted = platform.store.purge_counters(now, batch).await?;
        purged += deleted;
        if deleted < u64::from(batch) {
            return Ok(purged);
        }
    }
}

/// `GET /metrics` on the metrics listener, and the recorder's upkeep (histograms drained
/// every few seconds, so that they do not grow between scrapes). Its connections are
/// bounded as the public listener's are: a slow client there must not hold the node's
/// files either.
async fn serve_metrics(
    listener: TcpListener,
    handle: PrometheusHandle,
    limits: connections::ConnectionLimits,
) {
    let upkeep = handle.clone();
    let upkeeping = async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    };
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    // Both run until the node stops and aborts this task, ending both (a spawned upkeep
    // would outlive the node).
    tokio::join!(
        upkeeping,
        connections::serve(listener, router, limits, std::future::pending())
    );
}

/// Adds this node's rate-limit counts to the store's every `limits.sync_interval_ms`.
async fn sync_limits_periodically(platform: Platform) {
    let every = std::time::Duration::from_millis(platform.settings.limits.sync_interval_ms.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = platform
            .limits
            .sync(platform.store.as_ref(), crate::now())
            .await
        {
            tracing::warn!(error = %e, "rate-limit counts could not be synced with the store");
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
