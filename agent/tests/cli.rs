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
        .replace("127.0.0.1:4501\"", "127.0.0.1:4599\"");
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
        assert_eq!(stdout(&o), "http://127.0.0.1:4599/#token=00ff\n");
    }
}
