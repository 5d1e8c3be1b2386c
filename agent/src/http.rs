//! The local API's HTTP/1.1 server: hyper under the axum router, with the limits a loopback port needs.
//!
//! Every account on the workstation can connect to a loopback port, so the server must keep answering the
//! operator whatever other processes do:
//! - a request's head must arrive within [`ApiLimits::header_read_timeout`], which is also the most a
//!   connection may sit idle between requests (hyper's header-read timer runs from the moment it waits for a
//!   head): silent and slow ("slowloris") clients are closed;
//! - at most [`ApiLimits::max_connections`] connections are open. At the limit a new connection takes the place of
//!   the one idle longest (no request in flight, no response body streaming); when every connection is busy, the
//!   new one is closed. So idle sockets, however many, never keep the operator's page out;
//! - accept errors (EMFILE: out of file descriptors) back off instead of spinning, and are logged at most once a
//!   second;
//! - shutdown stops accepting, lets requests in flight finish (their durable writes included) and closes idle
//!   connections.
//!
//! axum's own `serve` has none of these knobs (no timer, so no header timeout; no connection cap), hence this
//! accept loop.

use crate::api::ApiLimits;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt as _;
use tracing::{debug, warn};

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(35);

/// One open connection, as the limit sees it.
#[derive(Debug)]
struct Conn {
    /// Requests in flight, counting a response body still being sent (an event stream, the live view).
    in_flight: AtomicUsize,
    /// When the connection last started or finished a request (ms since the server started).
    last_active_ms: AtomicU64,
    /// Closes the connection when the limit needs its place.
    evict: Notify,
}

/// The open connections.
#[derive(Debug)]
struct Registry {
    started: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Makes room for one more connection: `false` when the limit is reached and no connection is idle.
    fn admit(&self, max: usize) -> bool {
        let Ok(conns) = self.conns.lock() else {
            return false;
        };
        if conns.len() < max {
            return true;
        }
        let victim = conns
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.last_active_ms.load(Ordering::Acquire));
        match victim {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(self.now_ms()),
            evict: Notify::new(),
        });
        if let Ok(mut conns) = self.conns.lock() {
            conns.insert(id, conn.clone());
        }
        (id, conn)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut conns) = self.conns.lock() {
            conns.remove(&id);
        }
    }
}

/// A request in flight on a connection, until its response body is dropped.
struct InFlight {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl InFlight {
    fn enter(conn: Arc<Conn>, registry: Arc<Registry>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.last_active_ms.store(registry.now_ms(), Ordering::Release);
        InFlight { conn, registry }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn
            .last_active_ms
            .store(self.registry.now_ms(), Ordering::Release);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until it is sent or dropped.
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Logs a repeated warning at most once a second.
#[derive(Debug, Default)]
struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn warn(&mut self, what: &str, error: &dyn std::fmt::Display) {
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            self.suppressed += 1;
            return;
        }
        warn!(error = %error, suppressed = self.suppressed, "{what}");
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then drains (see the module doc).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ApiLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let registry = Arc::new(Registry {
        started: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::default(),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut accept_errors = RateLimited::default();
    let mut refusals = RateLimited::default();
    let mut backoff = Duration::from_millis(10);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        // Reap finished connection tasks as we go.
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS...: wait, rather than spin on an error that repeats at once.
                accept_errors.warn("accepting a connection failed; backing off", &e);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut shutdown => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if !registry.admit(limits.max_connections) {
            refusals.warn(
                "connection refused: every connection is busy",
                &format_args!("{} open (api max_connections)", limits.max_connections),
            );
            drop(stream);
            continue;
        }
        let (id, conn) = registry.add();
        let service = {
            let (app, conn, registry) = (app.clone(), conn.clone(), registry.clone());
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let in_flight = InFlight::enter(conn.clone(), registry.clone());
                let app = app.clone();
                async move {
                    let res = app.oneshot(req.map(Body::new)).await;
                    res.map(|r| {
                        r.map(|inner| {
                            Body::new(Tracked {
                                inner,
                                _in_flight: in_flight,
                            })
                        })
                    })
                }
            })
        };
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let (registry, mut stop) = (registry.clone(), stop_rx.clone());
        tasks.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                r = connection.as_mut() => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "connection ended");
                    }
                }
                () = conn.evict.notified() => debug!(%peer, "idle connection closed for a new one"),
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            registry.remove(id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        warn!("requests still in flight after {DRAIN:?}; stopping anyway");
    }
}
