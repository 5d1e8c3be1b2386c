//! A simulated MOSIP SBI device service (0.9.5 verbs, with the 1.0 ones too) on 127.0.0.1, serving one slap
//! fingerprint scanner (deviceId "2", subIds 1 left, 2 right, 3 thumbs), as MOSIP's reference mock lays it out.
//!
//! It has its own small HTTP server (std threads, one request per connection, the mock's framing: `405 OK`, four
//! bytes after the body, a multipart boundary declared as `--BoundaryString` and used as is), its own JSON and JWS
//! encoders (never the driver's), and signs with a development device-provider PKI ([`DeviceProviderPki`]: an
//! RSA-2048 CA and a device certificate without extensions, like the mock's). Slaps come from the synthetic prints
//! of [`crate::fingerprint`], the same ten fingers for one applicant seed, each finger as an ISO/IEC 19794-4:2011
//! record, 500 ppi, whose image is JPEG 2000 lossless (compression code 5, as MOSIP registration devices send)
//! by the simulator's own encoder ([`crate::jpeg2000`]); or, by knobs, PNG (6), raw pixels (0), PNG bytes under
//! the JPEG 2000 code, or JPEG 2000 from an encoder the caller plugs in.
//!
//! Knobs ([`SbiKnobs`]) inject what real services and tampered ones do: busy, slow, low quality, a finger missing,
//! a wrong finger position, a bad signature, an untrusted certificate, a broken hash chain, a wrong transaction id,
//! an expired device certificate, no stream, not registered.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Errors of the simulator's set-up.
#[derive(Debug, thiserror::Error)]
pub enum SimSbiError {
    #[error("no free port in {0:?}")]
    NoPort(RangeInclusive<u16>),
    #[error("device-provider PKI: {0}")]
    Pki(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A development device-provider PKI: CA, device certificate (and its key), and for faults another CA's device
/// certificate and an expired one. All RSA-2048, SHA-256.
#[derive(Debug, Clone)]
pub struct DeviceProviderPki {
    /// The device provider's CA certificate (what a station trusts).
    pub ca_pem: String,
    /// Another CA, that stations do not trust.
    pub other_ca_pem: String,
    device_cert_der: Vec<u8>,
    untrusted_cert_der: Vec<u8>,
    expired_cert_der: Vec<u8>,
    /// Key usage keyEncipherment only: not for signatures.
    encipher_only_cert_der: Vec<u8>,
    /// PKCS#8 DER of the device key (the same key in all three certificates).
    device_key_pkcs8: Vec<u8>,
}

fn rsa_pkcs8() -> Result<Vec<u8>, SimSbiError> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| SimSbiError::Pki(format!("RSA key generation: {e}")))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| SimSbiError::Pki(format!("PKCS#8: {e}")))?;
    Ok(der.as_bytes().to_vec())
}

fn rcgen_key(pkcs8: &[u8]) -> Result<rcgen::KeyPair, SimSbiError> {
    // rcgen (ring) reads an RSA PKCS#8 key and signs with RSA PKCS#1 v1.5 SHA-256.
    rcgen::KeyPair::try_from(pkcs8).map_err(|e| SimSbiError::Pki(format!("key: {e}")))
}

fn ca(cn: &str, key: &rcgen::KeyPair) -> Result<rcgen::Certificate, SimSbiError> {
    let mut p =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| SimSbiError::Pki(e.to_string()))?;
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "Tamga development device provider",
    );
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(400);
    p.not_after = now + time::Duration::days(3650);
    p.self_signed(key).map_err(|e| SimSbiError::Pki(e.to_string()))
}

fn leaf(
    key: &rcgen::KeyPair,
    issuer: &rcgen::Certificate,
    issuer_key: &rcgen::KeyPair,
    expired: bool,
    key_usages: Vec<rcgen::KeyUsagePurpose>,
) -> Result<Vec<u8>, SimSbiError> {
    let mut p =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| SimSbiError::Pki(e.to_string()))?;
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "tamga-sim-slap");
    p.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "Tamga development device provider",
    );
    // Like MOSIP's mock device certificate: no key usage, no extended key usage.
    p.use_authority_key_identifier_extension = false;
    if !key_usages.is_empty() {
        // rcgen writes extensions only when one of a few others is present: basicConstraints CA:FALSE is one.
        p.is_ca = rcgen::IsCa::ExplicitNoCa;
    }
    p.key_usages = key_usages;
    let now = time::OffsetDateTime::now_utc();
    if expired {
        p.not_before = now - time::Duration::days(60);
        p.not_after = now - time::Duration::days(1);
    } else {
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(30);
    }
    let c = p
        .signed_by(key, issuer, issuer_key)
        .map_err(|e| SimSbiError::Pki(e.to_string()))?;
    Ok(c.der().to_vec())
}

impl DeviceProviderPki {
    /// Generates three RSA-2048 keys (CA, other CA, device) and the certificates.
    pub fn generate() -> Result<Self, SimSbiError> {
        let ca_pkcs8 = rsa_pkcs8()?;
        let other_pkcs8 = rsa_pkcs8()?;
        let device_pkcs8 = rsa_pkcs8()?;
        let ca_key = rcgen_key(&ca_pkcs8)?;
        let other_key = rcgen_key(&other_pkcs8)?;
        let device_key = rcgen_key(&device_pkcs8)?;
        let ca_cert = ca("Tamga development device-provider CA", &ca_key)?;
        let other_cert = ca("Another device-provider CA", &other_key)?;
        Ok(DeviceProviderPki {
            ca_pem: ca_cert.pem(),
            other_ca_pem: other_cert.pem(),
            device_cert_der: leaf(&device_key, &ca_cert, &ca_key, false, vec![])?,
            untrusted_cert_der: leaf(&device_key, &other_cert, &other_key, false, vec![])?,
            expired_cert_der: leaf(&device_key, &ca_cert, &ca_key, true, vec![])?,
            encipher_only_cert_der: leaf(
                &device_key,
                &ca_cert,
                &ca_key,
                false,
                vec![rcgen::KeyUsagePurpose::KeyEncipherment],
            )?,
            device_key_pkcs8: device_pkcs8,
        })
    }

    /// One PKI per process (key generation takes a moment), for tests and the demo.
    pub fn shared() -> Result<&'static DeviceProviderPki, SimSbiError> {
        static PKI: OnceLock<DeviceProviderPki> = OnceLock::new();
        if let Some(p) = PKI.get() {
            return Ok(p);
        }
        let p = DeviceProviderPki::generate()?;
        Ok(PKI.get_or_init(|| p))
    }

    /// The device certificate (PEM), valid and issued by [`Self::ca_pem`].
    pub fn device_cert_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.device_cert_der);
        let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            s.push_str(&String::from_utf8_lossy(chunk));
            s.push('\n');
        }
        s.push_str("-----END CERTIFICATE-----\n");
        s
    }
}

/// Faults and behaviours, set per test (or from a console).
#[derive(Debug, Clone, Default)]
pub struct SbiKnobs {
    /// RCAPTURE answers 703 (capture in progress); DINFO says Busy (111).
    pub busy: bool,
    /// RCAPTURE waits this long before answering.
    pub slow: Option<Duration>,
    /// Faint prints and a low quality score (22).
    pub low_quality: bool,
    /// The last finger asked is left out of the answer.
    pub missing_finger: bool,
    /// The first finger's record carries another finger's position.
    pub wrong_position: bool,
    /// The first item's signature is corrupted.
    pub bad_signature: bool,
    /// Captures are signed with a certificate from another CA.
    pub untrusted_certificate: bool,
    /// The second item's hash does not follow from the first.
    pub broken_hash_chain: bool,
    /// The transaction id is not echoed.
    pub wrong_transaction_id: bool,
    /// Captures are signed with an expired device certificate.
    pub expired_certificate: bool,
    /// STREAM answers error 202 (no device connected).
    pub no_stream: bool,
    /// The device is not registered: unsigned deviceInfo (100), captures refused (100).
    pub not_registered: bool,
    /// Captures are signed with a certificate whose key usage does not allow signatures.
    pub wrong_key_usage: bool,
    /// Numbers as JSON numbers (scores, sub ids) and bioValue base64url without padding, as some services send
    /// them (the default is the mock's: strings, padded).
    pub numbers_as_numbers: bool,
    /// Only the SBI 1.0 verbs (SBIDISC, SBIINFO): MOSIPDISC and MOSIPDINFO get `405 OK` with error 500.
    pub sbi_verbs_only: bool,
    /// The records carry uncompressed 8-bit grey pixels (compression 0) instead of JPEG 2000.
    pub uncompressed_images: bool,
    /// The records carry PNG (compression 6) instead of JPEG 2000.
    pub png_images: bool,
    /// The records say JPEG 2000 lossless (compression 5) but still hold the PNG bytes: a client must refuse them
    /// (they are not a JPEG 2000 codestream).
    pub jpeg2000_label: bool,
    /// The records' JPEG 2000 (the default) comes from this encoder instead of the simulator's own (which uses
    /// no wavelet decomposition and 64x64 tiles): Tamga's tests plug in OpenJPEG through Python's Pillow, to feed
    /// the client codestreams as a real device's encoder writes them.
    pub jpeg2000_encoder: Option<Jpeg2000Encoder>,
}

/// `(width, height, row-major 8-bit grey pixels) -> JPEG 2000 bytes` (J2K codestream or JP2 file), lossless.
pub type Jpeg2000EncodeFn = dyn Fn(u32, u32, &[u8]) -> Result<Vec<u8>, String> + Send + Sync;

/// A JPEG 2000 encoder the caller plugs into the simulator ([`SbiKnobs::jpeg2000_encoder`]).
#[derive(Clone)]
pub struct Jpeg2000Encoder(pub std::sync::Arc<Jpeg2000EncodeFn>);

impl std::fmt::Debug for Jpeg2000Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jpeg2000Encoder(..)")
    }
}

/// How to start a service.
#[derive(Debug, Clone)]
pub struct SbiServiceConfig {
    /// The first free port of this range is taken.
    pub ports: RangeInclusive<u16>,
    pub serial: String,
    pub make: String,
    pub model: String,
    /// The applicant: the same ten fingers for one seed.
    pub seed: u64,
    /// Finger image size in pixels (500 ppi).
    pub finger_size: (u32, u32),
}

impl Default for SbiServiceConfig {
    fn default() -> Self {
        SbiServiceConfig {
            ports: 4501..=4600,
            serial: "TSIM-0001".into(),
            make: "Tamga".into(),
            model: "SIM-SLAP-442".into(),
            seed: 1,
            finger_size: (192, 256),
        }
    }
}

struct Shared {
    cfg: SbiServiceConfig,
    port: u16,
    pki: DeviceProviderPki,
    knobs: Mutex<SbiKnobs>,
    capturing: AtomicBool,
    stop: AtomicBool,
}

/// A running simulated SBI service; stops when dropped.
#[derive(Debug)]
pub struct SbiService {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl SbiService {
    /// Binds 127.0.0.1 on the first free port of `cfg.ports` and serves.
    pub fn start(cfg: SbiServiceConfig, pki: DeviceProviderPki) -> Result<Self, SimSbiError> {
        let listener = cfg
            .ports
            .clone()
            .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .ok_or_else(|| SimSbiError::NoPort(cfg.ports.clone()))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            cfg,
            port,
            pki,
            knobs: Mutex::new(SbiKnobs::default()),
            capturing: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sbi-sim-{port}"))
            .spawn(move || accept_loop(listener, s))?;
        Ok(SbiService {
            shared,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The knobs, to change behaviour between requests.
    pub fn knobs(&self) -> MutexGuard<'_, SbiKnobs> {
        self.shared.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a registration capture is being served (the device is busy for others).
    pub fn capture_in_progress(&self) -> bool {
        self.shared.capturing.load(Ordering::SeqCst)
    }

    pub fn pki(&self) -> &DeviceProviderPki {
        &self.shared.pki
    }
}

impl Drop for SbiService {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let s = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("sbi-sim-conn".into())
                    .spawn(move || {
                        let _ = serve(stream, &s);
                    });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Reads one request: method, path, body.
fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, String, Vec<u8>)> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() > 65536 {
            return Err(std::io::Error::other("no request head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok((method, path, body))
}

/// Writes a JSON answer the way MOSIP's mock does: its headers, the body, and four bytes more.
fn answer(stream: &mut TcpStream, status: &str, port: u16, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nAccess-Control-Allow-Origin: *\r\nCACHE-CONTROL:no-cache\r\nContent-Length: {}\r\n\
         Content-Type: application/json\r\nLOCATION: HTTP://127.0.0.1:{port}/\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut v = head.into_bytes();
    v.extend_from_slice(body.as_bytes());
    v.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&v)?;
    stream.flush()
}

fn serve(mut stream: TcpStream, s: &Shared) -> std::io::Result<()> {
    let (mut method, path, body) = read_request(&mut stream)?;
    let port = s.port;
    if knobs(s).sbi_verbs_only && method.starts_with("MOSIPD") {
        method.clear();
    }
    match (method.as_str(), path.as_str()) {
        ("MOSIPDISC" | "SBIDISC", "/device") => answer(&mut stream, "200 OK", port, &discovery(s, &body)),
        ("MOSIPDINFO" | "SBIINFO", "/info") => answer(&mut stream, "200 OK", port, &device_info(s)),
        ("RCAPTURE", "/capture") => {
            let out = rcapture(s, &body);
            answer(&mut stream, "200 OK", port, &out)
        }
        ("STREAM", "/stream") => stream_preview(&mut stream, s, &body),
        ("OPTIONS", _) => stream.write_all(
            b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin:*\r\nAccess-Control-Allow-Headers:Content-Type\r\n\
              Access-Control-Allow-Methods:OPTIONS, RCAPTURE, CAPTURE, MOSIPDINFO, MOSIPDISC, STREAM, SBIDISC, SBIINFO\r\n\r\n",
        ),
        _ => answer(
            &mut stream,
            "405 OK",
            port,
            r#"[{"error":{"errorCode":"500","errorInfo":"Invalid URL"}}]"#,
        ),
    }
}

fn knobs(s: &Shared) -> SbiKnobs {
    s.knobs.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `yyyy-MM-ddTHH:mm:ssZ`, UTC, as SBI specifies.
fn sbi_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn device_code(s: &Shared) -> String {
    format!("tamga-sim-slap-{}", s.cfg.serial)
}

fn digital_id_json(s: &Shared) -> String {
    json!({
        "serialNo": s.cfg.serial, "make": s.cfg.make, "model": s.cfg.model, "type": "Finger",
        "deviceSubType": "Slap", "deviceProviderId": "TAMGA.SIM.SBI", "deviceProvider": "Tamga development",
        "dateTime": sbi_time(time::OffsetDateTime::now_utc()),
    })
    .to_string()
}

/// The sim's JWS encoder: header {x5c: [the certificate], alg RS256, typ JWT}, RSASSA-PKCS1-v1_5 SHA-256 by ring.
fn sign(s: &Shared, cert_der: &[u8], payload: &str) -> String {
    let header = json!({"x5c": [STANDARD.encode(cert_der)], "alg": "RS256", "typ": "JWT"}).to_string();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.as_bytes()),
        URL_SAFE_NO_PAD.encode(payload.as_bytes())
    );
    let sig = ring::signature::RsaKeyPair::from_pkcs8(&s.pki.device_key_pkcs8)
        .ok()
        .and_then(|k| {
            let mut sig = vec![0u8; k.public().modulus_len()];
            k.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .ok()
            .map(|_| sig)
        })
        .unwrap_or_default();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn discovery(s: &Shared, body: &[u8]) -> String {
    let k = knobs(s);
    let ty = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned));
    match ty.as_deref() {
        Some("Biometric Device" | "Finger") => {}
        Some(_) | None => {
            return r#"[{"error":{"errorCode":"502","errorInfo":"Biometric Type values Mismatch"}}]"#.into();
        }
    }
    let (status, code, info) = status(&k);
    let registered = !k.not_registered;
    json!([{
        "deviceId": if registered { "2" } else { "" }, "deviceStatus": status, "certification": "L0",
        "serviceVersion": "0.9.5", "callbackId": format!("http://127.0.0.1:{}/", s.port),
        "digitalId": URL_SAFE.encode(digital_id_json(s).as_bytes()),
        "deviceCode": if registered { device_code(s) } else { String::new() },
        "purpose": if registered { "Registration" } else { "" },
        "error": {"errorCode": code, "errorInfo": info}, "specVersion": ["0.9.5"], "deviceSubId": sub_ids(&k),
    }])
    .to_string()
}

fn sub_ids(k: &SbiKnobs) -> Value {
    if k.numbers_as_numbers {
        json!([1, 2, 3])
    } else {
        json!(["1", "2", "3"])
    }
}

fn status(k: &SbiKnobs) -> (&'static str, &'static str, &'static str) {
    if k.not_registered {
        ("Not Registered", "100", "Device not registered")
    } else if k.busy {
        ("Busy", "111", "Device is busy")
    } else {
        ("Ready", "0", "Success")
    }
}

fn device_info(s: &Shared) -> String {
    let k = knobs(s);
    let (status, code, info) = status(&k);
    if k.not_registered {
        let payload = json!({
            "specVersion": ["0.9.5"], "env": "Staging", "digitalId": URL_SAFE.encode(digital_id_json(s).as_bytes()),
            "deviceId": "", "deviceCode": "", "purpose": "", "serviceVersion": "0.9.5", "deviceStatus": status,
            "firmware": "TAMGA.SIM.1.0", "certification": "L0", "deviceSubId": ["1", "2", "3"],
            "callbackId": format!("http://127.0.0.1:{}/", s.port),
        })
        .to_string();
        return json!([{"deviceInfo": URL_SAFE.encode(payload.as_bytes()),
                        "error": {"errorCode": code, "errorInfo": info}}])
        .to_string();
    }
    let cert = &s.pki.device_cert_der;
    let payload = json!({
        "specVersion": ["0.9.5"], "env": "Staging", "digitalId": sign(s, cert, &digital_id_json(s)),
        "deviceId": "2", "deviceCode": device_code(s), "purpose": "Registration", "serviceVersion": "0.9.5",
        "deviceStatus": status, "firmware": "TAMGA.SIM.1.0", "certification": "L0", "deviceSubId": sub_ids(&k),
        "callbackId": format!("http://127.0.0.1:{}/", s.port),
    })
    .to_string();
    json!([{"deviceInfo": sign(s, cert, &payload), "error": {"errorCode": code, "errorInfo": info}}])
        .to_string()
}

fn capture_error(spec: &str, code: &str, info: &str) -> String {
    json!({"biometrics": [{"specVersion": spec, "data": "", "hash": "",
                           "error": {"errorCode": code, "errorInfo": info}}]})
    .to_string()
}

/// A string or a number, as text (the sim accepts both).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

const LEFT: [(&str, u8); 4] = [
    ("Left IndexFinger", 7),
    ("Left MiddleFinger", 8),
    ("Left RingFinger", 9),
    ("Left LittleFinger", 10),
];
const RIGHT: [(&str, u8); 4] = [
    ("Right IndexFinger", 2),
    ("Right MiddleFinger", 3),
    ("Right RingFinger", 4),
    ("Right LittleFinger", 5),
];
const THUMBS: [(&str, u8); 2] = [("Left Thumb", 6), ("Right Thumb", 1)];
const ALL_NAMES: [&str; 10] = [
    "Left IndexFinger",
    "Left MiddleFinger",
    "Left RingFinger",
    "Left LittleFinger",
    "Left Thumb",
    "Right IndexFinger",
    "Right MiddleFinger",
    "Right RingFinger",
    "Right LittleFinger",
    "Right Thumb",
];

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b).as_ref().to_vec()
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The sim's own hash chain: UPPER_HEX(SHA-256(previous bytes ‖ SHA-256(record))).
fn chain(previous_hex: &str, record: &[u8]) -> String {
    let mut prev = if previous_hex.is_empty() {
        sha256(b"")
    } else {
        (0..previous_hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(previous_hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    };
    prev.extend_from_slice(&sha256(record));
    hex_upper(&sha256(&prev))
}

fn rcapture(s: &Shared, body: &[u8]) -> String {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return capture_error("", "123", "No Description available.");
    };
    let spec = text(req.get("specVersion")).unwrap_or_default();
    let env = text(req.get("env")).unwrap_or_default();
    if !["Staging", "Developer", "Pre-Production", "Production"].contains(&env.as_str()) {
        return capture_error(&spec, "115", "env mismatch");
    }
    if text(req.get("purpose")).is_some_and(|p| p != "Registration") {
        return capture_error(&spec, "121", "purpose mismatch");
    }
    let Some(bio) = req.get("bio").and_then(|b| b.get(0)) else {
        return capture_error(&spec, "123", "No Description available.");
    };
    if text(bio.get("deviceId")).as_deref() != Some("2") {
        return capture_error(&spec, "705", "unknown device");
    }
    if text(bio.get("type")).as_deref() != Some("Finger") {
        return capture_error(&spec, "120", "type mismatch");
    }
    let k = knobs(s);
    if k.not_registered {
        return capture_error(&spec, "100", "Device not registered");
    }
    let tid = text(req.get("transactionId")).unwrap_or_default();
    if !(4..=50).contains(&tid.len()) || !tid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return capture_error(&spec, "112", "Invalid Transaction ID");
    }
    let slot: &[(&str, u8)] = match text(bio.get("deviceSubId")).as_deref() {
        Some("1") => &LEFT,
        Some("2") => &RIGHT,
        Some("3") => &THUMBS,
        _ => return capture_error(&spec, "109", "Requested number of biometric not supported"),
    };
    let names = |key: &str| -> Option<Vec<String>> {
        match bio.get(key) {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => None,
        }
    };
    let (Some(exceptions), Some(sub_types)) = (names("exception"), names("bioSubType")) else {
        return capture_error(&spec, "123", "No Description available.");
    };
    let count = text(bio.get("count"))
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    if exceptions.iter().any(|x| !ALL_NAMES.contains(&x.as_str()))
        || sub_types
            .iter()
            .any(|x| x != "UNKNOWN" && !ALL_NAMES.contains(&x.as_str()))
    {
        return capture_error(&spec, "122", "bioSubType/exception mismatch");
    }
    if count + exceptions.len() != slot.len() {
        return capture_error(&spec, "109", "Requested number of biometric not supported");
    }
    // Busy by knob, or another capture holds the device (it clears the flag when it answers).
    if k.busy || s.capturing.swap(true, Ordering::SeqCst) {
        return capture_error(&spec, "703", "Capture already in progress");
    }
    let started = Instant::now();
    if let Some(d) = k.slow {
        std::thread::sleep(d);
    }
    let out = capture_items(s, &k, &spec, &env, &tid, bio, slot, &exceptions);
    s.capturing.store(false, Ordering::SeqCst);
    tracing::debug!(elapsed = ?started.elapsed(), "sim rcapture");
    out
}

#[allow(clippy::too_many_arguments)]
fn capture_items(
    s: &Shared,
    k: &SbiKnobs,
    spec: &str,
    env: &str,
    tid: &str,
    bio: &Value,
    slot: &[(&str, u8)],
    exceptions: &[String],
) -> String {
    let mut fingers: Vec<(&str, u8)> = slot
        .iter()
        .copied()
        .filter(|(n, _)| !exceptions.iter().any(|x| x == n))
        .collect();
    if k.missing_finger {
        fingers.pop();
    }
    let cert = if k.untrusted_certificate {
        &s.pki.untrusted_cert_der
    } else if k.expired_certificate {
        &s.pki.expired_cert_der
    } else if k.wrong_key_usage {
        &s.pki.encipher_only_cert_der
    } else {
        &s.pki.device_cert_der
    };
    let mut previous = text(bio.get("previousHash")).unwrap_or_default();
    let requested = text(bio.get("requestedScore"))
        .and_then(|r| r.parse::<f64>().ok())
        .unwrap_or(0.0);
    let mut items = Vec::new();
    for (i, (name, position)) in fingers.iter().enumerate() {
        let recorded_position = if k.wrong_position && i == 0 {
            if *position == 10 { 9 } else { position + 1 }
        } else {
            *position
        };
        let image = if k.uncompressed_images {
            RecordImage::Raw
        } else if k.png_images {
            RecordImage::Png
        } else if k.jpeg2000_label {
            RecordImage::PngLabelledJpeg2000
        } else {
            RecordImage::Jpeg2000(k.jpeg2000_encoder.as_ref())
        };
        let record = finger_record(s, *position, recorded_position, k.low_quality, image);
        let quality = if k.low_quality { 22.0 } else { 81.0 };
        let (quality, requested_score) = if k.numbers_as_numbers {
            (json!(quality), json!(requested))
        } else {
            (json!(format!("{quality:.1}")), json!(format!("{requested:.1}")))
        };
        let bio_value = if k.numbers_as_numbers {
            URL_SAFE_NO_PAD.encode(&record)
        } else {
            URL_SAFE.encode(&record)
        };
        let digital_id = sign(s, cert, &digital_id_json(s));
        let data = json!({
            "digitalId": digital_id, "deviceCode": device_code(s), "deviceServiceVersion": "0.9.5",
            "bioType": "Finger", "bioSubType": name, "purpose": "Registration", "env": env,
            "bioValue": bio_value,
            "transactionId": if k.wrong_transaction_id { format!("{tid}-X") } else { tid.to_owned() },
            "timestamp": sbi_time(time::OffsetDateTime::now_utc()),
            "requestedScore": requested_score, "qualityScore": quality,
        })
        .to_string();
        let mut jws = sign(s, cert, &data);
        if k.bad_signature && i == 0 {
            // Change one signature character (its last one carries only padding bits: change the first).
            let dot = jws.rfind('.').unwrap_or(0) + 1;
            let c = if jws.as_bytes().get(dot) == Some(&b'A') {
                "B"
            } else {
                "A"
            };
            jws.replace_range(dot..dot + 1, c);
        }
        let mut hash = chain(&previous, &record);
        if k.broken_hash_chain && i == 1 {
            hash = chain("", &record);
        }
        previous = hash.clone();
        items.push(json!({"specVersion": spec, "data": jws, "hash": hash,
                          "error": {"errorCode": "0", "errorInfo": "Success"}}));
    }
    json!({ "biometrics": items }).to_string()
}

/// Rendered prints (grey, row-major), shared by every service of the process: (seed, size, position, low quality).
type PrintKey = (u64, (u32, u32), u8, bool);

fn finger_pixels(s: &Shared, position: u8, low: bool) -> Vec<u8> {
    static PRINTS: OnceLock<Mutex<HashMap<PrintKey, Vec<u8>>>> = OnceLock::new();
    let mut cache = PRINTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    cache
        .entry((s.cfg.seed, s.cfg.finger_size, position, low))
        .or_insert_with(|| {
            let (w, h) = s.cfg.finger_size;
            let mut spec = crate::fingerprint::FingerSpec::good(s.cfg.seed, position, w, h, 500);
            if low {
                spec.contrast = 0.15;
                spec.noise = 30.0;
                spec.contact = 0.4;
            }
            crate::fingerprint::render(&spec)
        })
        .clone()
}

/// What a record's image is.
#[derive(Clone, Copy)]
enum RecordImage<'a> {
    Raw,
    Png,
    PngLabelledJpeg2000,
    /// By the caller's encoder, else the simulator's own.
    Jpeg2000(Option<&'a Jpeg2000Encoder>),
}

/// The sim's own ISO/IEC 19794-4:2011 writer: one representation, one quality block, the image as JPEG 2000
/// lossless (compression 5), PNG (6, also under the JPEG 2000 code 5) or uncompressed (0).
fn finger_record(
    s: &Shared,
    position: u8,
    recorded_position: u8,
    low: bool,
    image: RecordImage<'_>,
) -> Vec<u8> {
    let (w, h) = s.cfg.finger_size;
    let pixels = finger_pixels(s, position, low);
    let mut image_bytes = Vec::new();
    let compression = match image {
        RecordImage::Raw => 0,
        RecordImage::Png => 6,
        RecordImage::PngLabelledJpeg2000 | RecordImage::Jpeg2000(_) => 5,
    };
    if let RecordImage::Raw = image {
        image_bytes.clone_from(&pixels);
    } else if let RecordImage::Jpeg2000(encoder) = image {
        let encoded = match encoder {
            Some(enc) => (enc.0)(w, h, &pixels),
            None => crate::jpeg2000::encode_grey_lossless(w, h, &pixels)
                .ok_or_else(|| format!("cannot encode {w}x{h}")),
        };
        match encoded {
            Ok(b) => image_bytes = b,
            // An empty image: the client refuses the record, and the log says why.
            Err(e) => tracing::warn!(error = %e, "the simulator's JPEG 2000 encoder failed"),
        }
    } else {
        let mut enc = png::Encoder::new(&mut image_bytes, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: 19685, // 500 ppi in pixels per metre
            yppu: 19685,
            unit: png::Unit::Meter,
        }));
        if let Ok(mut wr) = enc.write_header() {
            let _ = wr.write_image_data(&pixels);
        }
    }
    let quality: u8 = if low { 22 } else { 81 };
    let now = time::OffsetDateTime::now_utc();
    let mut rep = Vec::new();
    rep.extend_from_slice(&[0, 0, 0, 0]); // representation length, below
    rep.extend_from_slice(&u16::try_from(now.year()).unwrap_or(2026).to_be_bytes());
    rep.extend_from_slice(&[
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
    ]);
    rep.extend_from_slice(&now.millisecond().to_be_bytes());
    rep.push(0); // capture device technology: unspecified
    rep.extend_from_slice(&[0, 0, 0, 0]); // vendor, type
    rep.extend_from_slice(&[1, quality, 0, 0, 0, 0]); // one quality block
    rep.push(recorded_position);
    rep.push(0); // representation number
    rep.push(1); // scale units: pixels per inch
    for _ in 0..4 {
        rep.extend_from_slice(&500u16.to_be_bytes());
    }
    rep.push(8); // bit depth
    rep.push(compression); // 5 JPEG 2000 lossless (the default), 6 PNG, 0 uncompressed
    rep.push(0); // impression: live-scan plain
    rep.extend_from_slice(&u16::try_from(w).unwrap_or(0).to_be_bytes());
    rep.extend_from_slice(&u16::try_from(h).unwrap_or(0).to_be_bytes());
    rep.extend_from_slice(&u32::try_from(image_bytes.len()).unwrap_or(0).to_be_bytes());
    rep.extend_from_slice(&image_bytes);
    let rep_len = u32::try_from(rep.len()).unwrap_or(0).to_be_bytes();
    rep[0..4].copy_from_slice(&rep_len);
    let mut v = b"FIR\x00020\x00".to_vec();
    v.extend_from_slice(&u32::try_from(16 + rep.len()).unwrap_or(0).to_be_bytes());
    v.extend_from_slice(&[0, 1, 0, 1]); // one representation, not certified, one finger position
    v.extend_from_slice(&rep);
    v
}

/// A small grey JPEG of a print for the preview.
fn preview_jpeg(s: &Shared, position: u8) -> Vec<u8> {
    let (w, h) = s.cfg.finger_size;
    let pixels = finger_pixels(s, position, false);
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70);
    let _ = image::ImageEncoder::write_image(enc, &pixels, w, h, image::ExtendedColorType::L8);
    out
}

fn stream_preview(stream: &mut TcpStream, s: &Shared, body: &[u8]) -> std::io::Result<()> {
    let k = knobs(s);
    let req = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    if k.no_stream {
        // The mock's bare form, not wrapped in "error".
        return answer(
            stream,
            "200 OK",
            s.port,
            r#"{"errorCode":"202","errorInfo":"No Device Connected."}"#,
        );
    }
    if k.not_registered {
        return answer(
            stream,
            "200 OK",
            s.port,
            r#"{"errorCode":"605","errorInfo":"Device not registered"}"#,
        );
    }
    let position = match text(req.get("deviceSubId")).as_deref() {
        Some("1") => 7,
        Some("2") => 2,
        Some("3") => 6,
        _ => {
            return answer(
                stream,
                "200 OK",
                s.port,
                r#"{"errorCode":"604","errorInfo":"No deviceId"}"#,
            );
        }
    };
    let timeout = text(req.get("timeout"))
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(300_000);
    let frame = preview_jpeg(s, position);
    stream.write_all(
        format!(
            "HTTP/1.0 200 OK\r\nServer: http://127.0.0.1:{}\r\nConnection: close\r\nCache-Control: no-cache, private\r\n\
             Content-Type: multipart/x-mixed-replace; boundary=--BoundaryString\r\n\r\n",
            s.port
        )
        .as_bytes(),
    )?;
    let end = Instant::now() + Duration::from_millis(timeout);
    while Instant::now() < end && !s.stop.load(Ordering::SeqCst) {
        let mut part = format!(
            "--BoundaryString\r\nAccess-Control-Allow-Origin:*\r\nContent-Type:image/jpeg\r\nContent-Length:{}\r\n\r\n",
            frame.len()
        )
        .into_bytes();
        part.extend_from_slice(&frame);
        part.extend_from_slice(b"\r\n\r\n");
        if stream.write_all(&part).is_err() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    // Like the mock: a whole HTTP answer after the frames.
    let tail = r#"{"errorCode":"609","errorInfo":"Stream timeout"}"#;
    stream.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n{tail}",
            tail.len()
        )
        .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_hash_chain_matches_the_notes_vectors() {
        assert_eq!(
            chain("", b"hello"),
            "2CDC406CAA00167E2D87877D4DB045B28B543BD869CBB69C17764E1F64196560"
        );
    }
}
