//! A platform node's life: bound to its address ([`bind`]), served until a signal
//! ([`Bound::serve`], [`serve`]), purging expired data meanwhile.

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::platform::Platform;
use crate::routes::router;
use crate::settings::Settings;

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
