//! Object transfer throughput through the simulated USB transport: GetObject of a 6 MB photo, against a same-run
//! baseline of copying the same bytes once in memory (the floor any transfer path has to pay).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tamga_drivers::ptp::PtpCamera;
use tamga_sim::ptp_camera::{SimCamera, SimQuirks};

fn bench(c: &mut Criterion) {
    let photo: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    let cam = SimCamera::new(
        "Sim",
        "Bench",
        SimQuirks::default(),
        vec![(photo.clone(), 4000, 3000)],
    );
    let mut ptp = PtpCamera::new(cam.open().unwrap(), Duration::from_secs(5));
    let obj = ptp
        .capture(Default::default(), Duration::from_secs(5), false, &mut |_, _| {})
        .unwrap();
    let mut g = c.benchmark_group("ptp_object_6MB");
    g.throughput(Throughput::Bytes(photo.len() as u64));
    g.sample_size(20);
    g.bench_function("baseline_memcpy", |b| b.iter(|| black_box(&photo).clone()));
    g.bench_function("get_object", |b| {
        b.iter(|| ptp.get_object(obj.handle, &mut |_, _| {}).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
