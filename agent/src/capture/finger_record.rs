//! A finger image out of an ISO/IEC 19794-4:2011 record (as SBI slap devices send them): the record parsed by
//! `tamga_bundle::iso19794`, the image decoded by its compression code, and what was decoded checked against the
//! record's header (size, bit depth, resolution). Uncompressed grey, PNG and JPEG 2000 (lossless or lossy, as a raw
//! J2K codestream or in the JP2 file format) are decoded; WSQ and JPEG are refused as not yet supported.
//!
//! JPEG 2000 is decoded by `hayro-jpeg2000` (pure Rust, no unsafe code; the comparison with OpenJPEG and the other
//! candidates is in docs/jpeg2000.md). A device service is not trusted with the decoder's memory: the codestream's
//! own size (its SIZ marker, read before any decoding) must equal the record's header, must be within
//! [`MAX_PIXELS`], and must be one 8-bit grey component; anything else is refused before a pixel is decoded.
//! The rule for other images: 16-bit or colour JPEG 2000 is refused (never converted), since a conversion would
//! change the print a device signed.

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
        // 5 lossless (what MOSIP registration asks for) and 4 lossy: one decoder, the codestream says which wavelet.
        finger_compression::JPEG2000_LOSSLESS | 4 => decode_jpeg2000(&r.image, width, height)?,
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
pub const MAX_PIXELS: u64 = 4096 * 4096;

/// At most this many tiles in a finger image's codestream (a 1x1-pixel tiling is a way to make a decoder allocate).
const MAX_TILES: u64 = 4096;

/// What the SIZ marker segment (ISO/IEC 15444-1 A.5.1) says, read by Tamga before the decoder runs.
#[derive(Debug)]
struct Siz {
    width: u32,
    height: u32,
    tiles: u64,
    components: u16,
    /// Ssiz of the first component: bit 7 signed, bits 0-6 depth minus one (all components when there is one).
    depth_signed: u8,
}

/// The codestream of a JP2 file (its `jp2c` box) or the bytes themselves when they start with SOC.
fn codestream(bytes: &[u8]) -> Result<&[u8], FingerRecordError> {
    const SOC: [u8; 2] = [0xff, 0x4f];
    const JP2_SIGNATURE: [u8; 12] = [0, 0, 0, 0x0c, b'j', b'P', b' ', b' ', 0x0d, 0x0a, 0x87, 0x0a];
    if bytes.starts_with(&SOC) {
        return Ok(bytes);
    }
    if !bytes.starts_with(&JP2_SIGNATURE) {
        return Err(FingerRecordError::Decode(
            "JPEG 2000: neither a codestream (FF 4F) nor a JP2 file".into(),
        ));
    }
    let bad =
        |why: &str| FingerRecordError::Decode(format!("JPEG 2000: the JP2 file's boxes are broken: {why}"));
    let mut rest = bytes;
    while !rest.is_empty() {
        let head = rest.get(..8).ok_or_else(|| bad("a box header is cut short"))?;
        let lbox = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = &head[4..8];
        let (header_len, len) = match lbox {
            0 => (8, rest.len()),
            1 => {
                let x = rest
                    .get(8..16)
                    .ok_or_else(|| bad("a long box header is cut short"))?;
                let mut b = [0u8; 8];
                b.copy_from_slice(x);
                let l = usize::try_from(u64::from_be_bytes(b)).map_err(|_| bad("a box is too long"))?;
                (16, l)
            }
            l => (8, l as usize),
        };
        if len < header_len || len > rest.len() {
            return Err(bad("a box's length runs past the data"));
        }
        if kind == b"jp2c" {
            return Ok(&rest[header_len..len]);
        }
        rest = &rest[len..];
    }
    Err(bad("no codestream box (jp2c)"))
}

fn read_siz(bytes: &[u8]) -> Result<Siz, FingerRecordError> {
    let cs = codestream(bytes)?;
    let short =
        || FingerRecordError::Decode("JPEG 2000: the codestream's SIZ marker is missing or cut short".into());
    // SOC, then SIZ must follow at once (A.4.1).
    if cs.get(..4) != Some(&[0xff, 0x4f, 0xff, 0x51][..]) {
        return Err(short());
    }
    let seg = cs.get(4..).ok_or_else(short)?;
    let u16_at = |i: usize| -> Result<u16, FingerRecordError> {
        seg.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(short)
    };
    let u32_at = |i: usize| -> Result<u32, FingerRecordError> {
        seg.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(short)
    };
    // Lsiz(2) Rsiz(2) Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz (4 each) Csiz(2) then Ssiz XRsiz YRsiz per component.
    let (x, y, xo, yo) = (u32_at(4)?, u32_at(8)?, u32_at(12)?, u32_at(16)?);
    let (xt, yt, xto, yto) = (u32_at(20)?, u32_at(24)?, u32_at(28)?, u32_at(32)?);
    let components = u16_at(36)?;
    let depth_signed = *seg.get(38).ok_or_else(short)?;
    let broken =
        |why: &str| FingerRecordError::Decode(format!("JPEG 2000: the SIZ marker is inconsistent: {why}"));
    if x <= xo || y <= yo {
        return Err(broken("the image area is empty"));
    }
    if xt == 0 || yt == 0 || xto > xo || yto > yo {
        return Err(broken("the tiling does not cover the image"));
    }
    let tiles = u64::from((x - xto).div_ceil(xt)) * u64::from((y - yto).div_ceil(yt));
    Ok(Siz {
        width: x - xo,
        height: y - yo,
        tiles,
        components,
        depth_signed,
    })
}

fn decode_jpeg2000(bytes: &[u8], width: u32, height: u32) -> Result<Vec<u8>, FingerRecordError> {
    use hayro_jpeg2000::{ColorSpace, DecodeSettings, DecoderContext, Image};
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(FingerRecordError::Mismatch(format!(
            "{width}x{height} pixels is larger than a finger image"
        )));
    }
    // Our own reading of the SIZ marker first, so the decoder never sees a size we did not agree to.
    let siz = read_siz(bytes)?;
    if (siz.width, siz.height) != (width, height) {
        return Err(FingerRecordError::Mismatch(format!(
            "the JPEG 2000 codestream is {}x{}, the header says {width}x{height}",
            siz.width, siz.height
        )));
    }
    if siz.components != 1 || siz.depth_signed != 7 {
        return Err(FingerRecordError::Mismatch(format!(
            "the JPEG 2000 codestream has {} component(s) of {} bits{}, the header says one of 8-bit grey",
            siz.components,
            (siz.depth_signed & 0x7f) + 1,
            if siz.depth_signed & 0x80 != 0 {
                " signed"
            } else {
                ""
            }
        )));
    }
    if siz.tiles > MAX_TILES {
        return Err(FingerRecordError::Mismatch(format!(
            "the JPEG 2000 codestream has {} tiles (at most {MAX_TILES})",
            siz.tiles
        )));
    }
    let settings = DecodeSettings {
        // A palette would map indices to other values: a finger image has none, and one is refused below.
        resolve_palette_indices: false,
        // A truncated codestream is an error, not a blurrier print (JPEG 2000 is progressive); EOC is required.
        strict: true,
        target_resolution: None,
    };
    // Reads the boxes (JP2) and the main header (SIZ, COD, QCD) only; no tile is decoded yet.
    let image =
        Image::new(bytes, &settings).map_err(|e| FingerRecordError::Decode(format!("JPEG 2000: {e}")))?;
    if (image.width(), image.height()) != (width, height) {
        return Err(FingerRecordError::Mismatch(format!(
            "the JPEG 2000 codestream is {}x{}, the header says {width}x{height}",
            image.width(),
            image.height()
        )));
    }
    let channels = image.color_space().num_channels();
    if !matches!(image.color_space(), ColorSpace::Gray) || image.has_alpha() || channels != 1 {
        return Err(FingerRecordError::Mismatch(format!(
            "the JPEG 2000 image is {:?}{}, the header says 8-bit grey",
            image.color_space(),
            if image.has_alpha() { " with alpha" } else { "" }
        )));
    }
    if image.original_bit_depth() != 8 {
        return Err(FingerRecordError::Mismatch(format!(
            "the JPEG 2000 image has {} bits per sample, the header says 8",
            image.original_bit_depth()
        )));
    }
    let mut ctx = DecoderContext::default();
    let decoded = image
        .decode(&mut ctx)
        .map_err(|e| FingerRecordError::Decode(format!("JPEG 2000: {e}")))?;
    if decoded.components().len() != 1 {
        return Err(FingerRecordError::Mismatch(format!(
            "the JPEG 2000 image has {} components, the header says 8-bit grey",
            decoded.components().len()
        )));
    }
    let pixels = decoded.data_u8();
    if pixels.len() != width as usize * height as usize {
        return Err(FingerRecordError::Mismatch(format!(
            "{} JPEG 2000 samples for {width}x{height}",
            pixels.len()
        )));
    }
    Ok(pixels)
}

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
    if let Some(d) = info.pixel_dims
        && d.unit == png::Unit::Meter
    {
        let px = |ppm: u32| (f64::from(ppm) * 0.0254).round() as u32;
        let (x, y) = (px(d.xppu), px(d.yppu));
        if x.abs_diff(u32::from(ppi)) > 1 || y.abs_diff(u32::from(ppi)) > 1 {
            return Err(FingerRecordError::Mismatch(format!(
                "the PNG says {x}x{y} ppi, the header {ppi} ppi"
            )));
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
        for (code, name) in [(2, "WSQ"), (3, "JPEG")] {
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

    // Fixtures written by an independent encoder (OpenJPEG 2.5 through Pillow, lossless): tools/make_jpeg2000_fixtures.py.
    const J2K: &[u8] = include_bytes!("testdata/grey96x80.j2k");
    const JP2: &[u8] = include_bytes!("testdata/grey96x80.jp2");
    const RGB_J2K: &[u8] = include_bytes!("testdata/rgb96x80.j2k");

    fn fixture_pixels() -> Vec<u8> {
        let mut px = Vec::new();
        for y in 0..80u32 {
            for x in 0..96u32 {
                px.push(((x * 7 + y * 13 + (x * y) % 31) % 256) as u8);
            }
        }
        px
    }

    #[test]
    fn jpeg2000_codestream_and_jp2_records_decode_losslessly() {
        for bytes in [J2K, JP2] {
            for code in [finger_compression::JPEG2000_LOSSLESS, 4] {
                let g = decode(&record(code, 500, 96, 80, bytes.to_vec())).unwrap();
                assert_eq!((g.width, g.height, g.position), (96, 80, 7));
                assert!(
                    g.pixels == fixture_pixels(),
                    "decoded pixels differ from the original"
                );
            }
        }
    }

    #[test]
    fn jpeg2000_size_that_disagrees_with_the_header_is_refused() {
        for (w, h) in [(97, 80), (96, 79), (80, 96)] {
            let e = decode(&record(5, 500, w, h, J2K.to_vec())).unwrap_err();
            assert!(
                matches!(e, FingerRecordError::Mismatch(_)) && e.to_string().contains("96x80"),
                "{e}"
            );
        }
        let e = decode(&record(5, 500, 97, 80, JP2.to_vec())).unwrap_err();
        assert!(matches!(e, FingerRecordError::Mismatch(_)), "{e}");
        let e = decode(&record(5, 500, 96, 80, RGB_J2K.to_vec())).unwrap_err();
        assert!(
            matches!(e, FingerRecordError::Mismatch(_)) && e.to_string().contains("3 component"),
            "{e}"
        );
    }

    /// A SIZ marker with the given size and tiling (one 8-bit component) and nothing after it.
    fn siz_only(w: u32, h: u32, tile: u32) -> Vec<u8> {
        let mut b = vec![0xff, 0x4f, 0xff, 0x51, 0, 41, 0, 0];
        for v in [w, h, 0, 0, tile, tile, 0, 0] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&[0, 1, 7, 1, 1]);
        b
    }

    #[test]
    fn absurd_jpeg2000_sizes_are_refused_before_decoding() {
        // The record's header agrees with the codestream, but the image is larger than any finger image.
        let e = decode(&record(5, 500, 65535, 65535, siz_only(65535, 65535, 65535))).unwrap_err();
        assert!(e.to_string().contains("larger than a finger image"), "{e}");
        // 1x1-pixel tiles on a plausible size.
        let e = decode(&record(5, 500, 1600, 1500, siz_only(1600, 1500, 1))).unwrap_err();
        assert!(e.to_string().contains("tiles"), "{e}");
        // A codestream that claims a size beyond the record's u16 sides.
        let e = decode(&record(5, 500, 1600, 1500, siz_only(1_600_000, 1500, 512))).unwrap_err();
        assert!(matches!(e, FingerRecordError::Mismatch(_)), "{e}");
    }

    #[test]
    fn truncated_or_garbage_jpeg2000_is_an_error_not_a_panic() {
        for bytes in [J2K, JP2] {
            let e = decode(&record(5, 500, 96, 80, bytes[..bytes.len() / 2].to_vec())).unwrap_err();
            assert!(matches!(e, FingerRecordError::Decode(_)), "{e}");
            // Every cut: an error or (a cut only in the last bytes of a codestream) never a panic.
            for n in (0..bytes.len()).step_by(61) {
                let _ = decode(&record(5, 500, 96, 80, bytes[..n].to_vec()));
            }
            // Flipped bytes everywhere after the header.
            let mut seed = 0x9e37_79b9_u32;
            for _ in 0..200 {
                let mut b = bytes.to_vec();
                for _ in 0..8 {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let i = 40 + (seed as usize >> 8) % (b.len() - 40);
                    b[i] ^= (seed >> 3) as u8 | 1;
                }
                let _ = decode(&record(5, 500, 96, 80, b));
            }
        }
        // A JP2 file whose codestream box claims more bytes than there are, or is missing.
        let at = JP2.windows(4).position(|w| w == b"jp2c").unwrap() - 4;
        let mut long = JP2.to_vec();
        long[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut renamed = JP2.to_vec();
        renamed[at + 4..at + 8].copy_from_slice(b"xxxx");
        for b in [long, renamed] {
            let e = decode(&record(5, 500, 96, 80, b)).unwrap_err();
            assert!(e.to_string().contains("boxes are broken"), "{e}");
        }
        // PNG bytes under the JPEG 2000 label, and garbage.
        let png = crate::capture::png_out::encode_grey(96, 80, 500, &fixture_pixels()).unwrap();
        for bytes in [
            png,
            vec![0xff, 0x4f, 0xff, 0x51, 0, 1],
            b"garbage".to_vec(),
            Vec::new(),
        ] {
            let e = decode(&record(5, 500, 96, 80, bytes)).unwrap_err();
            assert!(matches!(e, FingerRecordError::Decode(_)), "{e}");
        }
    }
}
