//! Biometric data interchange records, 2011 editions, one representation per record:
//! ISO/IEC 19794-4:2011 finger image records (`FIR\0` `020\0`) and ISO/IEC 19794-5:2011 face image records
//! (`FAC\0` `030\0`). All integers big-endian. Layouts are in `docs/bundle-format.md`; they were checked against the
//! Annex C example of 19794-4 and against independent implementations (MOSIP bio-utils, idemia python-iso19794).

use serde::Serialize;

/// A record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("{what}: not a {expected} record (format identifier and version)")]
    Magic {
        what: &'static str,
        expected: &'static str,
    },
    #[error("{what}: truncated at byte {at}")]
    Truncated { what: &'static str, at: usize },
    #[error("{what}: {field} says {stated} bytes but {actual} are there")]
    Length {
        what: &'static str,
        field: &'static str,
        stated: u64,
        actual: u64,
    },
    #[error("{what}: {0}", what = "record")]
    Unsupported(String),
}

/// Capture date and time (9 bytes: year u16, month, day, hour, minute, second, millisecond u16), UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaptureTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millisecond: u16,
}

impl CaptureTime {
    pub fn from_datetime(t: time::OffsetDateTime) -> Self {
        let t = t.to_offset(time::UtcOffset::UTC);
        CaptureTime {
            year: u16::try_from(t.year()).unwrap_or(0),
            month: t.month() as u8,
            day: t.day(),
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            millisecond: t.millisecond(),
        }
    }

    fn write(&self, v: &mut Vec<u8>) {
        v.extend_from_slice(&self.year.to_be_bytes());
        v.extend_from_slice(&[self.month, self.day, self.hour, self.minute, self.second]);
        v.extend_from_slice(&self.millisecond.to_be_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        Ok(CaptureTime {
            year: r.u16()?,
            month: r.u8()?,
            day: r.u8()?,
            hour: r.u8()?,
            minute: r.u8()?,
            second: r.u8()?,
            millisecond: r.u16()?,
        })
    }
}

/// A quality block: score 0-100 and the algorithm that made it (vendor and algorithm ids; 0 = not registered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QualityBlock {
    pub score: u8,
    pub vendor: u16,
    pub algorithm: u16,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or(RecordError::Truncated {
            what: self.what,
            at: self.pos,
        })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

fn quality_blocks(v: &mut Vec<u8>, q: &[QualityBlock]) {
    v.push(q.len() as u8);
    for b in q {
        v.push(b.score);
        v.extend_from_slice(&b.vendor.to_be_bytes());
        v.extend_from_slice(&b.algorithm.to_be_bytes());
    }
}

/// Format identifier and version of ISO/IEC 19794-4:2011 finger image records.
const FIR: &[u8; 8] = b"FIR\x00020\x00";
/// Format identifier and version of ISO/IEC 19794-5:2011 face image records.
const FAC: &[u8; 8] = b"FAC\x00030\x00";

/// The start of a representation shared by parts 4 and 5 (2011): its length (set by [`record`]), capture time,
/// capture device technology, vendor and type, quality blocks.
fn representation_head(
    capture_time: &CaptureTime,
    device_technology: u8,
    device_vendor: u16,
    device_type: u16,
    quality: &[QualityBlock],
) -> Vec<u8> {
    let mut rep = vec![0, 0, 0, 0]; // representation length, set by `record`
    capture_time.write(&mut rep);
    rep.push(device_technology);
    rep.extend_from_slice(&device_vendor.to_be_bytes());
    rep.extend_from_slice(&device_type.to_be_bytes());
    quality_blocks(&mut rep, quality);
    rep
}

/// A whole record: format identifier and version (`magic`), record length, the rest of the general header
/// (`header`), and the one representation `rep` (its length field filled in here).
fn record(magic: &[u8; 8], header: &[u8], mut rep: Vec<u8>) -> Vec<u8> {
    let rep_len = rep.len() as u32;
    rep[0..4].copy_from_slice(&rep_len.to_be_bytes());
    let total = magic.len() + 4 + header.len() + rep.len();
    let mut v = Vec::with_capacity(total);
    v.extend_from_slice(magic);
    v.extend_from_slice(&(total as u32).to_be_bytes());
    v.extend_from_slice(header);
    v.extend_from_slice(&rep);
    v
}

/// Checks the format identifier and the record length; the reader stands after them.
fn open_record<'a>(
    b: &'a [u8],
    magic: &[u8; 8],
    what: &'static str,
    expected: &'static str,
) -> Result<Reader<'a>, RecordError> {
    if b.len() < 8 || &b[0..8] != magic {
        return Err(RecordError::Magic { what, expected });
    }
    let mut r = Reader { b, pos: 8, what };
    let len = r.u32()?;
    if len as usize != b.len() {
        return Err(RecordError::Length {
            what,
            field: "record length",
            stated: len.into(),
            actual: b.len() as u64,
        });
    }
    Ok(r)
}

/// What [`representation_head`] wrote, read back.
struct RepresentationHead {
    capture_time: CaptureTime,
    device_technology: u8,
    device_vendor: u16,
    device_type: u16,
    quality: Vec<QualityBlock>,
}

/// Reads the one representation's head after the general header (`reps` representations were announced); its
/// length must reach exactly to the end of the record.
fn read_representation_head(r: &mut Reader<'_>, reps: u16) -> Result<RepresentationHead, RecordError> {
    if reps != 1 {
        return Err(RecordError::Unsupported(format!(
            "{reps} representations; Tamga records hold one"
        )));
    }
    let rep_start = r.pos;
    let rep_len = r.u32()?;
    if rep_start + rep_len as usize != r.b.len() {
        return Err(RecordError::Length {
            what: r.what,
            field: "representation length",
            stated: rep_len.into(),
            actual: (r.b.len() - rep_start) as u64,
        });
    }
    Ok(RepresentationHead {
        capture_time: CaptureTime::read(r)?,
        device_technology: r.u8()?,
        device_vendor: r.u16()?,
        device_type: r.u16()?,
        quality: read_quality(r)?,
    })
}

/// The image data (length, bytes), which must end the record: what could follow (`after`) Tamga does not use.
fn image_to_end(r: &mut Reader<'_>, after: &str) -> Result<Vec<u8>, RecordError> {
    let n = r.u32()? as usize;
    let image = r.take(n)?.to_vec();
    if r.pos != r.b.len() {
        return Err(RecordError::Unsupported(format!("{after} are not used by Tamga")));
    }
    Ok(image)
}

fn read_quality(r: &mut Reader<'_>) -> Result<Vec<QualityBlock>, RecordError> {
    let n = r.u8()?;
    (0..n)
        .map(|_| {
            Ok(QualityBlock {
                score: r.u8()?,
                vendor: r.u16()?,
                algorithm: r.u16()?,
            })
        })
        .collect()
}

/// Image compression codes of ISO/IEC 19794-4:2011.
pub mod finger_compression {
    pub const UNCOMPRESSED: u8 = 0;
    pub const WSQ: u8 = 2;
    pub const JPEG: u8 = 3;
    pub const JPEG2000_LOSSLESS: u8 = 5;
    pub const PNG: u8 = 6;
}

/// One finger image (ISO/IEC 19794-4:2011, a record with one representation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FingerImageRecord {
    pub capture_time: CaptureTime,
    /// Capture device technology (0 unspecified).
    pub device_technology: u8,
    pub device_vendor: u16,
    pub device_type: u16,
    pub quality: Vec<QualityBlock>,
    /// 1 right thumb ... 10 left little (0 unknown).
    pub position: u8,
    pub representation_number: u8,
    /// Pixels per inch (scale units 1) for both capture and image sampling rates.
    pub resolution_ppi: u16,
    pub bit_depth: u8,
    pub compression: u8,
    /// 0 live-scan plain.
    pub impression: u8,
    pub width: u16,
    pub height: u16,
    #[serde(skip)]
    pub image: Vec<u8>,
}

impl FingerImageRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut rep = representation_head(
            &self.capture_time,
            self.device_technology,
            self.device_vendor,
            self.device_type,
            &self.quality,
        );
        rep.push(self.position);
        rep.push(self.representation_number);
        rep.push(1); // scale units: pixels per inch
        for _ in 0..4 {
            rep.extend_from_slice(&self.resolution_ppi.to_be_bytes()); // capture h, v; image h, v
        }
        rep.push(self.bit_depth);
        rep.push(self.compression);
        rep.push(self.impression);
        rep.extend_from_slice(&self.width.to_be_bytes());
        rep.extend_from_slice(&self.height.to_be_bytes());
        rep.extend_from_slice(&(self.image.len() as u32).to_be_bytes());
        rep.extend_from_slice(&self.image);
        // One representation, no certification blocks, one distinct position.
        record(FIR, &[0, 1, 0, 1], rep)
    }

    pub fn parse(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = open_record(b, FIR, "finger image record", "ISO/IEC 19794-4:2011 (FIR 020)")?;
        let reps = r.u16()?;
        let cert = r.u8()?;
        let _positions = r.u8()?;
        let RepresentationHead {
            capture_time,
            device_technology,
            device_vendor,
            device_type,
            quality,
        } = read_representation_head(&mut r, reps)?;
        if cert == 1 {
            let n = r.u8()?;
            r.take(3 * usize::from(n))?;
        }
        let position = r.u8()?;
        let representation_number = r.u8()?;
        let scale = r.u8()?;
        let (ch, cv, ih, iv) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
        if scale != 1 || ch != ih || cv != iv || ih != iv {
            return Err(RecordError::Unsupported(
                "sampling rates must be equal and in pixels per inch".into(),
            ));
        }
        let bit_depth = r.u8()?;
        let compression = r.u8()?;
        let impression = r.u8()?;
        let width = r.u16()?;
        let height = r.u16()?;
        let image = image_to_end(&mut r, "extended data blocks")?;
        Ok(FingerImageRecord {
            capture_time,
            device_technology,
            device_vendor,
            device_type,
            quality,
            position,
            representation_number,
            resolution_ppi: ih,
            bit_depth,
            compression,
            impression,
            width,
            height,
            image,
        })
    }
}

/// One face image (ISO/IEC 19794-5:2011, a record with one representation, no landmarks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaceImageRecord {
    pub capture_time: CaptureTime,
    /// 2 = static photograph from a digital still camera.
    pub device_technology: u8,
    pub device_vendor: u16,
    pub device_type: u16,
    pub quality: Vec<QualityBlock>,
    /// 0 unspecified, 1 male, 2 female, 0xFF unknown.
    pub gender: u8,
    /// 1 full frontal.
    pub face_image_type: u8,
    /// 0 JPEG.
    pub image_data_type: u8,
    pub width: u16,
    pub height: u16,
    /// Bit mask: 1 rotated, 2 cropped, 4 down-sampled, ...
    pub post_processing: u16,
    /// 1 = 24-bit RGB.
    pub colour_space: u8,
    #[serde(skip)]
    pub image: Vec<u8>,
}

impl FaceImageRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut rep = representation_head(
            &self.capture_time,
            self.device_technology,
            self.device_vendor,
            self.device_type,
            &self.quality,
        );
        rep.extend_from_slice(&0u16.to_be_bytes()); // landmark points
        rep.push(self.gender);
        rep.push(0); // eye colour unspecified
        rep.push(0); // hair colour unspecified
        rep.push(0); // subject height unspecified
        rep.extend_from_slice(&[0, 0, 0]); // property mask: unspecified
        rep.extend_from_slice(&[0, 0]); // expression: unspecified
        rep.extend_from_slice(&[0; 6]); // pose angles and uncertainties: unspecified
        rep.push(self.face_image_type);
        rep.push(self.image_data_type);
        rep.extend_from_slice(&self.width.to_be_bytes());
        rep.extend_from_slice(&self.height.to_be_bytes());
        rep.push(0); // spatial sampling rate level: unspecified
        rep.extend_from_slice(&self.post_processing.to_be_bytes());
        rep.push(0); // cross reference
        rep.push(self.colour_space);
        rep.extend_from_slice(&(self.image.len() as u32).to_be_bytes());
        rep.extend_from_slice(&self.image);
        // One representation, certification flag 0 (always, in 19794-5:2011), temporal semantics 0 (one image).
        record(FAC, &[0, 1, 0, 0, 0], rep)
    }

    pub fn parse(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = open_record(b, FAC, "face image record", "ISO/IEC 19794-5:2011 (FAC 030)")?;
        let reps = r.u16()?;
        let _cert = r.u8()?;
        let _temporal = r.u16()?;
        let RepresentationHead {
            capture_time,
            device_technology,
            device_vendor,
            device_type,
            quality,
        } = read_representation_head(&mut r, reps)?;
        let landmarks = r.u16()?;
        let gender = r.u8()?;
        r.take(3 + 3 + 2 + 6)?; // eye, hair, height, property mask, expression, pose
        r.take(8 * usize::from(landmarks))?;
        let face_image_type = r.u8()?;
        let image_data_type = r.u8()?;
        let width = r.u16()?;
        let height = r.u16()?;
        let _sampling = r.u8()?;
        let post_processing = r.u16()?;
        let _cross = r.u8()?;
        let colour_space = r.u8()?;
        let image = image_to_end(&mut r, "3D data blocks")?;
        Ok(FaceImageRecord {
            capture_time,
            device_technology,
            device_vendor,
            device_type,
            quality,
            gender,
            face_image_type,
            image_data_type,
            width,
            height,
            post_processing,
            colour_space,
            image,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> CaptureTime {
        CaptureTime {
            year: 2005,
            month: 12,
            day: 15,
            hour: 17,
            minute: 35,
            second: 19,
            millisecond: 0,
        }
    }

    fn finger() -> FingerImageRecord {
        FingerImageRecord {
            capture_time: t(),
            device_technology: 0,
            device_vendor: 0,
            device_type: 0,
            quality: vec![QualityBlock {
                score: 77,
                vendor: 0,
                algorithm: 0,
            }],
            position: 2,
            representation_number: 0,
            resolution_ppi: 500,
            bit_depth: 8,
            compression: finger_compression::PNG,
            impression: 0,
            width: 256,
            height: 288,
            image: vec![0x89, b'P', b'N', b'G', 1, 2, 3],
        }
    }

    #[test]
    fn finger_record_layout_and_round_trip() {
        let f = finger();
        let b = f.to_bytes();
        assert_eq!(&b[0..8], b"FIR\x00020\x00");
        // 16 general + 41 fixed representation + 5 per quality block + image.
        assert_eq!(b.len(), 16 + 41 + 5 + 7);
        assert_eq!(u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize, b.len());
        // The date as in the standard's Annex C example: 07d5 0c 0f 11 23 13 0000.
        assert_eq!(&b[20..29], &[0x07, 0xd5, 0x0c, 0x0f, 0x11, 0x23, 0x13, 0, 0]);
        assert_eq!(FingerImageRecord::parse(&b).unwrap(), f);
    }

    #[test]
    fn face_record_layout_and_round_trip() {
        let f = FaceImageRecord {
            capture_time: t(),
            device_technology: 2,
            device_vendor: 0,
            device_type: 0,
            quality: vec![],
            gender: 2,
            face_image_type: 1,
            image_data_type: 0,
            width: 413,
            height: 531,
            post_processing: 2 | 4,
            colour_space: 1,
            image: vec![0xFF, 0xD8, 0xFF, 0xD9],
        };
        let b = f.to_bytes();
        assert_eq!(&b[0..8], b"FAC\x00030\x00");
        // 17 general + representation: 4 + 9 + 5 + 1 (quality count) + 17 + 11 + 4 (image length) + image.
        assert_eq!(b.len(), 17 + 4 + 9 + 5 + 1 + 17 + 11 + 4 + 4);
        assert_eq!(FaceImageRecord::parse(&b).unwrap(), f);
    }

    #[test]
    fn damaged_records_are_typed_errors() {
        let b = finger().to_bytes();
        assert!(matches!(
            FingerImageRecord::parse(&b[..b.len() - 1]),
            Err(RecordError::Length { .. })
        ));
        let mut bad = b.clone();
        bad[5] = b'1';
        assert!(matches!(
            FingerImageRecord::parse(&bad),
            Err(RecordError::Magic { .. })
        ));
        let mut grown = b.clone();
        grown.push(0);
        assert!(FingerImageRecord::parse(&grown).is_err());
        for cut in 0..b.len() {
            assert!(FingerImageRecord::parse(&b[..cut]).is_err());
        }
    }
}
