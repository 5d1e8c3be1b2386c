//! Writes 8-bit greyscale PNG files with their resolution (pHYs, pixels per metre), as ISO/IEC 19794-4 readers
//! and image viewers expect.

use anyhow::Context as _;
use std::path::Path;

/// Encodes `pixels` (row-major, 8-bit grey) as PNG with `ppi` as the resolution.
pub fn encode_grey(width: u32, height: u32, ppi: u16, pixels: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let ppm = (f64::from(ppi) / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
        let mut w = enc.write_header()?;
        w.write_image_data(pixels)?;
        w.finish()?;
    }
    Ok(out)
}

/// Writes `pixels` (row-major, 8-bit grey) to `path` with `ppi` as the resolution.
pub fn write_grey(path: &Path, width: u32, height: u32, ppi: u16, pixels: &[u8]) -> anyhow::Result<()> {
    let bytes = encode_grey(width, height, ppi, pixels)?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.png");
        let px: Vec<u8> = (0..64u32 * 48).map(|i| (i % 251) as u8).collect();
        write_grey(&p, 64, 48, 500, &px).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&p).unwrap()));
        let mut r = dec.read_info().unwrap();
        let dims = r.info().pixel_dims.unwrap();
        assert_eq!((dims.xppu, dims.unit), (19685, png::Unit::Meter));
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        r.next_frame(&mut buf).unwrap();
        assert_eq!(buf, px);
    }
}
