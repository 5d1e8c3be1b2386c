//! Fingerprint image quality, in the spirit of NFIQ 2 (ISO/IEC 29794-4:2024).
//!
//! The image is cut into blocks of about 0.8 mm (16 px at 500 ppi). Per block we compute the grey-level spread and
//! the gradient structure tensor; blocks with ridge structure form the foreground. The features, each in 0..1
//! (higher is better), are the ones NFIQ 2 builds on:
//!
//! | feature | NFIQ 2 counterpart | what it measures |
//! |---|---|---|
//! | `foreground_area` | ImgProcROIArea | share of the image covered by ridges (saturates at 55 %) |
//! | `centring` | (ROI centroid) | how far the print's centroid is from the image centre |
//! | `contrast` | MU / SIGMA | mean grey-level spread of foreground blocks (saturates at 72 grey levels) |
//! | `orientation_certainty` | OCL_Bar | mean coherence of the gradient structure tensor, (l1 - l2)/(l1 + l2) |
//! | `ridge_valley_clarity` | LCS_Bar / RVUP | share of a block's cross-ridge profile explained by its best sinusoid |
//! | `ridge_frequency` | FDA_Bar | share of blocks whose ridge period is plausible (0.25-0.75 mm) |
//!
//! The score is `100 * gate * sum(w_i * f_i)` with weights 0.15 area, 0.10 centring, 0.15 contrast, 0.25
//! orientation certainty, 0.25 clarity, 0.10 frequency, and `gate = min(1, foreground_area / 0.4)`, so that a small
//! or absent print cannot score well on the few blocks it has. It is not NFIQ 2's trained model; it is built to
//! rank images the way NFIQ 2 does (a degradation series of the same finger scores lower at every step), to explain
//! itself, and to be cheap enough to run on every capture.

use serde::Serialize;

/// Each feature in 0..1 (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Features {
    pub foreground_area: f32,
    pub centring: f32,
    pub contrast: f32,
    pub orientation_certainty: f32,
    pub ridge_valley_clarity: f32,
    pub ridge_frequency: f32,
}

/// Something an operator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Nothing that looks like a finger.
    NoFinger,
    /// Too little of the finger touches the sensor.
    SmallArea,
    /// The print is off the centre of the sensor.
    OffCentre,
    /// Ridges and valleys are hard to tell apart (faint, too dry).
    LowContrast,
    /// Dark, merged ridges.
    TooWet,
    /// Light, broken ridges.
    TooDry,
    /// Ridge flow is unclear (movement, smudge, noise).
    UnclearRidges,
}

impl Finding {
    /// What the operator tells the applicant.
    pub fn instruction(self) -> &'static str {
        match self {
            Finding::NoFinger => "place the finger on the sensor",
            Finding::SmallArea => "press the whole finger flat, from the tip to the first joint",
            Finding::OffCentre => "move the finger to the centre of the sensor",
            Finding::LowContrast => "press a little harder; clean the sensor if the image stays faint",
            Finding::TooWet => "wipe the finger dry and place it again",
            Finding::TooDry => "the finger is dry: breathe on it or moisten it slightly",
            Finding::UnclearRidges => "hold the finger still and clean the sensor glass",
        }
    }
}

/// The assessment of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    /// 0-100, higher is better.
    pub score: u8,
    pub features: Features,
    /// Why the score is not higher, worst first.
    pub findings: Vec<Finding>,
    /// Mean grey level of the foreground (dark = wet, light = dry), 0-255.
    pub foreground_mean: f32,
}

/// Foreground share of the image at which `foreground_area` reaches 1 (a flat, whole finger on the sensor).
pub const AREA_FULL: f32 = 0.55;
/// Mean block standard deviation (grey levels) at which `contrast` reaches 1.
pub const CONTRAST_FULL: f32 = 72.0;

impl Quality {
    /// Nothing to assess: an empty sensor, or an image too small to hold a print.
    fn no_finger(foreground_share: f32) -> Quality {
        Quality {
            score: 0,
            features: Features {
                foreground_area: (foreground_share / AREA_FULL).min(1.0),
                centring: 0.0,
                contrast: 0.0,
                orientation_certainty: 0.0,
                ridge_valley_clarity: 0.0,
                ridge_frequency: 0.0,
            },
            findings: vec![Finding::NoFinger],
            foreground_mean: 0.0,
        }
    }
}

/// Weights of the features in the score (sum 1).
pub const WEIGHTS: [f32; 6] = [0.15, 0.10, 0.15, 0.25, 0.25, 0.10];

struct Block {
    fg: bool,
    mean: f32,
    std: f32,
    gxx: f32,
    gyy: f32,
    gxy: f32,
}

/// Assesses an 8-bit grey image (row-major, `width * height` bytes) at `ppi` pixels per inch.
pub fn assess(pixels: &[u8], width: usize, height: usize, ppi: u16) -> Quality {
    let scale = f32::from(ppi.max(100)) / 500.0;
    let b = ((16.0 * scale).round() as usize).max(8);
    if width < 2 * b || height < 2 * b || pixels.len() < width * height {
        return Quality::no_finger(0.0);
    }
    let (bw, bh) = (width / b, height / b);
    let px = |x: usize, y: usize| f32::from(pixels[y * width + x]);
    let mut blocks = Vec::with_capacity(bw * bh);
    for by in 0..bh {
        for bx in 0..bw {
            let (x0, y0) = (bx * b, by * b);
            let (mut sum, mut sq, mut gxx, mut gyy, mut gxy) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for y in y0..y0 + b {
                for x in x0..x0 + b {
                    let v = px(x, y);
                    sum += v;
                    sq += v * v;
                    let (xl, xr) = (x.saturating_sub(1), (x + 1).min(width - 1));
                    let (yu, yd) = (y.saturating_sub(1), (y + 1).min(height - 1));
                    let gx = px(xr, y) - px(xl, y);
                    let gy = px(x, yd) - px(x, yu);
                    gxx += gx * gx;
                    gyy += gy * gy;
                    gxy += gx * gy;
                }
            }
            let n = (b * b) as f32;
            let mean = sum / n;
            let std = (sq / n - mean * mean).max(0.0).sqrt();
            blocks.push(Block {
                fg: false,
                mean,
                std,
                gxx,
                gyy,
                gxy,
            });
        }
    }
    // Foreground: blocks with clear grey-level spread (an empty sensor has only noise).
    for blk in &mut blocks {
        blk.fg = blk.std >= 12.0;
    }
    let fg: Vec<usize> = (0..blocks.len()).filter(|&i| blocks[i].fg).collect();
    let area_share = fg.len() as f32 / blocks.len() as f32;
    if fg.len() < 4 {
        return Quality::no_finger(area_share);
    }
    let nf = fg.len() as f32;
    let (cx, cy) = fg.iter().fold((0.0, 0.0), |(sx, sy), &i| {
        ((i % bw) as f32 + 0.5 + sx, (i / bw) as f32 + 0.5 + sy)
    });
    let (cx, cy) = (cx / nf / bw as f32 - 0.5, cy / nf / bh as f32 - 0.5);
    let off = (cx * cx + cy * cy).sqrt();
    let centring = (1.0 - (off - 0.05).max(0.0) / 0.3).clamp(0.0, 1.0);
    let foreground_area = (area_share / AREA_FULL).min(1.0);
    let mean_std = fg.iter().map(|&i| blocks[i].std).sum::<f32>() / nf;
    let contrast = (mean_std / CONTRAST_FULL).min(1.0);
    let foreground_mean = fg.iter().map(|&i| blocks[i].mean).sum::<f32>() / nf;
    let ocl = fg
        .iter()
        .map(|&i| {
            let k = &blocks[i];
            let tr = k.gxx + k.gyy;
            if tr <= f32::EPSILON {
                0.0
            } else {
                ((k.gxx - k.gyy).powi(2) + 4.0 * k.gxy * k.gxy).sqrt() / tr
            }
        })
        .sum::<f32>()
        / nf;

    // Cross-ridge profiles for clarity and frequency.
    let (min_p, max_p) = (0.25 * f32::from(ppi) / 25.4, 0.75 * f32::from(ppi) / 25.4);
    let (mut clarity_sum, mut plausible, mut profiled) = (0.0f32, 0usize, 0usize);
    let half = b as isize; // window of 2b x 2b around the block centre
    let bins = (2.0 * half as f32 * std::f32::consts::SQRT_2) as usize + 2;
    let mut acc = vec![0.0f32; bins];
    let mut cnt = vec![0u32; bins];
    for &i in &fg {
        let k = &blocks[i];
        // Gradient direction (normal to the ridges): half the angle of (gxx - gyy, 2 gxy).
        let phi = 0.5 * (2.0 * k.gxy).atan2(k.gxx - k.gyy);
        let (nx, ny) = (phi.cos(), phi.sin());
        let (ccx, ccy) = (((i % bw) * b + b / 2) as isize, ((i / bw) * b + b / 2) as isize);
        acc.iter_mut().for_each(|a| *a = 0.0);
        cnt.iter_mut().for_each(|c| *c = 0);
        let off = (bins / 2) as f32;
        for dy in -half..half {
            let y = ccy + dy;
            if y < 0 || y >= height as isize {
                continue;
            }
            for dx in -half..half {
                let x = ccx + dx;
                if x < 0 || x >= width as isize {
                    continue;
                }
                // Only a short stretch along the ridges, so that their curvature does not blur the profile.
                let along = -(dx as f32) * ny + dy as f32 * nx;
                if along.abs() > half as f32 / 2.0 {
                    continue;
                }
                let d = dx as f32 * nx + dy as f32 * ny + off;
                let bin = d as usize;
                if bin < bins {
                    acc[bin] += px(x as usize, y as usize);
                    cnt[bin] += 1;
                }
            }
        }
        let profile: Vec<f32> = acc
            .iter()
            .zip(&cnt)
            .filter(|(_, c)| **c > 0)
            .map(|(a, &c)| a / c as f32)
            .collect();
        if profile.len() < 12 {
            continue;
        }
        let m = profile.iter().sum::<f32>() / profile.len() as f32;
        let p: Vec<f32> = profile.iter().map(|v| v - m).collect();
        let var = p.iter().map(|v| v * v).sum::<f32>();
        if var <= f32::EPSILON {
            continue;
        }
        // The sinusoid that explains most of the profile, over periods around the plausible range (least
        // squares on cos and sin at each candidate period, half-pixel steps): its share of the variance is the
        // clarity, its period the local ridge period.
        profiled += 1;
        let (mut best_explained, mut best_period) = (0.0f32, 0.0f32);
        let mut period = (min_p * 0.6).max(3.0);
        while period <= max_p * 1.4 {
            let w = std::f32::consts::TAU / period;
            let (mut c, mut s, mut cc, mut ss, mut cs) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for (t, v) in p.iter().enumerate() {
                let (sn, cn) = (w * t as f32).sin_cos();
                c += v * cn;
                s += v * sn;
                cc += cn * cn;
                ss += sn * sn;
                cs += cn * sn;
            }
            let det = cc * ss - cs * cs;
            if det.abs() > f32::EPSILON {
                let a = (c * ss - s * cs) / det;
                let bb = (s * cc - c * cs) / det;
                let explained = (a * c + bb * s) / var;
                if explained > best_explained {
                    (best_explained, best_period) = (explained, period);
                }
            }
            period += 0.5;
        }
        if (min_p..=max_p).contains(&best_period) {
            plausible += 1;
        }
        let explained = best_explained;
        clarity_sum += explained.clamp(0.0, 1.0);
    }
    let ridge_valley_clarity = if profiled == 0 {
        0.0
    } else {
        clarity_sum / profiled as f32
    };
    let ridge_frequency = if profiled == 0 {
        0.0
    } else {
        plausible as f32 / profiled as f32
    };

    let features = Features {
        foreground_area,
        centring,
        contrast,
        orientation_certainty: ocl,
        ridge_valley_clarity,
        ridge_frequency,
    };
    let values = [
        foreground_area,
        centring,
        contrast,
        ocl,
        ridge_valley_clarity,
        ridge_frequency,
    ];
    let weighted: f32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let gate = (area_share / 0.4).min(1.0);
    let score = (100.0 * gate * weighted).round().clamp(0.0, 100.0) as u8;

    let mut findings = Vec::new();
    if area_share < 0.25 {
        findings.push(Finding::SmallArea);
    }
    if centring < 0.6 {
        findings.push(Finding::OffCentre);
    }
    if foreground_mean < 95.0 && ridge_valley_clarity < 0.6 {
        findings.push(Finding::TooWet);
    } else if foreground_mean > 170.0 && contrast < 0.5 {
        findings.push(Finding::TooDry);
    } else if contrast < 0.4 {
        findings.push(Finding::LowContrast);
    }
    if ocl < 0.45 || ridge_valley_clarity < 0.45 {
        findings.push(Finding::UnclearRidges);
    }
    Quality {
        score,
        features,
        findings,
        foreground_mean,
    }
}
