//! Durable enqueue latency (median and p99) for a typical sealed bundle (~800 kB: ten fingers and a photo), against a
//! same-run baseline: writing the same bytes to a new file and fsyncing it (the least any durable write costs).
//!
//! Run: `cargo bench -p tamga-agent --bench outbox_enqueue`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)] // bench code
use std::io::Write;
use std::time::Instant;
use tamga_agent::outbox::Outbox;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let jwe = format!("eyJhbGciOiJFQ0RILUVTIn0..aXY.{}.dGFn", "Q".repeat(800_000));
    let n = 200;
    let mut base = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let mut f = std::fs::File::create(dir.path().join(format!("plain-{i}"))).unwrap();
        f.write_all(jwe.as_bytes()).unwrap();
        f.sync_all().unwrap();
        base.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut o = Outbox::open(dir.path(), 0).unwrap();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        o.enqueue(&format!("b{i:05}"), "W01", &format!("{i:064}"), &jwe)
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (bm, b99) = (pct(&mut base, 0.5), pct(&mut base, 0.99));
    let (m, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    println!("durable enqueue of an 800 kB bundle, {n} samples");
    println!("  baseline write+fsync: median {bm:.2} ms, p99 {b99:.2} ms");
    println!("  outbox enqueue:       median {m:.2} ms, p99 {p99:.2} ms");
    println!(
        "  ratio to baseline:    median {:.2}x, p99 {:.2}x",
        m / bm,
        p99 / b99
    );
}
