//! MRZ parsing throughput: records per second on one core, for a clean TD3, a TD1, and a TD3 that needs OCR
//! repair. The baseline in the same run is the bare check-digit computation over the same characters, so the
//! report can be read as a ratio ("a full parse costs N check-digit passes").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tamga_mrz::{ParseOptions, compute_check_digit, parse};

const TD3: &str =
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10";
const TD3_OCR: &str =
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO74O8122F12O4159ZE184226B<<<<<1O";
const TD1: &str =
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<";

fn bench(c: &mut Criterion) {
    let opts = ParseOptions::new(time::macros::date!(2026 - 11 - 21));
    let mut g = c.benchmark_group("mrz");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_check_digit_88_chars", |b| {
        b.iter(|| compute_check_digit(black_box(TD3).bytes().filter(|c| *c != b'\n')))
    });
    g.bench_function("parse_td3", |b| b.iter(|| parse(black_box(TD3), &opts)));
    g.bench_function("parse_td3_with_ocr_repair", |b| {
        b.iter(|| parse(black_box(TD3_OCR), &opts))
    });
    g.bench_function("parse_td1", |b| b.iter(|| parse(black_box(TD1), &opts)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
