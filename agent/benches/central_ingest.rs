//! Central ingest throughput over loopback mutual TLS: many stations uploading at once (bundles per second, p99
//! latency), with the receiver on a 1-thread and then a 2-thread runtime, reported as a ratio (scaling 1 -> 2 cores).
//!
//! Run: `cargo bench -p tamga-agent --bench central_ingest`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)] // bench code
use std::time::{Duration, Instant};
use support::Sealed;
use tamga_agent::uplink::{Outcome, Uplink};
use tamga_bundle::{devpki, manifest};

#[path = "../tests/support/mod.rs"]
mod support;
/// (station id, certificate, key, its bundles in chain order).
type Station = (String, String, String, Vec<Sealed>);

const STATIONS: usize = 8;
const PER_STATION: usize = 12;

fn sealed(p: &devpki::DevPki, station: &str, cert: &str, key: &str, previous: &str, seed: u8) -> Sealed {
    support::sealed_bundle(
        &support::Signing {
            station_id: station,
            centre_id: "C",
            key,
            chain: [cert, &p.station_ca],
            central: &p.central,
        },
        previous,
        seed,
        60_000,
    )
}

fn run(threads: usize, p: &devpki::DevPki, stations: &[Station]) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cfg = tamga_central::CentralConfig {
            cert_pem: p.central.clone(),
            key_pem: p.central_key.clone(),
            client_ca_pem: p.root_ca.clone(),
            revocation_list: None,
            max_body_bytes: 1 << 24,
        };
        tamga_central::start(
            cfg,
            Box::new(tamga_central::store::FsStore::new(dir.path()).unwrap()),
            listener,
        )
        .unwrap()
    });
    let port = running.addr.port();
    let start = Instant::now();
    let mut latencies: Vec<f64> = client_rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (_, cert, key, bundles) in stations.iter().cloned() {
            let up = Uplink::new(
                &format!("https://localhost:{port}"),
                &format!("{cert}\n{}", p.station_ca),
                &key,
                &p.root_ca,
                &p.central,
                1,
            )
            .unwrap();
            set.spawn(async move {
                let mut l = Vec::new();
                for (id, digest, jwe) in bundles {
                    let t = Instant::now();
                    let out = up.send(&id, &digest, &jwe).await;
                    assert!(matches!(out, Outcome::Delivered { .. }), "{out:?}");
                    l.push(t.elapsed().as_secs_f64() * 1e3);
                }
                l
            });
        }
        let mut all = Vec::new();
        while let Some(r) = set.join_next().await {
            all.extend(r.unwrap());
        }
        all
    });
    let secs = start.elapsed().as_secs_f64();
    running.task.abort();
    rt.shutdown_timeout(Duration::from_secs(1));
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies[((latencies.len() as f64 - 1.0) * 0.99).round() as usize];
    (latencies.len() as f64 / secs, p99)
}

fn main() {
    let p = devpki::generate("BENCH-W00").unwrap();
    let stations: Vec<_> = (0..STATIONS)
        .map(|i| {
            let id = format!("BENCH-W{:02}", i + 1);
            let (cert, key) = devpki::issue_station(&id, 30, &p.station_ca, &p.station_ca_key).unwrap();
            let mut prev = manifest::GENESIS.to_owned();
            let bundles: Vec<_> = (0..PER_STATION)
                .map(|j| {
                    let b = sealed(&p, &id, &cert, &key, &prev, j as u8);
                    prev = b.1.clone();
                    b
                })
                .collect();
            (id, cert, key, bundles)
        })
        .collect();
    // Each run uses a fresh store, so the same bundles are new to it.
    let (t1, p1) = run(1, &p, &stations);
    let (t2, p2) = run(2, &p, &stations);
    println!(
        "central ingest, {STATIONS} stations x {PER_STATION} bundles (~60 kB each), loopback mutual TLS"
    );
    println!("  1 thread : {t1:.1} bundles/s, p99 {p1:.1} ms");
    println!("  2 threads: {t2:.1} bundles/s, p99 {p2:.1} ms");
    println!("  scaling 1 -> 2: {:.2}x throughput", t2 / t1);
}
