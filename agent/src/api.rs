//! The local API of the window workstation: HTTP/JSON on loopback for the operator's page.
//!
//! Security a web page cannot get around: every request needs the bearer token (a file created at first start,
//! 0600, or 0640 for the daemon's group); the Host header must be the loopback name and port (defeats DNS rebinding); a request with an Origin
//! must come from the configured allowlist (exact match, echoed back, never `*`); bodies are size-limited; the
//! configuration refuses a non-loopback listen address. Errors are JSON: `{"error": code, "message", "action"}`.
//!
//! Devices are used by one request at a time: a second request for a busy device gets `409 device_busy` at once.

use crate::capture::fingers::{ExceptionReason, FingerPosition, Policy};
use crate::outbox::Outbox;
use crate::session::{ApplicantSession, SessionError};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tamga_bundle::manifest::Device;
use tamga_bundle::seal::StationSigner;
use tamga_drivers::mrz_serial::MrzReader;
use tamga_drivers::ptp::device::PhotoCamera;
use tamga_drivers::zfm::{CaptureOutcome, FingerprintScanner};
use tamga_quality::photo::PhotoPolicy;
use tokio::sync::Mutex;

/// The station's devices, one lock each.
#[derive(Default)]
pub struct Devices {
    pub document: Option<(Mutex<MrzReader>, Device)>,
    pub fingerprint: Option<(Mutex<FingerprintScanner>, Device)>,
    pub camera: Option<(Arc<std::sync::Mutex<PhotoCamera>>, Device)>,
    /// Ports the supervisor watches for arrival and removal: (role, path).
    pub watch: Vec<(&'static str, std::path::PathBuf)>,
    /// A still capture is in progress (the preview shares the camera's lock frame by frame; this is what makes
    /// a second capture "busy" at once while a capture waits out a preview frame).
    pub camera_capturing: std::sync::atomic::AtomicBool,
    /// A finger capture is in progress (the supervisor's health check shares the scanner's lock).
    pub fingerprint_capturing: std::sync::atomic::AtomicBool,
    /// Whether the camera is attached (`None`: cannot tell now), asked by the supervisor about once a second.
    pub camera_present: Option<CameraProbe>,
    /// How often an idle fingerprint scanner is asked whether it answers (`None`: never).
    pub health_every: Option<Duration>,
}

/// See [`Devices::camera_present`].
pub type CameraProbe = Box<dyn Fn() -> Option<bool> + Send + Sync>;

/// Holds a device flag for one request.
struct Claim<'a>(&'a std::sync::atomic::AtomicBool);

impl<'a> Claim<'a> {
    fn take(flag: &'a std::sync::atomic::AtomicBool) -> Option<Self> {
        use std::sync::atomic::Ordering;
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Claim(flag))
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("document", &self.document.is_some())
            .field("fingerprint", &self.fingerprint.is_some())
            .field("camera", &self.camera.is_some())
            .finish()
    }
}

/// Limits that keep the API answering its operator whatever other local processes do (every account on the
/// workstation can reach a loopback port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Open connections at most. At the limit, the connection idle longest (no request in flight) is closed for a
    /// new one; when none is idle, the new one is closed.
    pub max_connections: usize,
    /// Time a connection has to send a request's head, also the most a connection may sit idle between requests
    /// (slow or silent clients are closed).
    pub header_read_timeout: Duration,
    /// Open `/v1/events` streams at most (a page holds one).
    pub max_event_streams: usize,
    /// Open applicant sessions at most.
    pub max_sessions: usize,
    /// A session not used for this long is expired: its captures are dropped from memory (and the event stream
    /// says so).
    pub session_idle: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(10),
            max_event_streams: 8,
            max_sessions: 16,
            session_idle: Duration::from_secs(30 * 60),
        }
    }
}

/// The Host names and Origins of the API on `addr`, the address actually bound: `127.0.0.1:PORT` (or the IPv6
/// `[::1]:PORT`, or another loopback address), `localhost:PORT` when the address is what `localhost` names, and
/// the port-less forms when the port is 80 (browsers leave the default port out of Host and Origin).
pub fn own_addresses(addr: std::net::SocketAddr) -> (Vec<String>, Vec<String>) {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut names = vec![ip];
    if matches!(addr.ip().to_string().as_str(), "127.0.0.1" | "::1") {
        names.push("localhost".into());
    }
    let port = addr.port();
    let mut hosts = Vec::new();
    let mut origins = Vec::new();
    for n in &names {
        hosts.push(format!("{n}:{port}"));
        origins.push(format!("http://{n}:{port}"));
        if port == 80 {
            hosts.push(n.clone());
            origins.push(format!("http://{n}"));
        }
    }
    (hosts, origins)
}

/// What the API serves from.
pub struct ApiState {
    pub token: String,
    pub hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub station_id: String,
    pub centre_id: String,
    /// The operator page's language when the operator has not chosen one (`en`, `ru` or `kk`).
    pub language: String,
    pub policy: Policy,
    pub photo_policy: PhotoPolicy,
    pub devices: Devices,
    pub sessions: Mutex<HashMap<String, ApplicantSession>>,
    pub outbox: Arc<std::sync::Mutex<Outbox>>,
    pub signer: StationSigner,
    pub central_point: Vec<u8>,
    pub today: fn() -> time::Date,
    /// The event stream and the metrics.
    pub telemetry: crate::telemetry::Telemetry,
    pub limits: ApiLimits,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("station_id", &self.station_id)
            .finish()
    }
}

/// An API error: a stable code, a message, and what to do.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    action: &'static str,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>, action: &'static str) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            action,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.code, "message": self.message, "action": self.action});
        (self.status, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// A JSON request body whose rejections (not JSON, wrong fields, too large) are typed API errors, not axum's
/// plain-text ones.
struct Body<T>(T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    Json<T>: axum::extract::FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                r.body_text(),
                "send a smaller body",
            )),
            Err(r) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                r.body_text(),
                "send a JSON body (Content-Type: application/json) as docs/openapi.yaml describes",
            )),
        }
    }
}

/// Unknown path: a typed 404 rather than an empty one.
async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no API path `{}`", uri.path()),
        "see docs/openapi.yaml for the paths",
    )
}

/// Known path, wrong method.
async fn wrong_method(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "bad_method",
        format!("`{method}` is not served on `{}`", uri.path()),
        "see docs/openapi.yaml for the methods",
    )
}

fn no_session(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_session",
        format!("no open session `{id}`"),
        "start a new session",
    )
}

/// An open session, marked as used now, or `no_session`.
fn open_session<'a>(
    sessions: &'a mut HashMap<String, ApplicantSession>,
    id: &str,
) -> Result<&'a mut ApplicantSession, ApiError> {
    let sess = sessions.get_mut(id).ok_or_else(|| no_session(id))?;
    sess.touch();
    Ok(sess)
}

/// An open session that may be changed: not while it is being submitted.
fn editable<'a>(
    sessions: &'a mut HashMap<String, ApplicantSession>,
    id: &str,
) -> Result<&'a mut ApplicantSession, ApiError> {
    let sess = open_session(sessions, id)?;
    if sess.finalizing() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "submitting",
            format!("session `{id}` is being submitted"),
            "wait for the submit's answer",
        ));
    }
    Ok(sess)
}

/// Whether a session is open and may be changed (and marks it as used): the check before a device is taken for
/// it.
async fn session_open(s: &ApiState, id: &str) -> Result<(), ApiError> {
    editable(&mut *s.sessions.lock().await, id).map(|_| ())
}

/// Drops the sessions left idle for longer than [`ApiLimits::session_idle`], with their captures, and says so on
/// the event stream (`session` event, state `expired`). Run by the supervisor; returns the expired ids.
pub async fn expire_sessions(s: &ApiState) -> Vec<String> {
    let mut sessions = s.sessions.lock().await;
    let idle: Vec<String> = sessions
        .iter()
        .filter(|(_, sess)| !sess.finalizing() && sess.idle_for() > s.limits.session_idle)
        .map(|(id, _)| id.clone())
        .collect();
    for id in &idle {
        if let Some(sess) = sessions.remove(id) {
            sess.cancel();
        }
        tracing::info!(session = %id, idle_minutes = s.limits.session_idle.as_secs() / 60, "session expired");
        s.telemetry.session(id, "expired", None);
    }
    idle
}

/// The outbox, or a typed error if a panic poisoned its lock.
fn outbox(s: &ApiState) -> Result<std::sync::MutexGuard<'_, Outbox>, ApiError> {
    s.outbox.lock().map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "outbox lock",
            "restart the agent",
        )
    })
}

/// An outbox database error.
fn outbox_failed(e: crate::outbox::OutboxError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        e.to_string(),
        "call the technician",
    )
}

fn busy(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "device_busy",
        format!("the {what} is in use by another request"),
        "wait for it to finish, then try again",
    )
}

fn missing(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_device",
        format!("no {what} is configured"),
        "ask the technician to configure it",
    )
}

fn device_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "device_failed",
        e.to_string(),
        "check the device and its cable, then try again",
    )
}

/// Refuses at once a capture on a device the supervisor sees unplugged, rather than letting the driver wait out
/// its timeout for a port that is not there.
fn plugged(s: &ApiState, role: &str, what: &str) -> Result<(), ApiError> {
    if s.telemetry.is_present(role) == Some(false) {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "device_failed",
            format!("the {what} is disconnected"),
            "check the device and its cable, then try again",
        ));
    }
    Ok(())
}

/// Constant-time comparison of a presented token with the station's; an empty token never matches (not even an
/// empty one: the start refuses short tokens, and this holds even if one got through).
fn same(presented: &str, token: &str) -> bool {
    !presented.is_empty()
        && presented.len() == token.len()
        && presented
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The guard, counting every answer by status.
async fn guard(State(s): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let r = checks(&s, req, next).await;
    s.telemetry.request(r.status().as_u16());
    r
}

/// Host, Origin and token checks, and CORS for allowed origins.
async fn checks(s: &ApiState, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !s.hosts.iter().any(|h| h == host) {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            format!("Host `{host}` is not this workstation's API"),
            "open the page at http://127.0.0.1 with the configured port",
        )
        .into_response();
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    if let Some(o) = &origin
        && !s.allowed_origins.iter().any(|a| a == o)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            format!("Origin `{o}` may not call this API"),
            "use the operator page served by the agent",
        )
        .into_response();
    }
    let cors = |mut r: Response| {
        if let Some(o) = &origin
            && let Ok(v) = HeaderValue::from_str(o)
        {
            r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            r.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        r
    };
    if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE"),
        );
        r.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        return cors(r);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(token, &s.token) {
        return cors(
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token",
                "use the token from the agent's api.token file",
            )
            .into_response(),
        );
    }
    cors(next.run(req).await)
}

async fn health(State(s): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "station_id": s.station_id}))
}

/// `GET /v1/station`: who this station is, the page's default language, and the link to the central system.
async fn station(State(s): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "station_id": s.station_id,
        "centre_id": s.centre_id,
        "language": s.language,
        "languages": crate::ui::LANGUAGES,
        "link": s.telemetry.link_state(),
    }))
}

/// The device roles.
const ROLES: [&str; 3] = ["document", "fingerprint", "camera"];

/// A role's status and description (`None`: not a role).
fn device_status<'a>(s: &'a ApiState, role: &str) -> Option<(&'static str, Option<&'a Device>)> {
    use std::sync::atomic::Ordering;
    let d = &s.devices;
    let (info, busy) = match role {
        "document" => (
            d.document.as_ref().map(|(_, i)| i),
            d.document.as_ref().is_some_and(|(m, _)| m.try_lock().is_err()),
        ),
        "fingerprint" => (
            d.fingerprint.as_ref().map(|(_, i)| i),
            d.fingerprint_capturing.load(Ordering::Acquire),
        ),
        "camera" => (
            d.camera.as_ref().map(|(_, i)| i),
            d.camera_capturing.load(Ordering::Acquire),
        ),
        _ => return None,
    };
    let status = if info.is_none() {
        "missing"
    } else if s.telemetry.is_present(role) == Some(false) {
        "unplugged"
    } else if s.telemetry.is_healthy(role) == Some(false) {
        "unresponsive"
    } else if busy {
        "busy"
    } else {
        "ready"
    };
    Some((status, info))
}

async fn devices(State(s): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let mut m = serde_json::Map::new();
    for role in ROLES {
        if let Some((status, _)) = device_status(&s, role) {
            m.insert(role.to_owned(), status.into());
        }
    }
    Json(m.into())
}

/// `GET /v1/devices/{role}`: status and what the device is (model, serial, firmware, profile and its digest).
async fn device(State(s): State<Arc<ApiState>>, UrlPath(role): UrlPath<String>) -> ApiResult {
    let (status, info) = device_status(&s, &role).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_role",
            format!("`{role}` is not a device role"),
            "use document, fingerprint or camera",
        )
    })?;
    let info = info.ok_or_else(|| missing(&role))?;
    Ok(Json(serde_json::json!({
        "role": role,
        "status": status,
        "model": info.model,
        "serial": info.serial,
        "firmware": info.firmware,
        "profile": info.profile,
        "profile_sha256": info.profile_sha256,
    }))
    .into_response())
}

#[derive(serde::Deserialize)]
struct NewSession {
    operator_id: String,
}

async fn create_session(State(s): State<Arc<ApiState>>, Body(b): Body<NewSession>) -> ApiResult {
    outbox(&s)?.check_reserve(0).map_err(|e| {
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "disk_reserve",
            e.to_string(),
            "ask the technician to free disk space",
        )
    })?;
    crate::session::check_operator_id(&b.operator_id).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_operator_id",
            e.to_string(),
            "send the operator's login or staff number",
        )
    })?;
    let session = ApplicantSession::new(&b.operator_id, s.policy.clone(), s.photo_policy.clone());
    let id = session.id().to_owned();
    let mut sessions = s.sessions.lock().await;
    if sessions.len() >= s.limits.max_sessions {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_sessions",
            format!(
                "{} applicant sessions are open, the most this station keeps",
                sessions.len()
            ),
            "finish or cancel an open applicant (sessions left idle expire by themselves)",
        ));
    }
    sessions.insert(id.clone(), session);
    drop(sessions);
    s.telemetry.session(&id, "created", None);
    Ok((StatusCode::CREATED, Json(serde_json::json!({"session_id": id}))).into_response())
}

async fn session_state(State(s): State<Arc<ApiState>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    let mut sessions = s.sessions.lock().await;
    let sess = open_session(&mut sessions, &id)?;
    Ok(Json(sess.state()).into_response())
}

async fn read_document(State(s): State<Arc<ApiState>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    session_open(&s, &id).await?;
    let (reader, _) = s
        .devices
        .document
        .as_ref()
        .ok_or_else(|| missing("document reader"))?;
    let mut reader = reader.try_lock().map_err(|_| busy("document reader"))?;
    plugged(&s, "document", "document reader")?;
    let opts = tamga_mrz::ParseOptions::new((s.today)());
    let t = &s.telemetry;
    t.capture(&id, "document", "document", "started", None);
    let read = reader
        .read_document(Duration::from_secs(30), &opts)
        .await
        .map_err(|e| {
            t.capture(&id, "document", "document", "failed", Some(e.to_string()));
            device_failed(e)
        })?;
    t.capture(&id, "document", "document", "done", None);
    let mut sessions = s.sessions.lock().await;
    let sess = editable(&mut sessions, &id)?;
    sess.set_document(read.mrz.clone());
    Ok(Json(serde_json::json!({"mrz": read.mrz})).into_response())
}

async fn take_photo(State(s): State<Arc<ApiState>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    session_open(&s, &id).await?;
    let (camera, device) = s.devices.camera.as_ref().ok_or_else(|| missing("camera"))?;
    let camera = camera.clone();
    let _claim = Claim::take(&s.devices.camera_capturing).ok_or_else(|| busy("camera"))?;
    plugged(&s, "camera", "camera")?;
    s.telemetry.capture(&id, "camera", "face", "started", None);
    let (state, sid) = (s.clone(), id.clone());
    // Waits for a preview frame in flight (milliseconds); a second capture was refused by the claim.
    let photo = tokio::task::spawn_blocking(move || match camera.lock() {
        Ok(mut c) => c
            .capture(&mut progress(&state, &sid, "face"))
            .map(|o| o.data)
            .map_err(|e| e.to_string()),
        Err(_) => Err("the camera's lock is poisoned: restart the agent".to_owned()),
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| {
        s.telemetry
            .capture(&id, "camera", "face", "failed", Some(e.clone()));
        device_failed(e)
    })?;
    // Decoding, the checks and the crop are CPU work: on the blocking pool, without the sessions' lock.
    let policy = s.photo_policy.clone();
    let assessed = tokio::task::spawn_blocking(move || crate::session::assess_photo(&photo, &policy))
        .await
        .map_err(|e| internal(format!("photo check: {e}")))?;
    let mut sessions = s.sessions.lock().await;
    let sess = editable(&mut sessions, &id)?;
    let report = sess
        .record_photo(assessed, device.clone())
        .map_err(session_error)?;
    s.telemetry.capture(&id, "camera", "face", "done", None);
    Ok(Json(report).into_response())
}

/// `GET /v1/sessions/{id}/face`: the accepted photo's crop as it will be sent.
async fn face_crop(State(s): State<Arc<ApiState>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    let mut sessions = s.sessions.lock().await;
    let sess = open_session(&mut sessions, &id)?;
    let jpeg = sess.face_jpeg().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_image",
            "no accepted photo in this session yet",
            "take the photo",
        )
    })?;
    Ok(image_response("image/jpeg", jpeg.to_vec()))
}

/// `GET /v1/sessions/{id}/fingers/{position}`: the finger's best image as it will be sent.
async fn finger_image(
    State(s): State<Arc<ApiState>>,
    UrlPath((id, position)): UrlPath<(String, String)>,
) -> ApiResult {
    let pos = finger_position(&position)?;
    let mut sessions = s.sessions.lock().await;
    let sess = open_session(&mut sessions, &id)?;
    let png = sess.finger_png(pos).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_image",
            format!("no image of the {} in this session", pos.label()),
            "capture the finger",
        )
    })?;
    Ok(image_response("image/png", png.to_vec()))
}

fn image_response(content_type: &'static str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response()
}

/// A finger position from the URL, or a typed error.
fn finger_position(position: &str) -> Result<FingerPosition, ApiError> {
    <FingerPosition as clap::ValueEnum>::from_str(position, true).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_position",
            format!("`{position}` is not a finger position"),
            "use right-thumb ... left-little",
        )
    })
}

async fn capture_finger(
    State(s): State<Arc<ApiState>>,
    UrlPath((id, position)): UrlPath<(String, String)>,
) -> ApiResult {
    let pos = finger_position(&position)?;
    session_open(&s, &id).await?;
    let (scanner, device) = s
        .devices
        .fingerprint
        .as_ref()
        .ok_or_else(|| missing("fingerprint scanner"))?;
    let _claim = Claim::take(&s.devices.fingerprint_capturing).ok_or_else(|| busy("fingerprint scanner"))?;
    plugged(&s, "fingerprint", "fingerprint scanner")?;
    // Waits out a health check in flight; a second capture was refused by the claim.
    let mut scanner = scanner.lock().await;
    let what = format!("finger/{position}");
    let t = &s.telemetry;
    let failed = |e: tamga_drivers::zfm::ScannerError| {
        t.capture(&id, "fingerprint", &what, "failed", Some(e.to_string()));
        device_failed(e)
    };
    t.capture(&id, "fingerprint", &what, "started", None);
    scanner.connect(Duration::from_secs(2)).await.map_err(failed)?;
    match scanner.capture(Duration::from_secs(20)).await.map_err(failed)? {
        CaptureOutcome::Retry(reason) => {
            t.capture(
                &id,
                "fingerprint",
                &what,
                "retry",
                Some(reason.instruction().to_owned()),
            );
            return Ok(Json(
                serde_json::json!({"next": "retry", "reason": reason, "instruction": reason.instruction()}),
            )
            .into_response());
        }
        CaptureOutcome::Captured => {}
    }
    let captured = scanner.upload(progress(&s, &id, &what)).await.map_err(failed)?;
    drop(scanner);
    let img = captured.image;
    // Scoring and the PNG are CPU work: on the blocking pool, without the sessions' lock.
    let assessed = tokio::task::spawn_blocking(move || {
        crate::session::assess_finger(&img.pixels, img.width, img.height, img.resolution_ppi)
    })
    .await
    .map_err(|e| internal(format!("finger check: {e}")))?
    .map_err(session_error)?;
    let mut sessions = s.sessions.lock().await;
    let sess = editable(&mut sessions, &id)?;
    let (next, quality) = sess.record_finger(pos, assessed, device.clone());
    s.telemetry.capture(&id, "fingerprint", &what, "done", None);
    Ok(Json(serde_json::json!({"next": next, "quality": quality})).into_response())
}

#[derive(serde::Deserialize)]
struct ExceptionBody {
    reason: ExceptionReason,
}

async fn declare_exception(
    State(s): State<Arc<ApiState>>,
    UrlPath((id, position)): UrlPath<(String, String)>,
    Body(b): Body<ExceptionBody>,
) -> ApiResult {
    let pos = finger_position(&position)?;
    let mut sessions = s.sessions.lock().await;
    let sess = editable(&mut sessions, &id)?;
    sess.declare_exception(pos, b.reason);
    Ok(Json(sess.state()).into_response())
}

fn session_error(e: SessionError) -> ApiError {
    let (status, code, action) = match &e {
        SessionError::NoDocument | SessionError::DocumentInvalid => {
            (StatusCode::CONFLICT, "incomplete", "read the document again")
        }
        SessionError::NoFace => (
            StatusCode::CONFLICT,
            "incomplete",
            "take the photo again following the advice",
        ),
        SessionError::FingersMissing(_) => (
            StatusCode::CONFLICT,
            "incomplete",
            "capture the listed fingers or declare exceptions",
        ),
        SessionError::Photo(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_photo",
            "take the photo again",
        ),
        SessionError::Outbox(crate::outbox::OutboxError::DiskReserve { .. }) => (
            StatusCode::INSUFFICIENT_STORAGE,
            "disk_reserve",
            "ask the technician to free disk space; the session is kept",
        ),
        SessionError::OperatorId(_) => (
            StatusCode::BAD_REQUEST,
            "bad_operator_id",
            "send the operator's login or staff number",
        ),
        SessionError::Outbox(_) | SessionError::Build(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "try again; if it repeats, call the technician",
        ),
    };
    ApiError::new(status, code, e.to_string(), action)
}

async fn finalize(State(s): State<Arc<ApiState>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    // A copy is sealed while the session stays open, marked as being submitted (reads go on; changes, a second
    // submit and cancel are refused): signing, sealing and the outbox's fsync run on the blocking pool, without
    // the sessions' lock.
    let copy = {
        let mut sessions = s.sessions.lock().await;
        let sess = editable(&mut sessions, &id)?;
        sess.set_finalizing(true);
        sess.clone()
    };
    let st = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut outbox = st.outbox.lock().map_err(|_| None)?;
        copy.finalize(&st.signer, &st.central_point, &mut outbox, &st.centre_id)
            .map_err(|(_, e)| Some(e))
    })
    .await;
    let mut sessions = s.sessions.lock().await;
    match done {
        Ok(Ok(done)) => {
            sessions.remove(&id);
            drop(sessions);
            s.telemetry
                .session(&id, "finalized", Some(done.bundle_id.clone()));
            Ok(Json(serde_json::json!({"bundle_id": done.bundle_id, "state": "queued"})).into_response())
        }
        refused => {
            // Nothing was queued: the session is the operator's again, unchanged.
            if let Some(sess) = sessions.get_mut(&id) {
                sess.set_finalizing(false);
                sess.touch();
            }
            Err(match refused {
                Ok(Err(Some(e))) => session_error(e),
                Ok(Err(None)) => internal("outbox lock".into()),
                Err(e) => internal(format!("finalize: {e}")),
                Ok(Ok(_)) => internal("finalize".into()),
            })
        }
    }
}

fn internal(message: String) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        message,
        "try again; if it repeats, restart the agent",
    )
}

async fn cancel(State(s): State<Arc<ApiState>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    let sess = {
        let mut sessions = s.sessions.lock().await;
        editable(&mut sessions, &id)?;
        sessions.remove(&id).ok_or_else(|| no_session(&id))?
    };
    sess.cancel();
    s.telemetry.session(&id, "cancelled", None);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn outbox_status(State(s): State<Arc<ApiState>>) -> ApiResult {
    let stats = outbox(&s)?.stats().map_err(outbox_failed)?;
    Ok(Json(stats).into_response())
}

async fn bundle_status(State(s): State<Arc<ApiState>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    let st = outbox(&s)?.status(&id).map_err(outbox_failed)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_bundle",
            format!("no bundle `{id}`"),
            "check the id",
        )
    })?;
    Ok(Json(st).into_response())
}

/// A transfer-progress callback that emits an event at each further tenth of the image.
fn progress(s: &Arc<ApiState>, session: &str, what: &str) -> impl FnMut(usize, usize) + Send + 'static {
    let (s, session, what) = (s.clone(), session.to_owned(), what.to_owned());
    let mut last_tenth = 0;
    move |done, total| {
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if tenth > last_tenth {
            last_tenth = tenth;
            s.telemetry.progress(&session, &what, done as u64, total as u64);
        }
    }
}

/// `GET /v1/events`: Server-Sent Events until the client leaves or the agent stops.
async fn events(State(s): State<Arc<ApiState>>) -> Response {
    use axum::response::sse::{Event as Sse, KeepAlive};
    use tokio::sync::broadcast::error::RecvError;
    let Some(slot) = s.telemetry.stream_slot(s.limits.max_event_streams) else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} event streams are open, the most this agent serves",
                s.limits.max_event_streams
            ),
            "close other pages of this workstation's agent, then reload",
        )
        .into_response();
    };
    let (rx, closing) = s.telemetry.subscribe();
    let stream = futures_util::stream::unfold(
        (rx, closing, s, slot),
        |(mut rx, mut closing, s, slot)| async move {
            if *closing.borrow() {
                return None;
            }
            let item = tokio::select! {
                r = rx.recv() => r,
                _ = closing.changed() => return None,
            };
            let out = match item {
                Ok(e) => Sse::default()
                    .event(e.name())
                    .json_data(&e)
                    .unwrap_or_else(|_| Sse::default().comment("unserialisable event")),
                Err(RecvError::Lagged(n)) => {
                    s.telemetry.dropped(n);
                    Sse::default().event("lagged").data(n.to_string())
                }
                Err(RecvError::Closed) => return None,
            };
            Some((Ok::<_, std::convert::Infallible>(out), (rx, closing, s, slot)))
        },
    );
    axum::response::sse::Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// One live view frame, or a typed error: the camera's lock is only tried (a capture in progress wins).
async fn preview_frame(
    s: &ApiState,
    camera: Arc<std::sync::Mutex<PhotoCamera>>,
) -> Result<Vec<u8>, ApiError> {
    if s.devices
        .camera_capturing
        .load(std::sync::atomic::Ordering::Acquire)
    {
        return Err(busy("camera"));
    }
    tokio::task::spawn_blocking(move || match camera.try_lock() {
        Ok(mut c) => c.preview_frame().map_err(|e| match e {
            tamga_drivers::ptp::device::CameraError::NoLiveView { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "no_preview",
                e.to_string(),
                "take the still photo; the camera has no live view",
            ),
            e => device_failed(e),
        }),
        Err(_) => Err(busy("camera")),
    })
    .await
    .map_err(device_failed)?
}

/// Ends live view when the page stops watching.
struct PreviewGuard(Arc<std::sync::Mutex<PhotoCamera>>);

impl Drop for PreviewGuard {
    fn drop(&mut self) {
        let camera = self.0.clone();
        let stop = move || {
            if let Ok(mut c) = camera.lock()
                && let Err(e) = c.stop_preview()
            {
                tracing::warn!(error = %e, "ending live view");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(stop)),
            Err(_) => stop(),
        }
    }
}

/// The boundary of the preview's multipart stream.
const PREVIEW_BOUNDARY: &str = "tamga-frame";

fn preview_part(jpeg: &[u8]) -> axum::body::Bytes {
    let mut part = format!(
        "--{PREVIEW_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    )
    .into_bytes();
    part.extend_from_slice(jpeg);
    part.extend_from_slice(b"\r\n");
    part.into()
}

/// `GET /v1/devices/camera/preview`: the camera's live view as MJPEG (`multipart/x-mixed-replace`), at most ten
/// frames a second, until the page leaves or the agent stops. A capture pauses it (frames resume after).
async fn preview(State(s): State<Arc<ApiState>>) -> ApiResult {
    let (camera, _) = s.devices.camera.as_ref().ok_or_else(|| missing("camera"))?;
    let camera = camera.clone();
    let first = preview_frame(&s, camera.clone()).await?;
    let (_, closing) = s.telemetry.subscribe();
    let guard = PreviewGuard(camera);
    let stream = futures_util::stream::unfold(
        (Some(first), closing, guard, s.clone()),
        |(first, mut closing, guard, s)| async move {
            if let Some(f) = first {
                return Some((
                    Ok::<_, std::convert::Infallible>(preview_part(&f)),
                    (None, closing, guard, s),
                ));
            }
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = closing.changed() => return None,
                }
                match preview_frame(&s, guard.0.clone()).await {
                    Ok(f) => return Some((Ok(preview_part(&f)), (None, closing, guard, s))),
                    // A capture holds the camera: wait for it.
                    Err(e) if e.code == "device_busy" => {}
                    Err(e) => {
                        tracing::warn!(error = %e.message, "live view ended");
                        return None;
                    }
                }
            }
        },
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/x-mixed-replace; boundary={PREVIEW_BOUNDARY}"),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// `GET /v1/metrics`: Prometheus text exposition.
async fn metrics(State(s): State<Arc<ApiState>>) -> Response {
    let stats = s.outbox.lock().ok().and_then(|o| o.stats().ok());
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.telemetry.render(stats.as_ref(), now_ms),
    )
        .into_response()
}

/// The router, with the guard on every route.
pub fn router(state: Arc<ApiState>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/station", get(station))
        .route("/v1/devices", get(devices))
        .route("/v1/devices/{role}", get(device))
        .route("/v1/sessions", post(create_session))
        .route("/v1/sessions/{id}", get(session_state).delete(cancel))
        .route("/v1/sessions/{id}/document", post(read_document))
        .route("/v1/sessions/{id}/face", get(face_crop).post(take_photo))
        .route(
            "/v1/sessions/{id}/fingers/{position}",
            get(finger_image).post(capture_finger),
        )
        .route(
            "/v1/sessions/{id}/fingers/{position}/exception",
            post(declare_exception),
        )
        .route("/v1/sessions/{id}/finalize", post(finalize))
        .route("/v1/outbox", get(outbox_status))
        .route("/v1/bundles/{id}", get(bundle_status))
        .route("/v1/devices/camera/preview", get(preview))
        .route("/v1/events", get(events))
        .route("/v1/metrics", get(metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state.clone())
        .merge(crate::ui::router(state.hosts.clone()))
}

/// The shortest API token the agent starts with; the one it makes is 64 hex characters (256 random bits).
pub const MIN_TOKEN_LEN: usize = 32;

/// Reads the API token from `data_dir/api.token`, creating it (256 random bits) at first start. The file is mode
/// 0600, or 0640 when `group_readable` (the operators' desktop accounts are then members of the daemon's group and
/// `tamga page` can read it); the daemon owns the file and sets the mode at each start.
///
/// The file is written atomically (a temporary file, fsync, rename, fsync of the folder): a crash or a full disk
/// at first start leaves either no token or the whole one. A token shorter than [`MIN_TOKEN_LEN`] (an empty file
/// most of all, which would otherwise make every request's missing token "match") is refused with the fix.
pub fn token(data_dir: &std::path::Path, group_readable: bool) -> anyhow::Result<String> {
    use anyhow::Context as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = data_dir.join("api.token");
    let mode = if group_readable { 0o640 } else { 0o600 };
    let set_mode = |p: &std::path::Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {} to {mode:o}", p.display()))
    };
    if path.exists() {
        set_mode(&path)?;
        let t = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let t = t.trim().to_owned();
        if t.len() < MIN_TOKEN_LEN {
            anyhow::bail!(
                "{} holds a key of {} characters, fewer than {MIN_TOKEN_LEN}: it is damaged (cut short by a crash \
                 or a full disk?) or was set by hand. Delete the file and start the agent again: it makes a new \
                 key (then reopen the operator page with `tamga page --open`)",
                path.display(),
                t.len()
            );
        }
        return Ok(t);
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness for the API token"))?;
    let t = tamga_bundle::b64::hex(&bytes);
    let tmp = data_dir.join("api.token.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let written = std::io::Write::write_all(&mut f, t.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {} (is the disk full?)", tmp.display()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    drop(f);
    // The umask may have taken bits away at creation: the mode is set explicitly.
    set_mode(&tmp)?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the folder {}", data_dir.display()))?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_empty_presented_token_never_matches() {
        assert!(
            !same("", ""),
            "an empty key file must not turn authentication off"
        );
        assert!(!same("", "a"));
        assert!(!same("ab", "abc"));
        assert!(!same("abd", "abc"));
        assert!(same("abc", "abc"));
    }

    #[test]
    fn the_page_s_host_and_origin_follow_the_bound_address() {
        let own = |a: &str| own_addresses(a.parse().unwrap());
        assert_eq!(
            own("127.0.0.1:4501"),
            (
                vec!["127.0.0.1:4501".into(), "localhost:4501".into()],
                vec!["http://127.0.0.1:4501".into(), "http://localhost:4501".into()]
            )
        );
        assert_eq!(
            own("[::1]:4600"),
            (
                vec!["[::1]:4600".into(), "localhost:4600".into()],
                vec!["http://[::1]:4600".into(), "http://localhost:4600".into()]
            )
        );
        // `localhost` does not name 127.0.0.2.
        assert_eq!(
            own("127.0.0.2:4501"),
            (
                vec!["127.0.0.2:4501".into()],
                vec!["http://127.0.0.2:4501".into()]
            )
        );
        // Browsers leave port 80 out of Host and Origin.
        let (hosts, origins) = own("127.0.0.1:80");
        for h in ["127.0.0.1", "127.0.0.1:80", "localhost", "localhost:80"] {
            assert!(hosts.iter().any(|x| x == h), "{h} in {hosts:?}");
        }
        for o in ["http://127.0.0.1", "http://localhost"] {
            assert!(origins.iter().any(|x| x == o), "{o} in {origins:?}");
        }
    }
}
