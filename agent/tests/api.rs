//! The local API with real drivers against simulated devices: security, a whole applicant, a busy device,
//! cancel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
mod support;

use std::sync::Arc;
use std::time::Duration;
use tamga_agent::api::{ApiLimits, ApiState, Devices};
use tamga_agent::capture::fingers::{FingerPosition, Policy};
use tamga_agent::outbox::Outbox;
use tamga_bundle::seal::StationSigner;
use tamga_bundle::{devpki, manifest, pki};
use tamga_drivers::mrz_serial::MrzReader;
use tamga_drivers::ptp::device::PhotoCamera;
use tamga_drivers::usb::UsbTransport;
use tamga_drivers::zfm::FingerprintScanner;
use tamga_profiles::Catalog;
use tamga_quality::photo::PhotoPolicy;
use tamga_sim::fingerprint::FingerSpec;
use tamga_sim::mrz_reader::MrzReaderEmulator;
use tamga_sim::ptp_camera::{SimCamera, SimQuirks};
use tamga_sim::specimens;
use tamga_sim::zfm::ZfmEmulator;

struct Rig {
    _dir: tempfile::TempDir,
    base: String,
    port: u16,
    token: String,
    mrz: Arc<MrzReaderEmulator>,
    zfm: ZfmEmulator,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pki: devpki::DevPki,
    cam: SimCamera,
    outbox: Arc<std::sync::Mutex<Outbox>>,
}

fn device(model: &str, profile: &str) -> manifest::Device {
    manifest::Device {
        model: model.into(),
        serial: "SIM".into(),
        firmware: "-".into(),
        profile: profile.into(),
        profile_sha256: "0".repeat(64),
    }
}

async fn rig() -> Rig {
    rig_with_central(None).await
}

/// The rig, with the uplink loop delivering to `https://localhost:{port}` when a port is given (whether or not a
/// central receiver listens there).
async fn rig_with_central(central_port: Option<u16>) -> Rig {
    rig_with(central_port, ApiLimits::default()).await
}

/// The rig with the given API limits.
async fn rig_with(central_port: Option<u16>, limits: ApiLimits) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::builtin().unwrap();
    let mrz_profile = cat.get("desko-penta-serial").unwrap();
    let mrz = Arc::new(MrzReaderEmulator::start(mrz_profile, &dir.path().join("ttyMRZ"), false).unwrap());
    let fp_profile = cat.get("zhiantec-r307").unwrap();
    let zfm = ZfmEmulator::start(fp_profile, &dir.path().join("ttyFP"), false).unwrap();
    let jpeg = support::portrait_jpeg();
    let cam = SimCamera::new(
        "Sim",
        "Camera",
        SimQuirks {
            live_view: true,
            ..SimQuirks::default()
        },
        vec![(jpeg, 1800, 1800)],
    );
    let opener_cam = cam.clone();
    let camera = PhotoCamera::new(
        cat.get("generic-ptp-camera").unwrap(),
        Box::new(move || opener_cam.open().map(|t| Box::new(t) as Box<dyn UsbTransport>)),
    )
    .unwrap();
    let p = devpki::generate("KZ-ALA-001-W02").unwrap();
    let signer = StationSigner::from_pem(&p.station_key, &[&p.station, &p.station_ca]).unwrap();
    let central_point = pki::cert_info(&pki::certs_from_pem(&p.central).unwrap()[0])
        .unwrap()
        .public_point;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let token = tamga_agent::api::token(dir.path(), false).unwrap();
    let outbox = Arc::new(std::sync::Mutex::new(Outbox::open(dir.path(), 0).unwrap()));
    let state = Arc::new(ApiState {
        token: token.clone(),
        hosts: vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        allowed_origins: vec![format!("http://127.0.0.1:{port}")],
        station_id: "KZ-ALA-001-W02".into(),
        centre_id: "KZ-ALA-001".into(),
        language: "en".into(),
        policy: Policy::default(),
        photo_policy: PhotoPolicy {
            background_uniformity_max: 40.0,
            ..PhotoPolicy::default()
        },
        devices: Devices {
            document: Some((
                tokio::sync::Mutex::new(MrzReader::new(mrz_profile, mrz.path()).unwrap()),
                device("DESKO", "desko-penta-serial"),
            )),
            fingerprint: Some((
                tokio::sync::Mutex::new(FingerprintScanner::new(fp_profile, zfm.path()).unwrap()),
                device("R307", "zhiantec-r307"),
            )),
            camera: Some((
                Arc::new(std::sync::Mutex::new(camera)),
                device("Sim camera", "generic-ptp-camera"),
            )),
            watch: vec![
                ("document", mrz.path().to_owned()),
                ("fingerprint", zfm.path().to_owned()),
            ],
            camera_capturing: Default::default(),
            fingerprint_capturing: Default::default(),
            health_every: Some(Duration::from_millis(400)),
            camera_present: Some(Box::new({
                let c = cam.clone();
                move || Some(c.is_plugged())
            })),
        },
        sessions: tokio::sync::Mutex::new(Default::default()),
        outbox: outbox.clone(),
        signer,
        central_point,
        today: || time::macros::date!(2026 - 11 - 21),
        telemetry: Default::default(),
        limits,
    });
    // Served the way `tamga run` serves it: with the supervisor and graceful shutdown.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let uplink = central_port.map(|port| {
        tamga_agent::uplink::Uplink::new(
            &format!("https://localhost:{port}"),
            &format!("{}\n{}", p.station, p.station_ca),
            &p.station_key,
            &p.root_ca,
            &p.central,
            2,
        )
        .unwrap()
    });
    let server = tokio::spawn(tamga_agent::daemon::serve(
        state,
        listener,
        64 * 1024,
        uplink,
        async move {
            let _ = stopped.await;
        },
    ));
    Rig {
        _dir: dir,
        base: format!("http://127.0.0.1:{port}"),
        port,
        token,
        mrz,
        zfm,
        http: reqwest::Client::new(),
        stop: Some(stop),
        server,
        pki: p,
        cam,
        outbox,
    }
}

impl Rig {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }
    async fn session(&self) -> String {
        let r = self
            .post("/v1/sessions")
            .json(&serde_json::json!({"operator_id": "op-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<serde_json::Value>().await.unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    /// GET as JSON.
    async fn json(&self, path: &str) -> serde_json::Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }
    /// Lays a good finger on the scanner and captures it for `pos`; the capture must succeed.
    async fn finger(&self, id: &str, pos: FingerPosition, seed: u64) -> serde_json::Value {
        self.zfm
            .place_finger(FingerSpec::good(seed, pos.code(), 256, 288, 500));
        let name = serde_json::to_value(pos).unwrap().as_str().unwrap().to_owned();
        let f = self
            .post(&format!("/v1/sessions/{id}/fingers/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(f.status(), 200, "{name}: {}", f.text().await.unwrap());
        f.json().await.unwrap()
    }
    /// Finalizes the session; it must succeed. Returns the bundle id.
    async fn finalize(&self, id: &str) -> String {
        let done = self
            .post(&format!("/v1/sessions/{id}/finalize"))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
        done.json::<serde_json::Value>().await.unwrap()["bundle_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    /// Reads the document: the request waits on the reader; the passport is laid on it a moment later.
    async fn document(&self, id: &str) -> reqwest::Response {
        let mrz = self.mrz.clone();
        let player = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            mrz.play(specimens::TD3, &[]).unwrap();
        });
        let r = self
            .post(&format!("/v1/sessions/{id}/document"))
            .send()
            .await
            .unwrap();
        player.join().unwrap();
        r
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_a_web_page_cannot_get_around() {
    let r = rig().await;
    let no_token = r.http.get(format!("{}/v1/health", r.base)).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    let body: serde_json::Value = no_token.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(body["action"].as_str().unwrap().contains("api.token"));
    // A wrong token of the right shape, and one that is a prefix of the right one.
    for wrong in ["0".repeat(64), r.token[..32].to_owned()] {
        let w = r
            .http
            .get(format!("{}/v1/health", r.base))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(w.status(), 401);
    }
    // DNS rebinding: the browser sends the attacker's host name.
    let rebound = r
        .get("/v1/health")
        .header("Host", format!("evil.example:{}", r.port))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 421);
    let foreign = r
        .get("/v1/health")
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let allowed = r
        .get("/v1/health")
        .header("Origin", format!("http://127.0.0.1:{}", r.port))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        format!("http://127.0.0.1:{}", r.port).as_str()
    );
    let big = r
        .post("/v1/sessions")
        .header("content-type", "application/json")
        .body(vec![b' '; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(r._dir.path().join("api.token"))
            .unwrap()
            .permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_applicant_through_the_api() {
    let r = rig().await;
    let id = r.session().await;
    let doc = r.document(&id).await;
    assert_eq!(doc.status(), 200);
    assert_eq!(
        doc.json::<serde_json::Value>().await.unwrap()["mrz"]["document_number"],
        "L898902C3"
    );
    // No photo yet: no crop to show.
    let none = r.get(&format!("/v1/sessions/{id}/face")).send().await.unwrap();
    assert_eq!(none.status(), 404);
    assert_eq!(
        none.json::<serde_json::Value>().await.unwrap()["error"],
        "no_image"
    );
    let face = r.post(&format!("/v1/sessions/{id}/face")).send().await.unwrap();
    assert_eq!(face.status(), 200);
    assert_eq!(face.json::<serde_json::Value>().await.unwrap()["accepted"], true);
    // The crop as it will be sent: a 35x45 JPEG.
    let crop = r.get(&format!("/v1/sessions/{id}/face")).send().await.unwrap();
    assert_eq!(crop.status(), 200);
    assert_eq!(crop.headers()["content-type"], "image/jpeg");
    let crop = image::load_from_memory(&crop.bytes().await.unwrap()).unwrap();
    let ratio = f64::from(crop.width()) / f64::from(crop.height());
    assert!(
        (ratio - 35.0 / 45.0).abs() < 0.01,
        "{}x{}",
        crop.width(),
        crop.height()
    );
    for pos in FingerPosition::ALL.into_iter().take(9) {
        let v = r.finger(&id, pos, 5).await;
        assert_eq!(v["next"]["next"], "accepted", "{pos:?}: {v}");
    }
    // The best image of a finger, and what the page shows after a reload: the last photo report and each
    // finger's quality.
    let png = r
        .get(&format!("/v1/sessions/{id}/fingers/right-index"))
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    let png = image::load_from_memory(&png.bytes().await.unwrap()).unwrap();
    assert_eq!((png.width(), png.height()), (256, 288));
    let missing = r
        .get(&format!("/v1/sessions/{id}/fingers/left-little"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let st = r.json(&format!("/v1/sessions/{id}")).await;
    assert_eq!(st["face_report"]["accepted"], true, "{st}");
    assert!(
        st["finger_quality"]["right-index"]["score"].as_u64().unwrap() > 0,
        "{st}"
    );
    assert!(st["finger_quality"]["left-little"].is_null(), "{st}");
    // Finalize too early: the left little finger has no decision.
    let early = r
        .post(&format!("/v1/sessions/{id}/finalize"))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 409);
    let v: serde_json::Value = early.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("left little finger"),
        "{v}"
    );
    let e = r
        .post(&format!("/v1/sessions/{id}/fingers/left-little/exception"))
        .json(&serde_json::json!({"reason": "amputated"}))
        .send()
        .await
        .unwrap();
    assert_eq!(e.status(), 200);
    let bundle_id = r.finalize(&id).await;
    let b = r.json(&format!("/v1/bundles/{bundle_id}")).await;
    assert_eq!(b["state"], "queued");
    let o = r.json("/v1/outbox").await;
    assert_eq!(o["queued"], 1);
    // The session is gone once finalized.
    assert_eq!(
        r.get(&format!("/v1/sessions/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_request_for_a_busy_device_is_told_at_once_and_cancel_works() {
    let r = rig().await;
    let a = r.session().await;
    let b = r.session().await;
    // Session a waits on the reader; session b asks for it meanwhile.
    let first = {
        let url = format!("{}/v1/sessions/{a}/document", r.base);
        let (http, token) = (r.http.clone(), r.token.clone());
        tokio::spawn(async move { http.post(url).bearer_auth(token).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = r
        .post(&format!("/v1/sessions/{b}/document"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409);
    assert_eq!(
        second.json::<serde_json::Value>().await.unwrap()["error"],
        "device_busy"
    );
    r.mrz.play(specimens::TD3, &[]).unwrap();
    assert_eq!(first.await.unwrap().status(), 200);
    let c = r
        .http
        .delete(format!("{}/v1/sessions/{b}", r.base))
        .bearer_auth(&r.token)
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 204);
    assert_eq!(
        r.get(&format!("/v1/sessions/{b}")).send().await.unwrap().status(),
        404
    );
}

/// The operations docs/openapi.yaml documents: (path, method) -> documented statuses, read from the document's
/// layout (paths at two spaces, methods at four, response codes at eight).
fn documented() -> std::collections::BTreeMap<(String, String), std::collections::BTreeSet<u16>> {
    let doc = include_str!("../../docs/openapi.yaml");
    let mut ops = std::collections::BTreeMap::new();
    let (mut path, mut method, mut in_paths, mut in_responses) = (String::new(), String::new(), false, false);
    for line in doc.lines() {
        if line.starts_with("paths:") {
            in_paths = true;
            continue;
        }
        if !in_paths || line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if indent <= 6 {
            in_responses = false;
        }
        if indent == 2 {
            path = t.trim_end_matches(':').to_owned();
        } else if indent == 4 && ["get:", "post:", "delete:", "put:", "patch:"].contains(&t) {
            method = t.trim_end_matches(':').to_uppercase();
            ops.insert((path.clone(), method.clone()), std::collections::BTreeSet::new());
        } else if indent == 6 && t == "responses:" {
            in_responses = true;
        } else if in_responses && indent == 8 {
            let code: u16 = t.split(':').next().unwrap().trim_matches('\'').parse().unwrap();
            ops.get_mut(&(path.clone(), method.clone())).unwrap().insert(code);
        }
    }
    ops
}

/// The operations the router serves, read from its `.route(...)` calls.
fn served() -> std::collections::BTreeSet<(String, String)> {
    let src = include_str!("../src/api.rs");
    let body = &src[src.find("pub fn router(").unwrap()..];
    let body = &body[..body.find(".fallback(").unwrap()];
    let mut ops = std::collections::BTreeSet::new();
    for route in body.split(".route(").skip(1) {
        let path = route.split('"').nth(1).unwrap().to_owned();
        for (needle, m) in [
            ("get(", "GET"),
            ("post(", "POST"),
            ("delete(", "DELETE"),
            ("put(", "PUT"),
            ("patch(", "PATCH"),
        ] {
            if route.contains(needle) {
                ops.insert((path.clone(), m.to_owned()));
            }
        }
    }
    ops
}

/// The Error schema's code list.
fn documented_codes() -> Vec<String> {
    let doc = include_str!("../../docs/openapi.yaml");
    let start = doc.find("enum: [unauthorized").unwrap() + "enum: [".len();
    let end = start + doc[start..].find(']').unwrap();
    doc[start..end].split(',').map(|c| c.trim().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_api_is_the_documented_one() {
    // The document is valid OpenAPI 3 by an independent validator (installed by .ci/run; outside CI, where it is
    // missing, this part is skipped, saying so).
    let has_validator = std::process::Command::new("python3")
        .args(["-c", "import yaml, openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_validator || std::env::var_os("CI").is_some() {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys,yaml; from openapi_spec_validator import validate; validate(yaml.safe_load(open(sys.argv[1])))",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"),
            ])
            .output()
            .expect("python3 (with openapi-spec-validator, installed by .ci/run)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    } else {
        eprintln!(
            "skipped: the independent OpenAPI validation (python3 -m pip install openapi-spec-validator); the \
             router-against-document checks below still run"
        );
    }

    let doc = documented();
    let served = served();
    let doc_ops: std::collections::BTreeSet<_> = doc.keys().cloned().collect();
    assert_eq!(doc_ops, served, "docs/openapi.yaml and the router differ");
    let codes = documented_codes();

    let rig = rig().await;
    let check = |op: &(String, String), status: u16, body: &serde_json::Value| {
        assert!(
            doc[op].contains(&status),
            "{op:?} answered {status}, which docs/openapi.yaml does not document: {body}"
        );
        if status >= 400 {
            for field in ["error", "message", "action"] {
                assert!(
                    body[field].is_string(),
                    "{op:?}: error body lacks `{field}`: {body}"
                );
            }
            let code = body["error"].as_str().unwrap();
            assert!(
                codes.iter().any(|c| c == code),
                "{op:?}: code `{code}` is not in the Error enum"
            );
        }
    };
    for op in doc.keys() {
        // Unknown ids, so nothing waits on a device; a valid finger position and documented bodies.
        let url = format!(
            "{}{}",
            rig.base,
            op.0.replace("{id}", "no-such-id")
                .replace("{position}", "right-thumb")
                .replace("{role}", "fingerprint")
        );
        let method = reqwest::Method::from_bytes(op.1.as_bytes()).unwrap();
        let body = match op.0.as_str() {
            "/v1/sessions" => serde_json::json!({"operator_id": "op-1"}),
            _ => serde_json::json!({"reason": "amputated"}),
        };
        for authorised in [true, false] {
            let mut req = rig.http.request(method.clone(), &url);
            if authorised {
                req = req.bearer_auth(&rig.token);
            }
            if op.1 == "POST" {
                req = req.json(&body);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            if status == 200 && !ct.starts_with("application/json") {
                // The event stream and the metrics: the documented media type (the stream is not read to its end).
                let want = match op.0.as_str() {
                    "/v1/events" => "text/event-stream",
                    "/v1/devices/camera/preview" => "multipart/x-mixed-replace; boundary=tamga-frame",
                    "/v1/sessions/{id}/face" => "image/jpeg",
                    "/v1/sessions/{id}/fingers/{position}" => "image/png",
                    _ => "text/plain",
                };
                assert!(ct.starts_with(want), "{op:?}: content-type {ct}");
                check(op, status, &serde_json::Value::Null);
                continue;
            }
            let text = r.text().await.unwrap();
            let v: serde_json::Value = if text.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{op:?}: not JSON ({e}): {text}"))
            };
            if !authorised {
                assert_eq!(status, 401, "{op:?} without the token");
            }
            check(op, status, &v);
        }
    }

    // A body that is not the documented JSON is a typed 400, documented for the operations that take one.
    for path in [
        "/v1/sessions",
        "/v1/sessions/no-such-id/fingers/right-thumb/exception",
    ] {
        for (ct, payload) in [("application/json", "{\"operator\": 1"), ("text/plain", "hello")] {
            let r = rig
                .post(path)
                .header("content-type", ct)
                .body(payload)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{path} with {ct}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"], "bad_body", "{v}");
        }
    }
    // Unknown paths and wrong methods are typed too.
    let r = rig.get("/v1/nothing-here").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "no_route");
    let r = rig.post("/v1/outbox").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "bad_method"
    );
}

/// Reads SSE events (name, data) from a streaming response until `until` holds for one, or 20 s pass.
async fn read_events(
    r: &mut reqwest::Response,
    buf: &mut String,
    seen: &mut Vec<(String, serde_json::Value)>,
    until: impl Fn(&str, &serde_json::Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut name, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if name.is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data));
            let hit = until(&name, &v);
            seen.push((name, v));
            if hit {
                return;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for an event; saw {seen:?}"))
            .unwrap()
            .expect("the event stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_unplugged_mid_capture_is_seen_on_the_event_stream_and_the_session_goes_on() {
    let r = rig().await;
    let mut events = r.get("/v1/events").send().await.unwrap();
    assert_eq!(events.status(), 200);
    let (mut buf, mut seen) = (String::new(), Vec::new());
    let id = r.session().await;
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "session" && v["state"] == "created"
    })
    .await;

    // The module is pulled out after 5 image packets.
    r.zfm
        .inject(tamga_sim::zfm::ZfmFault::UnplugAfterPackets { packets: 5 });
    r.zfm.place_finger(FingerSpec::good(5, 1, 256, 288, 500));
    let f = r
        .post(&format!("/v1/sessions/{id}/fingers/right-thumb"))
        .send()
        .await
        .unwrap();
    assert_eq!(f.status(), 502);
    let v: serde_json::Value = f.json().await.unwrap();
    assert_eq!(v["error"], "device_failed", "{v}");
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "device" && v["role"] == "fingerprint" && v["state"] == "removed"
    })
    .await;
    let stages: Vec<_> = seen
        .iter()
        .filter(|(n, v)| n == "capture" && v["what"] == "finger/right-thumb")
        .map(|(_, v)| v["stage"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stages.first().map(String::as_str), Some("started"), "{seen:?}");
    assert_eq!(stages.last().map(String::as_str), Some("failed"), "{seen:?}");
    let d = r.json("/v1/devices").await;
    assert_eq!(d["fingerprint"], "unplugged", "{d}");
    // The session survives; the thumb is still to do.
    let st = r.json(&format!("/v1/sessions/{id}")).await;
    assert_eq!(st["fingers"]["right-thumb"]["state"], "pending", "{st}");
    // While it is unplugged, a capture is refused at once, saying so (not after the driver's wait for the port).
    let f = r
        .post(&format!("/v1/sessions/{id}/fingers/right-thumb"))
        .send()
        .await
        .unwrap();
    assert_eq!(f.status(), 502);
    let v: serde_json::Value = f.json().await.unwrap();
    assert_eq!(v["error"], "device_failed");
    assert!(v["message"].as_str().unwrap().contains("disconnected"), "{v}");

    // Plugged back in: the stream says so, and the capture works with progress events.
    r.zfm.port().replug().unwrap();
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "device" && v["role"] == "fingerprint" && v["state"] == "arrived"
    })
    .await;
    r.zfm.place_finger(FingerSpec::good(5, 1, 256, 288, 500));
    let f = r
        .post(&format!("/v1/sessions/{id}/fingers/right-thumb"))
        .send()
        .await
        .unwrap();
    assert_eq!(f.status(), 200);
    seen.clear();
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "capture" && v["stage"] == "done"
    })
    .await;
    let progress: Vec<u64> = seen
        .iter()
        .filter(|(_, v)| v["stage"] == "progress")
        .map(|(_, v)| v["done"].as_u64().unwrap())
        .collect();
    assert!(progress.len() >= 5, "{seen:?}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    // The last tenth is the whole image: 256 x 288 pixels, two 4-bit pixels per byte on the wire.
    let last = &seen.iter().rfind(|(_, v)| v["stage"] == "progress").unwrap().1;
    assert_eq!(
        (last["done"].as_u64(), last["total"].as_u64()),
        (Some(256 * 288 / 2), Some(256 * 288 / 2))
    );

    // The counters agree with what happened.
    let m = r.get("/v1/metrics").send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&m, "tamga_device_errors_total{role=\"fingerprint\"}"), 1.0);
    assert_eq!(
        metric(&m, "tamga_captures_total{kind=\"finger\",outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "tamga_captures_total{kind=\"finger\",outcome=\"done\"}"),
        1.0
    );
    assert_eq!(metric(&m, "tamga_sessions_total{outcome=\"created\"}"), 1.0);
    assert_eq!(metric(&m, "tamga_device_present{role=\"fingerprint\"}"), 1.0);
    // The capture cut short, and the one refused while unplugged.
    assert_eq!(metric(&m, "tamga_api_requests_total{status=\"502\"}"), 2.0);
    assert_eq!(metric(&m, "tamga_outbox_bundles{state=\"queued\"}"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_not_held_up_by_an_open_event_stream() {
    let mut r = rig().await;
    let mut events = r.get("/v1/events").send().await.unwrap();
    let (mut buf, mut seen) = (String::new(), Vec::new());
    r.session().await;
    read_events(&mut events, &mut buf, &mut seen, |n, _| n == "session").await;
    r.stop.take().unwrap().send(()).unwrap();
    // A hang here is the failure; the bound only keeps a broken build from stalling the suite.
    let served = tokio::time::timeout(Duration::from_secs(30), &mut r.server)
        .await
        .expect("the daemon did not stop while a page held the event stream open");
    served.unwrap().unwrap();
    // The page's stream ended cleanly.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(c) = events.chunk().await? {
            let _ = c;
        }
        Ok::<_, reqwest::Error>(())
    })
    .await;
    assert!(matches!(rest, Ok(Ok(()))), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_down_during_the_session_the_applicant_is_saved_and_delivered_when_it_returns() {
    // Reserve a port, then close it: the central is down.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = rig_with_central(Some(port)).await;
    let mut events = r.get("/v1/events").send().await.unwrap();
    let (mut buf, mut seen) = (String::new(), Vec::new());
    let id = r.session().await;
    assert_eq!(r.document(&id).await.status(), 200);
    let face = r.post(&format!("/v1/sessions/{id}/face")).send().await.unwrap();
    assert_eq!(face.status(), 200);
    for pos in FingerPosition::ALL {
        r.finger(&id, pos, 9).await;
    }
    assert_eq!(r.json("/v1/station").await["link"]["state"], "unknown");
    // The operator is told "saved" although the central system is unreachable.
    let bundle_id = r.finalize(&id).await;
    // The uplink tries and says why it could not deliver; the bundle waits in the outbox.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let b = r.json(&format!("/v1/bundles/{bundle_id}")).await;
        if b["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable"))
        {
            assert_eq!(b["state"], "queued", "{b}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery attempt recorded: {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The page hears that the link is down (the drain that failed has ended: its probe too).
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "link" && v["state"] == "down"
    })
    .await;
    // The central comes back; the daemon delivers on its own and the page hears of it.
    let store_dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let _central = tamga_central::start(
        tamga_central::CentralConfig {
            cert_pem: r.pki.central.clone(),
            key_pem: r.pki.central_key.clone(),
            client_ca_pem: r.pki.root_ca.clone(),
            revocation_list: None,
            max_body_bytes: 8 << 20,
        },
        Box::new(tamga_central::store::FsStore::new(store_dir.path()).unwrap()),
        listener,
    )
    .unwrap();
    // The page is told the link is down (with why), then up again, and the bundle delivered.
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "outbox" && v["delivered"] == 1
    })
    .await;
    let links: Vec<&serde_json::Value> = seen.iter().filter(|(n, _)| n == "link").map(|(_, v)| v).collect();
    assert_eq!(links.len(), 2, "{seen:?}");
    assert_eq!(links[0]["state"], "down");
    assert!(
        links[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("unreachable")),
        "{links:?}"
    );
    assert_eq!(links[1]["state"], "up");
    let station = r.json("/v1/station").await;
    assert_eq!(station["link"]["state"], "up", "{station}");
    assert!(station["link"]["since_ms"].as_i64().is_some());
    let b = r.json(&format!("/v1/bundles/{bundle_id}")).await;
    assert_eq!(b["state"], "delivered", "{b}");
    assert!(
        b["receipt"].as_str().is_some_and(|j| j.split('.').count() == 3),
        "{b}"
    );
}

/// Reads multipart parts (the JPEG bodies) from the preview stream until `n` more have arrived.
async fn read_parts(r: &mut reqwest::Response, buf: &mut Vec<u8>, n: usize) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while parts.len() < n {
        // A whole part: boundary line, headers, blank line, Content-Length bytes, CRLF.
        if let Some(h_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..h_end]).unwrap().to_owned();
            let mut lines = head.split("\r\n");
            assert_eq!(lines.next(), Some("--tamga-frame"), "{head}");
            let headers: Vec<&str> = lines.collect();
            assert!(headers.contains(&"Content-Type: image/jpeg"), "{head}");
            let len: usize = headers
                .iter()
                .find_map(|h| h.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            let body_start = h_end + 4;
            if buf.len() >= body_start + len + 2 {
                assert_eq!(&buf[body_start + len..body_start + len + 2], b"\r\n");
                parts.push(buf[body_start..body_start + len].to_vec());
                buf.drain(..body_start + len + 2);
                continue;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("timed out waiting for a preview frame")
            .unwrap()
            .expect("the preview stream ended");
        buf.extend_from_slice(&chunk);
    }
    parts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_preview_is_mjpeg_and_a_photo_can_be_taken_while_it_runs() {
    let r = rig().await;
    let mut preview = r.get("/v1/devices/camera/preview").send().await.unwrap();
    assert_eq!(preview.status(), 200);
    assert_eq!(
        preview.headers()["content-type"],
        "multipart/x-mixed-replace; boundary=tamga-frame"
    );
    let mut buf = Vec::new();
    for jpeg in read_parts(&mut preview, &mut buf, 3).await {
        let img = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (1800, 1800));
    }
    // The still photo during the preview: live view is ended for it, and the preview resumes after.
    let id = r.session().await;
    let face = r.post(&format!("/v1/sessions/{id}/face")).send().await.unwrap();
    assert_eq!(face.status(), 200);
    assert_eq!(face.json::<serde_json::Value>().await.unwrap()["accepted"], true);
    let starts_before = r.cam.ops_seen().iter().filter(|&&o| o == 0x9201).count();
    assert!(starts_before >= 1);
    // Frames made before the photo may still be on their way: read on until live view has started again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        read_parts(&mut preview, &mut buf, 1).await;
        let ops = r.cam.ops_seen();
        if ops.iter().filter(|&&o| o == 0x9201).count() >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live view not restarted: {ops:04X?}"
        );
    }
    // And frames come again.
    read_parts(&mut preview, &mut buf, 2).await;
    // The page leaves: live view ends.
    drop(preview);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while r.cam.ops_seen().last() != Some(&0x9202) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "live view not ended: {:04X?}",
            r.cam.ops_seen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_unplugged_and_back_is_seen_without_a_capture() {
    let r = rig().await;
    let mut events = r.get("/v1/events").send().await.unwrap();
    let (mut buf, mut seen) = (String::new(), Vec::new());
    r.cam.unplug();
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "device" && v["role"] == "camera" && v["state"] == "removed"
    })
    .await;
    let d = r.json("/v1/devices").await;
    assert_eq!(d["camera"], "unplugged", "{d}");
    r.cam.replug();
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "device" && v["role"] == "camera" && v["state"] == "arrived"
    })
    .await;
    let d = r.json("/v1/devices").await;
    assert_eq!(d["camera"], "ready", "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_that_stops_answering_while_idle_is_reported_and_its_recovery_too() {
    let r = rig().await;
    let mut events = r.get("/v1/events").send().await.unwrap();
    let (mut buf, mut seen) = (String::new(), Vec::new());
    // Powered off behind its (still present) USB-serial adapter: the next commands get no answer.
    r.zfm.inject(tamga_sim::zfm::ZfmFault::Silence { replies: 2 });
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "device" && v["role"] == "fingerprint" && v["state"] == "unresponsive"
    })
    .await;
    let detail = seen.last().unwrap().1["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("did not answer"), "{detail}");
    // Power back: the supervisor's next checks reconnect and say so.
    read_events(&mut events, &mut buf, &mut seen, |n, v| {
        n == "device" && v["role"] == "fingerprint" && v["state"] == "responsive"
    })
    .await;
    let d = r.json("/v1/devices").await;
    assert_eq!(d["fingerprint"], "ready", "{d}");
    let m = r.get("/v1/metrics").send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&m, "tamga_device_healthy{role=\"fingerprint\"}"), 1.0);
    // And a capture works.
    let id = r.session().await;
    r.zfm.place_finger(FingerSpec::good(5, 1, 256, 288, 500));
    let f = r
        .post(&format!("/v1/sessions/{id}/fingers/right-thumb"))
        .send()
        .await
        .unwrap();
    assert_eq!(f.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_device_says_what_it_is() {
    let r = rig().await;
    let d = r.json("/v1/devices/fingerprint").await;
    assert_eq!(
        (
            d["role"].as_str(),
            d["status"].as_str(),
            d["model"].as_str(),
            d["profile"].as_str()
        ),
        (
            Some("fingerprint"),
            Some("ready"),
            Some("R307"),
            Some("zhiantec-r307")
        ),
        "{d}"
    );
    let bad = r.get("/v1/devices/scanner").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<serde_json::Value>().await.unwrap()["error"],
        "bad_role"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_page_is_served_without_the_token_under_a_strict_policy() {
    let r = rig().await;
    let page = r.http.get(format!("{}/", r.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("/ui/app.js") && !html.contains(&r.token));
    for (path, ct) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/i18n/kk.json", "application/json"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let f = r.http.get(format!("{}{path}", r.base)).send().await.unwrap();
        assert_eq!(f.status(), 200, "{path}");
        assert_eq!(f.headers()["content-type"], ct, "{path}");
    }
    // The Host check guards the page too (DNS rebinding), and the API still wants the token.
    let rebound = r
        .http
        .get(format!("{}/", r.base))
        .header("host", "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 421);
    assert_eq!(
        r.http
            .get(format!("{}/v1/station", r.base))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Other paths outside the API are not served: a typed 404 behind the token like any unknown path.
    let other = r.get("/ui/secret.txt").send().await.unwrap();
    assert_eq!(other.status(), 404);
    let station = r.json("/v1/station").await;
    assert_eq!(station["station_id"], "KZ-ALA-001-W02");
    assert_eq!(station["language"], "en");
    assert_eq!(station["languages"], serde_json::json!(["en", "ru", "kk"]));
}

/// Idle and slow sockets, however many, never keep the operator out: a connection that sends no request head
/// within the header timeout is closed, and at the connection limit a new connection takes an idle one's place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_cannot_keep_the_operator_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let r = rig_with(
        None,
        ApiLimits {
            max_connections: 8,
            header_read_timeout: Duration::from_millis(600),
            ..ApiLimits::default()
        },
    )
    .await;
    // Two hundred sockets from anyone, no token needed: most of them send nothing, some half a request head.
    let mut idle = Vec::new();
    for i in 0..200 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", r.port))
            .await
            .unwrap();
        if i % 10 == 0 {
            s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    // The operator's requests are answered at once, again and again.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..5 {
        let h = http
            .get(format!("{}/v1/health", r.base))
            .bearer_auth(&r.token)
            .send()
            .await
            .expect("the operator's request is answered despite the idle sockets");
        assert_eq!(h.status(), 200);
    }
    // Every idle or half-sent socket is closed by the server (end of stream), none is left hanging.
    let mut buf = [0u8; 256];
    for (i, s) in idle.iter_mut().enumerate() {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("socket {i} is still open after the header timeout"));
        // A closed connection reads 0 (or is reset); hyper may answer a timed-out head with 408 first.
        if let Ok(n) = n
            && n > 0
        {
            assert!(
                std::str::from_utf8(&buf[..n])
                    .unwrap_or("")
                    .starts_with("HTTP/1.1 408"),
                "socket {i} got {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }
}

/// The event stream has a cap: past it a new stream is refused with a typed error, and a closed stream frees its
/// place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped() {
    let r = rig_with(
        None,
        ApiLimits {
            max_event_streams: 2,
            ..ApiLimits::default()
        },
    )
    .await;
    let first = r.get("/v1/events").send().await.unwrap();
    let second = r.get("/v1/events").send().await.unwrap();
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = r.get("/v1/events").send().await.unwrap();
    assert_eq!(third.status(), 503);
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["error"], "too_many_streams", "{body}");
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = r.get("/v1/events").send().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed stream never freed its place"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Open sessions are capped, and the operator id is bounded and checked (it is signed into every bundle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_capped_and_the_operator_id_is_checked() {
    let r = rig_with(
        None,
        ApiLimits {
            max_sessions: 3,
            ..ApiLimits::default()
        },
    )
    .await;
    let create = |operator: String| {
        r.post("/v1/sessions")
            .json(&serde_json::json!({ "operator_id": operator }))
            .send()
    };
    for (bad, why) in [
        ("x".repeat(60_000), "characters long"),
        (String::new(), "empty"),
        (" op-1".into(), "space"),
        ("op-1\n".into(), "'\\n'"),
        ("op<script>".into(), "'<'"),
    ] {
        let resp = create(bad.clone()).await.unwrap();
        assert_eq!(resp.status(), 400, "{bad:.20?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "bad_operator_id", "{body}");
        assert!(body["message"].as_str().unwrap().contains(why), "{body}");
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        // Logins, staff numbers and names in any script are operator ids.
        let resp = create(["op.0@kz", "Айгүл Нұрланқызы", "O'Neil-2"][i].to_owned())
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        ids.push(resp.json::<serde_json::Value>().await.unwrap()["session_id"].clone());
    }
    let full = create("op-4".into()).await.unwrap();
    assert_eq!(full.status(), 503);
    let body: serde_json::Value = full.json().await.unwrap();
    assert_eq!(body["error"], "too_many_sessions", "{body}");
    // Cancelling one makes room.
    let cancelled = r
        .http
        .delete(format!("{}/v1/sessions/{}", r.base, ids[0].as_str().unwrap()))
        .bearer_auth(&r.token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 204);
    assert_eq!(create("op-4".into()).await.unwrap().status(), 201);
}

/// A session nobody uses is expired: its captures leave memory, the event stream says so, and the page's next
/// request for it is told the session is gone. A session in use is not expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire_and_the_event_stream_says_so() {
    let r = rig_with(
        None,
        ApiLimits {
            session_idle: Duration::from_millis(1500),
            ..ApiLimits::default()
        },
    )
    .await;
    let mut events = r.get("/v1/events").send().await.unwrap();
    let abandoned = r.session().await;
    let used = r.session().await;
    // The second session is used more often than its idle time.
    let (mut buf, mut seen) = (String::new(), Vec::new());
    let keep_using = async {
        for _ in 0..12 {
            assert_eq!(
                r.get(&format!("/v1/sessions/{used}"))
                    .send()
                    .await
                    .unwrap()
                    .status(),
                200
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let (_, ()) = tokio::join!(
        read_events(&mut events, &mut buf, &mut seen, |n, v| {
            n == "session" && v["state"] == "expired" && v["session"] == abandoned.as_str()
        }),
        keep_using
    );
    let gone = r.get(&format!("/v1/sessions/{abandoned}")).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(
        gone.json::<serde_json::Value>().await.unwrap()["error"],
        "no_session"
    );
    assert!(
        !seen
            .iter()
            .any(|(n, v)| n == "session" && v["state"] == "expired" && v["session"] == used.as_str()),
        "a session in use was expired: {seen:?}"
    );
    assert_eq!(
        r.get(&format!("/v1/sessions/{used}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// The API key file: a damaged (empty or short) key refuses the start with the fix, a new key is written whole
/// (no temporary file left) and is 256 bits.
#[test]
fn a_damaged_api_key_refuses_the_start_and_a_new_one_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let made = tamga_agent::api::token(dir.path(), false).unwrap();
    assert_eq!(made.len(), 64);
    assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["api.token"], "only the key, no temporary file");
    assert_eq!(
        tamga_agent::api::token(dir.path(), false).unwrap(),
        made,
        "read back as made"
    );
    for damaged in ["", "\n", "0123456789abcdef"] {
        std::fs::write(dir.path().join("api.token"), damaged).unwrap();
        let e = tamga_agent::api::token(dir.path(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Delete the file"), "{e}");
    }
}

/// While a submit seals and queues the bundle (here held up on the outbox), the session stays readable: the page
/// may reload it, and changes, a second submit and cancel are refused as "being submitted"; then it is queued and
/// gone. The sealing holds no lock the other requests need.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_being_submitted_stays_readable_and_refuses_changes() {
    let r = rig().await;
    let id = r.session().await;
    assert_eq!(r.document(&id).await.status(), 200);
    assert_eq!(
        r.post(&format!("/v1/sessions/{id}/face"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for pos in FingerPosition::ALL {
        let v = r.finger(&id, pos, 5).await;
        assert_eq!(v["next"]["next"], "accepted", "{pos:?}: {v}");
    }
    // The outbox is busy (its lock held by another writer): the submit waits on it, off the async workers.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let outbox = r.outbox.clone();
    let holder = std::thread::spawn(move || {
        let _held = outbox.lock().unwrap();
        locked.send(()).unwrap();
        released.recv().unwrap();
    });
    is_locked.recv().unwrap();
    let submit = tokio::spawn(r.post(&format!("/v1/sessions/{id}/finalize")).send());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let e = r
            .post(&format!("/v1/sessions/{id}/fingers/left-little/exception"))
            .json(&serde_json::json!({"reason": "amputated"}))
            .send()
            .await
            .unwrap();
        if e.status() == 409 {
            assert_eq!(
                e.json::<serde_json::Value>().await.unwrap()["error"],
                "submitting"
            );
            break;
        }
        assert_eq!(e.status(), 200, "before the submit starts the change is taken");
        assert!(tokio::time::Instant::now() < deadline, "the submit never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = r.get(&format!("/v1/sessions/{id}")).send().await.unwrap();
    assert_eq!(st.status(), 200, "a reload reads the session being submitted");
    for refused in [
        r.post(&format!("/v1/sessions/{id}/finalize"))
            .send()
            .await
            .unwrap(),
        r.http
            .delete(format!("{}/v1/sessions/{id}", r.base))
            .bearer_auth(&r.token)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(refused.status(), 409);
        assert_eq!(
            refused.json::<serde_json::Value>().await.unwrap()["error"],
            "submitting"
        );
    }
    let devices = tokio::time::timeout(Duration::from_secs(5), r.get("/v1/devices").send())
        .await
        .expect("the API answers while a submit waits");
    assert_eq!(devices.unwrap().status(), 200);
    release.send(()).unwrap();
    holder.join().unwrap();
    let done = submit.await.unwrap().unwrap();
    assert_eq!(done.status(), 200);
    let v: serde_json::Value = done.json().await.unwrap();
    assert_eq!(v["state"], "queued", "{v}");
    assert_eq!(
        r.get(&format!("/v1/sessions/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}
