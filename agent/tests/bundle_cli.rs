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
