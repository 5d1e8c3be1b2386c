//! Writes synthetic fingerprints as PGM files to look at: `cargo run -p tamga-sim --example render_fingers DIR`.
use std::io::Write;
use tamga_sim::fingerprint::{FingerSpec, render};

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp/fingers".into());
    std::fs::create_dir_all(&dir)?;
    let mut variants: Vec<(String, FingerSpec)> = Vec::new();
    for pos in 1..=10u8 {
        variants.push((format!("good-{pos}"), FingerSpec::good(42, pos, 256, 288, 500)));
    }
    let base = FingerSpec::good(42, 2, 256, 288, 500);
    variants.push((
        "dry".into(),
        FingerSpec {
            moisture: -0.8,
            ..base.clone()
        },
    ));
    variants.push((
        "wet".into(),
        FingerSpec {
            moisture: 0.8,
            ..base.clone()
        },
    ));
    variants.push((
        "noisy".into(),
        FingerSpec {
            noise: 40.0,
            ..base.clone()
        },
    ));
    variants.push((
        "faint".into(),
        FingerSpec {
            contrast: 0.2,
            ..base.clone()
        },
    ));
    variants.push((
        "offcentre".into(),
        FingerSpec {
            offset: (0.3, 0.25),
            ..base.clone()
        },
    ));
    variants.push((
        "partial".into(),
        FingerSpec {
            contact: 0.3,
            ..base.clone()
        },
    ));
    variants.push((
        "smudge".into(),
        FingerSpec {
            smudge: 0.9,
            ..base.clone()
        },
    ));
    variants.push((
        "none".into(),
        FingerSpec {
            present: false,
            ..base
        },
    ));
    for (name, spec) in variants {
        let img = render(&spec);
        let mut f = std::fs::File::create(format!("{dir}/{name}.pgm"))?;
        write!(f, "P5\n{} {}\n255\n", spec.width, spec.height)?;
        f.write_all(&img)?;
    }
    Ok(())
}
