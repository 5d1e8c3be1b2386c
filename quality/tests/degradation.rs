//! The score must rank images as NFIQ 2 does: on a degradation series of the same finger it falls as the image
//! worsens; and each rejection names the feature that caused it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use tamga_quality::fingerprint::{Finding, assess};
use tamga_sim::fingerprint::{FingerSpec, render};

fn score(spec: &FingerSpec) -> tamga_quality::fingerprint::Quality {
    assess(
        &render(spec),
        spec.width as usize,
        spec.height as usize,
        spec.resolution_ppi,
    )
}

fn base(seed: u64, position: u8) -> FingerSpec {
    FingerSpec::good(seed, position, 256, 288, 500)
}

/// Scores along a series must not rise (a 2-point tolerance for ties) and must fall overall by `min_drop`.
fn assert_falls(name: &str, specs: Vec<FingerSpec>, min_drop: u8) {
    let scores: Vec<u8> = specs.iter().map(|s| score(s).score).collect();
    for w in scores.windows(2) {
        assert!(
            w[1] <= w[0].saturating_add(2),
            "{name}: score rose along the series: {scores:?}"
        );
    }
    assert!(
        scores[0] >= scores[scores.len() - 1] + min_drop,
        "{name}: fell too little: {scores:?}"
    );
}

#[test]
fn good_prints_score_high_for_every_finger() {
    for pos in 1..=10 {
        let q = score(&base(11, pos));
        assert!(q.score >= 70, "finger {pos}: {q:?}");
        assert!(q.findings.is_empty(), "finger {pos}: {q:?}");
    }
}

#[test]
fn no_finger_scores_zero() {
    let q = score(&FingerSpec {
        present: false,
        ..base(1, 1)
    });
    assert_eq!(q.score, 0);
    assert_eq!(q.findings, vec![Finding::NoFinger]);
}

#[test]
fn degradation_by_noise() {
    let s: Vec<_> = [4.0, 20.0, 40.0, 70.0, 110.0]
        .iter()
        .map(|&n| FingerSpec {
            noise: n,
            ..base(3, 2)
        })
        .collect();
    assert_falls("noise", s, 25);
}

#[test]
fn degradation_by_contrast() {
    let s: Vec<_> = [0.9, 0.6, 0.4, 0.25, 0.12]
        .iter()
        .map(|&c| FingerSpec {
            contrast: c,
            ..base(4, 7)
        })
        .collect();
    assert_falls("contrast", s, 25);
    let q = score(&FingerSpec {
        contrast: 0.15,
        ..base(4, 7)
    });
    assert!(
        q.findings.contains(&Finding::LowContrast) || q.findings.contains(&Finding::TooDry),
        "{q:?}"
    );
}

#[test]
fn degradation_by_partial_contact() {
    let s: Vec<_> = [1.0, 0.7, 0.45, 0.25, 0.1]
        .iter()
        .map(|&c| FingerSpec {
            contact: c,
            ..base(5, 3)
        })
        .collect();
    assert_falls("contact", s, 30);
    let q = score(&FingerSpec {
        contact: 0.2,
        ..base(5, 3)
    });
    assert!(q.findings.contains(&Finding::SmallArea), "{q:?}");
}

#[test]
fn degradation_by_placement() {
    let s: Vec<_> = [0.0, 0.12, 0.22, 0.32, 0.42]
        .iter()
        .map(|&o| FingerSpec {
            offset: (o, o * 0.8),
            ..base(6, 6)
        })
        .collect();
    assert_falls("offset", s, 15);
    let q = score(&FingerSpec {
        offset: (0.3, 0.25),
        ..base(6, 6)
    });
    assert!(q.findings.contains(&Finding::OffCentre), "{q:?}");
}

#[test]
fn degradation_by_moisture_both_ways() {
    let dry: Vec<_> = [0.0, -0.3, -0.6, -0.9]
        .iter()
        .map(|&m| FingerSpec {
            moisture: m,
            ..base(8, 4)
        })
        .collect();
    assert_falls("dry", dry, 10);
    let wet: Vec<_> = [0.0, 0.3, 0.6, 0.95]
        .iter()
        .map(|&m| FingerSpec {
            moisture: m,
            ..base(8, 4)
        })
        .collect();
    assert_falls("wet", wet, 10);
}

#[test]
fn degradation_by_smudge() {
    let s: Vec<_> = [0.0, 0.4, 0.7, 1.0]
        .iter()
        .map(|&m| FingerSpec {
            smudge: m,
            ..base(9, 9)
        })
        .collect();
    assert_falls("smudge", s, 5);
}

#[test]
fn large_500ppi_image() {
    let q = score(&FingerSpec::good(12, 1, 800, 750, 500));
    assert!(q.score >= 60, "{q:?}");
}
