//! MOSIP Secure Biometric Interface (SBI 0.9.5 and 1.0) client: slap fingerprint scanners (and, later, face
//! cameras) through their vendors' device services on 127.0.0.1:4501-4600.
//!
//! - discovery ([`discover`]): every port of the range at once, short timeouts; a port held by something that is
//!   not SBI (garbage, plain HTTP, silence) is skipped;
//! - device info ([`SbiClient::device_info`]): `MOSIPDINFO /info`, falling back to `SBIINFO`; each deviceInfo JWS
//!   and its digitalId JWS verified, or listed as not registered when the service sends it unsigned;
//! - registration capture per slap ([`SbiClient::capture_slap`]): `RCAPTURE /capture`, with exceptions, then every
//!   check of [`verify`] before anything is returned;
//! - the preview ([`SbiClient::stream`]): `STREAM /stream`, multipart JPEG frames.
//!
//! # Why a small HTTP client of our own
//! The device services are not ordinary HTTP servers. MOSIP's reference mock (which vendors' services are modelled
//! on) parses `Content-Length` at a fixed column and reads the body with one `read()`, answers "405 OK", writes
//! bytes after the body, closes every connection, declares a multipart boundary its parts do not use, and appends a
//! whole HTTP answer after a stream ends. hyper or reqwest would have to be bent around each of these (custom
//! methods, header formatting we do not control, strict multipart), and would bring an HTTP stack into the drivers
//! crate for one loopback protocol. A 200-line client on tokio's `TcpStream` (`http.rs`) writes exactly the bytes
//! the services accept and reads what they really send, bounded in size and time. It only ever connects to
//! 127.0.0.1.
//!
//! # What is believed
//! Nothing before it is verified; see [`verify`]. A capture that fails any check is an error naming the reason,
//! and nothing of it is returned. Discovery answers are unsigned by specification: they only say what answers
//! where (for listing); device info and captures are verified.
//!
//! Limits today: one trust store serves the deviceInfo, the `data` and the digitalId (an L1 device's digitalId is
//! signed by its FTM chip key: give the FTM provider's root too); the hash chain is the byte form MOSIP's mock and
//! compliance toolkit compute (the legacy mock's text form is not accepted); only registration capture of
//! fingers (no auth CAPTURE, no face or iris capture yet).

mod http;
pub mod verify;
pub mod wire;

use crate::sbi::http::{WireError, find};
use crate::sbi::verify::{TrustStore, VerifyError, b64url_lenient, looks_like_jws, verify_jws};
use crate::sbi::wire::{
    CaptureBio, CaptureData, CaptureRequest, CaptureResponse, DeviceInfoPayload, DigitalIdPayload,
    DiscoveryEntry, ErrorInfo, InfoEntry, StreamRequest,
};
use std::ops::RangeInclusive;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use tracing::{Instrument, debug, info_span, warn};

/// The port range of SBI device services.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 4501..=4600;

/// Time limits of the client.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// Connecting to a port.
    pub connect: Duration,
    /// A whole discovery exchange on one port.
    pub discover: Duration,
    /// A whole device info exchange.
    pub info: Duration,
    /// Added to the capture timeout put in the request: the device answers by then with its best frame.
    pub capture_margin: Duration,
    /// Opening the preview stream.
    pub stream_open: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(500),
            discover: Duration::from_secs(2),
            info: Duration::from_secs(5),
            capture_margin: Duration::from_secs(5),
            stream_open: Duration::from_secs(5),
        }
    }
}

/// What a device's error code means for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceErrorKind {
    /// 111, 703 (capture in progress), 803.
    Busy,
    /// 701, 801, 609: nothing good enough within the time.
    Timeout,
    /// 101: no finger on the platen.
    NoObject,
    /// 100, 705: the device is not registered with its provider.
    NotRegistered,
    /// 110.
    NotReady,
    /// 106, 202, 605, 704: the device is not connected.
    NotConnected,
    /// 109, 112-123, 502: the request was refused as invalid (a Tamga or device-service bug).
    InvalidRequest,
    /// 103, 107: tampering or an expired device key.
    Security,
    /// Anything else (5xx vendor codes): shown with the device's text.
    Other,
}

impl DeviceErrorKind {
    fn of(code: &str) -> Self {
        match code.trim() {
            "111" | "703" | "803" => DeviceErrorKind::Busy,
            "701" | "801" | "609" => DeviceErrorKind::Timeout,
            "101" => DeviceErrorKind::NoObject,
            "100" | "705" => DeviceErrorKind::NotRegistered,
            "110" | "607" => DeviceErrorKind::NotReady,
            "106" | "202" | "503" | "605" | "704" => DeviceErrorKind::NotConnected,
            "109" | "112" | "113" | "114" | "115" | "116" | "117" | "118" | "119" | "120" | "121" | "122"
            | "123" | "502" => DeviceErrorKind::InvalidRequest,
            "103" | "107" => DeviceErrorKind::Security,
            _ => DeviceErrorKind::Other,
        }
    }

    /// What the operator should do.
    pub fn advice(self) -> &'static str {
        match self {
            DeviceErrorKind::Busy => {
                "the scanner is busy with another capture: wait a moment and capture again"
            }
            DeviceErrorKind::Timeout => {
                "no print within the time: place the fingers flat on the glass and capture again"
            }
            DeviceErrorKind::NoObject => "no fingers on the glass: place them and capture again",
            DeviceErrorKind::NotRegistered => {
                "the scanner is not registered with its provider: call the technician (its captures cannot be trusted)"
            }
            DeviceErrorKind::NotReady => "the scanner is not ready: wait, or reconnect it",
            DeviceErrorKind::NotConnected => {
                "the scanner is not connected to its device service: check the cable"
            }
            DeviceErrorKind::InvalidRequest => "the device service refused the request: call the technician",
            DeviceErrorKind::Security => {
                "the scanner reports tampering or an expired key: call the technician"
            }
            DeviceErrorKind::Other => {
                "the device service reported an error: capture again, or call the technician"
            }
        }
    }
}

/// Everything that can go wrong with an SBI device service.
#[derive(Debug, thiserror::Error)]
pub enum SbiError {
    #[error("no SBI device service on 127.0.0.1:{port}: {why}")]
    Unreachable { port: u16, why: String },
    #[error("the device service on port {port} did not answer {op} within {after:?}; capture again")]
    Timeout {
        port: u16,
        op: &'static str,
        after: Duration,
    },
    #[error("the service on port {port} does not speak SBI ({why})")]
    NotSbi { port: u16, why: String },
    #[error("device error {code} ({info}): {}", kind.advice())]
    Device {
        code: String,
        info: String,
        kind: DeviceErrorKind,
    },
    #[error("the device's answer was refused: {0}")]
    Verification(#[from] VerifyError),
    #[error("invalid request: {0}")]
    Request(String),
}

impl SbiError {
    /// An operator outcome (capture again), not a broken link or a refusal.
    pub fn is_retry(&self) -> bool {
        match self {
            SbiError::Timeout { .. } => true,
            SbiError::Device { kind, .. } => matches!(
                kind,
                DeviceErrorKind::Busy | DeviceErrorKind::Timeout | DeviceErrorKind::NoObject
            ),
            _ => false,
        }
    }

    fn wire(port: u16, op: &'static str, e: WireError) -> Self {
        match e {
            WireError::Timeout(after) => SbiError::Timeout { port, op, after },
            WireError::Refused(_) => SbiError::Unreachable {
                port,
                why: "nothing listens there (is the vendor's device service running?)".into(),
            },
            WireError::Io(e) => SbiError::Unreachable {
                port,
                why: e.to_string(),
            },
            other => SbiError::NotSbi {
                port,
                why: other.to_string(),
            },
        }
    }

    fn device(e: &ErrorInfo) -> Self {
        SbiError::Device {
            code: e.error_code.0.clone(),
            info: e.error_info.clone(),
            kind: DeviceErrorKind::of(&e.error_code.0),
        }
    }
}

/// The ten fingers with SBI's names and Tamga's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Finger {
    RightThumb = 1,
    RightIndex = 2,
    RightMiddle = 3,
    RightRing = 4,
    RightLittle = 5,
    LeftThumb = 6,
    LeftIndex = 7,
    LeftMiddle = 8,
    LeftRing = 9,
    LeftLittle = 10,
}

impl Finger {
    pub const ALL: [Finger; 10] = [
        Finger::RightThumb,
        Finger::RightIndex,
        Finger::RightMiddle,
        Finger::RightRing,
        Finger::RightLittle,
        Finger::LeftThumb,
        Finger::LeftIndex,
        Finger::LeftMiddle,
        Finger::LeftRing,
        Finger::LeftLittle,
    ];

    /// ISO/IEC 19794-4 finger position code.
    pub fn iso_code(self) -> u8 {
        self as u8
    }

    /// Tamga's name (as the agent's `FingerPosition` serialises it).
    pub fn tamga_name(self) -> &'static str {
        match self {
            Finger::RightThumb => "right-thumb",
            Finger::RightIndex => "right-index",
            Finger::RightMiddle => "right-middle",
            Finger::RightRing => "right-ring",
            Finger::RightLittle => "right-little",
            Finger::LeftThumb => "left-thumb",
            Finger::LeftIndex => "left-index",
            Finger::LeftMiddle => "left-middle",
            Finger::LeftRing => "left-ring",
            Finger::LeftLittle => "left-little",
        }
    }

    /// SBI 0.9.5 / 1.0 bioSubType name.
    pub fn sbi_name(self) -> &'static str {
        match self {
            Finger::RightThumb => "Right Thumb",
            Finger::RightIndex => "Right IndexFinger",
            Finger::RightMiddle => "Right MiddleFinger",
            Finger::RightRing => "Right RingFinger",
            Finger::RightLittle => "Right LittleFinger",
            Finger::LeftThumb => "Left Thumb",
            Finger::LeftIndex => "Left IndexFinger",
            Finger::LeftMiddle => "Left MiddleFinger",
            Finger::LeftRing => "Left RingFinger",
            Finger::LeftLittle => "Left LittleFinger",
        }
    }

    pub fn from_sbi_name(s: &str) -> Option<Finger> {
        Finger::ALL.into_iter().find(|f| f.sbi_name() == s)
    }

    pub fn from_tamga_name(s: &str) -> Option<Finger> {
        Finger::ALL.into_iter().find(|f| f.tamga_name() == s)
    }
}

/// The three slaps of a 4-4-2 capture, with their SBI deviceSubId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slap {
    Left = 1,
    Right = 2,
    Thumbs = 3,
}

impl Slap {
    pub fn sub_id(self) -> u8 {
        self as u8
    }

    /// The fingers of the slap, in the order devices send them.
    pub fn fingers(self) -> &'static [Finger] {
        match self {
            Slap::Left => &[
                Finger::LeftIndex,
                Finger::LeftMiddle,
                Finger::LeftRing,
                Finger::LeftLittle,
            ],
            Slap::Right => &[
                Finger::RightIndex,
                Finger::RightMiddle,
                Finger::RightRing,
                Finger::RightLittle,
            ],
            Slap::Thumbs => &[Finger::LeftThumb, Finger::RightThumb],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Slap::Left => "left",
            Slap::Right => "right",
            Slap::Thumbs => "thumbs",
        }
    }
}

/// A device found by discovery (unsigned: only for listing; nothing here is trusted).
#[derive(Debug, Clone)]
pub struct DiscoveredDevice {
    pub port: u16,
    pub device_id: String,
    pub status: String,
    pub certification: String,
    pub service_version: String,
    pub sub_ids: Vec<String>,
    pub purpose: String,
    pub spec_version: Vec<String>,
    /// From the unsigned digital id of discovery, when it decodes.
    pub digital_id: Option<DigitalIdPayload>,
    pub error: Option<(String, String)>,
}

/// A device as its device info says, verified (or marked not registered).
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub port: u16,
    pub device_id: String,
    pub device_code: String,
    pub status: String,
    pub certification: String,
    pub service_version: String,
    pub firmware: String,
    pub sub_ids: Vec<String>,
    pub env: String,
    pub purpose: String,
    pub spec_version: Vec<String>,
    pub digital_id: DigitalIdPayload,
    /// True when the deviceInfo and its digitalId were signed and verified; false for a device that says it is not
    /// registered (listed, never captured from).
    pub verified: bool,
    pub error: Option<(String, String)>,
}

impl DeviceInfo {
    pub fn is_finger_slap(&self) -> bool {
        self.digital_id.type_ == "Finger" && self.digital_id.device_sub_type == "Slap"
    }
}

/// One verified finger of a slap.
#[derive(Debug, Clone)]
pub struct CapturedFinger {
    pub finger: Finger,
    /// Tamga's position name (`left-index`).
    pub position: &'static str,
    /// The ISO/IEC 19794-4:2011 record, as the device signed it.
    pub record: Vec<u8>,
    /// The record's image compression code (5 JPEG 2000 lossless, 6 PNG, 0 raw, 2 WSQ).
    pub compression: u8,
    /// The device's quality score, 0-100.
    pub device_quality: f64,
    /// The signed `data` JWS, verbatim: the evidence the central system can verify again.
    pub evidence: String,
    /// This item's link of the hash chain.
    pub hash: String,
}

/// Who captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub port: u16,
    pub make: String,
    pub model: String,
    pub serial: String,
    pub certification: String,
    pub device_provider: String,
}

/// A verified slap.
#[derive(Debug, Clone)]
pub struct SlapCapture {
    pub device: DeviceIdentity,
    pub slap: Slap,
    pub fingers: Vec<CapturedFinger>,
    pub exceptions: Vec<Finger>,
    /// The last hash: the `previous_hash` of the next capture of the same applicant.
    pub last_hash: String,
    /// Whether every finger reached the requested score.
    pub meets_requested_score: bool,
}

/// What to capture.
#[derive(Debug, Clone)]
pub struct SlapRequest {
    pub slap: Slap,
    /// Fingers of the slap not to capture (missing, bandaged).
    pub exceptions: Vec<Finger>,
    /// 0-100, the device's auto-capture threshold.
    pub requested_score: u8,
    /// Milliseconds the device may take.
    pub timeout_ms: u32,
    /// The previous capture's hash ("" for the first of an applicant).
    pub previous_hash: String,
    /// `Staging`, `Developer`, `Pre-Production`, `Production`.
    pub env: String,
    /// 4-50 characters `[A-Za-z0-9-]`.
    pub transaction_id: String,
}

/// Verification settings.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub trust: TrustStore,
    /// Accepted difference between the device's timestamp and `now`.
    pub skew: Duration,
}

impl Verifier {
    pub fn new(trust: TrustStore) -> Self {
        Verifier {
            trust,
            skew: Duration::from_secs(300),
        }
    }
}

/// A client for the device service on one port of 127.0.0.1.
#[derive(Debug, Clone)]
pub struct SbiClient {
    pub port: u16,
    pub timeouts: Timeouts,
}

fn parse_json<T: serde::de::DeserializeOwned>(port: u16, body: &[u8]) -> Result<T, SbiError> {
    let text = std::str::from_utf8(body).map_err(|_| SbiError::NotSbi {
        port,
        why: "the answer is not UTF-8".into(),
    })?;
    serde_json::from_str(text.trim()).map_err(|e| SbiError::NotSbi {
        port,
        why: format!("the answer is not the JSON SBI specifies: {e}"),
    })
}

/// Whether an answer says the service does not know the method: 405 or 501, nothing, or the mock's
/// `[{"error":{"errorCode":"500","errorInfo":"Invalid URL"}}]` (SBI 0.9.5 services do not know SBIDISC/SBIINFO).
fn unknown_method(status: u16, body: &[u8]) -> bool {
    if status == 405 || status == 501 || body.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    serde_json::from_slice::<Vec<serde_json::Value>>(body.trim_ascii())
        .ok()
        .and_then(|v| v.first().cloned())
        .and_then(|e| e.get("error")?.get("errorCode").cloned())
        .is_some_and(|c| c == "500" || c == 500)
}

fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl SbiClient {
    pub fn new(port: u16) -> Self {
        SbiClient {
            port,
            timeouts: Timeouts::default(),
        }
    }

    /// `MOSIPDISC /device` (then `SBIDISC`) for `type` ("Biometric Device", "Finger", "Face").
    pub async fn discover_devices(&self, device_type: &str) -> Result<Vec<DiscoveredDevice>, SbiError> {
        let port = self.port;
        let body = serde_json::json!({ "type": device_type }).to_string();
        async {
            let mut last = None;
            for method in ["MOSIPDISC", "SBIDISC"] {
                let a = http::exchange(
                    port,
                    method,
                    "/device",
                    Some(&body),
                    self.timeouts.connect,
                    self.timeouts.discover,
                )
                .await
                .map_err(|e| SbiError::wire(port, "discovery", e))?;
                if unknown_method(a.status, &a.body) {
                    last = Some(a);
                    continue;
                }
                let entries: Vec<DiscoveryEntry> = parse_json(port, &a.body)?;
                // Entries that are only an error (no device: "no devices", "type mismatch") are not devices.
                let (devices, errors): (Vec<_>, Vec<_>) = entries
                    .into_iter()
                    .partition(|e| !(e.device_status.is_empty() && e.digital_id.is_empty()));
                if devices.is_empty()
                    && let Some(err) = errors
                        .into_iter()
                        .find_map(|e| e.error.filter(|x| !x.is_success()))
                {
                    return Err(SbiError::device(&err));
                }
                return Ok(devices.into_iter().map(|e| discovered(port, e)).collect());
            }
            let why = last
                .map(|a| format!("neither MOSIPDISC nor SBIDISC is known (HTTP {})", a.status))
                .unwrap_or_default();
            Err(SbiError::NotSbi { port, why })
        }
        .instrument(info_span!("sbi_discover", port))
        .await
    }

    /// `MOSIPDINFO /info` (then `SBIINFO`): every device of the service, each deviceInfo and digitalId verified;
    /// unsigned entries are listed as not registered only when the service says so (error 100).
    pub async fn device_info(
        &self,
        verifier: &Verifier,
        now: OffsetDateTime,
    ) -> Result<Vec<DeviceInfo>, SbiError> {
        let port = self.port;
        async {
            let mut answer = None;
            for (method, body) in [
                ("MOSIPDINFO", None),
                (
                    "SBIINFO",
                    Some("{\"type\":\"Biometric Device\",\"specVersion\":\"1.0\"}"),
                ),
            ] {
                let a = http::exchange(
                    port,
                    method,
                    "/info",
                    body,
                    self.timeouts.connect,
                    self.timeouts.info,
                )
                .await
                .map_err(|e| SbiError::wire(port, "device info", e))?;
                if unknown_method(a.status, &a.body) {
                    continue;
                }
                answer = Some(a);
                break;
            }
            let a = answer.ok_or_else(|| SbiError::NotSbi {
                port,
                why: "neither MOSIPDINFO nor SBIINFO is answered".into(),
            })?;
            let entries: Vec<InfoEntry> = parse_json(port, &a.body)?;
            let mut out = Vec::new();
            for e in entries {
                let Some(text) = e.device_info.filter(|s| !s.is_empty()) else {
                    if let Some(err) = e.error.filter(|x| !x.is_success()) {
                        return Err(SbiError::device(&err));
                    }
                    continue;
                };
                out.push(info_entry(port, &text, e.error.as_ref(), verifier, now)?);
            }
            Ok(out)
        }
        .instrument(info_span!("sbi_device_info", port))
        .await
    }

    /// A registration capture of one slap, verified (see the module doc). `now` is the station's clock.
    pub async fn capture_slap(
        &self,
        device: &DeviceInfo,
        req: &SlapRequest,
        verifier: &Verifier,
        now: OffsetDateTime,
    ) -> Result<SlapCapture, SbiError> {
        let port = self.port;
        let span =
            info_span!("sbi_rcapture", port, slap = req.slap.name(), transaction = %req.transaction_id);
        async {
            if !device.verified {
                return Err(SbiError::Device {
                    code: "100".into(),
                    info: "Device not registered".into(),
                    kind: DeviceErrorKind::NotRegistered,
                });
            }
            if device.port != port {
                return Err(SbiError::Request(format!(
                    "the device is on port {}, not {port}",
                    device.port
                )));
            }
            if !device.is_finger_slap() {
                return Err(SbiError::Request(format!(
                    "the device is a {} {}, not a finger slap scanner",
                    device.digital_id.type_, device.digital_id.device_sub_type
                )));
            }
            let tid_ok = (4..=50).contains(&req.transaction_id.len())
                && req
                    .transaction_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !tid_ok {
                return Err(SbiError::Request(
                    "the transaction id must be 4-50 characters A-Z a-z 0-9 -".into(),
                ));
            }
            let slap_fingers = req.slap.fingers();
            for x in &req.exceptions {
                if !slap_fingers.contains(x) {
                    return Err(SbiError::Request(format!(
                        "{} is not a finger of the {} slap",
                        x.tamga_name(),
                        req.slap.name()
                    )));
                }
            }
            let asked: Vec<Finger> = slap_fingers
                .iter()
                .copied()
                .filter(|f| !req.exceptions.contains(f))
                .collect();
            if asked.is_empty() {
                return Err(SbiError::Request(
                    "every finger of the slap is an exception: nothing to capture".into(),
                ));
            }
            let spec_version = device
                .spec_version
                .first()
                .cloned()
                .unwrap_or_else(|| "0.9.5".into());
            let body = CaptureRequest {
                env: req.env.clone(),
                purpose: "Registration".into(),
                spec_version: spec_version.clone(),
                timeout: req.timeout_ms.to_string(),
                capture_time: timestamp(now),
                transaction_id: req.transaction_id.clone(),
                bio: vec![CaptureBio {
                    type_: "Finger".into(),
                    count: asked.len().to_string(),
                    bio_sub_type: asked.iter().map(|f| f.sbi_name().to_owned()).collect(),
                    exception: req.exceptions.iter().map(|f| f.sbi_name().to_owned()).collect(),
                    requested_score: req.requested_score.to_string(),
                    device_id: device.device_id.clone(),
                    device_sub_id: req.slap.sub_id().to_string(),
                    previous_hash: req.previous_hash.clone(),
                }],
                custom_opts: None,
            };
            let body = serde_json::to_string(&body).map_err(|e| SbiError::Request(e.to_string()))?;
            let limit = Duration::from_millis(u64::from(req.timeout_ms)) + self.timeouts.capture_margin;
            let a = http::exchange(
                port,
                "RCAPTURE",
                "/capture",
                Some(&body),
                self.timeouts.connect,
                limit,
            )
            .await
            .map_err(|e| SbiError::wire(port, "the capture", e))?;
            let resp: CaptureResponse = parse_json(port, &a.body)?;
            let capture = verify_capture(device, req, &spec_version, &asked, resp, verifier, now)?;
            debug!(fingers = capture.fingers.len(), "slap verified");
            Ok(capture)
        }
        .instrument(span)
        .await
    }

    /// Opens the preview stream of a slap (`STREAM /stream`): JPEG frames until `timeout_ms` or the device stops.
    pub async fn stream(
        &self,
        device: &DeviceInfo,
        slap: Slap,
        timeout_ms: u32,
    ) -> Result<PreviewStream, SbiError> {
        let port = self.port;
        async {
            let body = serde_json::to_string(&StreamRequest {
                device_id: device.device_id.clone(),
                device_sub_id: slap.sub_id().to_string(),
                timeout: timeout_ms.to_string(),
            })
            .map_err(|e| SbiError::Request(e.to_string()))?;
            let mut a = http::open(
                port,
                "STREAM",
                "/stream",
                Some(&body),
                self.timeouts.connect,
                self.timeouts.stream_open,
            )
            .await
            .map_err(|e| SbiError::wire(port, "the preview", e))?;
            let ctype = a
                .headers
                .iter()
                .find(|(n, _)| n == "content-type")
                .map(|(_, v)| v.to_ascii_lowercase())
                .unwrap_or_default();
            if !ctype.starts_with("multipart/") {
                // An error answer: read it (bounded) and map its code.
                let mut body = std::mem::take(&mut a.already);
                let mut chunk = [0u8; 4096];
                let read = async {
                    while body.len() < 64 * 1024 {
                        match a.stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body.extend_from_slice(&chunk[..n]),
                        }
                        if serde_json::from_slice::<serde_json::Value>(body.trim_ascii()).is_ok() {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(self.timeouts.stream_open, read).await;
                let e: wire::StreamError = parse_json(port, &body)?;
                let info = e.error.unwrap_or(ErrorInfo {
                    error_code: e.error_code.unwrap_or_default(),
                    error_info: e.error_info.unwrap_or_default(),
                });
                return Err(SbiError::device(&info));
            }
            Ok(PreviewStream {
                port,
                stream: a.stream,
                buf: a.already,
                done: false,
            })
        }
        .instrument(info_span!("sbi_stream", port, slap = slap.name()))
        .await
    }
}

/// The preview: JPEG frames of a multipart answer. Parts are read by their `Content-Length` (any boundary text,
/// since services declare `--BoundaryString` and use it as the delimiter); anything that is not a part ends it.
#[derive(Debug)]
pub struct PreviewStream {
    port: u16,
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    done: bool,
}

/// The largest preview frame.
const MAX_FRAME: usize = 8 * 1024 * 1024;

impl PreviewStream {
    async fn fill(&mut self) -> Result<bool, SbiError> {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .map_err(|_| SbiError::Timeout {
                port: self.port,
                op: "the next preview frame",
                after: Duration::from_secs(10),
            })?
            .map_err(|e| SbiError::Unreachable {
                port: self.port,
                why: e.to_string(),
            })?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next JPEG frame, or `None` when the device ends the stream.
    pub async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, SbiError> {
        if self.done {
            return Ok(None);
        }
        loop {
            // Skip blank lines between parts.
            let skip = self
                .buf
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            self.buf.drain(..skip);
            if self.buf.len() >= 2 && !self.buf.starts_with(b"--") {
                // Not a part (the mock appends a whole HTTP answer after the last frame): the stream is over.
                self.done = true;
                return Ok(None);
            }
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let len = head
                    .split("\r\n")
                    .filter_map(|l| l.split_once(':'))
                    .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok());
                let Some(len) = len.filter(|n| *n <= MAX_FRAME) else {
                    return Err(SbiError::NotSbi {
                        port: self.port,
                        why: "a preview part without a usable Content-Length".into(),
                    });
                };
                while self.buf.len() < end + 4 + len {
                    if !self.fill().await? {
                        self.done = true;
                        return Ok(None);
                    }
                }
                let frame: Vec<u8> = self.buf[end + 4..end + 4 + len].to_vec();
                self.buf.drain(..end + 4 + len);
                if !frame.starts_with(&[0xFF, 0xD8]) {
                    warn!(port = self.port, "a preview part that is not a JPEG was skipped");
                    continue;
                }
                return Ok(Some(frame));
            }
            if self.buf.len() > 64 * 1024 {
                return Err(SbiError::NotSbi {
                    port: self.port,
                    why: "a preview part head longer than 64 KiB".into(),
                });
            }
            if !self.fill().await? {
                self.done = true;
                return Ok(None);
            }
        }
    }

    /// The frames as an async stream.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Vec<u8>, SbiError>> {
        futures_util::stream::unfold(self, |mut s| async move {
            match s.next_frame().await {
                Ok(Some(f)) => Some((Ok(f), s)),
                Ok(None) => None,
                Err(e) => {
                    s.done = true;
                    Some((Err(e), s))
                }
            }
        })
    }
}

fn discovered(port: u16, e: DiscoveryEntry) -> DiscoveredDevice {
    let digital_id = b64url_lenient(&e.digital_id).and_then(|b| serde_json::from_slice(&b).ok());
    DiscoveredDevice {
        port,
        device_id: e.device_id.0,
        status: e.device_status,
        certification: e.certification,
        service_version: e.service_version,
        sub_ids: e.device_sub_id.into_iter().map(|s| s.0).collect(),
        purpose: e.purpose,
        spec_version: e.spec_version,
        digital_id,
        error: e
            .error
            .filter(|x| !x.is_success())
            .map(|x| (x.error_code.0, x.error_info)),
    }
}

fn info_entry(
    port: u16,
    text: &str,
    error: Option<&ErrorInfo>,
    verifier: &Verifier,
    now: OffsetDateTime,
) -> Result<DeviceInfo, SbiError> {
    let unix = now.unix_timestamp();
    let not_registered = error.is_some_and(|e| e.error_code.0.trim() == "100");
    let (payload, verified): (DeviceInfoPayload, bool) = if looks_like_jws(text) {
        let v = verify_jws("deviceInfo", text, &verifier.trust, unix)?;
        (v.json("deviceInfo")?, true)
    } else if not_registered {
        let bytes = b64url_lenient(text).ok_or(VerifyError::Malformed {
            what: "deviceInfo",
            why: "an unsigned deviceInfo that is not base64url".into(),
        })?;
        let p: DeviceInfoPayload = serde_json::from_slice(&bytes).map_err(|e| VerifyError::Payload {
            what: "deviceInfo",
            why: e.to_string(),
        })?;
        (p, false)
    } else {
        return Err(VerifyError::Unsigned.into());
    };
    let digital_id: DigitalIdPayload = if verified {
        if !looks_like_jws(&payload.digital_id) {
            return Err(VerifyError::Malformed {
                what: "digitalId",
                why: "a registered device's digitalId must be signed".into(),
            }
            .into());
        }
        verify_jws("digitalId", &payload.digital_id, &verifier.trust, unix)?.json("digitalId")?
    } else {
        let raw = if looks_like_jws(&payload.digital_id) {
            payload
                .digital_id
                .split('.')
                .nth(1)
                .unwrap_or_default()
                .to_owned()
        } else {
            payload.digital_id.clone()
        };
        b64url_lenient(&raw)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(VerifyError::Payload {
                what: "digitalId",
                why: "not base64url JSON".into(),
            })?
    };
    let device_code = if payload.device_code.is_empty() {
        payload.serial_no.clone()
    } else {
        payload.device_code.clone()
    };
    Ok(DeviceInfo {
        port,
        device_id: payload.device_id.0,
        device_code,
        status: payload.device_status,
        certification: payload.certification,
        service_version: payload.service_version,
        firmware: payload.firmware,
        sub_ids: payload.device_sub_id.into_iter().map(|s| s.0).collect(),
        env: payload.env,
        purpose: payload.purpose,
        spec_version: payload.spec_version,
        digital_id,
        verified,
        error: error
            .filter(|x| !x.is_success())
            .map(|x| (x.error_code.0.clone(), x.error_info.clone())),
    })
}

fn field(name: &'static str, asked: &str, answered: &str) -> Result<(), VerifyError> {
    if asked == answered {
        Ok(())
    } else {
        Err(VerifyError::Field {
            field: name,
            asked: asked.to_owned(),
            answered: answered.to_owned(),
        })
    }
}

fn verify_capture(
    device: &DeviceInfo,
    req: &SlapRequest,
    spec_version: &str,
    asked: &[Finger],
    resp: CaptureResponse,
    verifier: &Verifier,
    now: OffsetDateTime,
) -> Result<SlapCapture, SbiError> {
    let unix = now.unix_timestamp();
    // A device error anywhere (no data) refuses the whole slap with that error.
    if let Some(err) = resp
        .biometrics
        .iter()
        .find(|b| b.data.is_empty())
        .map(|b| b.error.clone().unwrap_or_default())
    {
        return Err(SbiError::device(&err));
    }
    let mut previous = req.previous_hash.clone();
    let mut fingers: Vec<CapturedFinger> = Vec::new();
    let mut meets = true;
    for (index, b) in resp.biometrics.into_iter().enumerate() {
        field("specVersion", spec_version, &b.spec_version)?;
        let v = verify_jws("data", &b.data, &verifier.trust, unix)?;
        let d: CaptureData = v.json("data")?;
        // The signer of the data is the device that answered DINFO.
        let id: DigitalIdPayload =
            verify_jws("digitalId", &d.digital_id, &verifier.trust, unix)?.json("digitalId")?;
        if !id.same_device(&device.digital_id) {
            return Err(VerifyError::DigitalIdMismatch {
                why: format!(
                    "device info: {} {} serial {}; capture: {} {} serial {}",
                    device.digital_id.make,
                    device.digital_id.model,
                    device.digital_id.serial_no,
                    id.make,
                    id.model,
                    id.serial_no
                ),
            }
            .into());
        }
        if !d.device_code.is_empty() && !device.device_code.is_empty() {
            field("deviceCode", &device.device_code, &d.device_code)?;
        }
        if d.transaction_id != req.transaction_id {
            return Err(VerifyError::TransactionId {
                asked: req.transaction_id.clone(),
                answered: d.transaction_id,
            }
            .into());
        }
        check_timestamp(&d.timestamp, now, verifier.skew)?;
        field("bioType", "Finger", &d.bio_type)?;
        field("purpose", "Registration", &d.purpose)?;
        field("env", &req.env, &d.env)?;
        let finger = Finger::from_sbi_name(&d.bio_sub_type).ok_or_else(|| VerifyError::FingerUnexpected {
            finger: d.bio_sub_type.clone(),
        })?;
        if !asked.contains(&finger) {
            return Err(VerifyError::FingerUnexpected {
                finger: d.bio_sub_type,
            }
            .into());
        }
        if fingers.iter().any(|f| f.finger == finger) {
            return Err(VerifyError::FingerDuplicated {
                finger: d.bio_sub_type,
            }
            .into());
        }
        let record = b64url_lenient(&d.bio_value).ok_or_else(|| VerifyError::Record {
            finger: d.bio_sub_type.clone(),
            why: "bioValue is not base64url".into(),
        })?;
        let computed = verify::chain_hash(&previous, &record).ok_or_else(|| VerifyError::HashChain {
            index,
            stated: b.hash.clone(),
            computed: format!("nothing: the previous hash {previous:?} is not hex"),
        })?;
        if !computed.eq_ignore_ascii_case(b.hash.trim()) {
            return Err(VerifyError::HashChain {
                index,
                stated: b.hash,
                computed,
            }
            .into());
        }
        let facts = verify::read_record_facts(&record).map_err(|why| VerifyError::Record {
            finger: d.bio_sub_type.clone(),
            why,
        })?;
        if facts.finger_position != finger.iso_code() {
            return Err(VerifyError::Record {
                finger: d.bio_sub_type.clone(),
                why: format!(
                    "the record's finger position is {}, the data says {} ({})",
                    facts.finger_position,
                    finger.iso_code(),
                    finger.sbi_name()
                ),
            }
            .into());
        }
        let quality = d
            .quality_score
            .number()
            .filter(|q| (0.0..=100.0).contains(q))
            .ok_or_else(|| VerifyError::Quality(d.quality_score.0.clone()))?;
        if quality < f64::from(req.requested_score) {
            meets = false;
        }
        previous = computed.clone();
        fingers.push(CapturedFinger {
            finger,
            position: finger.tamga_name(),
            record,
            compression: facts.compression,
            device_quality: quality,
            evidence: b.data,
            hash: computed,
        });
    }
    if let Some(missing) = asked.iter().find(|f| !fingers.iter().any(|c| c.finger == **f)) {
        return Err(VerifyError::FingerMissing {
            finger: missing.sbi_name().to_owned(),
        }
        .into());
    }
    Ok(SlapCapture {
        device: DeviceIdentity {
            port: device.port,
            make: device.digital_id.make.clone(),
            model: device.digital_id.model.clone(),
            serial: device.digital_id.serial_no.clone(),
            certification: device.certification.clone(),
            device_provider: device.digital_id.device_provider.clone(),
        },
        slap: req.slap,
        fingers,
        exceptions: req.exceptions.clone(),
        last_hash: previous,
        meets_requested_score: meets,
    })
}

/// SBI timestamps are `yyyy-MM-ddTHH:mm:ssZ` (UTC); fractions and `+00:00` are accepted too (RFC 3339).
fn check_timestamp(ts: &str, now: OffsetDateTime, skew: Duration) -> Result<(), VerifyError> {
    let t = OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).map_err(|_| {
        VerifyError::Timestamp {
            timestamp: ts.to_owned(),
            why: "not in the SBI format yyyy-MM-ddTHH:mm:ssZ".into(),
        }
    })?;
    let diff = (t - now).abs();
    if diff > skew {
        return Err(VerifyError::Timestamp {
            timestamp: ts.to_owned(),
            why: format!(
                "{} s away from the station's clock (at most {} s)",
                diff.whole_seconds(),
                skew.as_secs()
            ),
        });
    }
    Ok(())
}

/// One SBI service found by [`discover`].
#[derive(Debug, Clone)]
pub struct FoundService {
    pub port: u16,
    pub devices: Vec<DiscoveredDevice>,
}

/// Asks every port of `ports` at once (`MOSIPDISC`, then `SBIDISC`) and returns the ports that answered as SBI
/// services, in port order. Ports with nothing, with something else, or silent are skipped.
pub async fn discover(ports: RangeInclusive<u16>, timeouts: &Timeouts) -> Vec<FoundService> {
    let span = info_span!("sbi_scan", from = *ports.start(), to = *ports.end());
    async {
        let mut set = tokio::task::JoinSet::new();
        for port in ports {
            let client = SbiClient {
                port,
                timeouts: timeouts.clone(),
            };
            set.spawn(async move { (port, client.discover_devices("Biometric Device").await) });
        }
        let mut found = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok((port, Ok(devices))) => found.push(FoundService { port, devices }),
                Ok((port, Err(e))) => {
                    if !matches!(e, SbiError::Unreachable { .. }) {
                        debug!(port, error = %e, "not an SBI service");
                    }
                }
                Err(e) => warn!(error = %e, "a discovery task failed"),
            }
        }
        found.sort_by_key(|s| s.port);
        found
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        for f in Finger::ALL {
            assert_eq!(Finger::from_sbi_name(f.sbi_name()), Some(f));
            assert_eq!(Finger::from_tamga_name(f.tamga_name()), Some(f));
        }
        assert_eq!(Finger::from_sbi_name("Left IndexFinger"), Some(Finger::LeftIndex));
        assert_eq!(Finger::LeftIndex.iso_code(), 7);
        assert_eq!(Finger::from_sbi_name("UNKNOWN"), None);
    }

    #[test]
    fn error_codes_map_to_retry_or_refusal() {
        let busy = SbiError::device(&ErrorInfo {
            error_code: wire::Lenient("703".into()),
            error_info: "busy".into(),
        });
        assert!(busy.is_retry());
        let nr = SbiError::device(&ErrorInfo {
            error_code: wire::Lenient("100".into()),
            error_info: String::new(),
        });
        assert!(!nr.is_retry());
        assert!(nr.to_string().contains("not registered"));
    }

    #[test]
    fn timestamps_in_sbi_format_within_the_window() {
        let now = OffsetDateTime::from_unix_timestamp(1_764_410_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let ts = timestamp(now);
        assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
        assert!(check_timestamp(&ts, now, Duration::from_secs(300)).is_ok());
        let late = timestamp(now + time::Duration::minutes(6));
        assert!(check_timestamp(&late, now, Duration::from_secs(300)).is_err());
        assert!(check_timestamp("29/11/2026 10:00", now, Duration::from_secs(300)).is_err());
    }
}
