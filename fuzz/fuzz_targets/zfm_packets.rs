//! The ZFM packet parser on arbitrary bytes, fed in arbitrary chunks: it must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tamga_drivers::zfm::packet::{DEFAULT_ADDRESS, PacketParser};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let mut p = PacketParser::new(DEFAULT_ADDRESS);
    for chunk in rest.chunks(usize::from(cut).max(1)) {
        p.push(chunk);
        while p.next_packet().is_some() {}
    }
});
