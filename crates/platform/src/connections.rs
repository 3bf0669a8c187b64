//! Serving connections: HTTP/1.1 on each accepted TCP connection, with the timeouts and the
//! cap that keep slow or idle clients from holding a node's memory and files.
//!
//! Written on hyper's connection API rather than with `axum::serve`, which sets no timer:
//! without one hyper cannot time out a client that sends half a header, or nothing at all.
//! - The header timeout (`server.header_read_timeout_seconds`) runs whenever the node waits
//!   for a request's head: from the connection's start, and again after each response, so
//!   it is also the keep-alive idle timeout. A connection that sends nothing, half a header,
//!   or stays idle between requests, is closed when it runs out.
//! - The body timeout (`server.body_timeout_seconds`) runs while a declared body is awaited,
//!   restarting with each piece that arrives.
//! - At most `server.max_connections` connections are served at once; further clients wait
//!   in the listen queue until a connection ends (they are not refused).
//!
//! The wait of a login page for its decision is the server's, not the client's: no timeout
//! here applies while a response is being prepared.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower_http::timeout::TimeoutBody;
use tower_service::Service;

use crate::guards;

/// How connections are served: the `server` settings that bound them.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown`
/// resolves; then lets every connection finish the request it is serving and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A slot first: beyond the cap, clients wait in the listen queue, not in memory.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of files or memory for a moment (EMFILE, ENFILE, ENOBUFS): wait rather
                // than spin; a connection reset before it was accepted needs nothing.
                tracing::debug!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Responses go out whole: Nagle's algorithm would only hold back the tail of one
        // that is written in parts until the client's delayed acknowledgement.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let router = router.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let request = with_peer_and_body_timeout(request, peer, limits);
                let mut router = router.clone();
                async move {
                    let response = guards::guarded(request, |request| async move {
                        match router.call(request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        }
                    })
                    .await;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = until_stopped(&mut stopped) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    let _ = stop.send(true);
    // Every slot back: every connection has finished.
    let _ = slots
        .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
        .await;
}

/// Resolves once the node stops (never, if the sender is gone without stopping).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    while !*stopped.borrow_and_update() {
        if stopped.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The request as handlers take it: the peer's address (`ConnectInfo`, for the rate
/// limits) and a body that times out when the client stops sending it.
fn with_peer_and_body_timeout(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    limits: ConnectionLimits,
) -> axum::extract::Request {
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    axum::extract::Request::from_parts(
        parts,
        Body::new(TimeoutBody::new(limits.body_timeout, body)),
    )
}
