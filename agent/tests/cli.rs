//! The CLI contract: what scripts and technicians rely on (stdout JSON, exit codes, one-line reasons).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];

fn tamga(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tamga"));
    c.args(args)
        .env_remove("RUST_LOG")
        .env_remove("TAMGA_LOG")
        .env_remove("TAMGA_PROFILES_DIR");
    c
}

fn run(args: &[&str]) -> Output {
    tamga(args).output().unwrap()
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = tamga(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn mrz_parse_prints_the_contract_object_and_exits_0() {
    let o = run(&["mrz", "parse", "--today", "2026-11-21", TD3[0], TD3[1]]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim_end(),
        r#"{"format":"TD3","document_code":"P","issuing_state":"UTO","surname":"ERIKSSON","given_names":"ANNA MARIA","document_number":"L898902C3","nationality":"UTO","birth_date":"1974-08-12","sex":"F","expiry_date":"2012-04-15","optional_data":"ZE184226B","checks":{"document_number":true,"birth_date":true,"expiry_date":true,"optional_data":true,"composite":true},"valid":true,"corrections":[],"warnings":["expired"]}"#
    );
    assert_eq!(stdout(&o).lines().count(), 1);
}

#[test]
fn mrz_parse_reads_stdin_and_exits_1_on_a_failed_check() {
    let input = format!(
        "\u{2}{}\r\n{}\r\n\u{3}",
        TD3[0],
        TD3[1].replace("<<<<<10", "<<<<<11")
    );
    let o = run_stdin(&["mrz", "parse"], &input);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["checks"]["composite"], false);
    assert_eq!(v["checks"]["document_number"], true);
}

#[test]
fn mrz_parse_lists_suggestions_and_exits_1_when_a_visa_check_digit_was_misread() {
    // Issue #12: MRV-B document number L8988S01C, check digit 3 misread as 0. S -> 5 satisfies 0, but a visa has
    // no composite to confirm it: the number stays as read, the record is invalid, the candidate is a suggestion.
    let o = run(&[
        "mrz",
        "parse",
        "--today",
        "2026-11-21",
        "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
        "L8988S01C0XXX4009078F9612109<<<<<<<<",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["document_number"], "L8988S01C");
    assert_eq!(v["checks"]["document_number"], false);
    assert_eq!(v["corrections"], serde_json::json!([]));
    assert_eq!(
        v["suggestions"],
        serde_json::json!([{"field": "document_number", "value": "L8988501C", "line": 2, "position": 6,
                            "from": "S", "to": "5", "satisfies": ["document_number"]}])
    );
}

#[test]
fn mrz_parse_exits_2_with_a_one_line_reason_when_not_an_mrz() {
    let o = run(&["mrz", "parse", TD3[0], &TD3[1][..40]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("line 2 has 40 characters"), "{e}");
    let o = run_stdin(&["mrz", "parse"], "hello\n");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn td1_has_optional_data_2_and_no_optional_data_check() {
    let o = run(&[
        "mrz",
        "parse",
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        "7408122F1204159UTO<<<<<<<<<<<6",
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["optional_data_2"], "");
    assert!(v["checks"].get("optional_data").is_none());
    assert_eq!(v["format"], "TD1");
}

#[test]
fn profiles_list_show_validate() {
    let o = run(&["profiles", "list", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for n in [
        "3m-rte6701",
        "access-is-ocr315",
        "desko-penta-serial",
        "generic-mrz-raw",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    let o = run(&["profiles", "show", "3m-rte6701"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["mrz_framing"]["bcc"], "xor");
    let o = run(&["profiles", "show", "no-such"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tamga profiles list"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "schema = 1\nname = \"Bad Name\"\n").unwrap();
    let good = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../firmware-profiles/profiles/3m-rte6701.toml");
    let o = run(&[
        "profiles",
        "validate",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("3m-rte6701.toml: ok (3m-rte6701)"), "{out}");
    assert!(out.contains(&format!("{}:", bad.display())), "{out}");
}

#[test]
fn devices_scan_lists_ports_as_json() {
    let o = run(&["devices", "scan", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["serial"].is_array());
    assert!(
        v["usb"].is_array(),
        "USB devices are listed, or why they cannot be: {v}"
    );
}

#[test]
fn devices_scan_lists_sbi_services() {
    let pki = tamga_sim::sbi::DeviceProviderPki::shared().unwrap().clone();
    let sim = tamga_sim::sbi::SbiService::start(
        tamga_sim::sbi::SbiServiceConfig {
            ports: 47400..=47420,
            serial: "TSIM-SCAN".into(),
            ..Default::default()
        },
        pki,
    )
    .unwrap();
    let o = run(&["devices", "scan", "--json", "--sbi-ports", "47400-47420"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let sbi = v["sbi"].as_array().unwrap();
    let d = sbi
        .iter()
        .find(|d| d["serial"] == "TSIM-SCAN")
        .unwrap_or_else(|| panic!("the simulated service is listed: {v}"));
    assert_eq!(d["port"], sim.port());
    assert_eq!(d["make"], "Tamga");
    assert_eq!(d["model"], "SIM-SLAP-442");
    assert_eq!(d["type"], "Finger Slap");
    assert_eq!(d["status"], "Ready");
    assert_eq!(d["certification"], "L0");
    // The table names it too.
    let o = run(&["devices", "scan", "--sbi-ports", "47400-47420"]);
    assert!(stdout(&o).contains("TSIM-SCAN"), "{}", stdout(&o));
}

#[test]
fn mrz_read_from_a_simulated_reader_with_json_logs() {
    let profile = tamga_profiles::Catalog::builtin()
        .unwrap()
        .get("access-is-ocr315")
        .unwrap()
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyACM0");
    let emu = tamga_sim::mrz_reader::MrzReaderEmulator::start(&profile, &link, true).unwrap();
    let child = tamga(&[
        "--log-format",
        "json",
        "--log",
        "info",
        "mrz",
        "read",
        "--profile",
        "access-is-ocr315",
        "--port",
        link.to_str().unwrap(),
        "--timeout",
        "20",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Whether the driver opens the port before or after the document is sent, the pty keeps the bytes.
    std::thread::sleep(Duration::from_millis(200));
    emu.play(&TD3, &[]).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["document_number"], "L898902C3");
    let logs: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "document read" && l["span"]["name"] == "mrz_read")
    );
}

#[test]
fn mrz_read_exits_3_when_the_reader_is_absent() {
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("ttyUSB9");
    let o = run(&[
        "mrz",
        "read",
        "--profile",
        "3m-rte6701",
        "--port",
        port.to_str().unwrap(),
        "--timeout",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("not connected"), "{}", stderr(&o));
}

#[test]
fn demo_reads_every_specimen_through_every_reader_profile() {
    let o = run(&["demo-readers", "--no-pace"]);
    assert!(o.status.code() == Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4 * 5);
    assert!(lines.iter().all(|l| l["mrz"]["valid"] == true));
}

fn zfm_rig(
    profile: &str,
) -> (
    tempfile::TempDir,
    tamga_sim::zfm::ZfmEmulator,
    tamga_profiles::Profile,
) {
    let p = tamga_profiles::Catalog::builtin()
        .unwrap()
        .get(profile)
        .unwrap()
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyFP");
    let emu = tamga_sim::zfm::ZfmEmulator::start(&p, &link, false).unwrap();
    (dir, emu, p)
}

#[test]
fn devices_info_reports_the_module() {
    let (_dir, emu, _) = zfm_rig("grow-r503");
    let o = run(&[
        "devices",
        "info",
        "--profile",
        "grow-r503",
        "--port",
        emu.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["baud"], 57600);
    assert_eq!(v["product"]["image_width"], 192);
    assert!(v["firmware"].as_str().unwrap().contains("1.2"));
}

#[test]
fn devices_configure_refuses_values_the_model_does_not_allow() {
    let (_dir, emu, _) = zfm_rig("grow-r503");
    let port = emu.path().to_str().unwrap().to_owned();
    let o = run(&[
        "devices",
        "configure",
        "--profile",
        "grow-r503",
        "--port",
        &port,
        "--baud",
        "28800",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("baud rate 28800 is not allowed"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "devices",
        "configure",
        "--profile",
        "grow-r503",
        "--port",
        &port,
        "--baud",
        "115200",
        "--security",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("after a power cycle"), "{}", stdout(&o));
}

#[test]
fn capture_finger_writes_a_png_and_reports_quality() {
    let (dir, emu, p) = zfm_rig("zhiantec-r307");
    let m = p.fingerprint.as_ref().unwrap();
    emu.place_finger(tamga_sim::fingerprint::FingerSpec::good(
        5,
        2,
        256,
        288,
        m.resolution_ppi,
    ));
    let out = dir.path().join("right-index.png");
    let o = run(&[
        "capture",
        "finger",
        "--profile",
        "zhiantec-r307",
        "--port",
        emu.path().to_str().unwrap(),
        "--position",
        "right-index",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["position_code"], 2);
    assert_eq!(v["accepted"], true);
    assert!(v["quality"]["score"].as_u64().unwrap() >= 40);
    assert!(
        v["quality"]["features"]["orientation_certainty"]
            .as_f64()
            .is_some()
    );
    assert!(stderr(&o).contains("uploading image 100%"), "{}", stderr(&o));
    let png = std::fs::read(&out).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn capture_finger_below_threshold_keeps_the_best_and_exits_1() {
    let (dir, emu, _) = zfm_rig("hlk-as608");
    let mut spec = tamga_sim::fingerprint::FingerSpec::good(6, 7, 256, 288, 500);
    spec.noise = 90.0;
    emu.place_finger(spec);
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[fingerprint_policy]\nthreshold = 95\nattempts = 2\n").unwrap();
    let out = dir.path().join("f.png");
    let o = run(&[
        "capture",
        "finger",
        "--profile",
        "hlk-as608",
        "--port",
        emu.path().to_str().unwrap(),
        "--position",
        "left-index",
        "--out",
        out.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("below threshold") && text.contains("->"), "{text}");
    assert!(stderr(&o).contains("1 attempt(s) left"), "{}", stderr(&o));
    assert!(out.exists());
}

const PORTRAIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../quality/tests/fixtures/photos/astronaut.png"
);

#[test]
fn photo_check_json_contract_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[photo_policy]\ncrop_width = 140\ncrop_height = 180\nbackground_uniformity_max = 32.0\n",
    )
    .unwrap();
    let o = run(&[
        "photo",
        "check",
        PORTRAIT,
        "--json",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["accepted"], true);
    let face = &v["faces"][0];
    for k in ["x", "y", "width", "height"] {
        assert!(face[k].is_number(), "{face}");
    }
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["name"].is_string()
        && c["passed"].is_boolean()
        && c.get("threshold").is_some()
        && c["advice"].is_string()));
    // The default policy asks for a 413x531 crop: a 512 px portrait is refused with advice.
    let o = run(&["photo", "check", PORTRAIT]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("resolution") && stdout(&o).contains("closer"),
        "{}",
        stdout(&o)
    );
    let bogus = dir.path().join("not-an-image.jpg");
    std::fs::write(&bogus, "hello").unwrap();
    let o = run(&["photo", "check", bogus.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn photo_crop_writes_a_35x45_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[photo_policy]\ncrop_width = 140\ncrop_height = 180\nbackground_uniformity_max = 32.0\n",
    )
    .unwrap();
    let out = dir.path().join("crop.jpg");
    let o = run(&[
        "photo",
        "crop",
        PORTRAIT,
        "--out",
        out.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let jpeg = std::fs::read(&out).unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
}

#[test]
fn capture_photo_from_the_simulated_camera() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("photo.jpg");
    let crop = dir.path().join("crop.jpg");
    let o = run(&[
        "capture",
        "photo",
        "--profile",
        "leica-m9",
        "--device",
        "simulated",
        "--out",
        out.to_str().unwrap(),
        "--crop",
        crop.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["accepted"], true);
    assert!(stderr(&o).contains("transferring photo 100%"));
    assert!(std::fs::metadata(&out).unwrap().len() > 50_000);
    assert!(std::fs::metadata(&crop).unwrap().len() <= 150_000);
    // No camera on the bus: a clear device error.
    let o = run(&[
        "capture",
        "photo",
        "--profile",
        "leica-m9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("not connected"), "{}", stderr(&o));
}

#[test]
fn outbox_status_shows_the_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&["outbox", "status", "--data", d, "--reserve", "0", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["accepting_sessions"], true);
    let o = run(&[
        "outbox",
        "status",
        "--data",
        d,
        "--reserve",
        "18446744073709551615",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("RESERVE REACHED"), "{}", stdout(&o));
}

#[test]
fn demo_runs_an_applicant_end_to_end_to_a_receipt() {
    let o = run(&["demo", "--applicants", "1", "--port", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("local API") && out.contains("token"), "{out}");
    assert!(
        out.contains("1 bundle(s) delivered with verified receipts"),
        "{out}"
    );
}

#[test]
fn page_prints_the_operator_page_address_with_its_key_and_says_what_is_missing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let example = include_str!("../../examples/station.toml")
        .replace("/var/lib/tamga", data.to_str().unwrap())
        .replace("127.0.0.1:4480\"", "127.0.0.1:4499\"");
    let config = dir.path().join("station.toml");
    std::fs::write(&config, example).unwrap();
    let cfg = config.to_str().unwrap();

    // Before the daemon's first start there is no key: the error says how to get one.
    let o = run(&["page", "--config", cfg]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("api.token does not exist yet") && stderr(&o).contains("tamga run --config"));

    // A key readable by others is refused, with the fix.
    let token = data.join("api.token");
    std::fs::write(&token, "00ff\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["page", "--config", cfg]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));

    // 0600 (the daemon's user) and 0640 (operators in the daemon's group) are both fine.
    for mode in [0o600, 0o640] {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = run(&["page", "--config", cfg]);
        assert!(o.status.success(), "{mode:o}: {}", stderr(&o));
        assert_eq!(stdout(&o), "http://127.0.0.1:4499/#token=00ff\n");
    }
}

/// A simulated SBI slap device service on the first free port of `ports`, and its device-provider CA in a file.
fn sbi_sim(
    ports: std::ops::RangeInclusive<u16>,
    serial: &str,
) -> (tamga_sim::sbi::SbiService, tempfile::TempDir, String) {
    let pki = tamga_sim::sbi::DeviceProviderPki::shared().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("device-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let sim = tamga_sim::sbi::SbiService::start(
        tamga_sim::sbi::SbiServiceConfig {
            ports,
            serial: serial.into(),
            seed: 11,
            ..Default::default()
        },
        pki,
    )
    .unwrap();
    let ca = ca.display().to_string();
    (sim, dir, ca)
}

/// Ports of the simulated SBI services of the `capture slap` tests (each takes the first free one); `--sbi auto`
/// has its own range so that it finds only its own.
const SLAP_PORTS: std::ops::RangeInclusive<u16> = 47430..=47469;

/// Width, height and pixels per metre of a PNG, and Tamga's quality score of its pixels.
fn png_facts(path: &std::path::Path) -> (u32, u32, u32, u8) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let info = r.info();
    let (w, h) = (info.width, info.height);
    let dims = info.pixel_dims.unwrap();
    assert_eq!(dims.unit, png::Unit::Meter);
    assert_eq!(dims.xppu, dims.yppu);
    assert_eq!(
        (info.color_type, info.bit_depth),
        (png::ColorType::Grayscale, png::BitDepth::Eight)
    );
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    r.next_frame(&mut buf).unwrap();
    let q = tamga_quality::fingerprint::assess(&buf, w as usize, h as usize, 500);
    (w, h, dims.xppu, q.score)
}

fn pngs_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

#[test]
fn capture_slap_writes_four_pngs_and_the_json_contract() {
    let (sim, dir, ca) = sbi_sim(SLAP_PORTS, "TSIM-SLAP");
    let out = dir.path().join("left");
    let port = sim.port().to_string();
    let o = run(&[
        "capture",
        "slap",
        "--sbi",
        &port,
        "--slap",
        "left",
        "--device-ca",
        &ca,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        pngs_in(&out),
        [
            "left-index.png",
            "left-little.png",
            "left-middle.png",
            "left-ring.png"
        ]
    );
    let mut fingers = Vec::new();
    for pos in ["left-index", "left-middle", "left-ring", "left-little"] {
        let file = out.join(format!("{pos}.png"));
        let (w, h, ppm, score) = png_facts(&file);
        assert_eq!((w, h), (192, 256), "{pos}: the simulator's finger size");
        assert_eq!(ppm, 19685, "{pos}: 500 ppi");
        fingers.push(format!(
            r#"{{"position":"{pos}","file":"{}","device_quality":81.0,"quality":{score}}}"#,
            file.display()
        ));
    }
    let expected = format!(
        r#"{{"device":{{"port":{port},"make":"Tamga","model":"SIM-SLAP-442","serial":"TSIM-SLAP","certification":"L0"}},"slap":"left","fingers":[{}],"exceptions":[],"signature":"verified","hash_chain":"verified"}}"#,
        fingers.join(",")
    );
    assert_eq!(stdout(&o).trim_end(), expected);
    assert_eq!(stdout(&o).lines().count(), 1);
}

#[test]
fn capture_slap_with_an_exception_writes_three_and_lists_it() {
    let (sim, dir, ca) = sbi_sim(SLAP_PORTS, "TSIM-SLAP-EXC");
    let out = dir.path().join("left");
    let o = run(&[
        "capture",
        "slap",
        "--sbi",
        &sim.port().to_string(),
        "--slap",
        "left",
        "--exception",
        "left-ring=bandaged",
        "--device-ca",
        &ca,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        pngs_in(&out),
        ["left-index.png", "left-little.png", "left-middle.png"]
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let positions: Vec<_> = v["fingers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["position"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(positions, ["left-index", "left-middle", "left-little"]);
    assert_eq!(
        v["exceptions"],
        serde_json::json!([{"position": "left-ring", "reason": "bandaged"}])
    );
}

#[test]
fn capture_slap_refuses_exceptions_outside_the_slap_and_bad_usage_with_2() {
    let (sim, dir, ca) = sbi_sim(SLAP_PORTS, "TSIM-SLAP-USAGE");
    let out = dir.path().join("out");
    let port = sim.port().to_string();
    for (exception, says) in [
        ("right-index=bandaged", "not a finger of the left slap"),
        ("left-index=sunburnt", "amputated, bandaged or unable-to-capture"),
        ("left-index", "POSITION=REASON"),
    ] {
        let o = run(&[
            "capture",
            "slap",
            "--sbi",
            &port,
            "--slap",
            "left",
            "--exception",
            exception,
            "--device-ca",
            &ca,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{exception}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{exception}: {}", stderr(&o));
    }
    let o = run(&[
        "capture",
        "slap",
        "--sbi",
        &port,
        "--slap",
        "left",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "--device-ca is required");
    assert!(!out.exists());
}

#[test]
fn capture_slap_auto_finds_the_one_slap_device_and_refuses_to_choose_among_several() {
    const AUTO: std::ops::RangeInclusive<u16> = 47470..=47479;
    let (sim, dir, ca) = sbi_sim(AUTO, "TSIM-AUTO-1");
    let out = dir.path().join("thumbs");
    let args = |out: &std::path::Path| {
        vec![
            "capture".to_owned(),
            "slap".into(),
            "--sbi".into(),
            "auto".into(),
            "--sbi-ports".into(),
            "47470-47479".into(),
            "--slap".into(),
            "thumbs".into(),
            "--device-ca".into(),
            ca.clone(),
            "--out".into(),
            out.display().to_string(),
            "--json".into(),
        ]
    };
    let a = args(&out);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["device"]["port"], sim.port());
    assert_eq!(v["device"]["serial"], "TSIM-AUTO-1");
    assert_eq!(pngs_in(&out), ["left-thumb.png", "right-thumb.png"]);

    let (second, _dir2, _) = sbi_sim(AUTO, "TSIM-AUTO-2");
    let out = dir.path().join("again");
    let a = args(&out);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    for s in [
        "TSIM-AUTO-1",
        "TSIM-AUTO-2",
        &sim.port().to_string(),
        &second.port().to_string(),
        "--sbi PORT",
    ] {
        assert!(e.contains(s), "{s} in: {e}");
    }
    assert!(!out.exists());
}

#[test]
fn capture_slap_refuses_what_fails_verification_with_3_and_writes_nothing() {
    let (sim, dir, ca) = sbi_sim(SLAP_PORTS, "TSIM-SLAP-BAD");
    let port = sim.port().to_string();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(
        &other_ca,
        &tamga_sim::sbi::DeviceProviderPki::shared().unwrap().other_ca_pem,
    )
    .unwrap();
    type Knob = fn(&mut tamga_sim::sbi::SbiKnobs);
    let cases: [(&str, Knob, &str); 4] = [
        ("bad-signature", |k| k.bad_signature = true, "signature"),
        (
            "untrusted-certificate",
            |k| k.untrusted_certificate = true,
            "chain",
        ),
        ("broken-hash-chain", |k| k.broken_hash_chain = true, "hash"),
        ("untrusted-ca", |_| {}, "chain"),
    ];
    for (name, knob, says) in cases {
        *sim.knobs() = tamga_sim::sbi::SbiKnobs::default();
        knob(&mut sim.knobs());
        let out = dir.path().join(name);
        let ca = if name == "untrusted-ca" {
            other_ca.display().to_string()
        } else {
            ca.clone()
        };
        let o = run(&[
            "capture",
            "slap",
            "--sbi",
            &port,
            "--slap",
            "right",
            "--device-ca",
            &ca,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(3), "{name}: {}", stderr(&o));
        assert!(stderr(&o).to_lowercase().contains(says), "{name}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{name}: {}", stdout(&o));
        assert!(!out.exists(), "{name}: nothing is written");
    }
}

#[test]
fn capture_slap_below_the_policy_writes_the_files_and_exits_1() {
    let (sim, dir, ca) = sbi_sim(SLAP_PORTS, "TSIM-SLAP-LOW");
    // The simulator's low-quality prints (low contrast, noise, partial contact) score in the mid 40s on Tamga's
    // score and its good ones in the 80s: a threshold of 60 lies between.
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[fingerprint_policy]\nthreshold = 60\nattempts = 1\n").unwrap();
    let capture = |out: &std::path::Path| {
        run(&[
            "capture",
            "slap",
            "--sbi",
            &sim.port().to_string(),
            "--slap",
            "right",
            "--device-ca",
            &ca,
            "--policy",
            policy.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
    };
    let o = capture(&dir.path().join("good"));
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), stdout(&o));
    sim.knobs().low_quality = true;
    let out = dir.path().join("right");
    let o = capture(&out);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stderr(&o), stdout(&o));
    assert_eq!(pngs_in(&out).len(), 4);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for f in v["fingers"].as_array().unwrap() {
        assert_eq!(f["device_quality"], 22.0);
    }
    assert!(
        v["fingers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["quality"].as_u64().unwrap() < 60),
        "{v}"
    );
    assert!(stderr(&o).contains("below 60"), "{}", stderr(&o));
}

#[test]
fn capture_slap_decodes_uncompressed_records_and_refuses_png_bytes_labelled_jpeg2000_with_3() {
    let (sim, dir, ca) = sbi_sim(SLAP_PORTS, "TSIM-SLAP-CODEC");
    let capture = |out: &std::path::Path| {
        run(&[
            "capture",
            "slap",
            "--sbi",
            &sim.port().to_string(),
            "--slap",
            "thumbs",
            "--device-ca",
            &ca,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
    };
    sim.knobs().uncompressed_images = true;
    let raw = dir.path().join("raw");
    let o = capture(&raw);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(pngs_in(&raw), ["left-thumb.png", "right-thumb.png"]);
    let (w, h, ppm, _) = png_facts(&raw.join("left-thumb.png"));
    assert_eq!((w, h, ppm), (192, 256, 19685));

    *sim.knobs() = tamga_sim::sbi::SbiKnobs::default();
    sim.knobs().jpeg2000_label = true;
    let j2k = dir.path().join("j2k");
    let o = capture(&j2k);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // JPEG 2000 is decoded now: PNG bytes under its code are not a codestream.
    assert!(stderr(&o).contains("JPEG 2000"), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not decode"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("not yet supported"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    assert!(!j2k.exists());
}

/// OpenJPEG through Python's Pillow (its wheels carry OpenJPEG), as an encoder independent of the agent's decoder.
const PILLOW_JPEG2000: &str = r#"
import io, sys
from PIL import Image
w, h, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
im = Image.frombytes("L", (w, h), sys.stdin.buffer.read())
out = io.BytesIO()
im.save(out, format="JPEG2000", irreversible=False, no_jp2=(kind == "j2k"))
sys.stdout.buffer.write(out.getvalue())
"#;

fn pillow_has_jpeg2000() -> bool {
    std::process::Command::new("python3")
        .args([
            "-c",
            "from PIL import features; assert features.check('jpg_2000')",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn png_pixels(path: &std::path::Path) -> Vec<u8> {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let n = r.next_frame(&mut buf).unwrap().buffer_size();
    buf.truncate(n);
    buf
}

#[test]
fn capture_slap_with_the_simulators_jpeg2000_records_writes_the_same_pngs_as_with_png_records() {
    let (sim, dir, ca) = sbi_sim(SLAP_PORTS, "TSIM-SLAP-OWNJ2K");
    let capture = |out: &std::path::Path| {
        run(&[
            "capture",
            "slap",
            "--sbi",
            &sim.port().to_string(),
            "--slap",
            "right",
            "--device-ca",
            &ca,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
    };
    // The default: JPEG 2000 lossless by the simulator's own encoder, as MOSIP registration devices send.
    let j2k = dir.path().join("j2k");
    let o = capture(&j2k);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    sim.knobs().png_images = true;
    let png = dir.path().join("png");
    let o = capture(&png);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let names = pngs_in(&png);
    assert_eq!(names.len(), 4);
    assert_eq!(pngs_in(&j2k), names);
    for name in &names {
        assert_eq!(png_facts(&png.join(name)), png_facts(&j2k.join(name)), "{name}");
        assert!(
            png_pixels(&png.join(name)) == png_pixels(&j2k.join(name)),
            "{name}: the pixels differ"
        );
    }
}

#[test]
fn capture_slap_with_openjpeg_jpeg2000_records_writes_the_same_pngs_as_with_png_records() {
    if !pillow_has_jpeg2000() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Pillow with JPEG 2000 (python3 -m pip install pillow)"
        );
        eprintln!("skipped: the independent JPEG 2000 encoder (python3 -m pip install pillow) is missing");
        return;
    }
    let (sim, dir, ca) = sbi_sim(SLAP_PORTS, "TSIM-SLAP-J2K");
    let capture = |out: &std::path::Path| {
        run(&[
            "capture",
            "slap",
            "--sbi",
            &sim.port().to_string(),
            "--slap",
            "left",
            "--device-ca",
            &ca,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
    };
    sim.knobs().png_images = true;
    let png = dir.path().join("png");
    let o = capture(&png);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    sim.knobs().png_images = false;

    // OpenJPEG's raw codestreams and JP2 files in turn, as both appear in the wild.
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    sim.knobs().jpeg2000_encoder = Some(tamga_sim::sbi::Jpeg2000Encoder(std::sync::Arc::new(
        move |w: u32, h: u32, px: &[u8]| {
            use std::io::Write as _;
            let kind = if seen
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .is_multiple_of(2)
            {
                "j2k"
            } else {
                "jp2"
            };
            let mut child = std::process::Command::new("python3")
                .args(["-c", PILLOW_JPEG2000, &w.to_string(), &h.to_string(), kind])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?;
            child
                .stdin
                .take()
                .ok_or("no stdin")?
                .write_all(px)
                .map_err(|e| e.to_string())?;
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            let magic_ok =
                out.stdout.starts_with(&[0xff, 0x4f]) || out.stdout.starts_with(&[0, 0, 0, 0x0c, b'j', b'P']);
            if !out.status.success() || !magic_ok {
                return Err(format!("Pillow failed: {}", out.status));
            }
            Ok(out.stdout)
        },
    )));
    let j2k = dir.path().join("j2k");
    let o = capture(&j2k);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) >= 4);
    let names = pngs_in(&png);
    assert_eq!(names.len(), 4);
    assert_eq!(pngs_in(&j2k), names);
    for name in &names {
        assert_eq!(png_facts(&png.join(name)), png_facts(&j2k.join(name)), "{name}");
        assert!(
            png_pixels(&png.join(name)) == png_pixels(&j2k.join(name)),
            "{name}: the pixels differ"
        );
    }
}
