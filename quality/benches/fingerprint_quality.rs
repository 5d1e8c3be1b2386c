//! Fingerprint quality benchmark, side by side with NFIQ 2 in the same run.
//!
//! 1. Time per image of `assess` on 256x288 and 800x750 images at 500 ppi, with a same-run baseline (one pass
//!    summing the pixels), reported as a ratio.
//! 2. If `python3 tools/nfiq2_score.py` works (PyPI `nbis-py`), NFIQ 2 on the same images: time per image and
//!    our speed-up (NFIQ 2's time includes the NBIS minutiae pass nbis-py always runs with it).
//! 3. Agreement: both scores over degradation series of the same fingers, and Spearman's rank correlation.
//!
//! Run: `cargo bench -p tamga-quality --bench fingerprint_quality`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)] // bench code
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use tamga_quality::fingerprint::assess;
use tamga_sim::fingerprint::{FingerSpec, render};

fn median_secs(mut f: impl FnMut(), runs: usize) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

fn write_png(path: &Path, w: u32, h: u32, px: &[u8]) {
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut e = png::Encoder::new(f, w, h);
    e.set_color(png::ColorType::Grayscale);
    e.set_depth(png::BitDepth::Eight);
    e.set_pixel_dims(Some(png::PixelDimensions {
        xppu: 19685,
        yppu: 19685,
        unit: png::Unit::Meter,
    }));
    e.write_header().unwrap().write_image_data(px).unwrap();
}

/// NFIQ 2 scores and seconds per file, or None when the tool is not available.
fn nfiq2(files: &[std::path::PathBuf]) -> Option<Vec<(Option<f64>, f64)>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/nfiq2_score.py");
    let out = Command::new("python3").arg(script).args(files).output().ok()?;
    if !out.status.success() {
        println!(
            "NFIQ 2 comparison skipped: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v.get("file").is_some() {
            rows.push((v["nfiq2"].as_f64(), v["seconds"].as_f64().unwrap_or(f64::NAN)));
        }
    }
    Some(rows)
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for k in i..=j {
            r[idx[k]] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("tamga-quality-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("== time per image (median), same-run baseline: one pass summing the pixels");
    let mut files = Vec::new();
    let mut ours = Vec::new();
    for (w, h) in [(256u32, 288u32), (800, 750)] {
        let img = render(&FingerSpec::good(1, 2, w, h, 500));
        let base = median_secs(
            || _ = black_box(black_box(&img).iter().map(|&v| u32::from(v)).sum::<u32>()),
            200,
        );
        let t = median_secs(
            || drop(black_box(assess(black_box(&img), w as usize, h as usize, 500))),
            50,
        );
        println!(
            "{w}x{h}: assess {:.3} ms = {:.0} x baseline ({:.4} ms)",
            t * 1e3,
            t / base,
            base * 1e3
        );
        let f = dir.join(format!("good-{w}x{h}.png"));
        write_png(&f, w, h, &img);
        files.push(f);
        ours.push(t);
    }
    // Degradation series for rank agreement.
    let mut series: Vec<(String, FingerSpec)> = Vec::new();
    for seed in [21u64, 22, 23] {
        let b = FingerSpec::good(seed, (seed % 10 + 1) as u8, 256, 288, 500);
        for n in [4.0, 30.0, 60.0, 100.0] {
            series.push((
                format!("s{seed}-noise{n}"),
                FingerSpec {
                    noise: n,
                    ..b.clone()
                },
            ));
        }
        for c in [0.6, 0.35, 0.2] {
            series.push((
                format!("s{seed}-contrast{c}"),
                FingerSpec {
                    contrast: c,
                    ..b.clone()
                },
            ));
        }
        for m in [0.5, 0.9, -0.5, -0.9] {
            series.push((
                format!("s{seed}-moisture{m}"),
                FingerSpec {
                    moisture: m,
                    ..b.clone()
                },
            ));
        }
        for c in [0.5, 0.25] {
            series.push((
                format!("s{seed}-contact{c}"),
                FingerSpec {
                    contact: c,
                    ..b.clone()
                },
            ));
        }
    }
    let mut our_scores = Vec::new();
    for (name, spec) in &series {
        let img = render(spec);
        our_scores.push(f64::from(assess(&img, 256, 288, 500).score));
        let f = dir.join(format!("{name}.png"));
        write_png(&f, 256, 288, &img);
        files.push(f);
    }
    match nfiq2(&files) {
        None => println!("== NFIQ 2 not available (python3 -m pip install nbis-py==0.1.3)"),
        Some(rows) => {
            println!("== NFIQ 2 (nbis-py, includes its minutiae pass) on the same images");
            for (i, (w, h)) in [(256, 288), (800, 750)].iter().enumerate() {
                let (_, secs) = rows[i];
                println!(
                    "{w}x{h}: NFIQ 2 {:.1} ms; ours is {:.0}x faster",
                    secs * 1e3,
                    secs / ours[i]
                );
            }
            let pairs: Vec<(f64, f64)> = rows[2..]
                .iter()
                .zip(&our_scores)
                .filter_map(|((n, _), &o)| n.map(|n| (o, n)))
                .collect();
            let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
            println!(
                "== agreement over {} degraded images ({} rejected by NFIQ 2): Spearman rho = {:.2}",
                pairs.len(),
                series.len() - pairs.len(),
                spearman(&a, &b)
            );
            for ((name, _), (ours, (n, _))) in series.iter().zip(our_scores.iter().zip(&rows[2..])) {
                println!(
                    "  {name:24} ours {ours:>3}  nfiq2 {}",
                    n.map_or("rejected".into(), |v| format!("{v:>3}"))
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
