//! The MRZ parser on arbitrary text: typed errors or a record, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = tamga_mrz::ParseOptions::new(time::macros::date!(2026 - 11 - 21));
    let _ = tamga_mrz::parse(&text, &opts);
});
