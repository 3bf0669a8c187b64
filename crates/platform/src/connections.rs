//! Serving connections: HTTP/1.1 on each accepted TCP connection, with the timeouts and the
//! cap that keep slow or idle clients from holding a node's memory and files.
//!
//! Written on hyper's connection API rather than with `axum::serve`, which sets no timer:
//! without one hyper cannot time out a client that sends half a header, or nothing at all.
//! - The header timeout (`server.header_read_timeout_seconds`) runs whenever the node waits
//!   for a request's head: from the connection's start, and again after each response, so
//!   it is also the keep-alive idle timeout. A connection that sends nothing, half a header,
//!   or stays idle between requests, is closed when it runs out.
//! - The body timeout (`server.body_timeout_seconds`) bounds the whole of a declared body,
//!   from when the node starts reading it: a client that stops sending it, or sends it a
//!   byte at a time, is refused and the connection closed.
//! - The send timeout (`server.send_timeout_seconds`) runs while an answer waits for the
//!   client to take more of it: a client that asks and never reads is closed instead of
//!   holding its answers in the node's memory and its connection for good.
//! - At most `server.max_connections` connections are served at once; further clients wait
//!   in the listen queue until a connection ends (they are not refused).
//!
//! The wait of a login page for its decision is the server's, not the client's: no timeout
//! here applies while a response is being prepared.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Sleep;
use tokio_io_timeout::TimeoutWriter;
use tower_service::Service;

use crate::guards;

/// How connections are served: the `server` settings that bound them.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub body_timeout: Duration,
    pub send_timeout: Duration,
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
            // hyper times out neither a write nor a flush: a client that stops reading
            // would hold the connection, and its answers, for good.
            let mut stream = TimeoutWriter::new(stream);
            stream.set_timeout(Some(limits.send_timeout));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(Box::pin(stream)), service);
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
/// limits) and a body that must arrive within the body timeout.
fn with_peer_and_body_timeout(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    limits: ConnectionLimits,
) -> axum::extract::Request {
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    axum::extract::Request::from_parts(
        parts,
        Body::new(BodyWithDeadline {
            body,
            limit: limits.body_timeout,
            deadline: None,
        }),
    )
}

/// A request body that must arrive whole within `limit` of when it is first read.
///
/// Written here because tower-http's `TimeoutBody` restarts its timer with every piece of
/// the body, so a client that sends a byte every few seconds would hold its connection
/// for hours; no maintained crate bounds the body as a whole.
struct BodyWithDeadline {
    body: Incoming,
    limit: Duration,
    /// Set at the first read: a handler that reads no body never starts a timer.
    deadline: Option<Pin<Box<Sleep>>>,
}

/// The error a body past its deadline ends with; extractors report it as a refusal.
#[derive(Debug)]
struct BodyTooSlow(Duration);

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTooSlow {}

impl http_body::Body for BodyWithDeadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let limit = this.limit;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                Poll::Ready(frame.map(|frame| frame.map_err(|e| Box::new(e) as Self::Error)))
            }
            Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Some(Err(Box::new(BodyTooSlow(limit)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    // The declared length, so that a body declared too large is refused before it is read.
    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
