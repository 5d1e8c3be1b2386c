//! Photo checks on real public-domain portraits (see fixtures/photos/SOURCES.md) and on negative cases made from
//! them: no face, two faces, dark, blurred, tinted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use image::{DynamicImage, GenericImageView, RgbImage, imageops};
use tamga_quality::photo::{PhotoPolicy, PhotoReport, check_photo, crop_jpeg, decode, detect_faces};

fn fixture(name: &str) -> DynamicImage {
    decode(
        &std::fs::read(format!(
            "{}/tests/fixtures/photos/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
}

/// The fixtures are 512 px portraits: the policy for them asks for a smaller crop than a 300 dpi print.
fn small_policy() -> PhotoPolicy {
    PhotoPolicy {
        crop_width: 140,
        crop_height: 180,
        ..PhotoPolicy::default()
    }
}

fn failed(r: &PhotoReport) -> Vec<&'static str> {
    r.checks.iter().filter(|c| !c.passed).map(|c| c.name).collect()
}

#[test]
fn a_portrait_on_a_studio_backdrop_is_accepted_by_a_policy_that_allows_its_gradient() {
    let img = fixture("astronaut.png");
    let strict = check_photo(&img, &small_policy());
    assert_eq!(failed(&strict), vec!["background_uniformity"], "{strict:?}");
    let lenient = PhotoPolicy {
        background_uniformity_max: 32.0,
        ..small_policy()
    };
    let r = check_photo(&img, &lenient);
    assert!(r.accepted, "{r:?}");
    assert!(r.checks.iter().all(|c| c.advice.is_empty()));
    // Grace Hopper's dark studio background is what ICAO forbids.
    let r = check_photo(&fixture("grace_hopper.jpg"), &lenient);
    assert!(failed(&r).contains(&"background_brightness"), "{r:?}");
}

#[test]
fn one_face_in_each_portrait_where_the_face_is() {
    for (name, (fx, fy)) in [("astronaut.png", (225, 130)), ("grace_hopper.jpg", (250, 250))] {
        let faces = detect_faces(&fixture(name));
        assert_eq!(faces.len(), 1, "{name}: {faces:?}");
        let f = faces[0];
        let (cx, cy) = (f.x + i64::from(f.width) / 2, f.y + i64::from(f.height) / 2);
        assert!(
            (cx - fx).abs() < 60 && (cy - fy).abs() < 80,
            "{name}: face centre ({cx}, {cy}) {f:?}"
        );
    }
}

#[test]
fn two_faces_are_refused() {
    let a = fixture("grace_hopper.jpg").to_rgb8();
    let (w, h) = a.dimensions();
    let mut both = RgbImage::new(w * 2, h);
    imageops::replace(&mut both, &a, 0, 0);
    imageops::replace(&mut both, &a, i64::from(w), 0);
    let r = check_photo(&DynamicImage::ImageRgb8(both), &small_policy());
    assert_eq!(r.faces.len(), 2);
    assert!(!r.accepted);
    assert!(r.checks[0].advice.contains("only the applicant"));
}

#[test]
fn no_face_is_refused() {
    let a = fixture("astronaut.png");
    let helmet = a.crop_imm(300, 330, 212, 182);
    let r = check_photo(&helmet, &small_policy());
    assert!(r.faces.is_empty());
    assert!(!r.accepted);
    assert_eq!(failed(&r)[0], "face_count");
}

#[test]
fn dark_photo_fails_brightness_with_advice() {
    let mut a = fixture("grace_hopper.jpg").to_rgb8();
    for p in a.pixels_mut() {
        for c in p.0.iter_mut() {
            *c /= 5;
        }
    }
    let r = check_photo(&DynamicImage::ImageRgb8(a), &small_policy());
    let b = r.checks.iter().find(|c| c.name == "brightness").unwrap();
    assert!(!b.passed, "{r:?}");
    assert!(b.advice.contains("too dark"));
    assert!(!r.accepted);
}

#[test]
fn blurred_photo_fails_sharpness() {
    let a = fixture("astronaut.png");
    let sharp = check_photo(&a, &small_policy());
    let s0 = sharp
        .checks
        .iter()
        .find(|c| c.name == "sharpness")
        .unwrap()
        .value
        .unwrap();
    let blurred = DynamicImage::ImageRgba8(imageops::blur(&a, 3.0));
    let r = check_photo(&blurred, &small_policy());
    if r.faces.len() == 1 {
        let c = r.checks.iter().find(|c| c.name == "sharpness").unwrap();
        assert!(!c.passed && c.value.unwrap() < s0 / 3.0, "{r:?}");
        assert!(c.advice.contains("blurred"));
    }
    assert!(!r.accepted);
}

#[test]
fn tinted_photo_fails_colour_cast() {
    let mut a = fixture("astronaut.png").to_rgb8();
    for p in a.pixels_mut() {
        p.0[2] = (f32::from(p.0[2]) * 0.6) as u8;
    }
    let r = check_photo(&DynamicImage::ImageRgb8(a), &small_policy());
    let c = r.checks.iter().find(|c| c.name == "colour_cast").unwrap();
    assert!(!c.passed, "{r:?}");
    assert!(c.advice.contains("white balance"));
}

#[test]
fn default_policy_wants_more_pixels_than_a_512_px_portrait_has() {
    let r = check_photo(&fixture("astronaut.png"), &PhotoPolicy::default());
    let c = r.checks.iter().find(|c| c.name == "resolution").unwrap();
    assert!(!c.passed);
    assert!(c.advice.contains("closer"));
}

#[test]
fn crop_is_35x45_within_the_budget() {
    let img = fixture("astronaut.png");
    let policy = PhotoPolicy {
        jpeg_max_bytes: 12_000,
        ..small_policy()
    };
    let r = check_photo(&img, &policy);
    let jpeg = crop_jpeg(&img, &r, &policy).unwrap();
    assert!(jpeg.len() <= 12_000);
    let out = decode(&jpeg).unwrap();
    let (w, h) = out.dimensions();
    assert!(
        (f64::from(w) / f64::from(h) - 35.0 / 45.0).abs() < 0.02,
        "{w}x{h}"
    );
    assert!(h >= 180);
    // The face is in the crop, in the head band.
    let faces = detect_faces(&out);
    assert_eq!(faces.len(), 1, "the crop still shows the face");
    let e = crop_jpeg(
        &img,
        &r,
        &PhotoPolicy {
            jpeg_max_bytes: 500,
            ..small_policy()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("budget"), "{e}");
}

/// A small file that claims a huge image (here a 20000x20000 one-bit PNG of 60 kB, 1.2 GB once decoded to RGB) is
/// refused from its header, with the limit named, before any pixel memory is taken.
#[test]
fn a_huge_image_is_refused_before_it_is_decoded() {
    let (w, h) = (20_000u32, 20_000u32);
    let mut file = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut file, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().unwrap();
        writer
            .write_image_data(&vec![0u8; (w as usize).div_ceil(8) * h as usize])
            .unwrap();
    }
    assert!(
        file.len() < 4 << 20,
        "the file itself is small: {} bytes",
        file.len()
    );
    let e = decode(&file).unwrap_err();
    assert!(
        matches!(e, tamga_quality::photo::PhotoError::TooLarge(_)),
        "refused for its size, not decoded: {e}"
    );
    assert!(e.to_string().contains("12000 pixels a side"), "{e}");
    // A camera-sized photo still decodes.
    let mut ok = Vec::new();
    image::DynamicImage::ImageLuma8(image::GrayImage::new(6000, 4000))
        .write_to(&mut std::io::Cursor::new(&mut ok), image::ImageFormat::Png)
        .unwrap();
    assert_eq!(decode(&ok).unwrap().dimensions(), (6000, 4000));
}
