//! The Tamga reference central receiver.
//!
//! HTTPS (rustls) requiring client certificates that chain to the station CA's root, with a revocation list of
//! station certificates (SHA-256 fingerprints, one per line; see [`revocation`]: it fails closed). `POST /v1/bundles`
//! takes a sealed bundle (the JWE text), decrypts and verifies it completely (`tamga_bundle::seal::open`), checks
//! that the TLS client is the station that signed it, records its place in the station's hash chain (gaps and forks
//! are reported by `GET /v1/stations/{id}`, derived from every link received, so a gap left by parallel uploads
//! closes when the missing bundle arrives), stores it (bundle, chain link, receipt, in that order: see [`store`])
//! and answers with a signed receipt; a repeated upload of a stored bundle returns the same receipt.
//! `GET /v1/stations/{id}` answers the station itself only. `GET /healthz`. `/metrics` (Prometheus text) and
//! `/healthz` are also served on a separate plain-HTTP operations listener ([`Options::metrics_listen`]), never to
//! stations.
//!
//! Status codes: 201 stored (receipt), 200 already stored (the same receipt), 400 not a bundle text, 403 client
//! certificate revoked, not the signing station, or another station's chain, 404 no bundle from the station yet,
//! 408 the body did not arrive in time (retry), 413 body too large, 422 the bundle fails verification (the station must not retry it), 500 storage failure
//! (retry), 503 the revocation list cannot be read (retry; `Retry-After`).
//!
//! Under load and abuse ([`Options`]): at most `max_connections` connections (the rest wait in the kernel's
//! backlog), each must finish its TLS handshake within `handshake_timeout`, accept errors (EMFILE) back off
//! (10 ms doubling to 1 s), and refused handshakes are logged once per `refusal_log_interval` (all are counted in
//! the metrics). The revocation check uses the connection's certificate before the body is read; at most
//! `max_concurrent_verifications` bodies are read and held in memory at once (the others wait, before reading,
//! for a slot: memory stays below that many times `max_body_bytes`); verification, storage and chain work run off
//! the async workers (`spawn_blocking`), under a lock per station, with each station's chain kept incrementally in
//! memory ([`store::ChainIndex`]) after one read of its append-only log.

pub mod revocation;
mod serve;
pub mod store;

use axum::Router;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use p256::pkcs8::DecodePrivateKey;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Storage;
use tamga_bundle::{BundleError, pki, receipt};
use tokio::net::TcpListener;
use tracing::{Instrument as _, error, info, warn};

/// Why the receiver cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CentralError {
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("the central key: {0}")]
    Key(String),
    #[error("certificates: {0}")]
    Certificate(#[from] BundleError),
    #[error(transparent)]
    Revocation(#[from] revocation::RevocationError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Limits and policies of a running receiver; `Options::default()` is what the binary uses unless told otherwise.
#[derive(Debug, Clone)]
pub struct Options {
    /// A TCP connection that has not completed its TLS handshake in this time is closed.
    pub handshake_timeout: Duration,
    /// Open connections at most (handshaking or established); beyond it new connections wait in the backlog.
    pub max_connections: usize,
    /// Uploads read and verified at once; the others wait for a slot before their body is read (waiting, not
    /// 503, so stations are not pushed into retries by a burst). Bodies in memory stay below this many times
    /// `max_body_bytes`.
    pub max_concurrent_verifications: usize,
    /// Time to receive an upload's body once its slot is free (`408 body_timeout` after it, the slot is freed).
    pub body_timeout: Duration,
    /// At most one warning per interval for refused handshakes (and accept errors); the rest are counted.
    pub refusal_log_interval: Duration,
    /// When the configured revocation list file does not exist: `false` (the default) refuses uploads, `true`
    /// counts it as empty.
    pub revocation_list_may_be_absent: bool,
    /// A plain-HTTP listener for `/metrics` and `/healthz` (keep it on loopback or an operations network).
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            handshake_timeout: Duration::from_secs(10),
            max_connections: 512,
            max_concurrent_verifications: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            body_timeout: Duration::from_secs(600),
            refusal_log_interval: Duration::from_secs(60),
            revocation_list_may_be_absent: false,
            metrics_listen: None,
        }
    }
}

/// What the receiver needs.
#[derive(Debug, Clone)]
pub struct CentralConfig {
    /// PEM: the central certificate (TLS server identity; its key receives sealed bundles).
    pub cert_pem: String,
    /// PEM: the central private key (PKCS#8).
    pub key_pem: String,
    /// PEM: the root CA station certificates must chain to.
    pub client_ca_pem: String,
    /// A file of revoked station certificate fingerprints (SHA-256 hex of the DER, one per line, `#` comments).
    pub revocation_list: Option<PathBuf>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub accepted: AtomicU64,
    /// TLS handshakes that failed (no or a bad certificate, not TLS at all).
    pub handshakes_refused: AtomicU64,
    /// Connections closed because their TLS handshake did not complete in time.
    pub handshakes_timed_out: AtomicU64,
    /// Upload bodies held in memory now, and the most at once since start (bounded by the verification slots).
    pub uploads_in_memory: AtomicU64,
    pub uploads_in_memory_peak: AtomicU64,
    /// Failed `accept` calls (the receiver backs off after each).
    pub accept_errors: AtomicU64,
    pub duplicates: AtomicU64,
    pub bytes: AtomicU64,
    pub rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    fn reject(&self, reason: &'static str) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }
}

struct Inner {
    central_secret: p256::SecretKey,
    central_pkcs8: Vec<u8>,
    root_der: Vec<u8>,
    store: Box<dyn Storage>,
    metrics: Arc<Metrics>,
    revocations: Option<revocation::RevocationList>,
    max_body_bytes: usize,
    body_timeout: Duration,
    /// Upload bodies read and verified at once ([`Options::max_concurrent_verifications`]).
    verifications: Arc<tokio::sync::Semaphore>,
    /// Rate limit of the "revocation list unusable" error.
    revocation_log: serve::RateLimit,
    /// Each station's lock and chain index (see [`Inner::chain_slot`]).
    chains: Mutex<std::collections::HashMap<String, ChainSlot>>,
}

/// The TLS client certificate of a connection (DER), put into each request by the accept loop.
#[derive(Debug, Clone)]
pub struct ClientCert(pub Option<Vec<u8>>);

fn json_error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

fn fingerprint(der: &[u8]) -> String {
    tamga_bundle::b64::sha256_hex(der)
}

/// A client that passed the revocation check.
#[derive(Debug)]
struct Caller {
    fingerprint: String,
    common_name: String,
}

/// The client certificate of the connection, checked against the revocation list (off the async workers). An
/// unreadable list refuses the request.
async fn authorize(s: &Arc<Inner>, client: &ClientCert) -> Result<Caller, Response> {
    let Some(cert) = client.0.clone() else {
        s.metrics.reject("no_client_certificate");
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "no_client_certificate",
            "a station certificate is required".into(),
        ));
    };
    let s2 = s.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let fp = fingerprint(&cert);
        let revoked = match &s2.revocations {
            Some(list) => list.is_revoked(&fp),
            None => Ok(false),
        };
        let cn = pki::cert_info(&cert).map(|i| i.common_name).unwrap_or_default();
        (fp, cn, revoked)
    })
    .await;
    let Ok((fp, cn, revoked)) = checked else {
        return Err(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the revocation check failed".into(),
        ));
    };
    match revoked {
        Ok(false) => Ok(Caller {
            fingerprint: fp,
            common_name: cn,
        }),
        Ok(true) => {
            s.metrics.reject("revoked");
            warn!(fingerprint = %fp, station = %cn, "refused: revoked station certificate");
            Err(json_error(
                StatusCode::FORBIDDEN,
                "revoked",
                format!("station certificate {fp} is revoked"),
            ))
        }
        Err(e) => {
            s.metrics.reject("revocation_list_unavailable");
            if let Some(suppressed) = s.revocation_log.allow() {
                error!(error = %e, suppressed, "refusing station requests: the revocation list is unusable");
            }
            let mut r = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "revocation_list_unavailable",
                e.to_string(),
            );
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("60"),
            );
            Err(r)
        }
    }
}

/// A body held in memory: a verification slot (bounding memory) and the in-memory gauge, released on drop.
struct InMemory {
    _permit: tokio::sync::OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl InMemory {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, metrics: Arc<Metrics>) -> InMemory {
        let now = metrics.uploads_in_memory.fetch_add(1, Ordering::Relaxed) + 1;
        metrics.uploads_in_memory_peak.fetch_max(now, Ordering::Relaxed);
        InMemory {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for InMemory {
    fn drop(&mut self) {
        self.metrics.uploads_in_memory.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A bundle that opened and verified, as much of it as storing needs.
struct Received {
    station_id: String,
    bundle_id: String,
    previous: String,
    digest: String,
    items: usize,
    /// The sealed bundle as received (not copied).
    body: axum::body::Bytes,
    _in_memory: InMemory,
}

fn verification_layer(e: &BundleError) -> &'static str {
    match e {
        BundleError::Envelope(_) => "envelope",
        BundleError::Archive(_) => "archive",
        BundleError::Manifest(_) => "manifest",
        BundleError::Signature(_) => "signature",
        BundleError::Certificate(_) => "certificate",
        BundleError::Item { .. } => "item",
        BundleError::Structure(_) => "structure",
        _ => "other",
    }
}

/// `POST /v1/bundles`: the revocation check on the connection's certificate first, then (holding one of the
/// verification slots) the body, read up to the limit, then verification off the async workers, then storage.
async fn post_bundle(
    State(s): State<Arc<Inner>>,
    Extension(client): Extension<ClientCert>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
    let caller = match authorize(&s, &client).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let span = tracing::info_span!(
        "upload",
        station = %caller.common_name,
        fingerprint = %caller.fingerprint,
        bytes = tracing::field::Empty,
        bundle = tracing::field::Empty,
    );
    async move {
        let received = match receive(&s, &caller, &headers, body).await {
            Ok(r) => r,
            Err(r) => return r,
        };
        record(&s, received).await
    }
    .instrument(span)
    .await
}

async fn receive(
    s: &Arc<Inner>,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Received, Response> {
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a bundle is at most {} bytes", s.max_body_bytes),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body_bytes as u64) {
        s.metrics.reject("too_large");
        return Err(too_large());
    }
    // Bodies in memory are bounded by the verification slots: wait for one before reading.
    let Ok(permit) = s.verifications.clone().acquire_owned().await else {
        return Err(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the receiver is stopping".into(),
        ));
    };
    let in_memory = InMemory::new(permit, s.metrics.clone());
    let limited = http_body_util::Limited::new(body, s.max_body_bytes);
    let collected = tokio::time::timeout(s.body_timeout, http_body_util::BodyExt::collect(limited)).await;
    let Ok(collected) = collected else {
        // A slow or stalled body must not hold a verification slot for ever.
        s.metrics.reject("body_timeout");
        return Err(json_error(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {} s (retry)",
                s.body_timeout.as_secs()
            ),
        ));
    };
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            s.metrics.reject("too_large");
            return Err(too_large());
        }
        Err(e) => {
            s.metrics.reject("body");
            return Err(json_error(
                StatusCode::BAD_REQUEST,
                "body",
                format!("reading the body: {e}"),
            ));
        }
    };
    tracing::Span::current().record("bytes", bytes.len());
    s.metrics.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Decryption and verification are CPU work: keep them off the async workers. The body is shared, not copied.
    let opened = {
        let (s2, b2) = (s.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || {
            let Ok(text) = std::str::from_utf8(&b2) else {
                return None;
            };
            let text = text.trim();
            if text.split('.').count() != 5 {
                return None;
            }
            Some(
                tamga_bundle::seal::open(text, &s2.central_secret, &s2.root_der, now).map(|v| {
                    // Only what storing needs leaves this thread; the decrypted items are dropped here.
                    (v.manifest, v.manifest_sha256, v.items.len())
                }),
            )
        })
        .await
    };
    let opened = match opened {
        Ok(Some(o)) => o,
        Ok(None) => {
            s.metrics.reject("not_a_bundle");
            return Err(json_error(
                StatusCode::BAD_REQUEST,
                "not_a_bundle",
                "the body is not a JWE compact serialization".into(),
            ));
        }
        Err(_) => {
            return Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "verification task failed".into(),
            ));
        }
    };
    let (manifest, digest, items) = match opened {
        Ok(v) => v,
        Err(e) => {
            let layer = verification_layer(&e);
            s.metrics.reject(layer);
            warn!(error = %e, "rejected bundle");
            return Err(json_error(StatusCode::UNPROCESSABLE_ENTITY, layer, e.to_string()));
        }
    };
    tracing::Span::current().record("bundle", manifest.bundle_id.as_str());
    if manifest.station_id != caller.common_name {
        s.metrics.reject("wrong_station");
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "wrong_station",
            format!(
                "connected as station `{}` but the bundle is signed by `{}`",
                caller.common_name, manifest.station_id
            ),
        ));
    }
    Ok(Received {
        station_id: manifest.station_id,
        bundle_id: manifest.bundle_id,
        previous: manifest.previous_bundle_sha256,
        digest,
        items,
        body: bytes,
        _in_memory: in_memory,
    })
}

/// A station's chain in memory, loaded from the store on first use; `None` also after a failed append (the next
/// use reloads it from the store, which cuts a torn line).
type ChainSlot = Arc<tokio::sync::Mutex<Option<store::ChainIndex>>>;

impl Inner {
    /// The lock (and cached chain) of one station: uploads of different stations never wait for each other.
    fn chain_slot(&self, station: &str) -> ChainSlot {
        let mut map = match self.chains.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(station.to_owned()).or_default().clone()
    }
}

/// The station's chain index, loading it on first use (blocking).
fn loaded<'a>(
    store: &dyn Storage,
    slot: &'a mut Option<store::ChainIndex>,
    station: &str,
) -> Result<&'a mut store::ChainIndex, store::StoreError> {
    let index = match slot.take() {
        Some(i) => i,
        None => {
            store.recover(station)?;
            store::ChainIndex::from_links(store.links(station)?)
        }
    };
    Ok(slot.insert(index))
}

enum Stored {
    New(String),
    Duplicate(String),
}

/// The blocking part of storing, under the station's lock: the bundle, then its link, then the receipt, so the
/// chain is never behind a receipt; a duplicate whose link is missing (an old store) gets it back.
fn store_blocking(
    s: &Inner,
    slot: &mut Option<store::ChainIndex>,
    r: &Received,
) -> Result<Stored, (&'static str, String)> {
    let storage = |e: store::StoreError| ("storage", e.to_string());
    let index = loaded(s.store.as_ref(), slot, &r.station_id).map_err(storage)?;
    let link = store::Link {
        bundle_id: r.bundle_id.clone(),
        previous: r.previous.clone(),
        digest: r.digest.clone(),
    };
    let existing = s.store.receipt(&r.station_id, &r.bundle_id).map_err(storage)?;
    if existing.is_none() {
        s.store
            .put_bundle(&r.station_id, &r.bundle_id, &r.body)
            .map_err(storage)?;
    }
    if !index.contains(&r.bundle_id) {
        if let Err(e) = s.store.append_link(&r.station_id, &link) {
            *slot = None;
            return Err(storage(e));
        }
        if existing.is_some() {
            warn!("a stored bundle had no chain link: repaired");
        }
        let previous = link.previous.clone();
        index.push(link);
        if index.is_anomalous(&previous) {
            warn!(previous = %previous, "hash chain anomaly (for now: a gap can close when a late bundle arrives)");
        }
    }
    if let Some(receipt) = existing {
        return Ok(Stored::Duplicate(receipt));
    }
    let receipt = receipt::Receipt {
        bundle_id: r.bundle_id.clone(),
        station_id: r.station_id.clone(),
        manifest_sha256: r.digest.clone(),
        received_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        storage_ref: s.store.reference(&r.station_id, &r.bundle_id),
    };
    let signed = receipt::sign(&receipt, &s.central_pkcs8).map_err(|e| ("receipt", e.to_string()))?;
    s.store
        .put_receipt(&r.station_id, &r.bundle_id, &signed)
        .map_err(storage)?;
    Ok(Stored::New(signed))
}

/// Stores a verified bundle, its chain link and its receipt (off the async workers, under the station's lock); a
/// bundle stored before gets its receipt again.
async fn record(s: &Arc<Inner>, r: Received) -> Response {
    let slot = s.chain_slot(&r.station_id).lock_owned().await;
    let s2 = s.clone();
    let span = tracing::Span::current();
    let done = tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        let mut slot = slot;
        let out = store_blocking(&s2, &mut slot, &r);
        (out, r.items)
    })
    .await;
    match done {
        Ok((Ok(Stored::New(signed)), items)) => {
            s.metrics.accepted.fetch_add(1, Ordering::Relaxed);
            info!(items, "bundle stored");
            (
                StatusCode::CREATED,
                axum::Json(serde_json::json!({"receipt": signed, "duplicate": false})),
            )
                .into_response()
        }
        Ok((Ok(Stored::Duplicate(receipt)), _)) => {
            s.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({"receipt": receipt, "duplicate": true})),
            )
                .into_response()
        }
        Ok((Err((code, message)), _)) => {
            s.metrics.reject(code);
            error!(error = %message, "storing failed (the station will retry)");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, code, message)
        }
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the storage task failed".into(),
        ),
    }
}

async fn get_station(
    State(s): State<Arc<Inner>>,
    Extension(client): Extension<ClientCert>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let caller = match authorize(&s, &client).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if caller.common_name != id {
        s.metrics.reject("not_your_station");
        return json_error(
            StatusCode::FORBIDDEN,
            "not_your_station",
            format!(
                "connected as station `{}`: a station reads its own chain only",
                caller.common_name
            ),
        );
    }
    let slot = s.chain_slot(&id).lock_owned().await;
    let s2 = s.clone();
    let id2 = id.clone();
    let status = tokio::task::spawn_blocking(move || {
        let mut slot = slot;
        let i = loaded(s2.store.as_ref(), &mut slot, &id2)?;
        if i.is_empty() {
            return Ok::<_, store::StoreError>(None);
        }
        let anomalies = i.anomalies();
        Ok(Some(serde_json::json!({
            "station_id": id2, "bundles": i.len(), "last_bundle_id": i.last_bundle_id(),
            "chain_tip_sha256": i.tip(),
            "chain": if anomalies.is_empty() { "intact" } else { "anomalies" }, "anomalies": anomalies,
        })))
    })
    .await;
    match status {
        Ok(Ok(Some(v))) => axum::Json(v).into_response(),
        Ok(Ok(None)) => json_error(
            StatusCode::NOT_FOUND,
            "unknown_station",
            format!("no bundle from `{id}`"),
        ),
        Ok(Err(e)) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the storage task failed".into(),
        ),
    }
}

async fn metrics_text(State(s): State<Arc<Inner>>) -> String {
    let m = &s.metrics;
    let mut out = String::new();
    out.push_str("# TYPE tamga_central_bundles_accepted_total counter\n");
    out.push_str(&format!(
        "tamga_central_bundles_accepted_total {}\n",
        m.accepted.load(Ordering::Relaxed)
    ));
    out.push_str("# TYPE tamga_central_bundles_duplicate_total counter\n");
    out.push_str(&format!(
        "tamga_central_bundles_duplicate_total {}\n",
        m.duplicates.load(Ordering::Relaxed)
    ));
    out.push_str("# TYPE tamga_central_received_bytes_total counter\n");
    out.push_str(&format!(
        "tamga_central_received_bytes_total {}\n",
        m.bytes.load(Ordering::Relaxed)
    ));
    for (name, v) in [
        ("tamga_central_handshakes_refused_total", &m.handshakes_refused),
        (
            "tamga_central_handshakes_timed_out_total",
            &m.handshakes_timed_out,
        ),
        ("tamga_central_accept_errors_total", &m.accept_errors),
    ] {
        out.push_str(&format!(
            "# TYPE {name} counter\n{name} {}\n",
            v.load(Ordering::Relaxed)
        ));
    }
    for (name, v) in [
        ("tamga_central_uploads_in_memory", &m.uploads_in_memory),
        ("tamga_central_uploads_in_memory_peak", &m.uploads_in_memory_peak),
    ] {
        out.push_str(&format!(
            "# TYPE {name} gauge\n{name} {}\n",
            v.load(Ordering::Relaxed)
        ));
    }
    out.push_str("# TYPE tamga_central_rejections_total counter\n");
    if let Ok(r) = m.rejected.lock() {
        for (reason, n) in r.iter() {
            out.push_str(&format!(
                "tamga_central_rejections_total{{reason=\"{reason}\"}} {n}\n"
            ));
        }
    }
    out
}

/// Builds the TLS configuration: the central identity, and client certificates required, verified to the root.
pub fn tls_config(config: &CentralConfig) -> Result<rustls::ServerConfig, CentralError> {
    let tls = |e: rustls::Error| CentralError::Tls(e.to_string());
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for der in pki::certs_from_pem(&config.client_ca_pem)? {
        roots.add(CertificateDer::from(der)).map_err(tls)?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| CentralError::Tls(e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = pki::certs_from_pem(&config.cert_pem)?
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki::pkcs8_from_pem(&config.key_pem)?));
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(tls)?;
    Ok(cfg)
}

/// Reads a private key file, refusing one that group or others can read or write (it must be 0600 or stricter).
pub fn read_private_key(path: &std::path::Path) -> Result<String, CentralError> {
    tamga_bundle::pki::read_private_key(path).map_err(|e| CentralError::Key(e.to_string()))
}

/// A running receiver.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served (plain HTTP), when [`Options::metrics_listen`] asked for it.
    pub metrics_addr: Option<SocketAddr>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting and closes every open connection (the port is free once this returns).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Starts serving on `listener` with `store` and [`Options::default`], except that an absent revocation list file
/// counts as empty (the embedded receiver of `tamga demo` and of tests, which create the file only to revoke).
pub fn start(
    config: CentralConfig,
    store: Box<dyn Storage>,
    listener: TcpListener,
) -> Result<Running, CentralError> {
    let options = Options {
        revocation_list_may_be_absent: true,
        ..Options::default()
    };
    start_with(config, options, store, listener)
}

/// Starts serving on `listener` with `store` and `options`.
pub fn start_with(
    config: CentralConfig,
    options: Options,
    store: Box<dyn Storage>,
    listener: TcpListener,
) -> Result<Running, CentralError> {
    let tls = Arc::new(tls_config(&config)?);
    let central_secret =
        p256::SecretKey::from_pkcs8_pem(&config.key_pem).map_err(|e| CentralError::Key(e.to_string()))?;
    let central_pkcs8 = pki::pkcs8_from_pem(&config.key_pem)?;
    let root_der = pki::certs_from_pem(&config.client_ca_pem)?
        .into_iter()
        .next()
        .ok_or_else(|| CentralError::Tls("the client CA file holds no certificate".into()))?;
    let max_body = config.max_body_bytes;
    let metrics = Arc::new(Metrics::default());
    let revocations = match &config.revocation_list {
        Some(path) => Some(revocation::RevocationList::load(
            path,
            options.revocation_list_may_be_absent,
        )?),
        None => None,
    };
    let inner = Arc::new(Inner {
        central_secret,
        central_pkcs8,
        root_der,
        store,
        metrics: metrics.clone(),
        revocations,
        max_body_bytes: max_body,
        body_timeout: options.body_timeout,
        verifications: Arc::new(tokio::sync::Semaphore::new(
            options.max_concurrent_verifications.max(1),
        )),
        revocation_log: serve::RateLimit::new(options.refusal_log_interval),
        chains: Mutex::new(std::collections::HashMap::new()),
    });
    let app = Router::new()
        .route("/v1/bundles", post(post_bundle))
        .route("/v1/stations/{id}", get(get_station))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(inner.clone());
    // Metrics are for operators, not stations: a listener of their own (plain HTTP; bind it to loopback or an
    // operations network).
    let metrics_listener = match options.metrics_listen {
        Some(at) => {
            let l = std::net::TcpListener::bind(at)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(TcpListener::from_std)
                .map_err(|source| CentralError::Io {
                    context: format!("binding the metrics listener {at}"),
                    source,
                })?;
            Some(l)
        }
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr().map_err(|source| CentralError::Io {
            context: "the metrics listener's address".into(),
            source,
        })?),
        None => None,
    };
    let metrics_app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(inner);
    let addr = listener.local_addr().map_err(|source| CentralError::Io {
        context: "the listener's address".into(),
        source,
    })?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let limits = Arc::new(serve::Limits {
        handshake_timeout: options.handshake_timeout,
        max_connections: options.max_connections,
        refusals: serve::RateLimit::new(options.refusal_log_interval),
        accept_errors: serve::RateLimit::new(options.refusal_log_interval),
    });
    // Aborting `Running::task` drops the accept loop, which owns (and so closes) every connection.
    let task = tokio::spawn(async move {
        let stations = serve::accept_loop(listener, acceptor, app, limits, metrics);
        match metrics_listener {
            Some(l) => {
                tokio::join!(stations, serve::plain_loop(l, metrics_app));
            }
            None => stations.await,
        }
    });
    Ok(Running {
        addr,
        metrics_addr,
        task,
    })
}
