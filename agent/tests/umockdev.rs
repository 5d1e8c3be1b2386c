//! The real libusb code path: `tamga` (rusb -> libusb) talks to a PTP camera that umockdev presents on a fake USB
//! bus, answered live by `tests/umockdev/ptp_camera.py`. Skips, saying so, where umockdev or Debian's python3-gi
//! are missing (`.ci/run` installs them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PYTHON: &str = "/usr/bin/python3";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Runs `tamga ARGS` under the emulated camera serving `photo`; `None` when umockdev is not available here.
fn under_umockdev(photo: &Path, args: &[&str]) -> Option<Output> {
    let script = repo().join("tests/umockdev/ptp_camera.py");
    if !Path::new(PYTHON).exists() {
        eprintln!("skipped: {PYTHON} is missing (apt-get install python3-gi gir1.2-umockdev-1.0 umockdev)");
        return None;
    }
    let out = Command::new(PYTHON)
        .arg(&script)
        .arg(photo)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_tamga"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    if out.status.code() == Some(77) {
        eprintln!("skipped: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    Some(out)
}

#[test]
fn devices_scan_sees_the_camera_through_libusb() {
    let photo = repo().join("quality/tests/fixtures/photos/grace_hopper.jpg");
    let Some(o) = under_umockdev(&photo, &["devices", "scan", "--json"]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let usb = v["usb"].as_array().unwrap();
    let cam = usb
        .iter()
        .find(|d| d["vid"] == "1a98" && d["pid"] == "0002")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(cam["still_image"], true);
    assert_eq!(cam["profiles"], serde_json::json!(["leica-m9"]));
}

#[test]
fn capture_photo_through_libusb_from_an_emulated_camera() {
    let photo = repo().join("quality/tests/fixtures/photos/grace_hopper.jpg");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("photo.jpg");
    let Some(o) = under_umockdev(
        &photo,
        &[
            "capture",
            "photo",
            "--profile",
            "leica-m9",
            "--device",
            "1a98:0002:UMOCK1",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    ) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Grace Hopper's dark studio background fails the ICAO checks: exit 1, but the photo came through whole.
    assert!(matches!(o.status.code(), Some(0 | 1)), "{stderr}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&photo).unwrap(),
        "the photo arrives byte for byte"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["faces"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn zero_length_packet_boundary_through_libusb() {
    // 12 + 1012 = 1024 bytes: the data phase ends on a packet boundary and needs a zero-length packet.
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("boundary.jpg");
    let bytes: Vec<u8> = (0..1012u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&photo, &bytes).unwrap();
    let out = dir.path().join("got.jpg");
    let Some(o) = under_umockdev(
        &photo,
        &[
            "capture",
            "photo",
            "--profile",
            "leica-m9",
            "--out",
            out.to_str().unwrap(),
        ],
    ) else {
        return;
    };
    // Not an image, so the photo check cannot decode it (exit 2 from anyhow), but the transfer must be exact.
    let got = std::fs::read(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(got, bytes);
}
