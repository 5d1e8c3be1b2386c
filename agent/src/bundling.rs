//! Turning captures into a bundle's manifest and ISO records: one place, used by the applicant session and by
//! `tamga bundle create`.

use crate::capture::fingers::{ExceptionReason, FingerPosition};
use tamga_bundle::b64;
use tamga_bundle::iso19794::{
    CaptureTime, FaceImageRecord, FingerImageRecord, QualityBlock, finger_compression,
};
use tamga_bundle::manifest::{self, Device, Document, Exception, Item, Manifest, Session};

/// An accepted finger image.
#[derive(Debug, Clone)]
pub struct FingerItem {
    pub position: FingerPosition,
    /// The PNG file (8-bit grey).
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub resolution_ppi: u16,
    pub score: u8,
    /// The quality report (score, features, findings).
    pub quality: serde_json::Value,
    pub device: Device,
    pub captured_at: time::OffsetDateTime,
    pub attempts: u32,
}

/// The accepted face photo (the crop that is sent).
#[derive(Debug, Clone)]
pub struct FaceItem {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The photo check report.
    pub report: serde_json::Value,
    /// ISO/IEC 19794-5 post-acquisition processing bits (2 cropped, 4 down-sampled).
    pub post_processing: u16,
    pub device: Device,
    pub captured_at: time::OffsetDateTime,
    pub attempts: u32,
}

/// Everything captured for one applicant.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    pub document: Option<tamga_mrz::Mrz>,
    pub face: Option<FaceItem>,
    pub fingers: Vec<FingerItem>,
    pub exceptions: Vec<(FingerPosition, ExceptionReason)>,
}

/// Who and when.
#[derive(Debug, Clone)]
pub struct Context {
    pub centre_id: String,
    pub station_id: String,
    pub operator_id: String,
    pub started_at: time::OffsetDateTime,
    pub previous_bundle_sha256: String,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn position_name(p: FingerPosition) -> String {
    manifest::POSITIONS
        .get(usize::from(p.code()) - 1)
        .copied()
        .unwrap_or("unknown")
        .to_owned()
}

/// A device description for files that came from no device.
pub fn file_device() -> Device {
    Device {
        model: "file".into(),
        serial: "-".into(),
        firmware: "-".into(),
        profile: "files".into(),
        profile_sha256: manifest::GENESIS.into(),
    }
}

/// The manifest and the item files.
pub fn build(c: &Captures, ctx: &Context) -> Result<(Manifest, tamga_bundle::archive::Files), String> {
    let mut items = Vec::new();
    let mut files = Vec::new();
    for f in &c.fingers {
        let rec = FingerImageRecord {
            capture_time: CaptureTime::from_datetime(f.captured_at),
            device_technology: 0,
            device_vendor: 0,
            device_type: 0,
            quality: vec![QualityBlock {
                score: f.score,
                vendor: 0,
                algorithm: 0,
            }],
            position: f.position.code(),
            representation_number: 0,
            resolution_ppi: f.resolution_ppi,
            bit_depth: 8,
            compression: finger_compression::PNG,
            impression: 0,
            width: u16::try_from(f.width).map_err(|_| "finger image too wide".to_owned())?,
            height: u16::try_from(f.height).map_err(|_| "finger image too tall".to_owned())?,
            image: f.png.clone(),
        }
        .to_bytes();
        let name = position_name(f.position);
        let file = format!("finger-{:02}-{name}.fir", f.position.code());
        items.push(Item {
            file: file.clone(),
            kind: "finger".into(),
            position: Some(name),
            position_code: Some(f.position.code()),
            record_format: "ISO/IEC 19794-4:2011".into(),
            image_format: "png".into(),
            width: f.width,
            height: f.height,
            resolution_ppi: Some(f.resolution_ppi),
            quality: f.quality.clone(),
            device: f.device.clone(),
            captured_at: rfc3339(f.captured_at),
            attempts: f.attempts,
            sha256: b64::sha256_hex(&rec),
        });
        files.push((file, rec));
    }
    if let Some(face) = &c.face {
        let gender = match c.document.as_ref().and_then(|d| d.sex) {
            Some(tamga_mrz::Sex::Male) => 1,
            Some(tamga_mrz::Sex::Female) => 2,
            _ => 0,
        };
        let rec = FaceImageRecord {
            capture_time: CaptureTime::from_datetime(face.captured_at),
            device_technology: 2,
            device_vendor: 0,
            device_type: 0,
            quality: vec![],
            gender,
            face_image_type: 1,
            image_data_type: 0,
            width: u16::try_from(face.width).map_err(|_| "photo too wide".to_owned())?,
            height: u16::try_from(face.height).map_err(|_| "photo too tall".to_owned())?,
            post_processing: face.post_processing,
            colour_space: 1,
            image: face.jpeg.clone(),
        }
        .to_bytes();
        items.push(Item {
            file: "face.fac".into(),
            kind: "face".into(),
            position: None,
            position_code: None,
            record_format: "ISO/IEC 19794-5:2011".into(),
            image_format: "jpeg".into(),
            width: face.width,
            height: face.height,
            resolution_ppi: None,
            quality: face.report.clone(),
            device: face.device.clone(),
            captured_at: rfc3339(face.captured_at),
            attempts: face.attempts,
            sha256: b64::sha256_hex(&rec),
        });
        files.push(("face.fac".into(), rec));
    }
    let exceptions = c
        .exceptions
        .iter()
        .map(|(p, r)| Exception {
            position: position_name(*p),
            position_code: p.code(),
            reason: serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            code: r.code().into(),
        })
        .collect();
    let document = match &c.document {
        Some(m) => Some(Document {
            mrz_lines: m.lines.clone(),
            record: serde_json::to_value(m).map_err(|e| e.to_string())?,
            valid: m.valid,
        }),
        None => None,
    };
    let mut m = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        bundle_id: uuid::Uuid::now_v7().to_string(),
        centre_id: ctx.centre_id.clone(),
        station_id: ctx.station_id.clone(),
        operator_id: ctx.operator_id.clone(),
        session: Session {
            started_at: rfc3339(ctx.started_at),
            ended_at: rfc3339(time::OffsetDateTime::now_utc()),
        },
        previous_bundle_sha256: ctx.previous_bundle_sha256.clone(),
        document,
        items,
        exceptions,
        complete: false,
    };
    let (missing, dupes, faces) = m.completeness();
    if !dupes.is_empty() {
        return Err(format!("finger positions given twice: {}", dupes.join(", ")));
    }
    m.complete = missing.is_empty() && faces == 1;
    Ok((m, files))
}
