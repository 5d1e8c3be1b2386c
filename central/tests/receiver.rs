//! The receiver under faults and abuse, over real mutual TLS on loopback (issue #12, the central receiver).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
mod common;

use common::{World, station_status, upload};
use std::time::Duration;
use tamga_central::Options;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- Connections: handshake timeout, connection cap, refusal logging ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_handshake_timeout_and_a_station_still_gets_through() {
    let w = World::new();
    let c = w
        .start(Options {
            handshake_timeout: Duration::from_millis(300),
            max_connections: 8,
            ..Options::default()
        })
        .await;
    // Five times the connection cap of idle TCP connections, no certificate, no byte sent.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(c.addr).await.unwrap());
    }
    let s = w.main_station();
    let (_, _, jwe) = s.bundle(tamga_bundle::manifest::GENESIS, 1, 1000);
    let (status, body) = upload(&w.client(&s), c.addr.port(), &jwe).await;
    assert_eq!(status, 201, "{body}");
    // Every idle connection was accepted in its turn and closed by the receiver.
    for (i, mut t) in idle.into_iter().enumerate() {
        let mut buf = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_secs(20), t.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("idle connection {i} is still open"));
        assert!(matches!(r, Ok(0) | Err(_)), "connection {i}: {r:?}");
    }
    c.stop().await;
}

/// Collects what the receiver logs (the accept loop runs on this test's single thread).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn refused_handshakes_are_logged_at_most_once_per_interval() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let w = World::new();
    let c = w.start(Options::default()).await;
    for _ in 0..30 {
        // Plain HTTP to the TLS port: the handshake is refused and the connection closed.
        let mut t = tokio::net::TcpStream::connect(c.addr).await.unwrap();
        t.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut buf)).await;
    }
    c.stop().await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings = text.lines().filter(|l| l.contains("handshake")).count();
    assert!(
        (1..=1).contains(&warnings),
        "one warning for 30 refused handshakes within the interval, got {warnings}:\n{text}"
    );
}

// ---- The revocation list fails closed ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_revocation_list_refuses_uploads_until_a_valid_one_replaces_it() {
    let w = World::new();
    let c = w.start(Options::default()).await;
    let s = w.main_station();
    let client = w.client(&s);
    let port = c.addr.port();
    let chain = s.chain(2);
    assert_eq!(upload(&client, port, &chain[0].2).await.0, 201);
    // The list replaced by a folder: uploads are refused (retryable), naming the file.
    std::fs::remove_file(w.revoked()).unwrap();
    std::fs::create_dir(w.revoked()).unwrap();
    let (status, body) = upload(&client, port, &chain[1].2).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "revocation_list_unavailable", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("revoked.txt"),
        "{body}"
    );
    // A file that is not a revocation list is refused the same way.
    std::fs::remove_dir(w.revoked()).unwrap();
    std::fs::write(w.revoked(), "this is not a fingerprint\n").unwrap();
    let (status, body) = upload(&client, port, &chain[1].2).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("revocation_list_unavailable")),
        "{body}"
    );
    // A valid replacement is picked up at once: first one that revokes this station, then an empty one.
    std::fs::write(w.revoked(), format!("# lost\n{}\n", s.fingerprint())).unwrap();
    let (status, body) = upload(&client, port, &chain[1].2).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("revoked")), "{body}");
    std::fs::write(w.revoked(), "").unwrap();
    let (status, body) = upload(&client, port, &chain[1].2).await;
    assert_eq!(status, 201, "{body}");
    c.stop().await;
}

#[tokio::test]
async fn start_refuses_an_invalid_or_absent_revocation_list() {
    let w = World::new();
    let start = |options: Options| {
        let store = tamga_central::store::FsStore::new(&w.store_dir()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        tamga_central::start_with(w.config(), options, Box::new(store), listener)
    };
    std::fs::write(w.revoked(), "# revoked\nabc123\n").unwrap();
    let e = start(Options::default()).unwrap_err().to_string();
    assert!(e.contains("revoked.txt") && e.contains("line 2"), "{e}");
    std::fs::remove_file(w.revoked()).unwrap();
    let e = start(Options::default()).unwrap_err().to_string();
    assert!(e.contains("revoked.txt"), "{e}");
    // Unless told that an absent list is an empty one (the embedded receiver of the demo and tests).
    let c = start(Options {
        revocation_list_may_be_absent: true,
        ..Options::default()
    })
    .unwrap();
    c.stop().await;
}

// ---- Who may read what ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_reads_only_its_own_chain() {
    let w = World::new();
    let c = w.start(Options::default()).await;
    let port = c.addr.port();
    let w05 = w.main_station();
    let w06 = w.station("KZ-ALA-001-W06");
    let (_, _, jwe) = w05.bundle(tamga_bundle::manifest::GENESIS, 1, 1000);
    assert_eq!(upload(&w.client(&w05), port, &jwe).await.0, 201);
    let (status, body) = station_status(&w.client(&w06), port, &w05.id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_your_station")),
        "{body}"
    );
    let (status, body) = station_status(&w.client(&w05), port, &w05.id).await;
    assert_eq!((status, body["bundles"].as_u64()), (200, Some(1)), "{body}");
    // Revoked, it cannot read its own chain either.
    std::fs::write(w.revoked(), format!("{}\n", w05.fingerprint())).unwrap();
    let (status, body) = station_status(&w.client(&w05), port, &w05.id).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("revoked")), "{body}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_listener_not_to_stations() {
    let w = World::new();
    let c = w
        .start(Options {
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Options::default()
        })
        .await;
    let s = w.main_station();
    let client = w.client(&s);
    let (_, _, jwe) = s.bundle(tamga_bundle::manifest::GENESIS, 1, 1000);
    assert_eq!(upload(&client, c.addr.port(), &jwe).await.0, 201);
    let r = client
        .get(format!("https://localhost:{}/metrics", c.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "stations do not read the metrics");
    let addr = c.metrics_addr.expect("a metrics listener");
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("tamga_central_bundles_accepted_total 1"), "{text}");
    c.stop().await;
}

/// The binary with a certificate directory whose `central.key` has `mode`: (exited with failure, output).
fn run_binary_with_key_mode(mode: u32) -> (Option<bool>, String) {
    use std::io::{BufRead, Read};
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let certs = w.dir.path().join("pki");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("central.pem"), &w.pki.central).unwrap();
    std::fs::write(certs.join("root-ca.pem"), &w.pki.root_ca).unwrap();
    std::fs::write(certs.join("central.key"), &w.pki.central_key).unwrap();
    std::fs::set_permissions(certs.join("central.key"), std::fs::Permissions::from_mode(mode)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tamga-central"))
        .args(["--certs", certs.to_str().unwrap(), "--store"])
        .arg(w.store_dir())
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Either it exits, or it logs that it listens (then it is stopped).
    let stdout = child.stdout.take().unwrap();
    let mut listening = false;
    for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.contains("listening") {
            listening = true;
            break;
        }
    }
    if listening {
        child.kill().unwrap();
        child.wait().unwrap();
        return (None, String::new());
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (Some(!status.success()), err)
}

#[test]
fn a_central_key_others_can_read_is_refused_at_start_naming_the_fix() {
    let (failed, err) = run_binary_with_key_mode(0o644);
    assert_eq!(
        failed,
        Some(true),
        "the receiver started with a world-readable key"
    );
    assert!(err.contains("central.key") && err.contains("chmod 600"), "{err}");
    let (failed, err) = run_binary_with_key_mode(0o600);
    assert_eq!(failed, None, "a 0600 key is accepted: {err}");
}

// ---- Memory: revocation before the body, bounded verifications ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_station_is_refused_before_its_body_is_read() {
    let w = World::new();
    let c = w.start(Options::default()).await;
    let s = w.main_station();
    std::fs::write(w.revoked(), format!("{}\n", s.fingerprint())).unwrap();
    let mut t = w.tls(&s, c.addr.port()).await;
    // Announce 8 MB and send none of it: the answer must not wait for the body.
    t.write_all(b"POST /v1/bundles HTTP/1.1\r\nHost: localhost\r\nContent-Length: 8000000\r\n\r\n")
        .await
        .unwrap();
    t.flush().await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), t.read(&mut buf))
        .await
        .expect("the receiver waited for the body of a revoked station")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(head.contains("revoked"), "{head}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_hold_at_most_the_verification_slots_in_memory() {
    let w = World::new();
    let c = w
        .start(Options {
            max_concurrent_verifications: 2,
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Options::default()
        })
        .await;
    let port = c.addr.port();
    // Eight stations upload a 2 MB bundle each, all at once.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let s = w.station(&format!("KZ-ALA-001-W{:02}", 10 + i));
        let client = w.client(&s);
        let (_, _, jwe) = s.bundle(tamga_bundle::manifest::GENESIS, i as u8, 2 << 20);
        set.spawn(async move { upload(&client, port, &jwe).await });
    }
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let text = reqwest::get(format!("http://{}/metrics", c.metrics_addr.unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(gauge("tamga_central_bundles_accepted_total"), 8);
    let peak = gauge("tamga_central_uploads_in_memory_peak");
    assert!(
        (1..=2).contains(&peak),
        "{peak} bodies in memory at once, 2 slots"
    );
    assert_eq!(gauge("tamga_central_uploads_in_memory"), 0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_frees_its_verification_slot() {
    let w = World::new();
    let c = w
        .start(Options {
            max_concurrent_verifications: 1,
            body_timeout: Duration::from_millis(500),
            ..Options::default()
        })
        .await;
    let s = w.main_station();
    // The only slot is taken by an upload that announces 1 MB and sends 10 bytes.
    let mut t = w.tls(&s, c.addr.port()).await;
    t.write_all(b"POST /v1/bundles HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n0123456789")
        .await
        .unwrap();
    t.flush().await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), t.read(&mut buf))
        .await
        .expect("a stalled body is cut off")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(
        head.starts_with("HTTP/1.1 408") && head.contains("body_timeout"),
        "{head}"
    );
    // And the slot serves the next station.
    let (_, _, jwe) = s.bundle(tamga_bundle::manifest::GENESIS, 1, 1000);
    let (status, body) = upload(&w.client(&s), c.addr.port(), &jwe).await;
    assert_eq!(status, 201, "{body}");
    c.stop().await;
}

// ---- Store faults: the chain is never behind a receipt ----

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tamga_central::store::{FsStore, Link, Storage, StoreError};

/// The filesystem store with faults on demand.
#[derive(Default)]
struct Faults {
    /// The next append fails (the disk is full between the bundle and its link).
    fail_append: AtomicBool,
    /// The next receipt write fails (after the link).
    fail_receipt: AtomicBool,
    /// Appends report success without writing (a link lost, as by the old store's bug).
    lose_links: AtomicBool,
    /// Station whose bundle writes wait at the gate until it opens (or 10 s pass).
    gated_station: std::sync::Mutex<Option<String>>,
    gate_entered: AtomicBool,
    gate: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    gate_timed_out: AtomicBool,
}

struct Faulty {
    inner: FsStore,
    faults: Arc<Faults>,
}

fn enospc(what: &str) -> StoreError {
    StoreError::Io {
        path: what.into(),
        source: std::io::Error::from_raw_os_error(28),
    }
}

impl Storage for Faulty {
    fn receipt(&self, st: &str, b: &str) -> Result<Option<String>, StoreError> {
        self.inner.receipt(st, b)
    }
    fn reference(&self, st: &str, b: &str) -> String {
        self.inner.reference(st, b)
    }
    fn put_bundle(&self, st: &str, b: &str, jwe: &[u8]) -> Result<(), StoreError> {
        if self.faults.gated_station.lock().unwrap().as_deref() == Some(st) {
            self.faults.gate_entered.store(true, Ordering::SeqCst);
            let rx = self.faults.gate.lock().unwrap().take();
            if let Some(rx) = rx
                && rx.recv_timeout(Duration::from_secs(10)).is_err()
            {
                self.faults.gate_timed_out.store(true, Ordering::SeqCst);
            }
        }
        self.inner.put_bundle(st, b, jwe)
    }
    fn append_link(&self, st: &str, link: &Link) -> Result<(), StoreError> {
        if self.faults.fail_append.swap(false, Ordering::SeqCst) {
            return Err(enospc("chain"));
        }
        if self.faults.lose_links.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.inner.append_link(st, link)
    }
    fn put_receipt(&self, st: &str, b: &str, receipt: &str) -> Result<(), StoreError> {
        if self.faults.fail_receipt.swap(false, Ordering::SeqCst) {
            return Err(enospc("receipt"));
        }
        self.inner.put_receipt(st, b, receipt)
    }
    fn links(&self, st: &str) -> Result<Vec<Link>, StoreError> {
        self.inner.links(st)
    }
    fn recover(&self, st: &str) -> Result<(), StoreError> {
        self.inner.recover(st)
    }
}

fn faulty(w: &World) -> (Box<Faulty>, Arc<Faults>) {
    if !w.revoked().exists() {
        std::fs::write(w.revoked(), "").unwrap();
    }
    let faults = Arc::new(Faults::default());
    let store = Faulty {
        inner: FsStore::new(&w.store_dir()).unwrap(),
        faults: faults.clone(),
    };
    (Box::new(store), faults)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_before_the_receipt_is_repaired_by_the_retry_without_a_gap() {
    let w = World::new();
    let (store, faults) = faulty(&w);
    let c = w.start_on(Options::default(), store).await;
    let s = w.main_station();
    let client = w.client(&s);
    let port = c.addr.port();
    let chain = s.chain(4);
    assert_eq!(upload(&client, port, &chain[0].2).await.0, 201);
    // The disk is full between the bundle and its link: 500, and the retry stores it.
    faults.fail_append.store(true, Ordering::SeqCst);
    assert_eq!(upload(&client, port, &chain[1].2).await.0, 500);
    let (status, body) = upload(&client, port, &chain[1].2).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (201, Some(false)),
        "{body}"
    );
    // The disk is full between the link and the receipt: the retry stores it, and the link is not doubled.
    faults.fail_receipt.store(true, Ordering::SeqCst);
    assert_eq!(upload(&client, port, &chain[2].2).await.0, 500);
    let (status, body) = upload(&client, port, &chain[2].2).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (201, Some(false)),
        "{body}"
    );
    let (_, st) = station_status(&client, port, &s.id).await;
    assert_eq!(
        (st["chain"].as_str(), st["bundles"].as_u64()),
        (Some("intact"), Some(3)),
        "{st}"
    );
    assert_eq!(st["chain_tip_sha256"], chain[2].1.as_str());
    // A receipt whose link was lost (a store written by the old receiver): the duplicate upload restores it.
    faults.lose_links.store(true, Ordering::SeqCst);
    assert_eq!(upload(&client, port, &chain[3].2).await.0, 201);
    faults.lose_links.store(false, Ordering::SeqCst);
    c.stop().await;
    let (store, _) = faulty(&w);
    let c = w.start_on(Options::default(), store).await;
    let port = c.addr.port();
    let (_, st) = station_status(&client, port, &s.id).await;
    assert_eq!(st["bundles"].as_u64(), Some(3), "the lost link: {st}");
    let (status, body) = upload(&client, port, &chain[3].2).await;
    assert_eq!((status, body["duplicate"].as_bool()), (200, Some(true)), "{body}");
    let (_, st) = station_status(&client, port, &s.id).await;
    assert_eq!(
        (st["chain"].as_str(), st["bundles"].as_u64()),
        (Some("intact"), Some(4)),
        "{st}"
    );
    assert_eq!(st["chain_tip_sha256"], chain[3].1.as_str());
    let on_disk = FsStore::new(&w.store_dir()).unwrap().station(&s.id).unwrap();
    let ids: Vec<&str> = on_disk.links.iter().map(|l| l.bundle_id.as_str()).collect();
    let want: Vec<&str> = chain.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(ids, want, "each link once, in order");
    assert_eq!(
        common::temp_files(&w.store_dir()),
        Vec::<std::path::PathBuf>::new()
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bundle_write_leaves_no_temporary_file_and_the_retry_stores_it() {
    let w = World::new();
    let c = w.start(Options::default()).await;
    let s = w.main_station();
    let client = w.client(&s);
    let port = c.addr.port();
    let chain = s.chain(2);
    assert_eq!(upload(&client, port, &chain[0].2).await.0, 201);
    // A folder where the bundle's file goes: the write fails after its temporary file was written.
    let blocker = w
        .store_dir()
        .join("stations")
        .join(&s.id)
        .join("bundles")
        .join(format!("{}.jwe", chain[1].0));
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    let (status, body) = upload(&client, port, &chain[1].2).await;
    assert_eq!((status, body["error"].as_str()), (500, Some("storage")), "{body}");
    assert_eq!(
        common::temp_files(&w.store_dir()),
        Vec::<std::path::PathBuf>::new()
    );
    std::fs::remove_dir_all(&blocker).unwrap();
    let (status, body) = upload(&client, port, &chain[1].2).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (201, Some(false)),
        "{body}"
    );
    let (_, st) = station_status(&client, port, &s.id).await;
    assert_eq!(
        (st["chain"].as_str(), st["bundles"].as_u64()),
        (Some("intact"), Some(2)),
        "{st}"
    );
    assert_eq!(
        common::temp_files(&w.store_dir()),
        Vec::<std::path::PathBuf>::new()
    );
    c.stop().await;
}

// ---- The chain index: per station, off the async workers ----

/// One async worker: storage work done on it, or a lock shared by all stations, would stall the other station.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_station_stuck_in_the_store_does_not_stall_another_station() {
    let w = World::new();
    let (store, faults) = faulty(&w);
    let (release, gate) = std::sync::mpsc::channel();
    *faults.gate.lock().unwrap() = Some(gate);
    let a = w.station("KZ-ALA-001-W01");
    let b = w.station("KZ-ALA-001-W02");
    *faults.gated_station.lock().unwrap() = Some(a.id.clone());
    let c = w.start_on(Options::default(), store).await;
    let port = c.addr.port();
    let (_, _, jwe_a) = a.bundle(tamga_bundle::manifest::GENESIS, 1, 1000);
    let (_, _, jwe_b) = b.bundle(tamga_bundle::manifest::GENESIS, 2, 1000);
    let client_a = w.client(&a);
    let upload_a = tokio::spawn(async move { upload(&client_a, port, &jwe_a).await });
    while !faults.gate_entered.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Station A's bundle write hangs; station B uploads and reads its chain meanwhile.
    let client_b = w.client(&b);
    assert_eq!(upload(&client_b, port, &jwe_b).await.0, 201);
    assert_eq!(station_status(&client_b, port, &b.id).await.0, 200);
    let _ = release.send(()); // the gate may have given up already (the assertion below says so)
    assert_eq!(upload_a.await.unwrap().0, 201);
    assert!(
        !faults.gate_timed_out.load(Ordering::SeqCst),
        "station B waited for station A's store write"
    );
    c.stop().await;
}
