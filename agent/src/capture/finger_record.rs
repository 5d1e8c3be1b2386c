//! A finger image out of an ISO/IEC 19794-4:2011 record (as SBI slap devices send them): the record parsed by
//! `tamga_bundle::iso19794`, the image decoded by its compression code, and what was decoded checked against the
//! record's header (size, bit depth, resolution). Uncompressed grey and PNG are decoded; JPEG 2000 and WSQ are
//! refused as not yet supported.

use tamga_bundle::iso19794::{FingerImageRecord, RecordError, finger_compression};

/// The resolution Tamga keeps finger images at (FBI Appendix F class slaps), with the 1 % tolerance of the class.
pub const SLAP_PPI: u16 = 500;
const PPI_TOLERANCE: u16 = 5;

/// An 8-bit grey finger image from a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreyFinger {
    /// ISO/IEC 19794-4 finger position code of the record.
    pub position: u8,
    pub width: u32,
    pub height: u32,
    pub resolution_ppi: u16,
    /// Row-major, one byte per pixel.
    pub pixels: Vec<u8>,
}

/// A record whose image cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum FingerRecordError {
    #[error("the ISO/IEC 19794-4 record cannot be read: {0}")]
    Record(#[from] RecordError),
    #[error(
        "the record's image is {0}, which Tamga does not decode yet (not yet supported: use the device's PNG or uncompressed output if it has one)"
    )]
    NotYetSupported(&'static str),
    #[error("the record's compression code {0} is not one of ISO/IEC 19794-4:2011")]
    UnknownCompression(u8),
    #[error("the record's image is {0} bits per pixel; Tamga takes 8-bit grey")]
    BitDepth(u8),
    #[error("the record's resolution is {0} ppi; Tamga takes {SLAP_PPI} ppi finger images")]
    Resolution(u16),
    #[error("the record's image does not decode: {0}")]
    Decode(String),
    #[error("the record's image is not what its header says: {0}")]
    Mismatch(String),
}

/// Parses `record` and decodes its image to 8-bit grey, checked against the header.
pub fn decode(record: &[u8]) -> Result<GreyFinger, FingerRecordError> {
    let r = FingerImageRecord::parse(record)?;
    if r.resolution_ppi.abs_diff(SLAP_PPI) > PPI_TOLERANCE {
        return Err(FingerRecordError::Resolution(r.resolution_ppi));
    }
    if r.bit_depth != 8 {
        return Err(FingerRecordError::BitDepth(r.bit_depth));
    }
    let (width, height) = (u32::from(r.width), u32::from(r.height));
    if width == 0 || height == 0 {
        return Err(FingerRecordError::Mismatch(format!(
            "the header says {width}x{height} pixels"
        )));
    }
    let pixels = match r.compression {
        finger_compression::UNCOMPRESSED => {
            let want = width as usize * height as usize;
            if r.image.len() != want {
                return Err(FingerRecordError::Mismatch(format!(
                    "{} bytes of uncompressed pixels for {width}x{height}",
                    r.image.len()
                )));
            }
            r.image
        }
        finger_compression::PNG => decode_png(&r.image, width, height, r.resolution_ppi)?,
        finger_compression::JPEG2000_LOSSLESS | 4 => {
            return Err(FingerRecordError::NotYetSupported("JPEG 2000"));
        }
        finger_compression::WSQ => return Err(FingerRecordError::NotYetSupported("WSQ")),
        finger_compression::JPEG => return Err(FingerRecordError::NotYetSupported("JPEG")),
        // 1: uncompressed, bit-packed.
        1 => return Err(FingerRecordError::NotYetSupported("bit-packed uncompressed")),
        other => return Err(FingerRecordError::UnknownCompression(other)),
    };
    Ok(GreyFinger {
        position: r.position,
        width,
        height,
        resolution_ppi: r.resolution_ppi,
        pixels,
    })
}

/// Limits for a decoded finger image: the record's u16 sides bound it already; this bounds the decoder's work.
const MAX_PIXELS: u64 = 4096 * 4096;

fn decode_png(bytes: &[u8], width: u32, height: u32, ppi: u16) -> Result<Vec<u8>, FingerRecordError> {
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(FingerRecordError::Mismatch(format!(
            "{width}x{height} pixels is larger than a finger image"
        )));
    }
    let mut dec = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits {
            bytes: (MAX_PIXELS as usize) * 2,
        },
    );
    // Palette and low bit depths are expanded to 8 bits; 16-bit is refused below.
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec
        .read_info()
        .map_err(|e| FingerRecordError::Decode(e.to_string()))?;
    let info = reader.info();
    if (info.width, info.height) != (width, height) {
        return Err(FingerRecordError::Mismatch(format!(
            "the PNG is {}x{}, the header says {width}x{height}",
            info.width, info.height
        )));
    }
    if let Some(d) = info.pixel_dims {
        if d.unit == png::Unit::Meter {
            let px = |ppm: u32| (f64::from(ppm) * 0.0254).round() as u32;
            let (x, y) = (px(d.xppu), px(d.yppu));
            if x.abs_diff(u32::from(ppi)) > 1 || y.abs_diff(u32::from(ppi)) > 1 {
                return Err(FingerRecordError::Mismatch(format!(
                    "the PNG says {x}x{y} ppi, the header {ppi} ppi"
                )));
            }
        }
    }
    let (colour, depth) = reader.output_color_type();
    if colour != png::ColorType::Grayscale || depth != png::BitDepth::Eight {
        return Err(FingerRecordError::Mismatch(format!(
            "the PNG is {colour:?} {depth:?}, the header says 8-bit grey"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| FingerRecordError::Decode("the image is too large".into()))?;
    let mut buf = vec![0; size];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| FingerRecordError::Decode(e.to_string()))?;
    buf.truncate(frame.buffer_size());
    if buf.len() != width as usize * height as usize {
        return Err(FingerRecordError::Mismatch(format!(
            "{} bytes of pixels for {width}x{height}",
            buf.len()
        )));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tamga_bundle::iso19794::{CaptureTime, QualityBlock};

    fn record(compression: u8, ppi: u16, width: u16, height: u16, image: Vec<u8>) -> Vec<u8> {
        FingerImageRecord {
            capture_time: CaptureTime::from_datetime(time::OffsetDateTime::UNIX_EPOCH),
            device_technology: 0,
            device_vendor: 0,
            device_type: 0,
            quality: vec![QualityBlock {
                score: 80,
                vendor: 0,
                algorithm: 0,
            }],
            position: 7,
            representation_number: 0,
            resolution_ppi: ppi,
            bit_depth: 8,
            compression,
            impression: 0,
            width,
            height,
            image,
        }
        .to_bytes()
    }

    fn pixels(w: usize, h: usize) -> Vec<u8> {
        (0..w * h).map(|i| (i % 253) as u8).collect()
    }

    #[test]
    fn png_and_raw_records_decode_to_the_header_size() {
        let px = pixels(40, 30);
        let png = crate::capture::png_out::encode_grey(40, 30, 500, &px).unwrap();
        let g = decode(&record(finger_compression::PNG, 500, 40, 30, png)).unwrap();
        assert_eq!(
            (g.width, g.height, g.resolution_ppi, g.position),
            (40, 30, 500, 7)
        );
        assert_eq!(g.pixels, px);
        let g = decode(&record(finger_compression::UNCOMPRESSED, 500, 40, 30, px.clone())).unwrap();
        assert_eq!(g.pixels, px);
    }

    #[test]
    fn mismatches_and_unsupported_codecs_are_refused() {
        let px = pixels(40, 30);
        let png = crate::capture::png_out::encode_grey(40, 30, 500, &px).unwrap();
        let e = decode(&record(finger_compression::PNG, 500, 41, 30, png.clone())).unwrap_err();
        assert!(matches!(e, FingerRecordError::Mismatch(_)), "{e}");
        let png1000 = crate::capture::png_out::encode_grey(40, 30, 1000, &px).unwrap();
        let e = decode(&record(finger_compression::PNG, 500, 40, 30, png1000)).unwrap_err();
        assert!(e.to_string().contains("ppi"), "{e}");
        let e = decode(&record(finger_compression::PNG, 1000, 40, 30, png)).unwrap_err();
        assert!(matches!(e, FingerRecordError::Resolution(1000)), "{e}");
        let e = decode(&record(finger_compression::UNCOMPRESSED, 500, 40, 31, px)).unwrap_err();
        assert!(matches!(e, FingerRecordError::Mismatch(_)), "{e}");
        for (code, name) in [(5, "JPEG 2000"), (2, "WSQ")] {
            let e = decode(&record(code, 500, 40, 30, vec![0; 16])).unwrap_err();
            assert!(
                e.to_string().contains(name) && e.to_string().contains("not yet supported"),
                "{e}"
            );
        }
        assert!(matches!(
            decode(b"FIR\x00020\x00junk").unwrap_err(),
            FingerRecordError::Record(_)
        ));
    }
}
