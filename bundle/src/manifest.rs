//! The manifest: what the bundle holds, signed by the station. JSON, version 1; every field is documented in
//! `docs/bundle-format.md`. Unknown fields are refused, so a central system never silently ignores something.

use serde::{Deserialize, Serialize};

/// The `format` value.
pub const FORMAT: &str = "tamga-bundle";
/// The `version` value this crate writes and reads.
pub const VERSION: u32 = 1;
/// `previous_bundle_sha256` of a station's first bundle.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// UUIDv7 (time-ordered).
    pub bundle_id: String,
    pub centre_id: String,
    pub station_id: String,
    pub operator_id: String,
    pub session: Session,
    /// SHA-256 (hex) of the station's previous bundle's `manifest.jws`, or 64 zeros for its first bundle.
    pub previous_bundle_sha256: String,
    pub document: Option<Document>,
    pub items: Vec<Item>,
    pub exceptions: Vec<Exception>,
    /// Ten fingers or ten decisions, and one face.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: String,
}

/// The travel document as read from its MRZ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// The MRZ lines after noise removal (what the checks ran on).
    pub mrz_lines: Vec<String>,
    /// The parsed record: the `tamga mrz parse` JSON object.
    pub record: serde_json::Value,
    /// All check digits passed.
    pub valid: bool,
}

/// The device that captured an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub model: String,
    pub serial: String,
    pub firmware: String,
    /// The device profile's name and the SHA-256 (hex) of its file.
    pub profile: String,
    pub profile_sha256: String,
}

/// One biometric item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The file in the archive.
    pub file: String,
    /// `finger` or `face`.
    pub kind: String,
    /// Finger position name (`right-thumb` ... `left-little`); absent for the face.
    pub position: Option<String>,
    /// ISO/IEC 19794-4 finger position code 1-10; absent for the face.
    pub position_code: Option<u8>,
    /// `ISO/IEC 19794-4:2011` or `ISO/IEC 19794-5:2011`.
    pub record_format: String,
    /// `png` or `jpeg`: the image inside the record.
    pub image_format: String,
    pub width: u32,
    pub height: u32,
    pub resolution_ppi: Option<u16>,
    /// Quality score 0-100 with its features (fingers: the NFIQ 2-like report; face: the photo checks).
    pub quality: serde_json::Value,
    pub device: Device,
    /// RFC 3339, UTC.
    pub captured_at: String,
    pub attempts: u32,
    /// SHA-256 (hex) of the file's bytes.
    pub sha256: String,
}

/// A finger declared not capturable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub position: String,
    pub position_code: u8,
    /// `amputated`, `bandaged`, `unable_to_capture`.
    pub reason: String,
    /// ANSI/NIST-ITL code: `XX` amputation, `UP` unable to print.
    pub code: String,
}

/// Finger position names in ISO/IEC 19794-4 code order (index + 1 = code).
pub const POSITIONS: [&str; 10] = [
    "right-thumb",
    "right-index",
    "right-middle",
    "right-ring",
    "right-little",
    "left-thumb",
    "left-index",
    "left-middle",
    "left-ring",
    "left-little",
];

/// The code of a position name.
pub fn position_code(name: &str) -> Option<u8> {
    POSITIONS.iter().position(|p| *p == name).map(|i| i as u8 + 1)
}

impl Manifest {
    /// Positions without an item or an exception; duplicate positions; and the face count.
    pub fn completeness(&self) -> (Vec<&'static str>, Vec<String>, usize) {
        let mut seen: Vec<u8> = Vec::new();
        let mut dupes = Vec::new();
        for code in self
            .items
            .iter()
            .filter(|i| i.kind == "finger")
            .filter_map(|i| i.position_code)
            .chain(self.exceptions.iter().map(|e| e.position_code))
        {
            if seen.contains(&code) {
                dupes.push(
                    POSITIONS
                        .get(usize::from(code).wrapping_sub(1))
                        .copied()
                        .unwrap_or("?")
                        .to_owned(),
                );
            }
            seen.push(code);
        }
        let missing = POSITIONS
            .iter()
            .enumerate()
            .filter(|(i, _)| !seen.contains(&(*i as u8 + 1)))
            .map(|(_, p)| *p)
            .collect();
        let faces = self.items.iter().filter(|i| i.kind == "face").count();
        (missing, dupes, faces)
    }
}
