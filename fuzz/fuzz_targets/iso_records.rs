//! The ISO/IEC 19794-4 and 19794-5 record parsers on arbitrary bytes: typed errors or a record, never a panic;
//! what parses writes back to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tamga_bundle::iso19794::{FaceImageRecord, FingerImageRecord};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = FingerImageRecord::parse(data) {
        let _ = FingerImageRecord::parse(&r.to_bytes()).map(|again| assert_eq!(again, r));
    }
    if let Ok(r) = FaceImageRecord::parse(data) {
        let _ = FaceImageRecord::parse(&r.to_bytes()).map(|again| assert_eq!(again, r));
    }
});
