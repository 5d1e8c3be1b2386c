//! The agent's own work per applicant, from captured images to a durably queued bundle: MRZ parse and checks, the
//! photo checks and crop, ten fingerprint quality assessments, ISO records, signing, sealing and the outbox
//! enqueue. Devices are not involved (their time is the transfer, measured in the transfer benches).
//!
//! Baseline measured in the same run: decoding the captured photo's JPEG once (work every photo station does).
//! Reported: median wall and process CPU time per applicant, the ratio to the baseline, the share of each step,
//! and the process's resident memory (VmRSS after the run, VmHWM peak).
//!
//! Run: `cargo bench -p tamga-agent --bench applicant_cpu`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)] // bench code
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;
use tamga_agent::capture::fingers::{FingerPosition, Policy};
use tamga_agent::outbox::Outbox;
use tamga_agent::session::ApplicantSession;
use tamga_bundle::seal::StationSigner;
use tamga_bundle::{devpki, manifest, pki};
use tamga_quality::photo::PhotoPolicy;
use tamga_sim::fingerprint::{FingerSpec, render};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Process CPU time (user + system) in seconds, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 (utime, stime) of proc(5), counted from the state field (3).
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

fn device() -> manifest::Device {
    manifest::Device {
        model: "bench".into(),
        serial: "-".into(),
        firmware: "-".into(),
        profile: "-".into(),
        profile_sha256: "0".repeat(64),
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let photo = support::portrait_jpeg();
    let fingers: Vec<(FingerPosition, Vec<u8>)> = FingerPosition::ALL
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            (
                p,
                render(&FingerSpec::good(i as u64 + 1, p.code(), 256, 288, 500)),
            )
        })
        .collect();
    let mrz_text = tamga_sim::specimens::TD3.join("\n");
    let opts = tamga_mrz::ParseOptions::new(time::macros::date!(2026 - 11 - 21));
    let p = devpki::generate("KZ-ALA-001-W02").unwrap();
    let signer = StationSigner::from_pem(&p.station_key, &[&p.station, &p.station_ca]).unwrap();
    let central_point = pki::cert_info(&pki::certs_from_pem(&p.central).unwrap()[0])
        .unwrap()
        .public_point;
    let mut outbox = Outbox::open(dir.path(), 0).unwrap();
    let photo_policy = PhotoPolicy {
        background_uniformity_max: 40.0,
        ..PhotoPolicy::default()
    };

    let n = 20;
    let mut base = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(image::load_from_memory(&photo).unwrap());
        base.push(t.elapsed().as_secs_f64());
    }
    let rss_before = status_kb("VmRSS:");
    let (mut wall, mut steps) = (Vec::new(), [0.0f64; 4]);
    let cpu0 = cpu_seconds();
    for _ in 0..n {
        let t0 = Instant::now();
        let mut s = ApplicantSession::new("op-1", Policy::default(), photo_policy.clone());
        s.set_document(tamga_mrz::parse(&mrz_text, &opts).unwrap());
        let t1 = Instant::now();
        assert!(s.add_photo(&photo, device()).unwrap().accepted);
        let t2 = Instant::now();
        for (pos, px) in &fingers {
            s.add_finger(*pos, px, 256, 288, 500, device()).unwrap();
        }
        let t3 = Instant::now();
        s.finalize(&signer, &central_point, &mut outbox, "KZ-ALA-001")
            .map_err(|(_, e)| e)
            .unwrap();
        let t4 = Instant::now();
        for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4)].into_iter().enumerate() {
            steps[k] += (b - a).as_secs_f64();
        }
        wall.push((t4 - t0).as_secs_f64());
    }
    let cpu = (cpu_seconds() - cpu0) / n as f64;
    let total: f64 = steps.iter().sum();
    let (b, w) = (median(&mut base), median(&mut wall));
    println!("agent work per applicant (document, photo, ten fingers, finalize), {n} applicants");
    println!(
        "  baseline: JPEG decode of the 1800x1800 photo: median {:.1} ms",
        b * 1e3
    );
    println!(
        "  per applicant: median wall {:.1} ms ({:.1}x baseline), process CPU {:.1} ms ({:.1}x baseline)",
        w * 1e3,
        w / b,
        cpu * 1e3,
        cpu / b
    );
    for (name, v) in [
        "MRZ parse",
        "photo checks + crop",
        "ten finger qualities",
        "finalize (records, sign, seal, enqueue)",
    ]
    .iter()
    .zip(steps)
    {
        println!("    {name:<42} {:>5.1}%", v / total * 100.0);
    }
    println!(
        "  resident memory: {} MB before the applicants, {} MB after, peak {} MB",
        rss_before / 1024,
        status_kb("VmRSS:") / 1024,
        status_kb("VmHWM:") / 1024
    );
}
