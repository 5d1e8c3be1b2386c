//! Shared by the agent's tests and the central ingest benchmark (`#[path]`-included there): the sealed transport
//! bundle (from `tamga_bundle::testkit`, shared with the central receiver's tests) and the portrait a camera
//! delivers.
#![allow(dead_code, unused_imports, clippy::unwrap_used)] // test support: each user takes what it needs

pub use tamga_bundle::testkit::{Sealed, Signing, sealed_bundle};

/// The public-domain astronaut portrait (scikit-image; `quality/tests/fixtures/photos/SOURCES.md`) as a camera
/// delivers it: 1800 x 1800, JPEG quality 92.
pub fn portrait_jpeg() -> Vec<u8> {
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../quality/tests/fixtures/photos/astronaut.png"
    ))
    .unwrap();
    let big = image::load_from_memory(&png).unwrap().resize_exact(
        1800,
        1800,
        image::imageops::FilterType::Triangle,
    );
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode_image(&big.to_rgb8())
        .unwrap();
    jpeg
}
