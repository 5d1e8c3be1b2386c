//! Synthetic fingerprints that look like fingerprints, for the scanner simulator and the quality tests.
//!
//! The method follows SFinGe (Cappelli, Maio, Maltoni): an orientation field from the zero-pole model of
//! Sherlock and Monro (cores and deltas placed by pattern class), then a ridge pattern grown from random seeds by
//! repeated contextual Gabor filtering tuned to the local orientation and a ridge frequency, then the finger's
//! contact area, and finally the acquisition: contrast, moisture (dry breaks ridges, wet merges them), smudge,
//! placement and sensor noise. Everything is deterministic for a seed and a finger position.

use crate::rng::Rng;
use std::f32::consts::PI;

/// Henry pattern classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternClass {
    Arch,
    TentedArch,
    LeftLoop,
    RightLoop,
    Whorl,
}

/// What to draw, and how it is acquired.
#[derive(Debug, Clone, PartialEq)]
pub struct FingerSpec {
    pub seed: u64,
    /// ISO/IEC 19794-4 finger position, 1 (right thumb) to 10 (left little).
    pub position: u8,
    pub width: u32,
    pub height: u32,
    pub resolution_ppi: u16,
    /// The pattern class; `None` picks one from the seed and position with realistic frequencies.
    pub class: Option<PatternClass>,
    /// Contrast between ridges and valleys, 0 (none) to 1 (full).
    pub contrast: f32,
    /// Standard deviation of sensor noise, in grey levels.
    pub noise: f32,
    /// -1 very dry (broken, faint ridges) .. 0 normal .. +1 very wet (merged, dark ridges).
    pub moisture: f32,
    /// Displacement of the finger centre, as fractions of width and height.
    pub offset: (f32, f32),
    /// Fraction of the nominal contact area that touches the sensor (partial placement), 0..1.
    pub contact: f32,
    /// Strength of a smudge over part of the print, 0..1.
    pub smudge: f32,
    /// False: nothing on the sensor.
    pub present: bool,
}

impl FingerSpec {
    /// A good, centred print of `position` from `seed` for a sensor of the given size.
    pub fn good(seed: u64, position: u8, width: u32, height: u32, resolution_ppi: u16) -> Self {
        FingerSpec {
            seed,
            position,
            width,
            height,
            resolution_ppi,
            class: None,
            contrast: 0.9,
            noise: 4.0,
            moisture: 0.0,
            offset: (0.0, 0.0),
            contact: 1.0,
            smudge: 0.0,
            present: true,
        }
    }
}

struct Singularities {
    cores: Vec<(f32, f32)>,
    deltas: Vec<(f32, f32)>,
}

fn pick_class(rng: &mut Rng, position: u8) -> PatternClass {
    // Thumbs and ring fingers whorl more often, index fingers carry most arches; loops dominate overall.
    let u = rng.unit();
    let (arch, tented, whorl) = match position {
        1 | 6 => (0.03, 0.02, 0.45),
        2 | 7 => (0.10, 0.07, 0.30),
        4 | 9 => (0.02, 0.01, 0.45),
        _ => (0.04, 0.03, 0.20),
    };
    let right_hand = position <= 5;
    if u < arch {
        PatternClass::Arch
    } else if u < arch + tented {
        PatternClass::TentedArch
    } else if u < arch + tented + whorl {
        PatternClass::Whorl
    } else if right_hand {
        // Ulnar loops open towards the little finger: right loops on the right hand.
        PatternClass::RightLoop
    } else {
        PatternClass::LeftLoop
    }
}

fn singularities(class: PatternClass, rng: &mut Rng, w: f32, h: f32) -> Singularities {
    let j = |rng: &mut Rng, s: f32| rng.range(-s, s);
    let p = |rng: &mut Rng, x: f32, y: f32| (w * (x + j(rng, 0.04)), h * (y + j(rng, 0.04)));
    match class {
        PatternClass::Arch => Singularities {
            cores: vec![],
            deltas: vec![],
        },
        PatternClass::TentedArch => Singularities {
            cores: vec![p(rng, 0.5, 0.42)],
            deltas: vec![p(rng, 0.5, 0.66)],
        },
        PatternClass::LeftLoop => Singularities {
            cores: vec![p(rng, 0.52, 0.42)],
            deltas: vec![p(rng, 0.30, 0.72)],
        },
        PatternClass::RightLoop => Singularities {
            cores: vec![p(rng, 0.48, 0.42)],
            deltas: vec![p(rng, 0.70, 0.72)],
        },
        PatternClass::Whorl => Singularities {
            cores: vec![p(rng, 0.47, 0.40), p(rng, 0.53, 0.50)],
            deltas: vec![p(rng, 0.22, 0.75), p(rng, 0.78, 0.75)],
        },
    }
}

/// The ridge orientation (radians, modulo pi) at every pixel.
fn orientation_field(class: PatternClass, s: &Singularities, w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; w * h];
    let (wf, hf) = (w as f32, h as f32);
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f32, y as f32);
            let theta = if class == PatternClass::Arch {
                // Ridges y = a * exp(-((x - cx) / s)^2) (upwards bump): the slope gives the orientation.
                let (cx, sx) = (wf * 0.5, wf * 0.28);
                let a = hf * 0.12 * (1.0 - (yf / hf - 0.35).abs()).max(0.0);
                let dx = (xf - cx) / sx;
                (2.0 * a * dx / sx * (-dx * dx).exp()).atan()
            } else {
                let mut t = 0.0;
                for &(cx, cy) in &s.cores {
                    t += (yf - cy).atan2(xf - cx);
                }
                for &(dx, dy) in &s.deltas {
                    t -= (yf - dy).atan2(xf - dx);
                }
                0.5 * t
            };
            out[y * w + x] = theta.rem_euclid(PI);
        }
    }
    out
}

const ORIENTATIONS: usize = 24;

struct Kernel {
    radius: i32,
    taps: Vec<f32>,
}

fn gabor_bank(period: f32) -> Vec<Kernel> {
    let sigma = period * 0.42;
    let radius = (sigma * 2.2).ceil() as i32;
    let size = (2 * radius + 1) as usize;
    (0..ORIENTATIONS)
        .map(|k| {
            let theta = PI * k as f32 / ORIENTATIONS as f32;
            let (s, c) = theta.sin_cos();
            let mut taps = Vec::with_capacity(size * size);
            for dy in -radius..=radius {
                for dx in -radius..=radius {
                    let (x, y) = (dx as f32, dy as f32);
                    // Distance across the ridges (normal to the ridge direction theta).
                    let across = -x * s + y * c;
                    let g = (-(x * x + y * y) / (2.0 * sigma * sigma)).exp();
                    taps.push(g * (2.0 * PI * across / period).cos());
                }
            }
            let sum: f32 = taps.iter().map(|t| t.abs()).sum();
            for t in &mut taps {
                *t /= sum * 0.5;
            }
            Kernel { radius, taps }
        })
        .collect()
}

/// Grows a ridge pattern (values in -1..1, positive = ridge) that follows `theta` with the given period.
fn grow_ridges(theta: &[f32], w: usize, h: usize, period: f32, rng: &mut Rng) -> Vec<f32> {
    let bank = gabor_bank(period);
    let mut img: Vec<f32> = (0..w * h)
        .map(|_| {
            if rng.unit() < 0.02 {
                rng.range(-1.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    let mut next = vec![0.0f32; w * h];
    let idx: Vec<usize> = theta
        .iter()
        .map(|t| ((t / PI * ORIENTATIONS as f32).round() as usize) % ORIENTATIONS)
        .collect();
    for _ in 0..9 {
        for y in 0..h {
            for x in 0..w {
                let k = &bank[idx[y * w + x]];
                let r = k.radius;
                let size = (2 * r + 1) as usize;
                let mut acc = 0.0;
                for dy in -r..=r {
                    let yy = (y as i32 + dy).clamp(0, h as i32 - 1) as usize;
                    let row = &img[yy * w..yy * w + w];
                    let trow = &k.taps[(dy + r) as usize * size..(dy + r + 1) as usize * size];
                    for (t, dx) in trow.iter().zip(-r..=r) {
                        let xx = (x as i32 + dx).clamp(0, w as i32 - 1) as usize;
                        acc += t * row[xx];
                    }
                }
                next[y * w + x] = (acc * 1.8).clamp(-1.0, 1.0);
            }
        }
        std::mem::swap(&mut img, &mut next);
    }
    img
}

fn box_blur(img: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    if r == 0 {
        return img.to_vec();
    }
    let mut tmp = vec![0.0f32; w * h];
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (a, b) = (x.saturating_sub(r), (x + r).min(w - 1));
            tmp[y * w + x] = img[y * w + a..=y * w + b].iter().sum::<f32>() / (b - a + 1) as f32;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let (a, b) = (y.saturating_sub(r), (y + r).min(h - 1));
            out[y * w + x] = (a..=b).map(|yy| tmp[yy * w + x]).sum::<f32>() / (b - a + 1) as f32;
        }
    }
    out
}

/// Smooth random field in 0..1 (blurred noise), for dryness breaks and smudges.
fn smooth_noise(w: usize, h: usize, r: usize, rng: &mut Rng) -> Vec<f32> {
    let raw: Vec<f32> = (0..w * h).map(|_| rng.unit()).collect();
    let b = box_blur(&box_blur(&raw, w, h, r), w, h, r);
    let (lo, hi) = b
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    b.iter().map(|v| (v - lo) / (hi - lo).max(1e-6)).collect()
}

/// The background grey of an empty optical sensor.
pub const BACKGROUND: f32 = 232.0;

/// Renders the image (8-bit grey, row-major).
pub fn render(spec: &FingerSpec) -> Vec<u8> {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let mut rng = Rng::new(spec.seed.wrapping_mul(31).wrapping_add(u64::from(spec.position)));
    let mut noise_rng = Rng::new(spec.seed ^ 0xA5A5_5A5A ^ u64::from(spec.position) << 32);
    if !spec.present {
        return (0..w * h)
            .map(|_| (BACKGROUND + spec.noise * noise_rng.normal()).clamp(0.0, 255.0) as u8)
            .collect();
    }
    let class = spec.class.unwrap_or_else(|| pick_class(&mut rng, spec.position));
    let sing = singularities(class, &mut rng, w as f32, h as f32);
    let theta = orientation_field(class, &sing, w, h);
    // Ridge period: about 0.47 mm on adult fingers (9.3 px at 500 ppi), varied a little per finger.
    let period = f32::from(spec.resolution_ppi) / 25.4 * 0.47 * rng.range(0.9, 1.1);
    let ridges = grow_ridges(&theta, w, h, period, &mut rng);

    // Contact area: an ellipse, displaced by the placement offset, shrunk for partial contact.
    let (cx, cy) = (
        w as f32 * (0.5 + spec.offset.0),
        h as f32 * (0.52 + spec.offset.1),
    );
    let contact = spec.contact.clamp(0.05, 1.0).sqrt();
    let (ax, ay) = (w as f32 * 0.40 * contact, h as f32 * 0.46 * contact);
    let dry_breaks = smooth_noise(w, h, 2, &mut rng);
    let smudge_field = smooth_noise(w, h, (w / 10).max(2), &mut rng);
    let wet = spec.moisture.max(0.0);
    let dry = (-spec.moisture).max(0.0);
    // Wet prints spread: the wetter, the more the ridges run into the valleys.
    let blurred = box_blur(&ridges, w, h, (wet * 3.0).round() as usize);
    // A smudge smears the ridges (latent residue, a slipping finger): a strongly blurred copy shows through.
    let smeared = box_blur(&ridges, w, h, (period * 0.6).round() as usize);

    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (dx, dy) = ((x as f32 - cx) / ax, (y as f32 - cy) / ay);
            let d = (dx * dx + dy * dy).sqrt();
            // Pressure falls off towards the rim of the contact area.
            let pressure = ((1.0 - d) * 6.0).clamp(0.0, 1.0);
            let mut v = blurred[i];
            // Wet fingers fill the valleys; dry ones leave gaps along the ridges.
            v = v + wet * 0.9 * (1.0 - v.abs()) + wet * 0.35;
            let ridge = ((v * 3.0).tanh() + 1.0) * 0.5;
            let mut ridge = ridge * (1.0 - dry * (dry_breaks[i] < 0.55 + 0.2 * dry) as u8 as f32 * 0.85);
            ridge *= 1.0 - 0.35 * dry;
            let smudged = (spec.smudge * (smudge_field[i] - 0.3).max(0.0) * 4.0).min(1.0);
            let smear = ((smeared[i] * 3.0).tanh() + 1.0) * 0.5 * 0.5 + 0.3;
            ridge = ridge * (1.0 - smudged) + smear * smudged;
            let grey = BACKGROUND - 200.0 * spec.contrast * pressure * ridge;
            out.push((grey + spec.noise * noise_rng.normal()).clamp(0.0, 255.0) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_by_seed_and_position() {
        let a = render(&FingerSpec::good(7, 2, 96, 96, 500));
        let b = render(&FingerSpec::good(7, 2, 96, 96, 500));
        let c = render(&FingerSpec::good(7, 3, 96, 96, 500));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn no_finger_is_flat_background() {
        let mut s = FingerSpec::good(1, 1, 64, 64, 500);
        s.present = false;
        let img = render(&s);
        let mean = img.iter().map(|&v| f32::from(v)).sum::<f32>() / img.len() as f32;
        assert!((mean - BACKGROUND).abs() < 3.0);
    }
}
