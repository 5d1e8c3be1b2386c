//! Photo checks per image (face detection and every check) on a 2-3 MP portrait. Same-run baseline: converting
//! the decoded image to greyscale once (a single pass over the pixels), so the result reads as a ratio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tamga_quality::photo::{PhotoPolicy, check_photo, crop_jpeg, decode};

fn bench(c: &mut Criterion) {
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/photos/astronaut.png"
    ))
    .unwrap();
    // 1700 x 1700 = 2.9 MP, as a camera delivers it (a fixture upscaled).
    let img = decode(&png)
        .unwrap()
        .resize_exact(1700, 1700, image::imageops::FilterType::Triangle);
    let policy = PhotoPolicy::default();
    let report = check_photo(&img, &policy);
    assert_eq!(report.faces.len(), 1);
    let mut g = c.benchmark_group("photo_2.9MP");
    g.sample_size(20);
    g.bench_function("baseline_to_greyscale", |b| b.iter(|| black_box(&img).to_luma8()));
    g.bench_function("check_photo", |b| {
        b.iter(|| check_photo(black_box(&img), &policy))
    });
    g.bench_function("crop_jpeg", |b| {
        b.iter(|| crop_jpeg(black_box(&img), &report, &policy))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
