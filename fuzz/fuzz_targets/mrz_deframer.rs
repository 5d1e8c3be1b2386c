//! The serial MRZ deframer (3M framing: header, skip, padding, BCC) on arbitrary bytes and idle events.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tamga_drivers::mrz_serial::deframer::Deframer;

fuzz_target!(|data: &[u8]| {
    static FRAMING: std::sync::OnceLock<tamga_profiles::MrzFraming> = std::sync::OnceLock::new();
    let mut d = Deframer::new(FRAMING.get_or_init(tamga_profiles_for_fuzz).clone());
    for &b in data {
        if b == 0xFF {
            let _ = d.on_idle();
        } else {
            let _ = d.push(b);
        }
    }
});

fn tamga_profiles_for_fuzz() -> tamga_profiles::MrzFraming {
    tamga_profiles::Catalog::builtin()
        .ok()
        .and_then(|c| c.get("3m-rte6701").ok().and_then(|p| p.mrz_framing.clone()))
        .unwrap_or_else(|| std::process::abort())
}
