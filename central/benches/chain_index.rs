//! The per-request chain work of the central receiver at 30,000 links (a year of one window): adding a link and
//! answering the station's status with the incremental index, against what format 1 did on every request (the
//! whole index serialised, parsed, and its anomalies and tip recomputed). Disk time (one appended line against the
//! whole file rewritten) comes on top of the baseline.
//!
//! Run: `cargo bench -p tamga-central --bench chain_index`.
#![allow(clippy::unwrap_used)] // bench code
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tamga_bundle::manifest::GENESIS;
use tamga_central::store::{ChainIndex, Link, StationIndex};

const LINKS: usize = 30_000;

/// A digest-like hex string (distinct from the first characters, like real SHA-256 hex).
fn digest(k: usize) -> String {
    let h = (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("{h:016x}{k:048x}")
}

fn link(k: usize) -> Link {
    Link {
        bundle_id: format!("01900000-0000-7000-8000-{k:012x}"),
        previous: if k == 0 { GENESIS.to_owned() } else { digest(k) },
        digest: digest(k + 1),
    }
}

fn bench(c: &mut Criterion) {
    let links: Vec<Link> = (0..LINKS).map(link).collect();
    let mut g = c.benchmark_group(format!("station chain at {LINKS} links, per request"));
    g.sample_size(10);
    let mut index = ChainIndex::from_links(links.clone());
    let mut k = LINKS;
    g.bench_function("incremental: add a link, status", |b| {
        b.iter(|| {
            index.push(link(k));
            k += 1;
            black_box((index.anomalies(), index.tip().map(str::len)))
        })
    });
    let whole = StationIndex {
        station_id: "W".into(),
        bundles: LINKS as u64,
        last_bundle_id: links.last().map(|l| l.bundle_id.clone()),
        links,
    };
    g.bench_function("baseline (format 1): serialise, parse, recompute", |b| {
        b.iter(|| {
            let json = serde_json::to_vec_pretty(&whole).unwrap();
            let back: StationIndex = serde_json::from_slice(&json).unwrap();
            black_box((back.anomalies(), back.tip().map(str::len)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
