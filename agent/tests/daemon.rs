//! `tamga run --config FILE` as a technician starts it: it serves the operator page and the API on the configured
//! address, in the configured language, and its own page's origin may call the API without being listed; it says
//! at start what it found; the page works on any loopback address it is configured on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::process::{Command, Stdio};
use std::time::Duration;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamga_run_serves_the_operator_page_in_the_configured_language() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_tamga"))
        .args(["certs", "init", "--station", "KZ-ALA-001-W01", "--dir"])
        .arg(&pki)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The example configuration, on this machine's folders, with no devices and an origin list that does not name
    // the page's own origin.
    let example = include_str!("../../examples/station.toml");
    let head = &example[..example.find("[[devices]]").unwrap()];
    let config = head
        .replace("/var/lib/tamga", data.to_str().unwrap())
        .replace("/etc/tamga/pki", pki.to_str().unwrap())
        .replace("127.0.0.1:4480\"", &format!("127.0.0.1:{port}\""))
        .replace(
            "allowed_origins = [\"http://127.0.0.1:4480\", \"http://localhost:4480\"]",
            "allowed_origins = []",
        )
        .replace("language = \"ru\"", "language = \"kk\"")
        .replace("token_group_readable = false", "token_group_readable = true")
        .replace("reserve_bytes = 1073741824", "reserve_bytes = 0");
    let config_path = dir.path().join("station.toml");
    std::fs::write(&config_path, config).unwrap();
    let _daemon = Killed(
        Command::new(env!("CARGO_BIN_EXE_tamga"))
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        if let Ok(r) = http.get(format!("{base}/")).send().await {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "tamga run did not serve");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/ui/app.js"));
    // The key is readable by the daemon's group (the operators' accounts), by nobody else.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("api.token"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    // `tamga page` prints the address with the key the daemon made.
    let url = Command::new(env!("CARGO_BIN_EXE_tamga"))
        .arg("page")
        .arg("--config")
        .arg(&config_path)
        .output()
        .unwrap();
    let url = String::from_utf8(url.stdout).unwrap();
    let token = url.trim().split("#token=").nth(1).unwrap().to_owned();
    assert_eq!(url.trim(), format!("{base}/#token={token}"));
    let station: serde_json::Value = http
        .get(format!("{base}/v1/station"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(station["language"], "kk", "{station}");
    assert_eq!(station["station_id"], "KZ-ALA-001-W01");
    // The page posts with its own Origin, which the configuration did not list; a foreign origin is refused.
    for (origin, status) in [(base.clone(), 201), ("http://evil.example".to_owned(), 403)] {
        let r = http
            .post(format!("{base}/v1/sessions"))
            .bearer_auth(&token)
            .header("origin", &origin)
            .json(&serde_json::json!({"operator_id": "op-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{origin}: {}", r.text().await.unwrap());
    }
}

/// A station's folders (a development PKI, a data folder) and a configuration from the example with `edit`
/// applied; returns the configuration's path.
fn station(dir: &std::path::Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let pki = dir.join("pki");
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_tamga"))
        .args(["certs", "init", "--station", "KZ-ALA-001-W01", "--dir"])
        .arg(&pki)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let config = include_str!("../../examples/station.toml")
        .replace("/var/lib/tamga", data.to_str().unwrap())
        .replace("/etc/tamga/pki", pki.to_str().unwrap())
        .replace("reserve_bytes = 1073741824", "reserve_bytes = 0");
    let path = dir.join("station.toml");
    std::fs::write(&path, edit(config)).unwrap();
    path
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// With every device absent and the central system unreachable, `tamga run` says so at its default log level, once:
/// each device with the port or USB selector it looked for, the central link, the outbox's backlog.
#[test]
fn tamga_run_says_at_start_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port("127.0.0.1");
    let dead = free_port("127.0.0.1");
    let config = station(dir.path(), |c| {
        c.replace("127.0.0.1:4480\"", &format!("127.0.0.1:{port}\""))
            .replace("/dev/serial/by-id/usb-DESKO_PENTA-if00", "/nonexistent/ttyMRZ")
            .replace(
                "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0",
                "/nonexistent/ttyFP",
            )
            .replace(
                "https://central.example.invalid:8443",
                &format!("https://127.0.0.1:{dead}"),
            )
    });
    let log = dir.path().join("stderr.log");
    let mut daemon = Killed(
        Command::new(env!("CARGO_BIN_EXE_tamga"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env_remove("TAMGA_LOG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let wanted = [
        "/nonexistent/ttyMRZ",
        "/nonexistent/ttyFP",
        "04b0:010d",
        "central system unreachable",
        "outbox backlog",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if wanted.iter().all(|w| text.contains(w)) {
            break text;
        }
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "tamga run stopped: {text}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the start-up report lacks some of {wanted:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Missing devices are warnings, each named once.
    for w in ["/nonexistent/ttyMRZ", "/nonexistent/ttyFP", "04b0:010d"] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(w)).collect();
        assert_eq!(lines.len(), 1, "{w}: {lines:?}");
        assert!(lines[0].contains("WARN"), "{}", lines[0]);
    }
    assert!(text.contains(&format!("https://127.0.0.1:{dead}")), "{text}");
    // SIGTERM stops it gracefully, with exit status 0.
    let pid = daemon.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tamga run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("SIGTERM: stopping") && text.contains("stopped"),
        "{text}"
    );
}

/// The page and the API answer on the address they are configured on, whatever loopback address or port it is:
/// the Host check follows the bound address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_on_any_configured_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port("127.0.0.2");
    let config = station(dir.path(), |c| {
        let head = c[..c.find("[[devices]]").unwrap()].to_owned();
        head.replace("127.0.0.1:4480\"", &format!("127.0.0.2:{port}\""))
    });
    let _daemon = Killed(
        Command::new(env!("CARGO_BIN_EXE_tamga"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.2:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        if let Ok(r) = http.get(format!("{base}/")).send().await {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "tamga run did not serve");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page.status(), 200, "the page's own address passes the Host check");
    let token = std::fs::read_to_string(dir.path().join("data/api.token")).unwrap();
    let r = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(token.trim())
        .header("origin", &base)
        .json(&serde_json::json!({"operator_id": "op-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Another name for the machine is still refused.
    let other = http
        .get(format!("{base}/"))
        .header("host", format!("evil.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 421);
}
