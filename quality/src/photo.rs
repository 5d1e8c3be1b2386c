//! ICAO-style photo checks and the 35x45 mm crop.
//!
//! Faces come from the SeetaFace frontal detector (`rustface`; the model is compiled in). On the crop that will be
//! sent, the checks a clerk makes: exactly one face, the face big enough ("move closer"), head height share of the
//! photo in the ICAO band (crown to chin 32-36 mm of 45 mm), face centred, resolution, exposure (face brightness,
//! clipping), sharpness (variance of the Laplacian on the face at a fixed scale), background uniformity and
//! brightness, colour cast (chroma of the background, which should be neutral), and frontal pose (left-right
//! symmetry of the face). The detector gives no eye landmarks, so head roll is not measured.
//!
//! Every check returns pass/fail, the measured value, the threshold and advice an operator can say. Thresholds
//! are [`PhotoPolicy`], read from the `[photo_policy]` configuration table.

use image::{DynamicImage, GenericImageView, GrayImage, RgbImage, imageops::FilterType};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

static MODEL_BYTES: &[u8] = include_bytes!("../models/seeta_fd_frontal_v1.0.bin");

/// Thresholds (configuration table `[photo_policy]`); defaults suit a 300 dpi 35x45 mm photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhotoPolicy {
    /// Output crop size in pixels (35x45 mm at 300 dpi = 413x531); the source must provide at least this.
    pub crop_width: u32,
    pub crop_height: u32,
    /// Head height (crown to chin) as a share of the photo height: ICAO 32-36 mm of 45 mm.
    pub head_share_min: f64,
    pub head_share_max: f64,
    /// Largest offset of the face centre from the photo's vertical centre line, as a share of the width.
    pub centre_tolerance: f64,
    /// Mean face luminance, 0-255.
    pub brightness_min: f64,
    pub brightness_max: f64,
    /// Largest share of clipped pixels (at 0-2 or 253-255) on the face.
    pub clipping_max: f64,
    /// Smallest variance of the Laplacian on the face scaled to 128 px wide.
    pub sharpness_min: f64,
    /// Largest standard deviation of the background luminance.
    pub background_uniformity_max: f64,
    /// Smallest mean background luminance (ICAO asks for a light background).
    pub background_brightness_min: f64,
    /// Largest background chroma (max of |R-G|, |B-G| over the mean), a neutral background has ~0.
    pub colour_cast_max: f64,
    /// Smallest left-right symmetry of the face (correlation of the face and its mirror image), 0-1.
    pub symmetry_min: f64,
    /// JPEG size budget of the crop in bytes.
    pub jpeg_max_bytes: usize,
}

impl Default for PhotoPolicy {
    fn default() -> Self {
        PhotoPolicy {
            crop_width: 413,
            crop_height: 531,
            head_share_min: 0.70,
            head_share_max: 0.80,
            centre_tolerance: 0.05,
            brightness_min: 80.0,
            brightness_max: 210.0,
            clipping_max: 0.02,
            sharpness_min: 30.0,
            background_uniformity_max: 22.0,
            background_brightness_min: 120.0,
            colour_cast_max: 0.12,
            symmetry_min: 0.35,
            jpeg_max_bytes: 150_000,
        }
    }
}

impl PhotoPolicy {
    /// Checks that the thresholds make sense together; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |key: &str, why: &str| Err(format!("key `photo_policy.{key}`: {why}"));
        if self.crop_width < 100 || self.crop_height < 128 {
            return bad("crop_width", "the crop must be at least 100x128 pixels");
        }
        let aspect = f64::from(self.crop_width) / f64::from(self.crop_height);
        if (aspect - 35.0 / 45.0).abs() > 0.02 {
            return bad(
                "crop_height",
                "crop_width / crop_height must be 35/45 (for example 413 x 531)",
            );
        }
        if !(0.3..=0.95).contains(&self.head_share_min) || self.head_share_min >= self.head_share_max {
            return bad(
                "head_share_min",
                "needs 0.3 <= head_share_min < head_share_max <= 0.95 (ICAO: 0.70-0.80)",
            );
        }
        if self.head_share_max > 0.95 {
            return bad("head_share_max", "at most 0.95");
        }
        if self.brightness_min >= self.brightness_max {
            return bad("brightness_min", "must be below brightness_max");
        }
        if self.jpeg_max_bytes < 5_000 {
            return bad("jpeg_max_bytes", "at least 5000 bytes");
        }
        Ok(())
    }
}

/// A face box in pixels of the input image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    pub x: i64,
    pub y: i64,
    pub width: u32,
    pub height: u32,
    #[serde(skip)]
    pub score: f64,
}

/// The threshold of a check: one bound, or a band.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Threshold {
    One(f64),
    Band([f64; 2]),
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub value: Option<f64>,
    pub threshold: Threshold,
    /// What to do (empty when passed).
    pub advice: &'static str,
}

/// The verdict on a photo; its JSON form is the `tamga photo check --json` contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoReport {
    pub accepted: bool,
    pub faces: Vec<FaceBox>,
    pub checks: Vec<Check>,
    /// Where the 35x45 crop lies in the input image (x, y, width, height), when there is one face.
    #[serde(skip)]
    pub crop: Option<(u32, u32, u32, u32)>,
}

/// A photo that cannot be processed.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("cannot read the image: {0}; give a JPEG or PNG file")]
    Decode(String),
    #[error("the photo is not accepted: {0}")]
    NotAccepted(String),
    #[error(
        "the crop does not fit in {budget} bytes even at JPEG quality 50; lower the resolution or raise the budget"
    )]
    Budget { budget: usize },
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
    #[error(
        "the image is too large to check ({0}); a camera photo has at most {MAX_SIDE} pixels a side and \
         {max_mib} MiB decoded: set the camera to a smaller JPEG size",
        max_mib = MAX_DECODED_BYTES >> 20
    )]
    TooLarge(String),
}

/// The longest side of a photo [`decode`] accepts: above the largest still cameras (a 102 MP medium-format body
/// is 11648x8736).
pub const MAX_SIDE: u32 = 12_000;
/// The most memory [`decode`] lets the decoder allocate.
pub const MAX_DECODED_BYTES: u64 = 512 << 20;

fn model() -> Option<&'static rustface::Model> {
    static MODEL: OnceLock<Option<rustface::Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| rustface::read_model(std::io::Cursor::new(MODEL_BYTES)).ok())
        .as_ref()
}

/// Decodes an image file's bytes (JPEG or PNG), within limits suited to camera photos: the dimensions in the
/// file's header are checked before any pixel memory is taken ([`MAX_SIDE`], [`MAX_DECODED_BYTES`]), so a small
/// file that claims a huge image costs nothing.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, PhotoError> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PhotoError::Decode(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => PhotoError::TooLarge(l.to_string()),
        e => PhotoError::Decode(e.to_string()),
    })
}

/// Finds frontal faces. The image is scaled to at most 800 px on its long side for detection (enough for a
/// portrait, and it bounds the time), and boxes are scaled back.
pub fn detect_faces(img: &DynamicImage) -> Vec<FaceBox> {
    let (w, h) = img.dimensions();
    if w < 24 || h < 24 {
        return Vec::new();
    }
    let Some(model) = model() else { return Vec::new() };
    let scale = (800.0 / f64::from(w.max(h))).min(1.0);
    let small = if scale < 1.0 {
        img.resize(
            (f64::from(w) * scale).round() as u32,
            (f64::from(h) * scale).round() as u32,
            FilterType::Triangle,
        )
    } else {
        img.clone()
    };
    let gray = small.to_luma8();
    let mut det = rustface::create_detector_with_model(model.clone());
    det.set_min_face_size(40);
    det.set_score_thresh(2.0);
    det.set_pyramid_scale_factor(0.8);
    det.set_slide_window_step(4, 4);
    let faces = det.detect(&rustface::ImageData::new(
        gray.as_raw(),
        gray.width(),
        gray.height(),
    ));
    let mut boxes: Vec<FaceBox> = faces
        .iter()
        .map(|f| {
            let b = f.bbox();
            FaceBox {
                x: (f64::from(b.x()) / scale).round() as i64,
                y: (f64::from(b.y()) / scale).round() as i64,
                width: (f64::from(b.width()) / scale).round() as u32,
                height: (f64::from(b.height()) / scale).round() as u32,
                score: f.score(),
            }
        })
        .collect();
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    boxes
}

/// The SeetaFace box spans about eyebrows to chin; the head (crown to chin) is about 1.5 times as tall.
const HEAD_PER_FACE: f64 = 1.5;
/// Crown to the top edge, as a share of the photo height (ICAO: about 3-5 mm of 45 mm).
const TOP_MARGIN: f64 = 0.09;

/// The 35x45 crop around a face, clamped to the image. Returns (x, y, w, h) and the head share it achieves.
fn crop_geometry(face: &FaceBox, img_w: u32, img_h: u32, head_share: f64) -> ((u32, u32, u32, u32), f64) {
    let head = f64::from(face.height) * HEAD_PER_FACE;
    let chin = face.y as f64 + f64::from(face.height);
    let crown = chin - head;
    let mut ch = head / head_share;
    let mut cw = ch * 35.0 / 45.0;
    // Clamp to the image, keeping the aspect ratio.
    let (iw, ih) = (f64::from(img_w), f64::from(img_h));
    if cw > iw {
        cw = iw;
        ch = cw * 45.0 / 35.0;
    }
    if ch > ih {
        ch = ih;
        cw = ch * 35.0 / 45.0;
    }
    let cx = face.x as f64 + f64::from(face.width) / 2.0;
    let x = (cx - cw / 2.0).clamp(0.0, iw - cw);
    let y = (crown - TOP_MARGIN * ch).clamp(0.0, ih - ch);
    (
        (
            x.round() as u32,
            y.round() as u32,
            cw.round() as u32,
            ch.round() as u32,
        ),
        head / ch,
    )
}

fn luma(p: &image::Rgb<u8>) -> f64 {
    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
}

fn laplacian_variance(g: &GrayImage) -> f64 {
    let (w, h) = g.dimensions();
    if w < 3 || h < 3 {
        return 0.0;
    }
    let mut vals = Vec::with_capacity(((w - 2) * (h - 2)) as usize);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = f64::from(g.get_pixel(x, y)[0]);
            let s = f64::from(g.get_pixel(x - 1, y)[0])
                + f64::from(g.get_pixel(x + 1, y)[0])
                + f64::from(g.get_pixel(x, y - 1)[0])
                + f64::from(g.get_pixel(x, y + 1)[0]);
            vals.push(s - 4.0 * c);
        }
    }
    let n = vals.len() as f64;
    let m = vals.iter().sum::<f64>() / n;
    vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n
}

/// Left-right symmetry of a face: the correlation of the face with its mirror image, after removing a linear
/// left-to-right brightness ramp (side lighting is an exposure matter, not a turned head).
fn symmetry(g: &GrayImage) -> f64 {
    let (w, h) = g.dimensions();
    if w < 4 || h < 4 {
        return 0.0;
    }
    let col_mean: Vec<f64> = (0..w)
        .map(|x| (0..h).map(|y| f64::from(g.get_pixel(x, y)[0])).sum::<f64>() / f64::from(h))
        .collect();
    let n = f64::from(w);
    let mx = (n - 1.0) / 2.0;
    let my = col_mean.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, m) in col_mean.iter().enumerate() {
        sxy += (x as f64 - mx) * (m - my);
        sxx += (x as f64 - mx).powi(2);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let px = |x: u32, y: u32| f64::from(g.get_pixel(x, y)[0]) - slope * (f64::from(x) - mx);
    // The detector's box is not exactly centred on the face's midline: try mirror axes within 1/8 of the width.
    let span = (w / 8).max(1) as i64;
    let mut best = -1.0f64;
    for shift in -span..=span {
        let axis2 = i64::from(w) - 1 + 2 * shift; // twice the axis position
        let (mut sa, mut sb, mut saa, mut sbb, mut sab, mut k) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for y in 0..h {
            for x in 0..w {
                let m = axis2 - i64::from(x);
                if 2 * i64::from(x) >= axis2 || m < 0 || m >= i64::from(w) {
                    continue;
                }
                let (a, b) = (px(x, y), px(m as u32, y));
                sa += a;
                sb += b;
                saa += a * a;
                sbb += b * b;
                sab += a * b;
                k += 1.0;
            }
        }
        if k < f64::from(w * h) / 8.0 {
            continue;
        }
        let cov = sab / k - (sa / k) * (sb / k);
        let va = saa / k - (sa / k).powi(2);
        let vb = sbb / k - (sb / k).powi(2);
        if va > 0.0 && vb > 0.0 {
            best = best.max(cov / (va * vb).sqrt());
        }
    }
    best.clamp(0.0, 1.0)
}

fn check(name: &'static str, passed: bool, value: f64, threshold: Threshold, advice: &'static str) -> Check {
    Check {
        name,
        passed,
        value: Some((value * 1000.0).round() / 1000.0),
        threshold,
        advice: if passed { "" } else { advice },
    }
}

/// Checks a photo against `policy`.
pub fn check_photo(img: &DynamicImage, policy: &PhotoPolicy) -> PhotoReport {
    let faces = detect_faces(img);
    let rgb = img.to_rgb8();
    let mut checks = Vec::new();
    let n = faces.len();
    checks.push(Check {
        name: "face_count",
        passed: n == 1,
        value: Some(n as f64),
        threshold: Threshold::One(1.0),
        advice: match n {
            0 => "no face found: the applicant must face the camera, with nothing covering the face",
            1 => "",
            _ => "more than one face: only the applicant may be in the picture",
        },
    });
    if n != 1 {
        // Exposure of the whole frame still helps the operator.
        let mean = rgb.pixels().map(luma).sum::<f64>() / f64::from((rgb.width() * rgb.height()).max(1));
        checks.push(check(
            "brightness",
            (policy.brightness_min..=policy.brightness_max).contains(&mean),
            mean,
            Threshold::Band([policy.brightness_min, policy.brightness_max]),
            if mean < policy.brightness_min {
                "too dark: add light on the face"
            } else {
                "too bright: reduce the light"
            },
        ));
        return PhotoReport {
            accepted: false,
            faces,
            checks,
            crop: None,
        };
    }
    let face = faces[0];
    let (img_w, img_h) = img.dimensions();
    let target_share = (policy.head_share_min + policy.head_share_max) / 2.0;
    let ((cx, cy, cw, ch), share) = crop_geometry(&face, img_w, img_h, target_share);
    checks.push(check(
        "head_height",
        (policy.head_share_min..=policy.head_share_max).contains(&share),
        share,
        Threshold::Band([policy.head_share_min, policy.head_share_max]),
        if share > policy.head_share_max {
            "the head fills too much of the frame: step back from the camera, or zoom out"
        } else {
            "the head is too small in the frame: come closer to the camera, or zoom in"
        },
    ));
    let face_cx = face.x as f64 + f64::from(face.width) / 2.0;
    let offset = ((face_cx - (f64::from(cx) + f64::from(cw) / 2.0)) / f64::from(cw.max(1))).abs();
    checks.push(check(
        "centring",
        offset <= policy.centre_tolerance,
        offset,
        Threshold::One(policy.centre_tolerance),
        "the face is too near the edge of the frame: move to the centre of the camera's view",
    ));
    let res_ok = cw >= policy.crop_width && ch >= policy.crop_height;
    checks.push(check(
        "resolution",
        res_ok,
        f64::from(ch),
        Threshold::One(f64::from(policy.crop_height)),
        "not enough pixels on the head: come closer to the camera, or raise the camera's image size",
    ));
    let crop = image::imageops::crop_imm(&rgb, cx, cy, cw.max(1), ch.max(1)).to_image();
    // Face region inside the crop, and a background band: the top 12 % of the crop beside the head and the side
    // strips above the shoulders.
    let fx = (face.x - i64::from(cx)).max(0) as u32;
    let fy = (face.y - i64::from(cy)).max(0) as u32;
    let fw = face.width.min(cw.saturating_sub(fx)).max(1);
    let fh = face.height.min(ch.saturating_sub(fy)).max(1);
    let face_img = image::imageops::crop_imm(&crop, fx, fy, fw, fh).to_image();
    let face_mean = face_img.pixels().map(luma).sum::<f64>() / f64::from(fw * fh);
    checks.push(check(
        "brightness",
        (policy.brightness_min..=policy.brightness_max).contains(&face_mean),
        face_mean,
        Threshold::Band([policy.brightness_min, policy.brightness_max]),
        if face_mean < policy.brightness_min {
            "too dark: add light on the face, or open the aperture"
        } else {
            "too bright: reduce the light or the exposure"
        },
    ));
    let clipped = face_img.pixels().filter(|p| {
        let l = luma(p);
        !(2.5..=252.5).contains(&l)
    });
    let clip_share = clipped.count() as f64 / f64::from(fw * fh);
    checks.push(check(
        "clipping",
        clip_share <= policy.clipping_max,
        clip_share,
        Threshold::One(policy.clipping_max),
        "parts of the face are pure white or black: even out the lighting, avoid glare",
    ));
    let face_gray = DynamicImage::ImageRgb8(face_img)
        .resize(128, 10_000, FilterType::Triangle)
        .to_luma8();
    let sharp = laplacian_variance(&face_gray);
    checks.push(check(
        "sharpness",
        sharp >= policy.sharpness_min,
        sharp,
        Threshold::One(policy.sharpness_min),
        "the picture is blurred: hold still and let the camera focus on the eyes",
    ));
    // Background: the band above the crown (the crop puts the crown at 9 % of the height; take the top 6 %), and
    // the top corners beside the head down to 30 % of the height.
    let band = ((f64::from(ch) * 0.06) as u32).max(1);
    let (corner_h, corner_w) = (
        (f64::from(ch) * 0.30) as u32,
        ((f64::from(cw) * 0.10) as u32).max(1),
    );
    let mut bg = Vec::new();
    for y in 0..corner_h.max(band).min(ch) {
        for x in 0..cw {
            if y < band || x < corner_w || x + corner_w >= cw {
                bg.push(*crop.get_pixel(x, y));
            }
        }
    }
    if bg.is_empty() {
        bg.push(*crop.get_pixel(0, 0));
    }
    let bn = bg.len() as f64;
    let bl: Vec<f64> = bg.iter().map(luma).collect();
    let bmean = bl.iter().sum::<f64>() / bn;
    let bstd = (bl.iter().map(|v| (v - bmean).powi(2)).sum::<f64>() / bn).sqrt();
    checks.push(check(
        "background_uniformity",
        bstd <= policy.background_uniformity_max,
        bstd,
        Threshold::One(policy.background_uniformity_max),
        "the background is not plain: use the plain backdrop, remove objects and shadows behind the applicant",
    ));
    checks.push(check(
        "background_brightness",
        bmean >= policy.background_brightness_min,
        bmean,
        Threshold::One(policy.background_brightness_min),
        "the background is too dark: light the backdrop or use a light one",
    ));
    let (r, g, b) = bg.iter().fold((0.0, 0.0, 0.0), |(r, g, b), p| {
        (r + f64::from(p[0]), g + f64::from(p[1]), b + f64::from(p[2]))
    });
    let (r, g, b) = (r / bn, g / bn, b / bn);
    // Relative to the background's brightness, but not below 100 grey levels: on a dark background small
    // differences are not a visible tint.
    let cast = ((r - g).abs().max((b - g).abs())) / ((r + g + b) / 3.0).max(100.0);
    checks.push(check(
        "colour_cast",
        cast <= policy.colour_cast_max,
        cast,
        Threshold::One(policy.colour_cast_max),
        "the colours are tinted: set the camera's white balance for the room's light",
    ));
    let sym = symmetry(&face_gray);
    checks.push(check(
        "frontal_pose",
        sym >= policy.symmetry_min,
        sym,
        Threshold::One(policy.symmetry_min),
        "the head is turned: look straight into the camera, shoulders square",
    ));
    let accepted = checks.iter().all(|c| c.passed);
    PhotoReport {
        accepted,
        faces,
        checks,
        crop: Some((cx, cy, cw, ch)),
    }
}

/// The 35x45 crop of an accepted (or, with `force`, any one-face) photo, resized to the policy's size and
/// encoded as JPEG within its byte budget.
pub fn crop_jpeg(
    img: &DynamicImage,
    report: &PhotoReport,
    policy: &PhotoPolicy,
) -> Result<Vec<u8>, PhotoError> {
    let Some((x, y, w, h)) = report.crop else {
        return Err(PhotoError::NotAccepted(
            "exactly one face is needed to crop".into(),
        ));
    };
    let cropped = img.crop_imm(x, y, w, h);
    let out = if w > policy.crop_width || h > policy.crop_height {
        cropped.resize_exact(policy.crop_width, policy.crop_height, FilterType::Lanczos3)
    } else {
        cropped
    };
    let rgb = out.to_rgb8();
    let mut quality = 92u8;
    loop {
        let mut buf = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
        RgbImage::write_with_encoder(&rgb, enc).map_err(|e| PhotoError::Encode(e.to_string()))?;
        if buf.len() <= policy.jpeg_max_bytes {
            return Ok(buf);
        }
        if quality <= 50 {
            return Err(PhotoError::Budget {
                budget: policy.jpeg_max_bytes,
            });
        }
        quality -= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_parses() {
        assert!(model().is_some());
    }

    #[test]
    fn tiny_and_blank_images_have_no_face() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(10, 10, image::Rgb([200, 200, 200])));
        assert!(detect_faces(&img).is_empty());
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 400, image::Rgb([200, 200, 200])));
        let r = check_photo(&img, &PhotoPolicy::default());
        assert!(!r.accepted);
        assert_eq!(r.checks[0].name, "face_count");
        assert_eq!(r.checks[0].value, Some(0.0));
    }

    #[test]
    fn symmetry_sees_a_turned_face_not_side_light() {
        // A symmetric "face": bright centre column fading to both sides, with two dark eyes.
        let face = GrayImage::from_fn(64, 80, |x, y| {
            let d = (i32::try_from(x).unwrap() - 32).abs();
            let eye = (y > 25 && y < 32) && (10..20).contains(&d);
            image::Luma([if eye { 30 } else { (200 - 3 * d) as u8 }])
        });
        assert!(symmetry(&face) > 0.95);
        // The same face lit from the left: a linear ramp is removed before mirroring.
        let lit = GrayImage::from_fn(64, 80, |x, y| {
            image::Luma([(f64::from(face.get_pixel(x, y)[0]) * 0.6 + f64::from(x)).min(255.0) as u8])
        });
        assert!(symmetry(&lit) > 0.9, "{}", symmetry(&lit));
        // Turned: both eyes on one side.
        let turned = GrayImage::from_fn(64, 80, |x, y| {
            let eye = (y > 25 && y < 32) && ((4..12).contains(&x) || (16..24).contains(&x));
            image::Luma([if eye { 30 } else { 200 - (x as u8) }])
        });
        assert!(symmetry(&turned) < 0.35, "{}", symmetry(&turned));
    }

    #[test]
    fn crop_is_35_by_45_and_clamped() {
        let face = FaceBox {
            x: 400,
            y: 300,
            width: 200,
            height: 200,
            score: 10.0,
        };
        let ((x, y, w, h), share) = crop_geometry(&face, 1200, 1600, 0.75);
        assert!((f64::from(w) / f64::from(h) - 35.0 / 45.0).abs() < 0.01);
        assert!((share - 0.75).abs() < 0.01);
        assert!(x + w <= 1200 && y + h <= 1600);
        // A head too big for the frame: the crop is clamped and the share rises above the band.
        let face = FaceBox {
            x: 100,
            y: 100,
            width: 500,
            height: 560,
            score: 10.0,
        };
        let ((_, _, w, h), share) = crop_geometry(&face, 700, 800, 0.75);
        assert!(h <= 800 && w <= 700 && share > 0.8);
    }
}
