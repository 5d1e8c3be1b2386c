//! PTP camera driver against the simulated camera behind the same USB transport trait: capture with every event
//! order real cameras show, large objects with USB transfer semantics, properties, and faults.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::time::Duration;
use tamga_drivers::ptp::codes::{Response, prop};
use tamga_drivers::ptp::dataset::PropValue;
use tamga_drivers::ptp::{CaptureQuirks, PtpCamera, PtpError};
use tamga_drivers::usb::{Pipe, UsbError};
use tamga_sim::ptp_camera::{CamFault, SimCamera, SimQuirks};

fn hopper() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../quality/tests/fixtures/photos/grace_hopper.jpg"
    ))
    .unwrap()
}

fn camera(quirks: SimQuirks, photos: Vec<Vec<u8>>) -> SimCamera {
    SimCamera::new(
        "Nikon",
        "Coolpix 5700",
        quirks,
        photos.into_iter().map(|p| (p, 512, 600)).collect(),
    )
}

const T: Duration = Duration::from_secs(2);

fn capture(cam: &SimCamera, quirks: CaptureQuirks) -> Result<tamga_drivers::ptp::CapturedObject, PtpError> {
    let mut c = PtpCamera::new(cam.open().unwrap(), T);
    c.capture(quirks, Duration::from_secs(5), true, &mut |_, _| {})
}

#[test]
fn device_info_without_a_session() {
    let cam = camera(SimQuirks::default(), vec![hopper()]);
    let mut c = PtpCamera::new(cam.open().unwrap(), T);
    let info = c.device_info().unwrap();
    assert_eq!(
        (info.manufacturer.as_str(), info.model.as_str()),
        ("Nikon", "Coolpix 5700")
    );
    assert!(info.supports(0x100E));
    assert_eq!(info.standard_version, 100);
    assert!(matches!(
        c.storage_ids(),
        Err(PtpError::Response {
            response: Response::SessionNotOpen,
            ..
        })
    ));
    c.open_session().unwrap();
    assert_eq!(c.storage_ids().unwrap(), vec![0x0001_0001]);
}

#[test]
fn capture_with_every_event_order() {
    let photo = hopper();
    let cases = [
        ("standard", SimQuirks::default(), CaptureQuirks::default()),
        (
            "folder first",
            SimQuirks {
                association_first: true,
                ..SimQuirks::default()
            },
            CaptureQuirks::default(),
        ),
        (
            "complete first",
            SimQuirks {
                capture_complete_first: true,
                ..SimQuirks::default()
            },
            CaptureQuirks::default(),
        ),
        (
            "no ObjectAdded",
            SimQuirks {
                no_object_added: true,
                association_first: true,
                ..SimQuirks::default()
            },
            CaptureQuirks {
                no_object_added: true,
                ..CaptureQuirks::default()
            },
        ),
        (
            "no CaptureComplete",
            SimQuirks {
                no_capture_complete: true,
                association_first: true,
                ..SimQuirks::default()
            },
            CaptureQuirks {
                no_capture_complete: true,
                ..CaptureQuirks::default()
            },
        ),
        // A camera that sends no ObjectAdded although its profile does not say so is still served (diff).
        (
            "unflagged no ObjectAdded",
            SimQuirks {
                no_object_added: true,
                ..SimQuirks::default()
            },
            CaptureQuirks::default(),
        ),
    ];
    for (name, sim, quirks) in cases {
        let cam = camera(sim, vec![photo.clone()]);
        let got = capture(&cam, quirks).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.data, photo, "{name}");
        assert_eq!(got.info.object_format, 0x3801, "{name}");
        assert_eq!(
            (got.info.image_width, got.info.image_height),
            (512, 600),
            "{name}"
        );
        let folders = usize::from(sim.association_first);
        assert_eq!(
            cam.object_count(),
            folders,
            "{name}: the photo is deleted from the camera after transfer"
        );
    }
}

#[test]
fn data_phases_on_packet_boundaries() {
    // 1012 + 12 = 1024: a multiple of the 512-byte packet inside one read; 262132 + 12 = 256 KiB: exactly one
    // full read, so the zero-length packet arrives as a transfer of its own.
    for size in [1012usize, 262_132, 262_133, 700_001] {
        let photo: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let cam = camera(SimQuirks::default(), vec![photo.clone()]);
        let mut c = PtpCamera::new(cam.open().unwrap(), T);
        let mut seen = Vec::new();
        let got = c
            .capture(
                CaptureQuirks::default(),
                Duration::from_secs(5),
                true,
                &mut |a, b| seen.push((a, b)),
            )
            .unwrap();
        assert_eq!(got.data.len(), size);
        assert_eq!(got.data, photo);
        assert_eq!(seen.last(), Some(&(size, size)));
        // The session goes on working after the boundary case.
        c.storage_ids().unwrap();
    }
}

#[test]
fn busy_camera_is_a_clear_retry() {
    let cam = camera(SimQuirks::default(), vec![hopper()]);
    cam.inject(CamFault::Busy { times: 1 });
    let mut c = PtpCamera::new(cam.open().unwrap(), T);
    let e = c
        .capture(
            CaptureQuirks::default(),
            Duration::from_secs(5),
            true,
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            PtpError::Response {
                response: Response::DeviceBusy,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("capture again"), "{e}");
    c.capture(
        CaptureQuirks::default(),
        Duration::from_secs(5),
        true,
        &mut |_, _| {},
    )
    .unwrap();
}

#[test]
fn stalled_pipe_is_recovered_with_class_requests() {
    let cam = camera(SimQuirks::default(), vec![hopper()]);
    let mut c = PtpCamera::new(cam.open().unwrap(), T);
    c.open_session().unwrap();
    cam.inject(CamFault::StallNextBulkIn);
    let e = c.storage_ids().unwrap_err();
    assert!(matches!(e, PtpError::Usb(UsbError::Stall(Pipe::BulkIn))), "{e}");
    c.recover().unwrap();
    let got = c
        .capture(
            CaptureQuirks::default(),
            Duration::from_secs(5),
            true,
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(got.data, hopper());
}

#[test]
fn unplug_mid_object_then_a_new_connection_works() {
    let cam = camera(SimQuirks::default(), vec![hopper()]);
    cam.inject(CamFault::UnplugMidObject { after_bytes: 20_000 });
    let e = capture(&cam, CaptureQuirks::default()).unwrap_err();
    assert!(e.is_disconnect(), "{e}");
    assert!(matches!(cam.open(), Err(UsbError::NotFound(_))));
    cam.replug();
    assert_eq!(capture(&cam, CaptureQuirks::default()).unwrap().data, hopper());
}

#[test]
fn slow_events_and_a_silent_camera() {
    let cam = camera(SimQuirks::default(), vec![hopper()]);
    cam.inject(CamFault::SlowEvents(Duration::from_millis(900)));
    assert_eq!(capture(&cam, CaptureQuirks::default()).unwrap().data, hopper());
    cam.inject(CamFault::SilentCapture);
    let mut c = PtpCamera::new(cam.open().unwrap(), T);
    let e = c
        .capture(
            CaptureQuirks::default(),
            Duration::from_millis(600),
            true,
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(matches!(e, PtpError::Timeout(_)), "{e}");
}

#[test]
fn properties_are_checked_against_their_description() {
    let cam = camera(SimQuirks::default(), vec![hopper()]);
    let mut c = PtpCamera::new(cam.open().unwrap(), T);
    c.open_session().unwrap();
    let wb = c.prop_desc(prop::WHITE_BALANCE).unwrap();
    assert!(wb.writable);
    c.set_prop(prop::WHITE_BALANCE, &PropValue::UInt(4)).unwrap();
    assert_eq!(
        cam.prop_value(prop::WHITE_BALANCE),
        Some(4u16.to_le_bytes().to_vec())
    );
    let e = c.set_prop(prop::WHITE_BALANCE, &PropValue::UInt(3)).unwrap_err();
    assert!(e.to_string().contains("does not accept"), "{e}");
    c.set_prop(prop::IMAGE_SIZE, &PropValue::Str("1500x1000".into()))
        .unwrap();
    assert_eq!(
        c.prop_desc(prop::IMAGE_SIZE).unwrap().current,
        PropValue::Str("1500x1000".into())
    );
    c.set_prop(prop::EXPOSURE_INDEX, &PropValue::UInt(400)).unwrap();
}

mod device {
    use super::*;
    use tamga_drivers::ptp::device::{CameraError, PhotoCamera};
    use tamga_drivers::usb::UsbTransport;
    use tamga_profiles::Catalog;

    fn photo_camera(profile: &str, cam: &SimCamera) -> PhotoCamera {
        let p = Catalog::builtin().unwrap().get(profile).unwrap().clone();
        let sim = cam.clone();
        PhotoCamera::new(
            &p,
            Box::new(move || sim.open().map(|t| Box::new(t) as Box<dyn UsbTransport>)),
        )
        .unwrap()
    }

    #[test]
    fn every_camera_profile_captures_from_a_camera_with_its_quirks() {
        for (profile, sim) in [
            ("leica-m9", SimQuirks::default()),
            (
                "nikon-coolpix-5700",
                SimQuirks {
                    no_capture_complete: true,
                    ..SimQuirks::default()
                },
            ),
            (
                "nikon-coolpix-5900",
                SimQuirks {
                    no_object_added: true,
                    ..SimQuirks::default()
                },
            ),
            (
                "generic-ptp-camera",
                SimQuirks {
                    capture_complete_first: true,
                    association_first: true,
                    ..SimQuirks::default()
                },
            ),
        ] {
            let cam = camera(sim, vec![hopper()]);
            let mut pc = photo_camera(profile, &cam);
            let got = pc
                .capture(&mut |_, _| {})
                .unwrap_or_else(|e| panic!("{profile}: {e}"));
            assert_eq!(got.data, hopper(), "{profile}");
            assert_eq!(pc.device_info().unwrap().model, "Coolpix 5700");
        }
    }

    #[test]
    fn unplugged_and_plugged_back_without_restarting_anything() {
        let cam = camera(SimQuirks::default(), vec![hopper()]);
        let mut pc = photo_camera("leica-m9", &cam);
        pc.capture(&mut |_, _| {}).unwrap();
        cam.inject(CamFault::UnplugMidObject { after_bytes: 10_000 });
        let e = pc.capture(&mut |_, _| {}).unwrap_err();
        assert!(matches!(e, CameraError::Ptp(ref p) if p.is_disconnect()), "{e}");
        assert!(!pc.is_connected());
        let e = pc.capture(&mut |_, _| {}).unwrap_err();
        assert!(
            matches!(e, CameraError::Unavailable { .. }),
            "still unplugged: {e}"
        );
        cam.replug();
        assert_eq!(pc.capture(&mut |_, _| {}).unwrap().data, hopper());
    }

    #[test]
    fn busy_and_stalled_cameras_are_handled_inside_the_capture() {
        let cam = camera(SimQuirks::default(), vec![hopper()]);
        let mut pc = photo_camera("leica-m9", &cam);
        cam.inject(CamFault::Busy { times: 2 });
        assert_eq!(pc.capture(&mut |_, _| {}).unwrap().data, hopper());
        pc.capture(&mut |_, _| {}).unwrap();
        cam.inject(CamFault::StallNextBulkIn);
        assert_eq!(pc.capture(&mut |_, _| {}).unwrap().data, hopper());
    }

    #[test]
    fn nikon_live_view_frames_then_a_still_capture() {
        let cam = camera(
            SimQuirks {
                live_view: true,
                ..SimQuirks::default()
            },
            vec![hopper()],
        );
        let mut pc = photo_camera("generic-ptp-camera", &cam);
        // The first frames wait out DeviceBusy; each is the JPEG behind the 384-byte header.
        for _ in 0..3 {
            assert_eq!(pc.preview_frame().unwrap(), hopper());
        }
        assert!(pc.has_live_view());
        // A still capture ends live view first (the camera refuses captures during live view).
        assert_eq!(pc.capture(&mut |_, _| {}).unwrap().data, hopper());
        let ops = cam.ops_seen();
        let end = ops.iter().position(|&o| o == 0x9202).expect("EndLiveView sent");
        let capture = ops
            .iter()
            .position(|&o| o == 0x100E)
            .expect("InitiateCapture sent");
        assert!(end < capture, "{ops:04X?}");
        // And the preview starts again afterwards.
        assert_eq!(pc.preview_frame().unwrap(), hopper());
        assert_eq!(ops.iter().filter(|&&o| o == 0x9201).count(), 1);
        assert_eq!(cam.ops_seen().iter().filter(|&&o| o == 0x9201).count(), 2);
    }

    #[test]
    fn a_camera_without_live_view_says_so() {
        let cam = camera(SimQuirks::default(), vec![hopper()]);
        let mut pc = photo_camera("generic-ptp-camera", &cam);
        let e = pc.preview_frame().unwrap_err();
        assert!(matches!(e, CameraError::NoLiveView { .. }), "{e}");
        assert!(e.to_string().contains("use the still photo"), "{e}");
        assert!(!cam.ops_seen().contains(&0x9201));
    }
}
