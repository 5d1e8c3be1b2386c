//! Quality scoring time per image on 256x288 and 800x750 images at 500 ppi. The baseline in the same run is one
//! pass of summing the pixels (a memory-bound floor), so results read as "scoring costs N pixel passes".
//! NFIQ 2 on the same images: `tools/fingerprint_bench.sh` (it needs `pip install nbis-py`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tamga_quality::fingerprint::assess;
use tamga_sim::fingerprint::{FingerSpec, render};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fingerprint_quality");
    for (w, h) in [(256u32, 288u32), (800, 750)] {
        let img = render(&FingerSpec::good(1, 2, w, h, 500));
        g.bench_function(format!("baseline_pixel_sum_{w}x{h}"), |b| {
            b.iter(|| black_box(&img).iter().map(|&v| u32::from(v)).sum::<u32>())
        });
        g.bench_function(format!("assess_{w}x{h}"), |b| {
            b.iter(|| assess(black_box(&img), w as usize, h as usize, 500))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
