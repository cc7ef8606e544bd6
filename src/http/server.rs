//! The HTTP/1.1 accept loop: one task per connection, hyper's options chosen for ingest, and a
//! graceful drain on stop.
//!
//! `axum::serve` does the same with hyper's defaults, which axum does not let us change. One of them
//! costs every keep-alive request: while a handler runs, hyper reads the socket to notice a client
//! that went away, and as the request still borrows its read buffer, that read allocates a fresh
//! 8 KB one (~5 % of the async worker's CPU in an ingest run, most of it in glibc's
//! `malloc_consolidate`). With half-close allowed, hyper reads the next request only once the
//! response is written, into the same buffer. It also means a client that closes its sending side
//! right after a beacon still gets its answer and its pageview stored, instead of a cancelled handler.

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Frontend;

/// Serves `frontend` on `listener` until `stop`, then stops accepting, lets every connection finish
/// its in-flight request and waits for them all. Each request is answered with its peer's address.
pub async fn serve(listener: TcpListener, frontend: Frontend, stop: CancellationToken) {
    let connections = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.half_close(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        // Responses go out in one write; without Nagle's delay a client's next request can't wait on
        // an unacknowledged segment either.
        let _ = stream.set_nodelay(true);
        let frontend = frontend.clone();
        // The answer's future is not boxed: hyper keeps it in the connection's own allocation.
        let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
            let answer = frontend.clone().answer(peer, request.map(Body::new));
            async move { Ok::<Response, Infallible>(answer.await) }
        });
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), handler));
        tokio::spawn(async move {
            // A client that resets or stalls its connection is its own business, not the server's.
            if let Err(err) = connection.await {
                tracing::trace!(error = %err, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// A failed accept: the peer's own failures are skipped; anything else (out of file descriptors)
/// is logged and waited out, so the loop does not spin, as `axum::serve` does.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(err.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
