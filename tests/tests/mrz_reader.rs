//! End to end: the reader emulator on a real pseudo-terminal -> the serial MRZ driver -> a checked record, for
//! every shipped reader profile, and every reader fault ending in a clear error or a correct record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::sync::Arc;
use std::time::Duration;
use tamga_drivers::mrz_serial::deframer::FrameError;
use tamga_drivers::mrz_serial::{MrzRead, MrzReadError, MrzReader};
use tamga_mrz::{MrzError, ParseOptions};
use tamga_profiles::{Catalog, DeviceKind, Profile};
use tamga_sim::mrz_reader::{Fault, MrzReaderEmulator};
use tamga_sim::specimens;

fn opts() -> ParseOptions {
    ParseOptions::new(time::macros::date!(2026 - 11 - 21))
}

fn reader_profiles() -> Vec<Profile> {
    let all: Vec<Profile> = Catalog::builtin()
        .unwrap()
        .all()
        .iter()
        .filter(|p| p.kind == DeviceKind::MrzReader)
        .cloned()
        .collect();
    assert!(all.len() >= 2, "at least two reader profiles ship");
    all
}

fn profile(name: &str) -> Profile {
    Catalog::builtin().unwrap().get(name).unwrap().clone()
}

struct Rig {
    _dir: tempfile::TempDir,
    emu: Arc<MrzReaderEmulator>,
    reader: MrzReader,
}

fn rig(p: &Profile, pace: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyMRZ");
    let emu = Arc::new(MrzReaderEmulator::start(p, &link, pace).unwrap());
    let reader = MrzReader::new(p, &link).unwrap();
    Rig {
        _dir: dir,
        emu,
        reader,
    }
}

impl Rig {
    /// Plays a document in the emulator's thread while the driver reads.
    async fn play_and_read(
        &mut self,
        lines: &'static [&'static str],
        faults: Vec<Fault>,
    ) -> Result<MrzRead, MrzReadError> {
        self.reader.connect().unwrap();
        let emu = self.emu.clone();
        let player = std::thread::spawn(move || emu.play(lines, &faults));
        let result = self.reader.read_document(Duration::from_secs(10), &opts()).await;
        player.join().unwrap().unwrap();
        result
    }

    async fn read_clean(&mut self, lines: &'static [&'static str]) {
        let got = self.play_and_read(lines, vec![]).await.unwrap();
        let expected = tamga_mrz::parse_lines(lines, &opts()).unwrap();
        assert_eq!(got.mrz, expected, "profile of {}", self.reader.path().display());
        assert!(got.mrz.valid);
    }
}

fn offset_of(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_reads_every_specimen_at_line_rate() {
    for p in reader_profiles() {
        let mut rig = rig(&p, true);
        for (name, lines) in specimens::ALL {
            let got = rig
                .play_and_read(lines, vec![])
                .await
                .unwrap_or_else(|e| panic!("{} {name}: {e}", p.name));
            assert_eq!(
                got.mrz,
                tamga_mrz::parse_lines(lines, &opts()).unwrap(),
                "{} {name}",
                p.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_before_a_frame_is_skipped() {
    for p in reader_profiles()
        .into_iter()
        .filter(|p| !p.mrz_framing.as_ref().unwrap().frameless())
    {
        let mut rig = rig(&p, false);
        let got = rig
            .play_and_read(
                specimens::TD3,
                vec![Fault::NoiseBefore(b"\x55\x00ZZ\x7f\x03".to_vec())],
            )
            .await;
        assert!(got.unwrap().mrz.valid, "{}", p.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_byte_never_yields_a_valid_record() {
    for p in reader_profiles() {
        let mut rig = rig(&p, false);
        let frame = rig.emu.encode(specimens::TD3);
        let at = offset_of(&frame, b"L898902C3") + 3;
        match rig
            .play_and_read(
                specimens::TD3,
                vec![Fault::Garble {
                    offset: at,
                    byte: 0xFF,
                }],
            )
            .await
        {
            Ok(read) => {
                assert!(!read.mrz.valid, "{}: garbled document accepted as valid", p.name);
                assert_eq!(read.mrz.checks.document_number, Some(false));
            }
            Err(MrzReadError::Frame(FrameError::Bcc { .. })) => {
                assert_eq!(
                    p.mrz_framing.as_ref().unwrap().bcc,
                    tamga_profiles::Bcc::Xor,
                    "{}",
                    p.name
                );
            }
            Err(e) => panic!("{}: unexpected {e}", p.name),
        }
        rig.read_clean(specimens::TD1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_cut_short_is_named() {
    for p in reader_profiles() {
        if p.mrz_framing.as_ref().unwrap().frameless() {
            continue; // covered by the silence test below: a frameless reader's document ends by silence
        }
        let mut rig = rig(&p, false);
        let err = rig
            .play_and_read(specimens::TD3, vec![Fault::CutLine { line: 2, keep: 40 }])
            .await
            .unwrap_err();
        match &err {
            MrzReadError::NotMrz {
                source: MrzError::LineLength {
                    line: 2, found: 40, ..
                },
                ..
            } => {}
            other => panic!("{}: expected line 2 too short, got {other}", p.name),
        }
        assert!(err.to_string().contains("line 2 has 40 characters"), "{err}");
        rig.read_clean(specimens::TD3).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_pause_mid_document_is_harmless() {
    for p in reader_profiles() {
        let mut rig = rig(&p, false);
        let idle = u64::from(p.mrz_framing.as_ref().unwrap().inter_byte_timeout_ms);
        let pause = Duration::from_millis(idle / 4);
        let got = rig
            .play_and_read(specimens::TD3, vec![Fault::Pause { offset: 30, pause }])
            .await;
        assert!(got.unwrap().mrz.valid, "{}", p.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_pause_mid_document_is_a_clear_error_then_reading_resumes() {
    for p in reader_profiles() {
        let mut rig = rig(&p, false);
        let idle = u64::from(p.mrz_framing.as_ref().unwrap().inter_byte_timeout_ms);
        let pause = Duration::from_millis(idle * 3);
        let err = rig
            .play_and_read(specimens::TD3, vec![Fault::Pause { offset: 30, pause }])
            .await
            .unwrap_err();
        match err {
            MrzReadError::Frame(FrameError::Truncated(_)) => {}
            MrzReadError::NotMrz { .. } if p.mrz_framing.as_ref().unwrap().frameless() => {}
            other => panic!("{}: {other}", p.name),
        }
        // The tail of the broken document arrives after the error; it must not pollute the next document.
        let tail = rig
            .reader
            .read_document(Duration::from_millis(idle * 3), &opts())
            .await;
        assert!(
            tail.is_err(),
            "{}: the tail of a broken document must not parse",
            p.name
        );
        rig.read_clean(specimens::TD2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_mid_document_then_replug_without_restart() {
    for p in reader_profiles() {
        let mut rig = rig(&p, false);
        let err = rig
            .play_and_read(specimens::TD3, vec![Fault::Disconnect { offset: 40 }])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                MrzReadError::Disconnected {
                    mid_document: true,
                    ..
                }
            ),
            "{}: expected a mid-document disconnect, got {err}",
            p.name
        );
        assert!(err.to_string().contains("scan it again"));
        assert!(!rig.reader.is_connected());
        // The cable comes back a little later; the same reader object picks it up.
        let emu = rig.emu.clone();
        let plug = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            emu.port().replug().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            emu.play(specimens::TD1, &[]).unwrap();
        });
        let read = rig
            .reader
            .read_document(Duration::from_secs(10), &opts())
            .await
            .unwrap();
        plug.join().unwrap();
        assert_eq!(
            read.mrz,
            tamga_mrz::parse_lines(specimens::TD1, &opts()).unwrap(),
            "{}",
            p.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_reader_and_silent_reader_end_in_clear_errors() {
    let p = profile("desko-penta-serial");
    let mut rig = rig(&p, false);
    rig.emu.port().unplug();
    let err = rig
        .reader
        .read_document(Duration::from_millis(400), &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, MrzReadError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("plug it in"));
    rig.emu.port().replug().unwrap();
    let err = rig
        .reader
        .read_document(Duration::from_millis(400), &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, MrzReadError::Timeout(_)), "{err}");
    assert!(rig.reader.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_framing_overflows_instead_of_hanging() {
    // The reader is set to a framing without ETX, but its profile expects one: frames never end.
    let p = profile("access-is-ocr315");
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyMRZ");
    let emu = MrzReaderEmulator::start(&profile("generic-mrz-raw"), &link, false).unwrap();
    let mut reader = MrzReader::new(&p, &link).unwrap();
    reader.connect().unwrap();
    let mut stream = vec![0x02];
    for _ in 0..8 {
        stream.extend(emu.encode(specimens::TD3));
    }
    emu.port().send(&stream, None).unwrap();
    let err = reader
        .read_document(Duration::from_secs(5), &opts())
        .await
        .unwrap_err();
    assert!(
        matches!(err, MrzReadError::Frame(FrameError::Overflow(512))),
        "{err}"
    );
    assert!(err.to_string().contains("frame_end"));
}
