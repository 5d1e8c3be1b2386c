//! Round trips and tamper tests: every alteration is rejected with a precise reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use p256::pkcs8::DecodePrivateKey;
use tamga_bundle::iso19794::{
    CaptureTime, FaceImageRecord, FingerImageRecord, QualityBlock, finger_compression,
};
use tamga_bundle::manifest::{self, Device, Exception, Item, Manifest, Session};
use tamga_bundle::seal::{StationSigner, Verified, open, seal};
use tamga_bundle::{BundleError, archive, devpki, jwe, pki};

struct World {
    pki: devpki::DevPki,
    signer: StationSigner,
    central_point: Vec<u8>,
    central: p256::SecretKey,
    root_der: Vec<u8>,
}

fn world() -> World {
    let pki = devpki::generate("KZ-ALA-001-W03").unwrap();
    let signer = StationSigner::from_pem(&pki.station_key, &[&pki.station, &pki.station_ca]).unwrap();
    let central_point = pki::cert_info(&pki::certs_from_pem(&pki.central).unwrap()[0])
        .unwrap()
        .public_point;
    let central = p256::SecretKey::from_pkcs8_pem(&pki.central_key).unwrap();
    let root_der = pki::certs_from_pem(&pki.root_ca).unwrap().remove(0);
    World {
        pki,
        signer,
        central_point,
        central,
        root_der,
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn device() -> Device {
    Device {
        model: "R307".into(),
        serial: "SIM0001".into(),
        firmware: "-".into(),
        profile: "zhiantec-r307".into(),
        profile_sha256: "00".repeat(32),
    }
}

/// A complete record: ten fingers with distinct image bytes (seeded by `seed`) and a face.
fn record(station: &str, seed: u8) -> (Manifest, Vec<(String, Vec<u8>)>) {
    let t = CaptureTime {
        year: 2026,
        month: 11,
        day: 21,
        hour: 10,
        minute: 0,
        second: 0,
        millisecond: 0,
    };
    let mut items = Vec::new();
    let mut files = Vec::new();
    for (i, pos) in manifest::POSITIONS.iter().enumerate() {
        let rec = FingerImageRecord {
            capture_time: t,
            device_technology: 0,
            device_vendor: 0,
            device_type: 0,
            quality: vec![QualityBlock {
                score: 70,
                vendor: 0,
                algorithm: 0,
            }],
            position: i as u8 + 1,
            representation_number: 0,
            resolution_ppi: 500,
            bit_depth: 8,
            compression: finger_compression::PNG,
            impression: 0,
            width: 256,
            height: 288,
            image: vec![seed, i as u8, 0x89, b'P', b'N', b'G'],
        };
        let bytes = rec.to_bytes();
        let file = format!("finger-{:02}-{pos}.fir", i + 1);
        items.push(Item {
            file: file.clone(),
            kind: "finger".into(),
            position: Some((*pos).into()),
            position_code: Some(i as u8 + 1),
            record_format: "ISO/IEC 19794-4:2011".into(),
            image_format: "png".into(),
            width: 256,
            height: 288,
            resolution_ppi: Some(500),
            quality: serde_json::json!({"score": 70}),
            device: device(),
            captured_at: "2026-11-21T10:00:00Z".into(),
            attempts: 1,
            sha256: tamga_bundle::b64::sha256_hex(&bytes),
        });
        files.push((file, bytes));
    }
    let face = FaceImageRecord {
        capture_time: t,
        device_technology: 2,
        device_vendor: 0,
        device_type: 0,
        quality: vec![],
        gender: 2,
        face_image_type: 1,
        image_data_type: 0,
        width: 413,
        height: 531,
        post_processing: 2,
        colour_space: 1,
        image: vec![0xFF, 0xD8, seed, 0xFF, 0xD9],
    }
    .to_bytes();
    items.push(Item {
        file: "face.fac".into(),
        kind: "face".into(),
        position: None,
        position_code: None,
        record_format: "ISO/IEC 19794-5:2011".into(),
        image_format: "jpeg".into(),
        width: 413,
        height: 531,
        resolution_ppi: None,
        quality: serde_json::json!({"accepted": true}),
        device: device(),
        captured_at: "2026-11-21T10:01:00Z".into(),
        attempts: 1,
        sha256: tamga_bundle::b64::sha256_hex(&face),
    });
    files.push(("face.fac".into(), face));
    let m = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        bundle_id: uuid::Uuid::now_v7().to_string(),
        centre_id: "KZ-ALA-001".into(),
        station_id: station.into(),
        operator_id: "op-17".into(),
        session: Session {
            started_at: "2026-11-21T09:58:00Z".into(),
            ended_at: "2026-11-21T10:02:00Z".into(),
        },
        previous_bundle_sha256: manifest::GENESIS.into(),
        document: None,
        items,
        exceptions: vec![],
        complete: true,
    };
    (m, files)
}

fn sealed(w: &World) -> (String, Manifest, Vec<(String, Vec<u8>)>) {
    let (m, files) = record(w.signer.station_id(), 1);
    let s = seal(&m, &files, &w.signer, &w.central_point).unwrap();
    (s.jwe, m, files)
}

fn open_w(w: &World, jwe: &str) -> Result<Verified, BundleError> {
    open(jwe, &w.central, &w.root_der, now())
}

/// Opens the envelope without verifying, to tamper inside and reseal.
fn unseal(w: &World, jwe_text: &str) -> (String, Vec<(String, Vec<u8>)>) {
    let (_, zip) = jwe::open(jwe_text, &w.central).unwrap();
    archive::read(&zip).unwrap()
}

fn reseal(w: &World, manifest_jws: &str, items: &[(String, Vec<u8>)]) -> String {
    jwe::seal(&archive::write(manifest_jws, items).unwrap(), &w.central_point).unwrap()
}

#[test]
fn round_trip_and_hash_chain() {
    let w = world();
    let (m, files) = record(w.signer.station_id(), 1);
    let first = seal(&m, &files, &w.signer, &w.central_point).unwrap();
    let v = open_w(&w, &first.jwe).unwrap();
    assert_eq!(v.manifest, m);
    assert_eq!(v.items, files);
    assert_eq!(v.manifest_sha256, first.manifest_sha256);
    let (mut m2, files2) = record(w.signer.station_id(), 2);
    m2.previous_bundle_sha256 = first.manifest_sha256.clone();
    let second = seal(&m2, &files2, &w.signer, &w.central_point).unwrap();
    assert_eq!(
        open_w(&w, &second.jwe).unwrap().manifest.previous_bundle_sha256,
        first.manifest_sha256
    );
}

#[test]
fn any_changed_byte_of_the_sealed_bundle_is_rejected() {
    let w = world();
    let (jwe_text, _, _) = sealed(&w);
    let bytes = jwe_text.as_bytes();
    // Every position would take long; sample across all five parts, including every separator neighbourhood.
    let mut positions: Vec<usize> = (0..bytes.len()).step_by(97).collect();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'.' {
            positions.extend([i.saturating_sub(1), i, i + 1]);
        }
    }
    positions.push(bytes.len() - 1);
    for p in positions {
        let mut t = bytes.to_vec();
        t[p] = if t[p] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        let e = open_w(&w, &t).expect_err(&format!("byte {p} changed but the bundle opened"));
        assert!(matches!(e, BundleError::Envelope(_)), "byte {p}: {e}");
    }
}

#[test]
fn a_changed_manifest_breaks_the_signature() {
    let w = world();
    let (jwe_text, _, _) = sealed(&w);
    let (jws_text, items) = unseal(&w, &jwe_text);
    let parts: Vec<&str> = jws_text.split('.').collect();
    let payload = tamga_bundle::b64::url_decode(parts[1]).unwrap();
    let altered = String::from_utf8(payload).unwrap().replace("op-17", "op-18");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        tamga_bundle::b64::url(altered.as_bytes()),
        parts[2]
    );
    let e = open_w(&w, &reseal(&w, &forged, &items)).unwrap_err();
    assert!(matches!(e, BundleError::Signature(_)), "{e}");
    // One flipped byte of the signed manifest text, anywhere.
    for p in (0..jws_text.len()).step_by(53) {
        let mut t = jws_text.clone().into_bytes();
        t[p] = if t[p] == b'A' { b'B' } else { b'A' };
        let Ok(t) = String::from_utf8(t) else { continue };
        let e = open_w(&w, &reseal(&w, &t, &items)).expect_err(&format!("manifest byte {p}"));
        assert!(
            matches!(
                e,
                BundleError::Signature(_) | BundleError::Manifest(_) | BundleError::Certificate(_)
            ),
            "manifest byte {p}: {e}"
        );
    }
}

#[test]
fn a_changed_item_is_named() {
    let w = world();
    let (jwe_text, _, _) = sealed(&w);
    let (jws_text, mut items) = unseal(&w, &jwe_text);
    let last = items[3].1.len() - 1;
    items[3].1[last] ^= 1;
    let e = open_w(&w, &reseal(&w, &jws_text, &items)).unwrap_err();
    match e {
        BundleError::Item { file, reason } => {
            assert_eq!(file, items[3].0);
            assert!(reason.contains("SHA-256"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn an_item_swapped_in_from_another_bundle_is_named() {
    let w = world();
    let (a, _, _) = sealed(&w);
    let (m2, files2) = record(w.signer.station_id(), 9);
    let b = seal(&m2, &files2, &w.signer, &w.central_point).unwrap().jwe;
    let (jws_a, mut items_a) = unseal(&w, &a);
    let (_, items_b) = unseal(&w, &b);
    items_a[0] = items_b[0].clone();
    let e = open_w(&w, &reseal(&w, &jws_a, &items_a)).unwrap_err();
    assert!(
        matches!(e, BundleError::Item { ref file, .. } if *file == items_a[0].0),
        "{e}"
    );
}

#[test]
fn an_extra_or_missing_file_is_refused() {
    let w = world();
    let (jwe_text, _, _) = sealed(&w);
    let (jws_text, mut items) = unseal(&w, &jwe_text);
    items.push(("extra.bin".into(), vec![1, 2, 3]));
    let e = open_w(&w, &reseal(&w, &jws_text, &items)).unwrap_err();
    assert!(
        e.to_string().contains("`extra.bin` is not in the manifest"),
        "{e}"
    );
    items.pop();
    let removed = items.remove(5);
    let e = open_w(&w, &reseal(&w, &jws_text, &items)).unwrap_err();
    assert!(
        e.to_string().contains(&removed.0) && e.to_string().contains("not in the archive"),
        "{e}"
    );
}

#[test]
fn another_stations_certificate_is_refused() {
    let w = world();
    let (other_cert, other_key) =
        devpki::issue_station("KZ-ALA-001-W04", 30, &w.pki.station_ca, &w.pki.station_ca_key).unwrap();
    let other = StationSigner::from_pem(&other_key, &[&other_cert, &w.pki.station_ca]).unwrap();
    let (m, files) = record("KZ-ALA-001-W03", 1);
    // The station code refuses to sign a manifest in another station's name...
    assert!(seal(&m, &files, &other, &w.central_point).is_err());
    // ...and a forger who builds it by hand is caught by the central side.
    let payload = serde_json::to_vec(&m).unwrap();
    let (jwe_text, _, _) = sealed(&w);
    let (_, items) = unseal(&w, &jwe_text);
    let forged = forge_jws(&payload, &other_key, &[&other_cert, &w.pki.station_ca]);
    let e = open_w(&w, &reseal(&w, &forged, &items)).unwrap_err();
    assert!(
        matches!(e, BundleError::Certificate(ref r) if r.contains("KZ-ALA-001-W04") && r.contains("KZ-ALA-001-W03")),
        "{e}"
    );
}

fn forge_jws(payload: &[u8], key_pem: &str, chain: &[&str]) -> String {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let der = pki::pkcs8_from_pem(key_pem).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let chain: Vec<Vec<u8>> = chain
        .iter()
        .flat_map(|p| pki::certs_from_pem(p).unwrap())
        .collect();
    tamga_bundle::jws::sign(payload, &key, &chain).unwrap()
}

#[test]
fn expired_and_foreign_certificates_are_refused() {
    let w = world();
    let (expired_cert, expired_key) =
        devpki::issue_station("KZ-ALA-001-W03", -1, &w.pki.station_ca, &w.pki.station_ca_key).unwrap();
    let expired = StationSigner::from_pem(&expired_key, &[&expired_cert, &w.pki.station_ca]).unwrap();
    let (m, files) = record("KZ-ALA-001-W03", 1);
    let jwe_text = seal(&m, &files, &expired, &w.central_point).unwrap().jwe;
    let e = open_w(&w, &jwe_text).unwrap_err();
    assert!(
        matches!(e, BundleError::Certificate(ref r) if r.contains("expired")),
        "{e}"
    );

    let foreign = devpki::generate("KZ-ALA-001-W03").unwrap();
    let signer =
        StationSigner::from_pem(&foreign.station_key, &[&foreign.station, &foreign.station_ca]).unwrap();
    let jwe_text = seal(&m, &files, &signer, &w.central_point).unwrap().jwe;
    let e = open_w(&w, &jwe_text).unwrap_err();
    assert!(
        matches!(e, BundleError::Certificate(ref r) if r.contains("does not chain")),
        "{e}"
    );
}

#[test]
fn a_wrong_central_key_cannot_open_it() {
    let w = world();
    let (jwe_text, _, _) = sealed(&w);
    let other = devpki::generate("x").unwrap();
    let key = p256::SecretKey::from_pkcs8_pem(&other.central_key).unwrap();
    let e = open(&jwe_text, &key, &w.root_der, now()).unwrap_err();
    assert!(
        matches!(e, BundleError::Envelope(ref r) if r.contains("another central key")),
        "{e}"
    );
}

#[test]
fn completeness_must_be_true_to_its_flag() {
    let w = world();
    let (mut m, mut files) = record(w.signer.station_id(), 1);
    m.items.remove(9);
    files.remove(9);
    assert!(
        seal(&m, &files, &w.signer, &w.central_point)
            .unwrap_err()
            .to_string()
            .contains("complete")
    );
    m.exceptions.push(Exception {
        position: "left-little".into(),
        position_code: 10,
        reason: "amputated".into(),
        code: "XX".into(),
    });
    seal(&m, &files, &w.signer, &w.central_point).unwrap();
    m.exceptions.push(Exception {
        position: "left-ring".into(),
        position_code: 9,
        reason: "bandaged".into(),
        code: "UP".into(),
    });
    assert!(
        seal(&m, &files, &w.signer, &w.central_point)
            .unwrap_err()
            .to_string()
            .contains("given twice")
    );
}

/// An independent implementation opens our bundle: Python's jwcrypto (JWE, JWS) and cryptography (X.509), via
/// `tools/verify_bundle.py`. Skips, saying so, when jwcrypto is not installed (`.ci/run` installs it).
#[test]
fn an_independent_jose_implementation_verifies_the_bundle() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let (jwe_text, m, _) = sealed(&w);
    std::fs::write(dir.path().join("bundle.jwe"), &jwe_text).unwrap();
    std::fs::write(dir.path().join("central.key"), &w.pki.central_key).unwrap();
    std::fs::write(dir.path().join("root-ca.pem"), &w.pki.root_ca).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/verify_bundle.py");
    let run = |jwe: &str| {
        std::fs::write(dir.path().join("bundle.jwe"), jwe).unwrap();
        std::process::Command::new("python3")
            .arg(&script)
            .arg(dir.path().join("bundle.jwe"))
            .arg("--key")
            .arg(dir.path().join("central.key"))
            .arg("--ca")
            .arg(dir.path().join("root-ca.pem"))
            .arg("--json")
            .output()
    };
    let Ok(out) = run(&jwe_text) else {
        eprintln!("skipped: python3 is not available");
        return;
    };
    if out.status.code() == Some(3) {
        eprintln!("skipped: {}", String::from_utf8_lossy(&out.stderr).trim());
        return;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["bundle_id"], m.bundle_id.as_str());
    assert_eq!(v["items"], 11);
    // And it rejects what we reject.
    let mut t = jwe_text.clone().into_bytes();
    let mid = t.len() / 2;
    t[mid] = if t[mid] == b'A' { b'B' } else { b'A' };
    let out = run(&String::from_utf8(t).unwrap()).unwrap();
    assert_eq!(out.status.code(), Some(1));
}
