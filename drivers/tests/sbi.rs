//! The SBI driver against the simulated SBI device service (`tamga_sim::sbi`), over real loopback TCP: a good 4-4-2
//! capture verified end to end with its hash chain, each fault knob ending in the right refusal or retry, discovery
//! among other listeners, the preview stream, and an independent JOSE implementation (python3 jwcrypto) verifying a
//! device's JWS. The simulator has its own HTTP, JSON and JWS code: nothing here is shared with the driver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::time::Duration;
use tamga_drivers::sbi::verify::{TrustStore, VerifyError};
use tamga_drivers::sbi::{
    DeviceErrorKind, DeviceInfo, Finger, SbiClient, SbiError, Slap, SlapCapture, SlapRequest, Timeouts,
    Verifier, discover,
};
use tamga_sim::sbi::{DeviceProviderPki, SbiKnobs, SbiService, SbiServiceConfig};
use time::OffsetDateTime;

/// Ports for the simulators of these tests (each takes the first free one).
const TEST_PORTS: RangeInclusive<u16> = 47300..=47399;

fn pki() -> &'static DeviceProviderPki {
    DeviceProviderPki::shared().unwrap()
}

fn service(serial: &str) -> SbiService {
    SbiService::start(
        SbiServiceConfig {
            ports: TEST_PORTS,
            serial: serial.into(),
            seed: 7,
            ..SbiServiceConfig::default()
        },
        pki().clone(),
    )
    .unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(TrustStore::from_pem(&pki().ca_pem).unwrap())
}

fn client(port: u16) -> SbiClient {
    let mut c = SbiClient::new(port);
    c.timeouts.capture_margin = Duration::from_millis(1500);
    c
}

async fn slap_device(c: &SbiClient) -> DeviceInfo {
    let infos = c
        .device_info(&verifier(), OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(infos.len(), 1);
    infos.into_iter().next().unwrap()
}

fn request(slap: Slap, exceptions: Vec<Finger>, previous_hash: &str) -> SlapRequest {
    SlapRequest {
        slap,
        exceptions,
        requested_score: 40,
        timeout_ms: 20_000,
        previous_hash: previous_hash.into(),
        env: "Staging".into(),
        transaction_id: "tamga-test-0001".into(),
    }
}

/// The refusal of a capture (a capture accepted fails the test without printing its records).
fn refused(r: Result<SlapCapture, SbiError>) -> SbiError {
    match r {
        Ok(c) => {
            if let Ok(dir) = std::env::var("SBI_DUMP") {
                std::fs::write(format!("{dir}/evidence.jws"), &c.fingers[0].evidence).unwrap();
            }
            panic!("the capture was accepted ({} fingers)", c.fingers.len())
        }
        Err(e) => e,
    }
}

async fn capture_with(knobs: SbiKnobs) -> Result<SlapCapture, SbiError> {
    let sim = service("TSIM-KNOB");
    let c = client(sim.port());
    let dev = slap_device(&c).await;
    let slow = knobs.slow.is_some();
    *sim.knobs() = knobs;
    let mut req = request(Slap::Left, vec![], "");
    if slow {
        req.timeout_ms = 300;
    }
    c.capture_slap(&dev, &req, &verifier(), OffsetDateTime::now_utc())
        .await
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b).as_ref().to_vec()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The chain recomputed here from the records alone: UPPER_HEX(SHA-256(previous ‖ SHA-256(record))).
fn link(previous: &str, record: &[u8]) -> String {
    let mut input = if previous.is_empty() {
        sha256(b"")
    } else {
        hex_decode(previous)
    };
    input.extend_from_slice(&sha256(record));
    sha256(&input).iter().map(|b| format!("{b:02X}")).collect()
}

#[tokio::test]
async fn device_info_is_verified_and_names_the_slap_scanner() {
    let sim = service("TSIM-INFO");
    let c = client(sim.port());
    let d = slap_device(&c).await;
    assert!(d.verified);
    assert!(d.is_finger_slap());
    assert_eq!(d.digital_id.serial_no, "TSIM-INFO");
    assert_eq!(d.device_id, "2");
    assert_eq!(d.certification, "L0");
    assert_eq!(d.status, "Ready");
    assert_eq!(d.sub_ids, ["1", "2", "3"]);
    // Another CA's trust store refuses the same device.
    let other = Verifier::new(TrustStore::from_pem(&pki().other_ca_pem).unwrap());
    let e = c
        .device_info(&other, OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SbiError::Verification(VerifyError::Untrusted {
                what: "deviceInfo",
                ..
            })
        ),
        "{e}"
    );
}

#[tokio::test]
async fn an_sbi_1_0_service_is_reached_with_sbidisc_and_sbiinfo() {
    let sim = service("TSIM-V10");
    sim.knobs().sbi_verbs_only = true;
    let c = client(sim.port());
    let found = c.discover_devices("Finger").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].digital_id.as_ref().map(|d| d.serial_no.as_str()),
        Some("TSIM-V10")
    );
    let d = slap_device(&c).await;
    assert!(d.verified);
    assert_eq!(d.digital_id.serial_no, "TSIM-V10");
}

#[tokio::test]
async fn good_442_capture_with_an_exception_verifies_and_chains_across_slaps() {
    let sim = service("TSIM-GOOD");
    let c = client(sim.port());
    let dev = slap_device(&c).await;
    let v = verifier();
    let now = OffsetDateTime::now_utc();

    let left = c
        .capture_slap(&dev, &request(Slap::Left, vec![], ""), &v, now)
        .await
        .unwrap();
    let names: Vec<&str> = left.fingers.iter().map(|f| f.position).collect();
    assert_eq!(names, ["left-index", "left-middle", "left-ring", "left-little"]);

    let right = c
        .capture_slap(
            &dev,
            &request(Slap::Right, vec![Finger::RightLittle], &left.last_hash),
            &v,
            now,
        )
        .await
        .unwrap();
    let names: Vec<&str> = right.fingers.iter().map(|f| f.position).collect();
    assert_eq!(
        names,
        ["right-index", "right-middle", "right-ring"],
        "the excepted finger is absent"
    );
    assert_eq!(right.exceptions, [Finger::RightLittle]);

    let thumbs = c
        .capture_slap(&dev, &request(Slap::Thumbs, vec![], &right.last_hash), &v, now)
        .await
        .unwrap();
    let names: Vec<&str> = thumbs.fingers.iter().map(|f| f.position).collect();
    assert_eq!(names, ["left-thumb", "right-thumb"]);

    // The hash chain across the three slaps, recomputed here from the records.
    let mut previous = String::new();
    for f in left.fingers.iter().chain(&right.fingers).chain(&thumbs.fingers) {
        previous = link(&previous, &f.record);
        assert_eq!(f.hash, previous, "{}", f.position);
    }
    assert_eq!(thumbs.last_hash, previous);

    for cap in [&left, &right, &thumbs] {
        assert!(cap.meets_requested_score);
        assert_eq!(cap.device.serial, "TSIM-GOOD");
        assert_eq!(cap.device.port, sim.port());
        assert_eq!(cap.device.make, "Tamga");
        assert_eq!(cap.device.certification, "L0");
        for f in &cap.fingers {
            assert!(f.record.starts_with(b"FIR\x00020\x00"));
            assert_eq!(f.compression, 5, "JPEG 2000 lossless");
            assert_eq!(f.device_quality, 81.0);
            assert_eq!(f.evidence.split('.').count(), 3);
        }
    }
}

#[tokio::test]
async fn numbers_as_numbers_and_unpadded_records_are_read_the_same() {
    let sim = service("TSIM-NUM");
    sim.knobs().numbers_as_numbers = true;
    let c = client(sim.port());
    let dev = slap_device(&c).await;
    assert_eq!(dev.sub_ids, ["1", "2", "3"]);
    let cap = c
        .capture_slap(
            &dev,
            &request(Slap::Left, vec![Finger::LeftRing], ""),
            &verifier(),
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| e.to_string())
        .unwrap();
    let names: Vec<&str> = cap.fingers.iter().map(|f| f.position).collect();
    assert_eq!(names, ["left-index", "left-middle", "left-little"]);
    assert!(cap.fingers.iter().all(|f| f.device_quality == 81.0));
}

#[tokio::test]
async fn busy_is_a_retry() {
    let e = refused(
        capture_with(SbiKnobs {
            busy: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(
            e,
            SbiError::Device {
                kind: DeviceErrorKind::Busy,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_retry());
}

#[tokio::test]
async fn a_second_capture_while_one_is_served_is_told_busy() {
    let sim = service("TSIM-BUSY2");
    let c = client(sim.port());
    let dev = slap_device(&c).await;
    sim.knobs().slow = Some(Duration::from_secs(3));
    let first = {
        let (c, dev) = (c.clone(), dev.clone());
        tokio::spawn(async move {
            c.capture_slap(
                &dev,
                &request(Slap::Left, vec![], ""),
                &verifier(),
                OffsetDateTime::now_utc(),
            )
            .await
            .map(|cap| cap.fingers.len())
        })
    };
    for _ in 0..3000 {
        if sim.capture_in_progress() || first.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sim.capture_in_progress(), "the first capture reached the device");
    let e = refused(
        c.capture_slap(
            &dev,
            &request(Slap::Right, vec![], ""),
            &verifier(),
            OffsetDateTime::now_utc(),
        )
        .await,
    );
    assert!(
        matches!(e, SbiError::Device { kind: DeviceErrorKind::Busy, ref code, .. } if code == "703"),
        "{e}"
    );
    assert_eq!(
        first.await.unwrap().map_err(|e| e.to_string()),
        Ok(4),
        "the first capture is served"
    );
}

#[tokio::test]
async fn requests_the_device_cannot_serve_are_refused_before_sending() {
    let sim = service("TSIM-REQ");
    let c = client(sim.port());
    let dev = slap_device(&c).await;
    let now = OffsetDateTime::now_utc();
    let mut bad_tid = request(Slap::Left, vec![], "");
    bad_tid.transaction_id = "no spaces allowed".into();
    let e = refused(c.capture_slap(&dev, &bad_tid, &verifier(), now).await);
    assert!(matches!(e, SbiError::Request(_)), "{e}");
    let e = refused(
        c.capture_slap(
            &dev,
            &request(Slap::Left, vec![Finger::RightThumb], ""),
            &verifier(),
            now,
        )
        .await,
    );
    assert!(matches!(e, SbiError::Request(_)), "{e}");
    let all = Slap::Thumbs.fingers().to_vec();
    let e = refused(
        c.capture_slap(&dev, &request(Slap::Thumbs, all, ""), &verifier(), now)
            .await,
    );
    assert!(matches!(e, SbiError::Request(_)), "{e}");
}

#[tokio::test]
async fn slow_device_times_out_as_a_retry() {
    let e = refused(
        capture_with(SbiKnobs {
            slow: Some(Duration::from_secs(5)),
            ..Default::default()
        })
        .await,
    );
    assert!(matches!(e, SbiError::Timeout { .. }), "{e}");
    assert!(e.is_retry());
}

#[tokio::test]
async fn low_quality_is_delivered_but_below_the_requested_score() {
    let cap = capture_with(SbiKnobs {
        low_quality: true,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
    .unwrap();
    assert!(!cap.meets_requested_score);
    assert!(cap.fingers.iter().all(|f| f.device_quality == 22.0));
}

#[tokio::test]
async fn a_missing_finger_refuses_the_slap() {
    let e = refused(
        capture_with(SbiKnobs {
            missing_finger: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(&e, SbiError::Verification(VerifyError::FingerMissing { finger }) if finger == "Left LittleFinger"),
        "{e}"
    );
}

#[tokio::test]
async fn a_wrong_finger_position_in_the_record_refuses_the_slap() {
    let e = refused(
        capture_with(SbiKnobs {
            wrong_position: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(&e, SbiError::Verification(VerifyError::Record { finger, .. }) if finger == "Left IndexFinger"),
        "{e}"
    );
}

#[tokio::test]
async fn a_bad_signature_refuses_the_slap() {
    let e = refused(
        capture_with(SbiKnobs {
            bad_signature: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(e, SbiError::Verification(VerifyError::Signature { what: "data" })),
        "{e}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_refuses_the_slap() {
    let e = refused(
        capture_with(SbiKnobs {
            untrusted_certificate: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(
            e,
            SbiError::Verification(VerifyError::Untrusted { what: "data", .. })
        ),
        "{e}"
    );
}

#[tokio::test]
async fn an_expired_certificate_refuses_the_slap() {
    let e = refused(
        capture_with(SbiKnobs {
            expired_certificate: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(e, SbiError::Verification(VerifyError::Expired { what: "data" })),
        "{e}"
    );
}

#[tokio::test]
async fn a_certificate_whose_key_usage_excludes_signatures_refuses_the_slap() {
    let e = refused(
        capture_with(SbiKnobs {
            wrong_key_usage: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(e, SbiError::Verification(VerifyError::KeyUsage { what: "data" })),
        "{e}"
    );
}

#[tokio::test]
async fn a_broken_hash_chain_refuses_the_slap() {
    let e = refused(
        capture_with(SbiKnobs {
            broken_hash_chain: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(e, SbiError::Verification(VerifyError::HashChain { index: 1, .. })),
        "{e}"
    );
}

#[tokio::test]
async fn a_wrong_transaction_id_refuses_the_slap() {
    let e = refused(
        capture_with(SbiKnobs {
            wrong_transaction_id: true,
            ..Default::default()
        })
        .await,
    );
    assert!(
        matches!(e, SbiError::Verification(VerifyError::TransactionId { .. })),
        "{e}"
    );
}

#[tokio::test]
async fn a_capture_timestamp_outside_the_window_is_refused() {
    let sim = service("TSIM-CLOCK");
    let c = client(sim.port());
    let dev = slap_device(&c).await;
    // The station's clock ten minutes ahead of the device's (certificates are still valid then).
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(10);
    let e = c
        .capture_slap(&dev, &request(Slap::Thumbs, vec![], ""), &verifier(), later)
        .await
        .unwrap_err();
    assert!(
        matches!(e, SbiError::Verification(VerifyError::Timestamp { .. })),
        "{e}"
    );
}

#[tokio::test]
async fn another_devices_digital_id_is_refused() {
    // The capture comes from service B, but the device asked is A's (same port claimed): digital ids differ.
    let a = service("TSIM-A");
    let b = service("TSIM-B");
    let dev_a = slap_device(&client(a.port())).await;
    let mut dev = dev_a.clone();
    dev.port = b.port();
    let e = client(b.port())
        .capture_slap(
            &dev,
            &request(Slap::Thumbs, vec![], ""),
            &verifier(),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, SbiError::Verification(VerifyError::DigitalIdMismatch { .. })),
        "{e}"
    );
}

#[tokio::test]
async fn not_registered_is_listed_unverified_and_never_captured_from() {
    let sim = service("TSIM-NR");
    sim.knobs().not_registered = true;
    let c = client(sim.port());
    let d = slap_device(&c).await;
    assert!(!d.verified);
    assert_eq!(d.status, "Not Registered");
    assert_eq!(d.error.as_ref().map(|e| e.0.as_str()), Some("100"));
    let e = c
        .capture_slap(
            &d,
            &request(Slap::Left, vec![], ""),
            &verifier(),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SbiError::Device {
                kind: DeviceErrorKind::NotRegistered,
                ..
            }
        ),
        "{e}"
    );
    // Even when a caller marks it verified, the device itself refuses (error 100).
    let mut forged = d.clone();
    forged.verified = true;
    forged.device_id = "2".into();
    let e = c
        .capture_slap(
            &forged,
            &request(Slap::Left, vec![], ""),
            &verifier(),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SbiError::Device {
                kind: DeviceErrorKind::NotRegistered,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn preview_stream_gives_jpeg_frames_and_no_stream_is_an_error() {
    let sim = service("TSIM-STREAM");
    let c = client(sim.port());
    let dev = slap_device(&c).await;
    let mut s = c.stream(&dev, Slap::Right, 2000).await.unwrap();
    for _ in 0..3 {
        let f = s.next_frame().await.unwrap().expect("a frame");
        assert!(
            f.starts_with(&[0xFF, 0xD8]) && f.ends_with(&[0xFF, 0xD9]),
            "a whole JPEG"
        );
    }
    drop(s);
    // The same as an async stream.
    let s = c.stream(&dev, Slap::Left, 2000).await.unwrap();
    let mut frames = Box::pin(s.into_stream());
    let f = futures_util::StreamExt::next(&mut frames)
        .await
        .expect("a frame")
        .unwrap();
    assert!(f.starts_with(&[0xFF, 0xD8]));
    drop(frames);
    // A short stream ends (the HTTP answer the service appends after the frames is not a frame).
    let mut s = c.stream(&dev, Slap::Thumbs, 100).await.unwrap();
    let mut n = 0;
    while let Some(f) = s.next_frame().await.unwrap() {
        assert!(f.starts_with(&[0xFF, 0xD8]));
        n += 1;
        assert!(n < 1000);
    }
    sim.knobs().no_stream = true;
    let e = c.stream(&dev, Slap::Left, 1000).await.unwrap_err();
    assert!(
        matches!(e, SbiError::Device { kind: DeviceErrorKind::NotConnected, ref code, .. } if code == "202"),
        "{e}"
    );
}

/// First free port of a range, bound.
fn bind_in(range: RangeInclusive<u16>) -> TcpListener {
    range
        .into_iter()
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
        .unwrap()
}

#[tokio::test]
async fn discovery_finds_two_services_and_skips_other_listeners() {
    let range = 47200..=47229;
    // Listeners that are not SBI: garbage, plain HTTP 404, silence, a service that knows none of the verbs.
    let garbage = bind_in(range.clone());
    let not_found = bind_in(range.clone());
    let silent = bind_in(range.clone());
    let invalid_url = bind_in(range.clone());
    let others = [
        garbage.local_addr().unwrap().port(),
        not_found.local_addr().unwrap().port(),
        silent.local_addr().unwrap().port(),
        invalid_url.local_addr().unwrap().port(),
    ];
    // Answers every method as MOSIP's mock answers one it does not know.
    std::thread::spawn(move || {
        for s in invalid_url.incoming().flatten() {
            let mut s = s;
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b);
            let body = r#"[{"error":{"errorCode":"500","errorInfo":"Invalid URL"}}]"#;
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 405 OK\r\nContent-Length: {}\r\n\r\n{body}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    std::thread::spawn(move || {
        for s in garbage.incoming().flatten() {
            let mut s = s;
            let _ = s.write_all(b"\x00\x01SSH-2.0-nonsense\r\n\r\n garbage \xff\xfe");
        }
    });
    std::thread::spawn(move || {
        for s in not_found.incoming().flatten() {
            let mut s = s;
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b);
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
        }
    });
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for s in silent.incoming().flatten() {
            h.lock().unwrap().push(s); // accepted, never answered
        }
    });
    let mk = |serial: &str| {
        SbiService::start(
            SbiServiceConfig {
                ports: range.clone(),
                serial: serial.into(),
                ..SbiServiceConfig::default()
            },
            pki().clone(),
        )
        .unwrap()
    };
    let a = mk("TSIM-D1");
    let b = mk("TSIM-D2");
    let timeouts = Timeouts {
        discover: Duration::from_millis(1500),
        ..Timeouts::default()
    };
    let found = discover(range.clone(), &timeouts).await;
    let ports: Vec<u16> = found.iter().map(|s| s.port).collect();
    let mut want = vec![a.port(), b.port()];
    want.sort();
    assert_eq!(ports, want, "others were {others:?}");
    let serials: Vec<String> = found
        .iter()
        .flat_map(|s| &s.devices)
        .map(|d| {
            d.digital_id
                .as_ref()
                .map(|i| i.serial_no.clone())
                .unwrap_or_default()
        })
        .collect();
    assert!(serials.contains(&"TSIM-D1".to_owned()) && serials.contains(&"TSIM-D2".to_owned()));
    assert!(
        found
            .iter()
            .flat_map(|s| &s.devices)
            .all(|d| d.status == "Ready" && d.certification == "L0")
    );
}

#[tokio::test]
async fn an_independent_jose_implementation_verifies_the_device_jws() {
    let sim = service("TSIM-JOSE");
    let c = client(sim.port());
    let dev = slap_device(&c).await;
    let cap = c
        .capture_slap(
            &dev,
            &request(Slap::Thumbs, vec![], ""),
            &verifier(),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("device.pem");
    std::fs::write(&cert, pki().device_cert_pem()).unwrap();
    let script = r#"
import sys, json
try:
    from jwcrypto import jwk, jws
except ImportError:
    print("jwcrypto is not installed (pip install jwcrypto)", file=sys.stderr); sys.exit(3)
key = jwk.JWK.from_pem(open(sys.argv[1], 'rb').read())
token = sys.stdin.read().strip()
t = jws.JWS(); t.deserialize(token)
t.verify(key, alg='RS256')
print(json.dumps(json.loads(t.payload)))
"#;
    let run = |token: &str| -> Option<std::process::Output> {
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&cert)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(token.as_bytes()).ok()?;
        child.wait_with_output().ok()
    };
    let token = &cap.fingers[0].evidence;
    let must = std::env::var_os("CI").is_some();
    let Some(out) = run(token) else {
        assert!(!must, "python3 is required in CI");
        eprintln!("skipped: python3 is not available");
        return;
    };
    if out.status.code() == Some(3) {
        assert!(!must, "jwcrypto is required in CI");
        eprintln!("skipped: {}", String::from_utf8_lossy(&out.stderr).trim());
        return;
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let payload: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(payload["bioSubType"], "Left Thumb");
    assert_eq!(payload["transactionId"], "tamga-test-0001");
    // And a tampered token is refused by it too (the test can fail both ways).
    let mut bad = token.clone();
    let dot = bad.find('.').unwrap() + 1;
    let c0 = if bad.as_bytes()[dot] == b'e' { "f" } else { "e" };
    bad.replace_range(dot..dot + 1, c0);
    let out = run(&bad).unwrap();
    assert!(!out.status.success(), "jwcrypto accepted a tampered token");
}
