//! What a technician sees when a profile is wrong: file, line, column, key, and the fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use tamga_profiles::{Catalog, Profile, ProfileError};

const GOOD: &str = r#"schema = 1
name = "test-reader"
kind = "mrz-reader"
protocol = "mrz-serial"
vendor = "ACME"
model = "R1"

[serial]
baud = 9600
data_bits = 8
parity = "none"
stop_bits = 1

[mrz_framing]
frame_start = [0x02]
line_separator = "cr"
frame_end = [0x03]
"#;

fn err(src: &str) -> (usize, usize, String) {
    match Profile::parse("x.toml", src) {
        Err(ProfileError::Invalid {
            file,
            line,
            column,
            message,
        }) => {
            assert_eq!(file, "x.toml");
            (line, column, message)
        }
        other => panic!("expected an invalid profile, got {other:?}"),
    }
}

#[test]
fn good_profile_parses() {
    let p = Profile::parse("x.toml", GOOD).unwrap();
    assert_eq!(p.serial.unwrap().summary(), "9600 8N1");
    assert_eq!(p.mrz_framing.unwrap().frame_end, vec![3]);
}

#[test]
fn bad_baud_names_line_column_and_fix() {
    let (line, col, msg) = err(&GOOD.replace("baud = 9600", "baud = 9601"));
    assert_eq!((line, col), (9, 8));
    assert!(msg.contains("serial.baud") && msg.contains("115200"), "{msg}");
}

#[test]
fn typo_in_a_key_is_caught() {
    let (line, _, msg) = err(&GOOD.replace("data_bits = 8", "databits = 8"));
    assert_eq!(line, 10);
    assert!(msg.contains("databits"), "{msg}");
}

#[test]
fn syntax_error_has_a_position() {
    let (line, _, _) = err(&GOOD.replace("parity = \"none\"", "parity = none"));
    assert_eq!(line, 11);
}

#[test]
fn envelope_bytes_that_collide_with_mrz_text_are_refused() {
    let (line, col, msg) = err(&GOOD.replace("frame_end = [0x03]", "frame_end = [0x3C]"));
    assert_eq!((line, col), (17, 13));
    assert!(msg.contains("0x3C") && msg.contains("control bytes"), "{msg}");
}

#[test]
fn half_an_envelope_is_refused() {
    let (_, _, msg) = err(&GOOD.replace("frame_end = [0x03]\n", ""));
    assert!(msg.contains("give both"), "{msg}");
}

#[test]
fn missing_serial_table() {
    let src = GOOD.split("[serial]").next().unwrap().to_owned() + "[mrz_framing]\nline_separator = \"cr\"\n";
    let (line, _, msg) = err(&src);
    assert_eq!(line, 4, "points at the protocol that needs it");
    assert!(msg.contains("[serial]"), "{msg}");
}

#[test]
fn directory_overrides_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let src = GOOD.replace("test-reader", "3m-rte6701");
    std::fs::write(dir.path().join("3m-rte6701.toml"), src).unwrap();
    let cat = Catalog::with_dir(dir.path()).unwrap();
    assert_eq!(cat.get("3m-rte6701").unwrap().vendor, "ACME");
    let e = cat.get("nope").unwrap_err().to_string();
    assert!(e.contains("desko-penta-serial"), "{e}");
}

const CAMERA: &str = r#"schema = 1
name = "test-camera"
kind = "camera"
protocol = "ptp-usb"
vendor = "ACME"
model = "C1"

[camera]
live_view = "none"
"#;

#[test]
fn camera_live_view_is_auto_unless_turned_off_and_a_bad_value_is_located() {
    use tamga_profiles::LiveView;
    let p = Profile::parse("x.toml", CAMERA).unwrap();
    assert_eq!(p.camera.unwrap().live_view, LiveView::None);
    let p = Profile::parse("x.toml", &CAMERA.replace("live_view = \"none\"\n", "")).unwrap();
    assert_eq!(p.camera.unwrap().live_view, LiveView::Auto);
    let (line, _, msg) = err(&CAMERA.replace("\"none\"", "\"sometimes\""));
    assert_eq!(line, 9);
    assert!(msg.contains("sometimes") && msg.contains("auto"), "{msg}");
}
