//! `tamga run --config FILE` as a technician starts it: it serves the operator page and the API on the configured
//! address, in the configured language, and its own page's origin may call the API without being listed.
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
        .replace("127.0.0.1:4501\"", &format!("127.0.0.1:{port}\""))
        .replace(
            "allowed_origins = [\"http://127.0.0.1:4501\", \"http://localhost:4501\"]",
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
