//! Test support, behind the `testkit` feature (for the agent's and the central receiver's tests and benchmarks,
//! never in a production build): a sealed transport bundle without devices.
#![allow(clippy::expect_used)] // test support: a failure here is a broken test set-up

use crate::iso19794::{CaptureTime, FingerImageRecord};
use crate::manifest::{self, Device, Exception, Item, Manifest, Session};
use crate::seal::{StationSigner, seal};
use crate::{b64, pki};

/// (bundle id, manifest digest, sealed bundle).
pub type Sealed = (String, String, String);

/// Who signs, and for whom it is sealed.
pub struct Signing<'a> {
    pub station_id: &'a str,
    pub centre_id: &'a str,
    /// PEM: the station's key and its chain (station certificate, station CA).
    pub key: &'a str,
    pub chain: [&'a str; 2],
    /// PEM: the central certificate the bundle is sealed to.
    pub central: &'a str,
}

impl std::fmt::Debug for Signing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Signing")
            .field("station_id", &self.station_id)
            .field("centre_id", &self.centre_id)
            .finish_non_exhaustive()
    }
}

/// A sealed bundle (one finger of `image_len` bytes of `seed`, nine exceptions; incomplete is fine for transport)
/// chained after `previous`.
pub fn sealed_bundle(s: &Signing<'_>, previous: &str, seed: u8, image_len: usize) -> Sealed {
    let signer = StationSigner::from_pem(s.key, &s.chain).expect("test bundle");
    let central_point = pki::cert_info(&pki::certs_from_pem(s.central).expect("test bundle")[0])
        .expect("test bundle")
        .public_point;
    let rec = FingerImageRecord {
        capture_time: CaptureTime {
            year: 2026,
            month: 11,
            day: 21,
            hour: 10,
            minute: 0,
            second: 0,
            millisecond: 0,
        },
        device_technology: 0,
        device_vendor: 0,
        device_type: 0,
        quality: vec![],
        position: 1,
        representation_number: 0,
        resolution_ppi: 500,
        bit_depth: 8,
        compression: 6,
        impression: 0,
        width: 256,
        height: 288,
        image: vec![seed; image_len],
    }
    .to_bytes();
    let m = Manifest {
        format: manifest::FORMAT.into(),
        version: 1,
        bundle_id: uuid::Uuid::now_v7().to_string(),
        centre_id: s.centre_id.into(),
        station_id: s.station_id.into(),
        operator_id: "op".into(),
        session: Session {
            started_at: "a".into(),
            ended_at: "b".into(),
        },
        previous_bundle_sha256: previous.into(),
        document: None,
        items: vec![Item {
            file: "finger-01.fir".into(),
            kind: "finger".into(),
            position: Some("right-thumb".into()),
            position_code: Some(1),
            record_format: "ISO/IEC 19794-4:2011".into(),
            image_format: "png".into(),
            width: 256,
            height: 288,
            resolution_ppi: Some(500),
            quality: serde_json::json!({}),
            device: Device {
                model: "m".into(),
                serial: "s".into(),
                firmware: "f".into(),
                profile: "p".into(),
                profile_sha256: "0".repeat(64),
            },
            captured_at: "c".into(),
            attempts: 1,
            sha256: b64::sha256_hex(&rec),
        }],
        exceptions: (2..=10u8)
            .map(|c| Exception {
                position: manifest::POSITIONS[usize::from(c) - 1].into(),
                position_code: c,
                reason: "bandaged".into(),
                code: "UP".into(),
            })
            .collect(),
        complete: false,
    };
    let sealed = seal(&m, &[("finger-01.fir".into(), rec)], &signer, &central_point).expect("test bundle");
    (m.bundle_id, sealed.manifest_sha256, sealed.jwe)
}
