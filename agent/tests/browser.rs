//! The operator's page in a real browser: `tests/browser/operator_page.py` drives headless Chromium (Debian's
//! `chromium`, through Playwright's library) against `tamga demo` through whole applicants, a rejected photo, a
//! finger exception, an unplugged scanner and a central system that is down, keyboard only. Screenshots of every
//! step land in `target/browser-artifacts/`.
//!
//! Skips, saying so, where Chromium or Playwright is missing, except under CI (`CI` set), where that is a failure:
//! `.ci/run` installs both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::path::Path;
use std::process::Command;

#[test]
fn the_operator_page_serves_whole_applicants_in_a_real_browser() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-artifacts");
    let out = Command::new("python3")
        .arg(repo.join("tests/browser/operator_page.py"))
        .arg("--tamga")
        .arg(env!("CARGO_BIN_EXE_tamga"))
        .arg("--artifacts")
        .arg(&artifacts)
        .env_remove("RUST_LOG")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser tests must run in CI: {}",
            stderr.trim()
        );
        eprintln!("skipped: {}", stderr.trim());
        return;
    }
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Every scenario ran and passed (a scenario list that shrank by mistake would pass silently otherwise).
    for scenario in [
        "full_applicant",
        "passport_checks",
        "rejected_photo",
        "finger_exception",
        "unplugged_scanner",
        "unplugged_camera",
        "central_down",
        "disk_full",
        "agent_killed",
    ] {
        assert!(
            stdout.contains(&format!("PASS {scenario} ")),
            "{scenario}: {stdout}"
        );
    }
}
