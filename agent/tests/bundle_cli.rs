//! `tamga certs` and `tamga bundle`: a development PKI, a bundle from files, its verification and inspection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn tamga(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tamga"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];
const POSITIONS: [&str; 10] = [
    "right-thumb",
    "right-index",
    "right-middle",
    "right-ring",
    "right-little",
    "left-thumb",
    "left-index",
    "left-middle",
    "left-ring",
    "left-little",
];

/// Ten rendered fingerprints as PNG files and an 1800 px portrait as JPEG.
fn inputs(dir: &Path) -> (Vec<String>, String) {
    let mut fingers = Vec::new();
    for (i, pos) in POSITIONS.iter().enumerate() {
        let spec = tamga_sim::fingerprint::FingerSpec::good(3, i as u8 + 1, 256, 288, 500);
        let px = tamga_sim::fingerprint::render(&spec);
        let img = image::GrayImage::from_raw(256, 288, px).unwrap();
        let path = dir.join(format!("{pos}.png"));
        img.save(&path).unwrap();
        fingers.push(format!("{pos}={}", path.display()));
    }
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../quality/tests/fixtures/photos/astronaut.png"
    ))
    .unwrap();
    let face = image::load_from_memory(&png).unwrap().resize_exact(
        1800,
        1800,
        image::imageops::FilterType::Triangle,
    );
    let face_path = dir.join("face.jpg");
    face.to_rgb8().save(&face_path).unwrap();
    (fingers, face_path.display().to_string())
}

fn create(certs: &Path, fingers: &[String], face: &str, extra: &[&str], out: &Path) -> Output {
    let mut args: Vec<String> = vec![
        "bundle".into(),
        "create".into(),
        "--certs".into(),
        certs.display().to_string(),
    ];
    for l in TD3 {
        args.extend(["--mrz".into(), l.into()]);
    }
    args.extend(["--face".into(), face.into()]);
    for f in fingers {
        args.extend(["--finger".into(), f.clone()]);
    }
    let policy = certs.parent().unwrap().join("station.toml");
    std::fs::write(&policy, "[photo_policy]\nbackground_uniformity_max = 32.0\n[fingerprint_policy]\nthreshold = 40\nattempts = 3\n").unwrap();
    args.extend(["--policy".into(), policy.display().to_string()]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(["--out".into(), out.display().to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    tamga(&refs)
}

#[test]
fn pki_bundle_create_verify_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("pki");
    let c = certs.to_str().unwrap();
    let o = tamga(&["certs", "init", "--dir", c, "--station", "KZ-ALA-001-W07"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in [
        "root-ca.pem",
        "station-ca.pem",
        "central.pem",
        "central.key",
        "station.pem",
        "station.key",
    ] {
        assert!(certs.join(f).exists(), "{f}");
    }
    let mode = std::fs::metadata(certs.join("station.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let o = tamga(&["certs", "init", "--dir", c]);
    assert!(text(&o.stdout).contains("already"), "idempotent");
    let o = tamga(&["certs", "status", "--dir", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("KZ-ALA-001-W07"));

    let (fingers, face) = inputs(dir.path());
    let out = dir.path().join("b1.jwe");
    let o = create(&certs, &fingers, &face, &[], &out);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let ca = certs.join("root-ca.pem");
    let key = certs.join("central.key");
    let o = tamga(&[
        "bundle",
        "verify",
        out.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["items"], 11);
    assert_eq!(v["complete"], true);
    assert_eq!(v["station_id"], "KZ-ALA-001-W07");
    let o = tamga(&[
        "bundle",
        "inspect",
        out.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["document"]["record"]["document_number"], "L898902C3");
    assert_eq!(m["items"][0]["record_format"], "ISO/IEC 19794-4:2011");

    // The chain: the second bundle carries the first one's manifest digest.
    let digest = v["manifest_sha256"].as_str().unwrap().to_owned();
    let out2 = dir.path().join("b2.jwe");
    let o = create(&certs, &fingers, &face, &["--previous", &digest], &out2);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = tamga(&[
        "bundle",
        "verify",
        out2.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]);
    let v2: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v2["previous_bundle_sha256"], digest.as_str());

    // Nine fingers: refused, unless the tenth is declared.
    let nine = &fingers[..9];
    let o = create(&certs, nine, &face, &[], &dir.path().join("b3.jwe"));
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("incomplete"), "{}", text(&o.stderr));
    let o = create(
        &certs,
        nine,
        &face,
        &["--exception", "left-little=amputated"],
        &dir.path().join("b3.jwe"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // Another CA: a precise refusal.
    let other = dir.path().join("other");
    tamga(&["certs", "init", "--dir", other.to_str().unwrap()]);
    let o = tamga(&[
        "bundle",
        "verify",
        out.to_str().unwrap(),
        "--ca",
        other.join("root-ca.pem").to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("certificate"), "{}", text(&o.stdout));
    // Another central key: cannot decrypt.
    let o = tamga(&[
        "bundle",
        "verify",
        out.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
        "--key",
        other.join("central.key").to_str().unwrap(),
    ]);
    assert!(
        text(&o.stdout).contains("another central key"),
        "{}",
        text(&o.stdout)
    );

    // A readable key is refused everywhere, with the fix.
    std::fs::set_permissions(certs.join("station.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = tamga(&["certs", "status", "--dir", c]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("chmod 600"));
    let o = create(&certs, &fingers, &face, &[], &dir.path().join("b4.jwe"));
    assert!(text(&o.stderr).contains("chmod 600"), "{}", text(&o.stderr));
}

#[test]
fn enrolment_request_then_install() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    tamga(&["certs", "init", "--dir", pki.to_str().unwrap()]);
    let station = dir.path().join("station");
    let o = tamga(&[
        "certs",
        "request",
        "--station",
        "KZ-AST-002-W01",
        "--dir",
        station.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let csr = std::fs::read_to_string(station.join("station.csr")).unwrap();
    assert!(csr.contains("BEGIN CERTIFICATE REQUEST"));
    // A certificate for another key does not install.
    std::fs::copy(pki.join("station-ca.pem"), station.join("station-ca.pem")).unwrap();
    std::fs::copy(pki.join("root-ca.pem"), station.join("root-ca.pem")).unwrap();
    let o = tamga(&[
        "certs",
        "install",
        pki.join("station.pem").to_str().unwrap(),
        "--dir",
        station.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("does not match"), "{}", text(&o.stderr));
}

/// Base64url without padding (the JWS parts).
fn b64url(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

#[test]
fn certs_init_writes_a_device_provider_pki_whose_device_signs_what_the_sbi_driver_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("pki");
    let c = certs.to_str().unwrap();
    // A folder made before the device-provider files: they are added, the station's are kept.
    let o = tamga(&["certs", "init", "--dir", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in ["device-ca.pem", "device.pem", "device.key"] {
        std::fs::remove_file(certs.join(f)).unwrap();
    }
    let station_key = std::fs::read(certs.join("station.key")).unwrap();
    let o = tamga(&["certs", "init", "--dir", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("device-provider"), "{}", text(&o.stdout));
    assert!(!text(&o.stdout).contains("for station"), "{}", text(&o.stdout));
    assert_eq!(std::fs::read(certs.join("station.key")).unwrap(), station_key);
    let mode = std::fs::metadata(certs.join("device.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // One of a set missing: refused without --force.
    std::fs::remove_file(certs.join("device.pem")).unwrap();
    let o = tamga(&["certs", "init", "--dir", c]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("device.key"), "{}", text(&o.stderr));
    let o = tamga(&["certs", "init", "--dir", c, "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // The device key signs an RS256 JWS with the device certificate in x5c; the SBI driver verifies it against
    // device-ca.pem, and refuses it against another CA.
    let device_pem = std::fs::read_to_string(certs.join("device.pem")).unwrap();
    let x5c: String = device_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key_pem = std::fs::read_to_string(certs.join("device.key")).unwrap();
    let der = tamga_bundle::pki::pkcs8_from_pem(&key_pem).unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    assert_eq!(key.public().modulus_len(), 256, "RSA-2048");
    let header = serde_json::json!({"alg": "RS256", "x5c": [x5c]}).to_string();
    let input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(br#"{"hello":"device"}"#)
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let jws = format!("{input}.{}", b64url(&sig));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ca = std::fs::read_to_string(certs.join("device-ca.pem")).unwrap();
    let trust = tamga_drivers::sbi::verify::TrustStore::from_pem(&ca).unwrap();
    let v = tamga_drivers::sbi::verify::verify_jws("test", &jws, &trust, now).unwrap();
    assert_eq!(v.payload, br#"{"hello":"device"}"#);
    let other = tamga_drivers::sbi::verify::TrustStore::from_pem(
        &std::fs::read_to_string(certs.join("root-ca.pem")).unwrap(),
    )
    .unwrap();
    assert!(tamga_drivers::sbi::verify::verify_jws("test", &jws, &other, now).is_err());
}
