//! `tamga page --open`: the API key reaches the operator's page without ever being on a command line (or in an
//! environment) that other local accounts can read with `ps`, and without a URL carrying it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const KEY: &str = "3f9a0c1d2e4b5a6978877665544332211ffeeddccbbaa00998877665544332211";

/// A browser (or `xdg-open`) that records what it was started with: its argv and environment, and, for a
/// `file://` argument, the file's mode, owner and contents and its directory's mode, while the file exists.
const FAKE_BROWSER: &str = r#"#!/bin/sh
out="$RECORD_DIR/$(basename "$0")"
mkdir -p "$out"
printf '%s\n' "$0" "$@" > "$out/argv"
cat /proc/$$/cmdline > "$out/cmdline"
env > "$out/env"
for a in "$@"; do
  case "$a" in
    file://*)
      f="${a#file://}"
      stat -c '%a %u' "$f" > "$out/file-stat"
      stat -c '%a %u' "$(dirname "$f")" > "$out/dir-stat"
      cp "$f" "$out/file"
      printf '%s' "$f" > "$out/path"
      ;;
  esac
done
"#;

struct Station {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    listener: std::net::TcpListener,
}

fn station() -> Station {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let token = data.join("api.token");
    std::fs::write(&token, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = listener.local_addr().unwrap().to_string();
    let example = include_str!("../../examples/station.toml")
        .replace("/var/lib/tamga", data.to_str().unwrap())
        .replace("127.0.0.1:4480\"", &format!("{listen}\""));
    let config = dir.path().join("station.toml");
    std::fs::write(&config, example).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for name in ["xdg-open", "fake-browser"] {
        let p = bin.join(name);
        std::fs::write(&p, FAKE_BROWSER).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::create_dir(dir.path().join("runtime")).unwrap();
    std::fs::set_permissions(dir.path().join("runtime"), std::fs::Permissions::from_mode(0o700)).unwrap();
    Station {
        dir,
        config,
        listener,
    }
}

/// Runs `tamga page --open` with `browser` as `$BROWSER` (None: the default, `xdg-open` from PATH); returns the
/// record of the launched program.
fn open_page(s: &Station, browser: Option<&str>) -> std::path::PathBuf {
    let bin = s.dir.path().join("bin");
    let record = s.dir.path().join("record");
    let _ = std::fs::remove_dir_all(&record);
    std::fs::create_dir(&record).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tamga"));
    cmd.args(["page", "--config"])
        .arg(&s.config)
        .args(["--open", "--handover-seconds", "1"])
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("XDG_RUNTIME_DIR", s.dir.path().join("runtime"))
        .env("RECORD_DIR", &record)
        .env_remove("RUST_LOG")
        .env_remove("TAMGA_LOG");
    match browser {
        Some(b) => cmd.env("BROWSER", b),
        None => cmd.env_remove("BROWSER"),
    };
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let launched = std::fs::read_dir(&record)
        .unwrap()
        .next()
        .expect("a browser was launched")
        .unwrap();
    launched.path()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The page's handover: the browser gets a file only the operator can read, which posts the key to the page.
fn assert_handover(s: &Station, launched: &Path) {
    let argv = read(&launched.join("argv"));
    let cmdline = read(&launched.join("cmdline"));
    let env = read(&launched.join("env"));
    assert!(
        !argv.contains(KEY) && !cmdline.contains(KEY),
        "the key is on the browser's command line: {argv}"
    );
    assert!(!env.contains(KEY), "the key is in the browser's environment");
    assert!(
        argv.contains("file://"),
        "the browser opens the handover file: {argv}"
    );

    // While the browser may read it, the file is the operator's alone, in a directory only the operator enters.
    let uid = std::fs::metadata(s.dir.path()).unwrap().uid();
    assert_eq!(read(&launched.join("file-stat")).trim(), format!("600 {uid}"));
    assert_eq!(read(&launched.join("dir-stat")).trim(), format!("700 {uid}"));
    let path = read(&launched.join("path"));
    assert!(
        path.starts_with(s.dir.path().join("runtime").to_str().unwrap()),
        "in the operator's runtime directory: {path}"
    );
    assert!(
        !Path::new(&path).exists(),
        "removed once the browser had its time to read it"
    );

    // The file posts the key (in the request body, not a URL) to this station's page...
    let html = read(&launched.join("file"));
    let listen = s.listener.local_addr().unwrap();
    assert!(
        html.contains(&format!("method=\"post\" action=\"http://{listen}/\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("name=\"token\" value=\"{KEY}\"")),
        "{html}"
    );
    assert!(
        !html.contains(&format!("#token={KEY}")),
        "no address carries the key: {html}"
    );

    // ...and the page answers that post with the key for the tab (uncached), while a plain GET carries none.
    let listener = s.listener.try_clone().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let router = tamga_agent::ui::router(vec![listen.to_string()]);
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::new();
        let r = http
            .post(format!("http://{listen}/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page = r.text().await.unwrap();
        assert!(
            page.contains(&format!("<meta name=\"tamga-key\" content=\"{KEY}\">")),
            "{page}"
        );
        let page = http
            .get(format!("http://{listen}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("app.js") && !page.contains("tamga-key"));
        // A web site posting a key of its choosing (its Origin is named) does not get it into the page; a handover
        // file's form (Origin `null`) does.
        for (origin, taken) in [("http://evil.example", false), ("null", true)] {
            let r = http
                .post(format!("http://{listen}/"))
                .header("origin", origin)
                .body(format!("token={KEY}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.text().await.unwrap().contains("tamga-key"), taken, "{origin}");
        }
        // Whatever else is posted is not put into the page.
        let r = http
            .post(format!("http://{listen}/"))
            .body("token=\"><script>alert(1)</script>")
            .send()
            .await
            .unwrap();
        assert!(!r.text().await.unwrap().contains("tamga-key"));
    });
}

#[test]
fn page_open_hands_the_key_over_without_a_command_line_through_xdg_open() {
    let s = station();
    let launched = open_page(&s, None);
    assert!(launched.ends_with("xdg-open"), "{}", launched.display());
    assert_handover(&s, &launched);
}

#[test]
fn page_open_hands_the_key_over_without_a_command_line_through_browser_variable() {
    let s = station();
    let launched = open_page(&s, Some("fake-browser --new-window %s"));
    assert!(launched.ends_with("fake-browser"), "{}", launched.display());
    assert!(read(&launched.join("argv")).contains("--new-window\nfile://"));
    assert_handover(&s, &launched);
}
