//! The accept loop of the mutual-TLS listener: a connection cap, a TLS handshake timeout, back-off on accept errors
//! (EMFILE and the like) and rate-limited warnings, so idle or hostile connections cannot take the receiver from the
//! stations.

use crate::{ClientCert, Metrics};
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::warn;

/// Something connections come from: a TCP listener, or a test double.
pub(crate) trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&mut self) -> std::io::Result<(Self::Io, SocketAddr)> {
        tokio::net::TcpListener::accept(self).await
    }
}

/// At most one message per interval; the ones in between are counted and reported with the next.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    pub(crate) fn new(interval: Duration) -> RateLimit {
        RateLimit {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when this event may be logged (`n` events were suppressed since the last one), `None` otherwise.
    pub(crate) fn allow(&self) -> Option<u64> {
        let Ok(mut s) = self.state.lock() else {
            return Some(0);
        };
        let now = Instant::now();
        match s.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                s.1 += 1;
                None
            }
            _ => {
                let suppressed = s.1;
                *s = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

/// The first pause after an accept error; it doubles up to [`MAX_BACKOFF`] while errors continue.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub(crate) struct Limits {
    pub handshake_timeout: Duration,
    pub max_connections: usize,
    pub refusals: RateLimit,
    pub accept_errors: RateLimit,
}

/// Accepts connections until aborted. The connections belong to this future: dropping it closes them all.
pub(crate) async fn accept_loop<L: Accept>(
    mut listener: L,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    let mut backoff = Duration::ZERO;
    loop {
        // At the cap, stop accepting: new connections wait in the kernel's backlog until a slot frees.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return; // the semaphore is never closed
        };
        let (io, peer) = match listener.accept().await {
            Ok(c) => {
                backoff = Duration::ZERO;
                c
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                metrics.accept_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = limits.accept_errors.allow() {
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, suppressed,
                        "accepting a connection failed (too many open files?): backing off");
                }
                drop(slot);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let app = app.clone();
        let limits = limits.clone();
        let metrics = metrics.clone();
        connections.spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(io)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    metrics.handshakes_refused.fetch_add(1, Ordering::Relaxed);
                    if let Some(suppressed) = limits.refusals.allow() {
                        warn!(%peer, error = %e, suppressed, "TLS handshake refused (later ones are counted in /metrics)");
                    }
                    return;
                }
                Err(_) => {
                    metrics.handshakes_timed_out.fetch_add(1, Ordering::Relaxed);
                    if let Some(suppressed) = limits.refusals.allow() {
                        warn!(%peer, timeout_ms = limits.handshake_timeout.as_millis() as u64, suppressed,
                            "TLS handshake timed out: connection closed (later ones are counted in /metrics)");
                    }
                    return;
                }
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec());
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientCert(cert.clone()));
                let app = app.clone();
                async move { tower::ServiceExt::oneshot(app, req.map(axum::body::Body::new)).await }
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            // A station that opens a connection and sends no request head releases its slot after a while too.
            let mut b = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            b.http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let _ = b.serve_connection(io, svc).await;
        });
    }
}

/// How long a connection may take to send a request head (after the TLS handshake).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections of the plain-HTTP operations listener at once.
const PLAIN_CONNECTIONS: usize = 32;

/// Serves `app` over plain HTTP (the operations listener: `/metrics`, `/healthz`) until aborted, with a small
/// connection cap, back-off on accept errors and a read timeout for request headers.
pub(crate) async fn plain_loop(listener: tokio::net::TcpListener, app: Router) {
    let slots = Arc::new(tokio::sync::Semaphore::new(PLAIN_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    let mut backoff = Duration::ZERO;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let io = match listener.accept().await {
            Ok((io, _)) => {
                backoff = Duration::ZERO;
                io
            }
            Err(_) => {
                backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                drop(slot);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let app = app.clone();
        connections.spawn(async move {
            let _slot = slot;
            let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move { tower::ServiceExt::oneshot(app, req.map(axum::body::Body::new)).await }
            });
            let mut b = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            b.http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let _ = b.serve_connection(hyper_util::rt::TokioIo::new(io), svc).await;
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A listener that fails like a process out of file descriptors, recording when it was asked.
    struct Exhausted {
        calls: Arc<Mutex<Vec<Instant>>>,
    }

    impl Accept for Exhausted {
        type Io = tokio::io::DuplexStream;
        async fn accept(&mut self) -> std::io::Result<(Self::Io, SocketAddr)> {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(Instant::now());
                calls.len()
            };
            if n > 1000 {
                // Enough to see a spinning loop; wait forever so paused time can advance.
                std::future::pending::<()>().await;
            }
            tokio::task::yield_now().await;
            Err(std::io::Error::from_raw_os_error(24)) // EMFILE
        }
    }

    #[tokio::test(start_paused = true)]
    async fn accept_errors_back_off_instead_of_spinning() {
        let p = tamga_bundle::devpki::generate("W").unwrap();
        let config = crate::CentralConfig {
            cert_pem: p.central.clone(),
            key_pem: p.central_key.clone(),
            client_ca_pem: p.root_ca.clone(),
            revocation_list: None,
            max_body_bytes: 1 << 20,
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(crate::tls_config(&config).unwrap()));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let limits = Arc::new(Limits {
            handshake_timeout: Duration::from_secs(1),
            max_connections: 4,
            refusals: RateLimit::new(Duration::from_secs(60)),
            accept_errors: RateLimit::new(Duration::from_secs(60)),
        });
        let metrics = Arc::new(Metrics::default());
        let task = tokio::spawn(accept_loop(
            Exhausted { calls: calls.clone() },
            acceptor,
            Router::new(),
            limits,
            metrics.clone(),
        ));
        // Ten seconds of (paused, auto-advancing) time with every accept failing.
        tokio::time::sleep(Duration::from_secs(10)).await;
        task.abort();
        let calls = calls.lock().unwrap();
        // 10 + 20 + ... + 640 ms, then one attempt a second: about 17 attempts, not millions.
        assert!(calls.len() < 30, "{} accept attempts in 10 s", calls.len());
        let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| *g >= MIN_BACKOFF), "{gaps:?}");
        assert_eq!(gaps.last().copied(), Some(MAX_BACKOFF));
        assert_eq!(metrics.accept_errors.load(Ordering::Relaxed), calls.len() as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_lets_one_through_per_interval_and_counts_the_rest() {
        let r = RateLimit::new(Duration::from_secs(60));
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), None);
        assert_eq!(r.allow(), None);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(r.allow(), Some(2));
        assert_eq!(r.allow(), None);
    }
}
