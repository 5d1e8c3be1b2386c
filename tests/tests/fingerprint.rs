//! End to end: the ZFM module emulator on a real pseudo-terminal -> the fingerprint driver, for every shipped
//! fingerprint profile: info, configure, capture, upload, and every fault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::time::Duration;
use tamga_drivers::zfm::command::RetryReason;
use tamga_drivers::zfm::packet::PacketError;
use tamga_drivers::zfm::{
    CaptureOutcome, FingerprintScanner, LedColour, LedEffect, ScannerError, Settings, ZfmError,
};
use tamga_profiles::{Catalog, DeviceKind, Feature, Profile, SettingsApply};
use tamga_sim::fingerprint::{FingerSpec, render};
use tamga_sim::zfm::{ZfmEmulator, ZfmFault};

fn profiles() -> Vec<Profile> {
    let all: Vec<Profile> = Catalog::builtin()
        .unwrap()
        .all()
        .iter()
        .filter(|p| p.kind == DeviceKind::FingerprintScanner)
        .cloned()
        .collect();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    for n in ["zhiantec-r307", "grow-r503", "hlk-as608"] {
        assert!(names.contains(&n), "{names:?}");
    }
    all
}

fn profile(name: &str) -> Profile {
    Catalog::builtin().unwrap().get(name).unwrap().clone()
}

struct Rig {
    _dir: tempfile::TempDir,
    emu: ZfmEmulator,
    scanner: FingerprintScanner,
    profile: Profile,
}

async fn rig(p: &Profile) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyFP");
    let emu = ZfmEmulator::start(p, &link, false).unwrap();
    let mut scanner = FingerprintScanner::new(p, &link).unwrap();
    scanner.connect(Duration::from_secs(2)).await.unwrap();
    Rig {
        _dir: dir,
        emu,
        scanner,
        profile: p.clone(),
    }
}

fn finger(p: &Profile, seed: u64, position: u8) -> FingerSpec {
    let m = p.fingerprint.as_ref().unwrap();
    FingerSpec::good(
        seed,
        position,
        u32::from(m.image_width),
        u32::from(m.image_height),
        m.resolution_ppi,
    )
}

/// What the host must receive: the rendered image through the 4-bit UART path.
fn expected_pixels(spec: &FingerSpec) -> Vec<u8> {
    render(spec).iter().map(|v| (v >> 4) * 17).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_captures_and_uploads_the_exact_image() {
    for p in profiles() {
        let mut r = rig(&p).await;
        let spec = finger(&p, 77, 2);
        r.emu.place_finger(spec.clone());
        assert_eq!(
            r.scanner.capture(Duration::from_secs(2)).await.unwrap(),
            CaptureOutcome::Captured
        );
        let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = progress.clone();
        let captured = r
            .scanner
            .upload(move |got, total| seen.lock().unwrap().push((got, total)))
            .await
            .unwrap();
        let progress = progress.lock().unwrap().clone();
        let total = usize::from(p.fingerprint.as_ref().unwrap().image_width)
            * usize::from(p.fingerprint.as_ref().unwrap().image_height)
            / 2;
        assert_eq!(
            progress.last(),
            Some(&(total, total)),
            "progress ends at the whole image"
        );
        assert!(
            progress.windows(2).all(|w| w[0].0 < w[1].0),
            "progress only grows"
        );
        let m = p.fingerprint.as_ref().unwrap();
        assert_eq!(
            (captured.image.width, captured.image.height),
            (u32::from(m.image_width), u32::from(m.image_height))
        );
        assert_eq!(captured.image.resolution_ppi, m.resolution_ppi);
        assert_eq!(captured.image.pixels, expected_pixels(&spec), "{}", p.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_finger_and_poor_images_are_retry_outcomes() {
    for p in profiles() {
        let mut r = rig(&p).await;
        let out = r.scanner.capture(Duration::from_millis(300)).await.unwrap();
        assert_eq!(out, CaptureOutcome::Retry(RetryReason::NoFinger), "{}", p.name);
        r.emu.place_finger(finger(&p, 1, 1));
        r.emu.inject(ZfmFault::CaptureFailed);
        assert_eq!(
            r.scanner.capture(Duration::from_secs(1)).await.unwrap(),
            CaptureOutcome::Retry(RetryReason::CaptureFailed)
        );
        if p.fingerprint.as_ref().unwrap().has(Feature::GetImageEx) {
            r.emu.inject(ZfmFault::PoorImage);
            assert_eq!(
                r.scanner.capture(Duration::from_secs(1)).await.unwrap(),
                CaptureOutcome::Retry(RetryReason::PoorImage)
            );
        }
        assert_eq!(
            r.scanner.capture(Duration::from_secs(1)).await.unwrap(),
            CaptureOutcome::Captured
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_reports_what_each_model_has() {
    for p in profiles() {
        let mut r = rig(&p).await;
        let info = r.scanner.info().await.unwrap();
        assert_eq!(info.baud, p.serial.unwrap().baud);
        assert_eq!(
            info.packet_size,
            usize::from(p.fingerprint.as_ref().unwrap().default_packet_size)
        );
        let m = p.fingerprint.as_ref().unwrap();
        assert_eq!(info.product.is_some(), m.has(Feature::ProdInfo), "{}", p.name);
        if let Some(prod) = &info.product {
            assert_eq!(
                (prod.image_width, prod.image_height),
                (m.image_width, m.image_height)
            );
        }
        assert_eq!(info.firmware.is_some(), m.has(Feature::FirmwareVersion));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_refuses_what_the_model_does_not_allow() {
    let mut r = rig(&profile("grow-r503")).await;
    let e = r
        .scanner
        .configure(&Settings {
            baud: Some(28800),
            ..Settings::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ScannerError::Module(ZfmError::NotAllowed {
                what: "baud rate",
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("115200"), "names the allowed rates: {e}");
    let e = r
        .scanner
        .configure(&Settings {
            security: Some(9),
            ..Settings::default()
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("security level 9 is not allowed"), "{e}");
    r.scanner
        .configure(&Settings {
            security: Some(5),
            ..Settings::default()
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baud_change_then_power_cycle_then_discovery() {
    for p in profiles() {
        let Rig {
            _dir,
            emu,
            mut scanner,
            profile,
        } = rig(&p).await;
        scanner
            .configure(&Settings {
                baud: Some(115200),
                ..Settings::default()
            })
            .await
            .unwrap();
        let apply = p.fingerprint.as_ref().unwrap().settings_apply;
        if apply == SettingsApply::PowerCycle {
            // Still at the old rate until the module is powered again.
            assert_eq!(emu.baud(), 57600, "{}", p.name);
            emu.power_cycle().unwrap();
        }
        assert_eq!(emu.baud(), 115200, "{}", p.name);
        drop(scanner);
        // A scanner that believes the profile's 57600 finds the module at 115200.
        let mut fresh = FingerprintScanner::new(&profile, emu.path()).unwrap();
        let found = fresh.discover_baud().await.unwrap();
        assert_eq!(found, 115200, "{}", p.name);
        emu.place_finger(finger(&p, 3, 3));
        assert_eq!(
            fresh.capture(Duration::from_secs(2)).await.unwrap(),
            CaptureOutcome::Captured
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reports_every_rate_it_tried() {
    let p = profile("hlk-as608");
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyFP");
    let emu = ZfmEmulator::start(&p, &link, false).unwrap();
    emu.inject(ZfmFault::Silence { replies: 1000 });
    let mut s = FingerprintScanner::new(&p, &link).unwrap();
    let e = s.discover_baud().await.unwrap_err();
    assert!(matches!(e, ScannerError::NotFound { .. }), "{e}");
    assert!(
        e.to_string().contains("57600") && e.to_string().contains("9600"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_path_uses_the_largest_packets_where_the_model_applies_it_at_once() {
    let mut r = rig(&profile("hlk-as608")).await;
    assert_eq!(r.scanner.use_largest_packets().await.unwrap(), 256);
    assert_eq!(r.emu.packet_size(), 256);
    let spec = finger(&r.profile, 5, 5);
    r.emu.place_finger(spec.clone());
    r.scanner.capture(Duration::from_secs(1)).await.unwrap();
    let c = r.scanner.upload(|_, _| {}).await.unwrap();
    assert_eq!(c.packet_size, 256);
    assert_eq!(c.image.pixels, expected_pixels(&spec));
    // R307 applies settings after a power cycle: the capture path keeps what is in force.
    let mut r = rig(&profile("zhiantec-r307")).await;
    assert_eq!(r.scanner.use_largest_packets().await.unwrap(), 128);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_reply_and_line_noise() {
    for p in profiles() {
        let mut r = rig(&p).await;
        r.emu
            .inject(ZfmFault::NoiseBeforeReply(vec![0x55, 0x00, 0xEF, 0x13]));
        r.scanner.info().await.unwrap();
        r.emu.inject(ZfmFault::CorruptReply);
        let e = r.scanner.info().await.unwrap_err();
        assert!(
            matches!(
                e,
                ScannerError::Module(ZfmError::Packet(PacketError::BadChecksum { .. }))
            ),
            "{}: {e}",
            p.name
        );
        r.scanner.info().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_closes_the_link_and_the_next_call_reopens_it() {
    for p in profiles() {
        let mut r = rig(&p).await;
        r.emu.inject(ZfmFault::Silence { replies: 1 });
        let e = r.scanner.info().await.unwrap_err();
        assert!(
            matches!(
                e,
                ScannerError::Disconnected {
                    source: ZfmError::Timeout(_),
                    ..
                }
            ),
            "{}: {e}",
            p.name
        );
        assert!(!r.scanner.is_connected());
        r.scanner.connect(Duration::from_secs(1)).await.unwrap();
        r.scanner.info().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_size_is_configurable_within_the_model() {
    for p in profiles() {
        let mut r = rig(&p).await;
        let e = r
            .scanner
            .configure(&Settings {
                packet_size: Some(100),
                ..Settings::default()
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("packet size 100 is not allowed"), "{e}");
        r.scanner
            .configure(&Settings {
                packet_size: Some(256),
                ..Settings::default()
            })
            .await
            .unwrap();
        if p.fingerprint.as_ref().unwrap().settings_apply == SettingsApply::PowerCycle {
            assert_eq!(r.emu.packet_size(), 128, "{}", p.name);
            r.emu.power_cycle().unwrap();
            r.scanner.connect(Duration::from_secs(2)).await.ok();
        }
        assert_eq!(r.emu.packet_size(), 256, "{}", p.name);
        let spec = finger(&p, 12, 1);
        r.emu.place_finger(spec.clone());
        if !r.scanner.is_connected() {
            r.scanner.connect(Duration::from_secs(2)).await.unwrap();
        }
        let out = r.scanner.capture(Duration::from_secs(1)).await;
        let out = match out {
            Ok(o) => o,
            // The power cycle closed the old link; the next call reopens it.
            Err(_) => {
                r.scanner.connect(Duration::from_secs(2)).await.unwrap();
                r.scanner.capture(Duration::from_secs(1)).await.unwrap()
            }
        };
        assert_eq!(out, CaptureOutcome::Captured);
        let c = r.scanner.upload(|_, _| {}).await.unwrap();
        assert_eq!(
            (c.packet_size, c.image.pixels.clone()),
            (256, expected_pixels(&spec)),
            "{}",
            p.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_data_packet_is_a_clear_error() {
    for p in profiles() {
        let mut r = rig(&p).await;
        r.emu.place_finger(finger(&p, 9, 9));
        r.scanner.capture(Duration::from_secs(1)).await.unwrap();
        r.emu.inject(ZfmFault::DropDataPacket { index: 10 });
        let e = r.scanner.upload(|_, _| {}).await.unwrap_err();
        assert!(
            matches!(e, ScannerError::Module(ZfmError::ImageSize { .. })),
            "{}: {e}",
            p.name
        );
        assert!(e.to_string().contains("capture again"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_mid_transfer_then_recover_when_it_returns() {
    for p in profiles() {
        let mut r = rig(&p).await;
        let spec = finger(&p, 10, 10);
        r.emu.place_finger(spec.clone());
        r.scanner.capture(Duration::from_secs(1)).await.unwrap();
        r.emu.inject(ZfmFault::UnplugAfterPackets { packets: 40 });
        let e = r.scanner.upload(|_, _| {}).await.unwrap_err();
        assert!(
            matches!(
                e,
                ScannerError::Disconnected {
                    mid_transfer: true,
                    ..
                }
            ),
            "{}: {e}",
            p.name
        );
        assert!(e.to_string().contains("image is lost"), "{e}");
        // The module comes back (power-up: its image buffer is empty); the same scanner object reconnects.
        let emu_port = std::thread::spawn({
            let path = r.emu.path().to_owned();
            move || {
                std::thread::sleep(Duration::from_millis(300));
                path
            }
        });
        emu_port.join().unwrap();
        r.emu.power_cycle().unwrap();
        r.scanner.connect(Duration::from_secs(3)).await.unwrap();
        assert_eq!(
            r.scanner.capture(Duration::from_secs(1)).await.unwrap(),
            CaptureOutcome::Captured
        );
        assert_eq!(
            r.scanner.upload(|_, _| {}).await.unwrap().image.pixels,
            expected_pixels(&spec)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_protected_module() {
    let mut p = profile("hlk-as608");
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyFP");
    let emu = ZfmEmulator::start(&p, &link, false).unwrap();
    emu.set_password(0x0BAD_F00D);
    let mut s = FingerprintScanner::new(&p, &link).unwrap();
    let e = s.connect(Duration::from_secs(1)).await.unwrap_err();
    assert!(e.to_string().contains("password"), "{e}");
    p.fingerprint.as_mut().unwrap().password = 0x0BAD_F00D;
    let mut s = FingerprintScanner::new(&p, &link).unwrap();
    s.connect(Duration::from_secs(1)).await.unwrap();
    s.info().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn led_ring_on_the_r503() {
    let mut r = rig(&profile("grow-r503")).await;
    r.scanner
        .led(LedEffect::Breathing, 100, LedColour::Blue, 0)
        .await
        .unwrap();
    assert_eq!(r.emu.led(), Some([1, 100, 2, 0]));
    let mut r = rig(&profile("zhiantec-r307")).await;
    assert!(matches!(
        r.scanner.led(LedEffect::On, 0, LedColour::Red, 0).await,
        Err(ScannerError::Module(ZfmError::Unsupported(_)))
    ));
}
