//! `tamga demo` as a person runs it in a terminal: its console waits on standard input, and SIGTERM or Ctrl-C
//! (SIGINT) stops it, with status 0, without anybody pressing Enter. Without a console (standard input at its
//! end, as under a service manager or `< /dev/null`) it keeps serving until stopped.
#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Waits for a stdout line containing `needle`; returns it.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(_) => {}
            Err(e) => panic!("no line with `{needle}` on the demo's standard output: {e}"),
        }
    }
}

fn stops_on(signal: &str, console: bool) {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tamga"))
        .args(["demo", "--port", "0", "--dir"])
        .arg(dir.path().join("work"))
        .env_remove("RUST_LOG")
        .env_remove("TAMGA_LOG")
        .env_remove("TAMGA_PROFILES_DIR")
        .stdin(if console { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    // Standard input stays open, as a terminal's does: the console is blocked reading it.
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let port = wait_for(&lines, "local API", Duration::from_secs(120))
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("the API's port");
    wait_for(&lines, "operator page", Duration::from_secs(30));
    if let Some(mut stdin) = stdin.as_ref() {
        // The console answers, so it is reading standard input (and waits there for the next line).
        writeln!(stdin, "help").unwrap();
        wait_for(&lines, "simulator commands", Duration::from_secs(30));
    } else {
        // No console: the page is still served a while after standard input ended.
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the demo stopped when standard input ended"
        );
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("the page is served");
    }

    let kill = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // A generous deadline: the failure this guards against is waiting forever for a line on standard input.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "`tamga demo` still running 10 s after SIG{signal}; its log:\n{}",
                std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "SIG{signal}: {status:?}");
    drop(stdin);
}

#[test]
fn sigterm_stops_the_demo_while_its_console_waits_for_input() {
    stops_on("TERM", true);
}

#[test]
fn ctrl_c_stops_the_demo_while_its_console_waits_for_input() {
    stops_on("INT", true);
}

#[test]
fn without_a_console_the_demo_serves_until_sigterm() {
    stops_on("TERM", false);
}
