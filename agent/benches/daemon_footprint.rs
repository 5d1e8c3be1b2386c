//! The daemon's start-up time and resident memory, idle and busy, measured on `tamga demo` (the daemon with its
//! API and uplink, plus what the demo adds in the same process: the simulated devices and the embedded central
//! receiver, so the memory figures are an upper bound for `tamga run`).
//!
//! Baseline measured in the same run: starting and finishing `tamga --version` (process start and exit of the
//! same binary). Start-up is spawn until `/v1/health` answers; idle memory is VmRSS after 3 s with nothing to
//! do; busy memory is the peak (VmHWM) over `tamga demo --applicants 3`.
//!
//! Run: `cargo bench -p tamga-agent --bench daemon_footprint`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)] // bench code
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut base = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        assert!(
            Command::new(TAMGA)
                .arg("--version")
                .output()
                .unwrap()
                .status
                .success()
        );
        base.push(t.elapsed().as_secs_f64());
    }
    let b = median(&mut base);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let mut starts = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut child = Command::new(TAMGA)
            .args(["demo", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (base_url, token) = loop {
            let l = lines.next().unwrap().unwrap();
            if let Some(rest) = l.trim().strip_prefix("local API") {
                let mut w = rest.split_whitespace();
                let url = w.next().unwrap().to_owned();
                let token = w.nth(1).unwrap().to_owned();
                break (url, token);
            }
        };
        rt.block_on(async {
            loop {
                let ok = http
                    .get(format!("{base_url}/v1/health"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        starts.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_secs(3));
        idle.push(status_kb(child.id(), "VmRSS:").unwrap() as f64);
        assert!(
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        assert!(child.wait().unwrap().success());
    }

    let mut child = Command::new(TAMGA)
        .args(["demo", "--port", "0", "--applicants", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kb) = status_kb(child.id(), "VmHWM:") {
            peak = peak.max(kb);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (s, i) = (median(&mut starts), median(&mut idle));
    println!("daemon footprint (tamga demo: daemon + simulated devices + embedded central in one process)");
    println!(
        "  baseline: `tamga --version` start to exit: median {:.1} ms",
        b * 1e3
    );
    println!(
        "  start-up (spawn to /v1/health answering, incl. the demo's development PKI): median {:.0} ms ({:.0}x baseline)",
        s * 1e3,
        s / b
    );
    println!(
        "  resident memory idle: {:.0} MB; peak over 3 applicants: {} MB",
        i / 1024.0,
        peak / 1024
    );
}
