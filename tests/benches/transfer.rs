//! Image transfer efficiency over a serial line paced at its real rate.
//!
//! The ZFM emulator sends at the line rate (10 bits per byte, no gaps of its own); the driver uploads a 256x288
//! image (36,864 bytes). Efficiency = image bytes per second / (baud / 10). Each data packet costs 11 bytes of
//! framing, so the ceiling is P / (P + 11): 0.921 with 128-byte packets, 0.959 with 256. The same-run baseline is
//! the pacing machinery alone: the same number of bytes as one raw blob, read without any protocol.
//!
//! Run: `cargo bench -p tamga-e2e --bench transfer`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)] // bench code
use std::time::{Duration, Instant};
use tamga_drivers::zfm::FingerprintScanner;
use tamga_profiles::{Catalog, Profile};
use tamga_sim::fingerprint::FingerSpec;
use tamga_sim::pty::SimPort;
use tamga_sim::zfm::ZfmEmulator;
use tokio::io::AsyncReadExt;

fn profile_at(baud: u32) -> Profile {
    let mut p = Catalog::builtin().unwrap().get("hlk-as608").unwrap().clone();
    if let Some(s) = p.serial.as_mut() {
        s.baud = baud;
    }
    p
}

/// Seconds to move `bytes` raw through the paced pty (the baseline).
async fn raw_seconds(baud: u32, bytes: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyRAW");
    let port = std::sync::Arc::new(SimPort::plug(&link).unwrap());
    let settings = profile_at(baud).serial.unwrap();
    let mut stream = tamga_drivers::serial::open(&link, &settings).unwrap();
    let sender = {
        let port = port.clone();
        std::thread::spawn(move || port.send(&vec![0x5Au8; bytes], Some((baud, 10))).unwrap())
    };
    let start = Instant::now();
    let mut got = 0;
    let mut buf = vec![0u8; 4096];
    while got < bytes {
        got += stream.read(&mut buf).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    sender.join().unwrap();
    secs
}

async fn upload_seconds(baud: u32, largest: bool) -> (f64, usize, usize) {
    let p = profile_at(baud);
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyFP");
    let emu = ZfmEmulator::start(&p, &link, false).unwrap();
    let mut s = FingerprintScanner::new(&p, &link).unwrap();
    s.connect(Duration::from_secs(2)).await.unwrap();
    let packet = if largest {
        s.use_largest_packets().await.unwrap()
    } else {
        emu.packet_size()
    };
    emu.place_finger(FingerSpec::good(1, 2, 256, 288, 500));
    s.capture(Duration::from_secs(2)).await.unwrap();
    emu.set_pacing(true);
    let start = Instant::now();
    let c = s.upload(|_, _| {}).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    (secs, c.image.pixels.len() / 2, packet)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "{:>7} {:>7} {:>9} {:>10} {:>8} {:>12} {:>14}",
        "baud", "packet", "seconds", "efficiency", "ceiling", "of ceiling", "vs raw pacing"
    );
    for baud in [57600u32, 115200] {
        for largest in [false, true] {
            let (secs, image_bytes, packet) = upload_seconds(baud, largest).await;
            let packets = image_bytes.div_ceil(packet);
            let wire = image_bytes + packets * 11 + 12 + 12; // data + framing + command + ack
            let raw = raw_seconds(baud, wire).await;
            let line_bytes_per_s = f64::from(baud) / 10.0;
            let efficiency = image_bytes as f64 / secs / line_bytes_per_s;
            let ceiling = packet as f64 / (packet + 11) as f64;
            let raw_eff = image_bytes as f64 / raw / line_bytes_per_s;
            println!(
                "{baud:>7} {packet:>7} {secs:>9.3} {efficiency:>10.4} {ceiling:>8.4} {:>12.4} {:>14.4}",
                efficiency / ceiling,
                efficiency / raw_eff
            );
        }
    }
}
