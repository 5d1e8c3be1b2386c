//! End to end over real TLS on loopback: outbox -> uplink (mutual TLS) -> central receiver -> signed receipt ->
//! purge; the central down and back; rejections and what the agent does with them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
mod support;

use std::sync::Mutex;
use tamga_agent::outbox::{Outbox, State};
use tamga_agent::uplink::Uplink;
use tamga_bundle::{b64, devpki, manifest, pki};
use tamga_central::store::FsStore;
use tamga_central::{CentralConfig, start};

struct World {
    pki: devpki::DevPki,
    dir: tempfile::TempDir,
}

fn world() -> World {
    World {
        pki: devpki::generate("KZ-ALA-001-W05").unwrap(),
        dir: tempfile::tempdir().unwrap(),
    }
}

fn config(w: &World, max_body: usize) -> CentralConfig {
    CentralConfig {
        cert_pem: w.pki.central.clone(),
        key_pem: w.pki.central_key.clone(),
        client_ca_pem: w.pki.root_ca.clone(),
        revocation_list: Some(w.dir.path().join("revoked.txt")),
        max_body_bytes: max_body,
    }
}

async fn central(w: &World, max_body: usize, listener: tokio::net::TcpListener) -> tamga_central::Running {
    let store = FsStore::new(&w.dir.path().join("central-store")).unwrap();
    start(config(w, max_body), Box::new(store), listener).unwrap()
}

fn uplink(w: &World, port: u16, station_pem: &str, station_key: &str) -> Uplink {
    let chain = format!("{station_pem}\n{}", w.pki.station_ca);
    Uplink::new(
        &format!("https://localhost:{port}"),
        &chain,
        station_key,
        &w.pki.root_ca,
        &w.pki.central,
        4,
    )
    .unwrap()
}

/// A sealed bundle of this world's station (one finger, nine exceptions) chained after `previous`.
fn bundle(w: &World, previous: &str, seed: u8) -> support::Sealed {
    support::sealed_bundle(
        &support::Signing {
            station_id: "KZ-ALA-001-W05",
            centre_id: "KZ-ALA-001",
            key: &w.pki.station_key,
            chain: [&w.pki.station, &w.pki.station_ca],
            central: &w.pki.central,
        },
        previous,
        seed,
        2000,
    )
}

fn enqueue_n(w: &World, o: &Mutex<Outbox>, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let prev = o
            .lock()
            .unwrap()
            .chain_head("KZ-ALA-001-W05")
            .unwrap()
            .unwrap_or_else(|| manifest::GENESIS.into());
        let (id, digest, jwe) = bundle(w, &prev, i as u8);
        o.lock()
            .unwrap()
            .enqueue(&id, "KZ-ALA-001-W05", &digest, &jwe)
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn station_status(w: &World, port: u16) -> serde_json::Value {
    let chain = format!("{}\n{}", w.pki.station, w.pki.station_ca);
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(w.pki.root_ca.as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(format!("{}\n{chain}", w.pki.station_key).as_bytes()).unwrap())
        .build()
        .unwrap();
    client
        .get(format!("https://localhost:{port}/v1/stations/KZ-ALA-001-W05"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_to_central_to_receipt_to_purge_with_the_chain_intact() {
    let w = world();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = central(&w, 1 << 20, listener).await;
    let o = Mutex::new(Outbox::open(w.dir.path(), 0).unwrap());
    let ids = enqueue_n(&w, &o, 6);
    let up = uplink(&w, c.addr.port(), &w.pki.station, &w.pki.station_key);
    let r = up.drain(&o).await.unwrap();
    assert_eq!(r.delivered, 6, "{r:?}");
    for id in &ids {
        let s = o.lock().unwrap().status(id).unwrap().unwrap();
        assert_eq!(s.state, State::Delivered);
        assert!(s.receipt.is_some());
        assert!(
            !o.lock().unwrap().has_bytes(id).unwrap(),
            "purged after the receipt"
        );
    }
    let st = station_status(&w, c.addr.port()).await;
    assert_eq!(st["bundles"], 6);
    assert_eq!(st["chain"], "intact", "{st}");
}

/// A fault in the outbox's own file: another connection to `outbox.sqlite` installs a trigger that makes SQLite
/// refuse (`RAISE(ABORT)`) every state change of `bundle_id` that matches `when` (as a full disk or an I/O error
/// would refuse the write).
fn inject_fault(w: &World, bundle_id: &str, when: &str) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(w.dir.path().join("outbox.sqlite")).unwrap();
    c.execute_batch(&format!(
        "CREATE TRIGGER fault BEFORE UPDATE OF state ON bundles
         WHEN OLD.bundle_id = '{bundle_id}' AND {when}
         BEGIN SELECT RAISE(ABORT, 'injected fault: disk I/O error'); END;"
    ))
    .unwrap();
    c
}

fn state(o: &Mutex<Outbox>, id: &str) -> State {
    o.lock().unwrap().status(id).unwrap().unwrap().state
}

/// Filing a receipt fails for one bundle of a batch: the others are filed, that one goes back to the queue (not
/// `sending` until a restart), the drain says what failed, and the next drain delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_that_cannot_be_filed_leaves_the_bundle_queued_for_the_next_pass() {
    let w = world();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = central(&w, 1 << 20, listener).await;
    let o = Mutex::new(Outbox::open(w.dir.path(), 0).unwrap());
    let ids = enqueue_n(&w, &o, 3);
    let fault = inject_fault(&w, &ids[0], "NEW.state = 'delivered'");
    let up = uplink(&w, c.addr.port(), &w.pki.station, &w.pki.station_key);
    let e = up.drain(&o).await.unwrap_err();
    assert!(e.to_string().contains("injected fault"), "{e}");
    assert_eq!(
        state(&o, &ids[0]),
        State::Queued,
        "released, not left in `sending`"
    );
    for id in &ids[1..] {
        assert_eq!(state(&o, id), State::Delivered, "the rest of the batch is filed");
    }
    fault.execute_batch("DROP TRIGGER fault").unwrap();
    // The same outbox and uplink, no restart.
    let r = up.drain(&o).await.unwrap();
    assert_eq!(r.delivered, 1, "{r:?}");
    let s = o.lock().unwrap().status(&ids[0]).unwrap().unwrap();
    assert_eq!(s.state, State::Delivered);
    assert!(s.receipt.is_some());
}

/// Filing fails, and returning the bundle to the queue fails too (the outbox refuses every write for it): the
/// uplink keeps it and releases it before its next claim, so once the outbox takes writes again it is delivered
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_cannot_even_be_released_is_released_by_a_later_pass() {
    let w = world();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = central(&w, 1 << 20, listener).await;
    let o = Mutex::new(Outbox::open(w.dir.path(), 0).unwrap());
    let ids = enqueue_n(&w, &o, 1);
    let fault = inject_fault(&w, &ids[0], "OLD.state = 'sending'");
    let up = uplink(&w, c.addr.port(), &w.pki.station, &w.pki.station_key);
    assert!(up.drain(&o).await.is_err());
    // While the fault lasts, each pass says so.
    let e = up.drain(&o).await.unwrap_err();
    assert!(e.to_string().contains("injected fault"), "{e}");
    fault.execute_batch("DROP TRIGGER fault").unwrap();
    let r = up.drain(&o).await.unwrap();
    assert_eq!(r.delivered, 1, "{r:?}");
    assert_eq!(state(&o, &ids[0]), State::Delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_upload_gets_the_same_receipt() {
    let w = world();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = central(&w, 1 << 20, listener).await;
    let (id, digest, jwe) = bundle(&w, manifest::GENESIS, 1);
    let up = uplink(&w, c.addr.port(), &w.pki.station, &w.pki.station_key);
    let first = up.send(&id, &digest, &jwe).await;
    let second = up.send(&id, &digest, &jwe).await;
    assert!(
        matches!(first, tamga_agent::uplink::Outcome::Delivered { .. }),
        "{first:?}"
    );
    assert_eq!(first, second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_down_then_back_everything_delivered_once() {
    let w = world();
    // Reserve a port, then close it: the central is down.
    let port = {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let o = Mutex::new(Outbox::open(w.dir.path(), 0).unwrap());
    let ids = enqueue_n(&w, &o, 5);
    let up = uplink(&w, port, &w.pki.station, &w.pki.station_key);
    let r = up.drain(&o).await.unwrap();
    // Every bundle tried at least once (and the oldest probed once nothing was due; on a slow machine a short
    // backoff may also expire during the drain), none delivered.
    assert_eq!(r.delivered, 0);
    assert!(r.retried >= 5, "{r:?}");
    assert!(
        ids.iter()
            .all(|id| o.lock().unwrap().status(id).unwrap().unwrap().state == State::Queued)
    );
    let err = o
        .lock()
        .unwrap()
        .status(&ids[0])
        .unwrap()
        .unwrap()
        .last_error
        .unwrap();
    assert!(err.contains("unreachable"), "{err}");
    // The central comes back. Every bundle still waits out its backoff; the probe finds the link up and the
    // backlog drains at once.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let c = central(&w, 1 << 20, listener).await;
    let r = up.drain(&o).await.unwrap();
    assert_eq!(r.delivered, 5, "{r:?}");
    let st = station_status(&w, c.addr.port()).await;
    assert_eq!(
        (st["bundles"].as_u64(), st["chain"].as_str()),
        (Some(5), Some("intact")),
        "each once, in order: {st}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_the_agent_quarantines_what_is_bad_and_keeps_going() {
    let w = world();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = central(&w, 64 * 1024, listener).await;
    let o = Mutex::new(Outbox::open(w.dir.path(), 0).unwrap());
    // A tampered bundle: one byte of its ciphertext changed.
    let (bad_id, bad_digest, jwe) = bundle(&w, manifest::GENESIS, 7);
    let mut t = jwe.into_bytes();
    let mid = t.len() / 2;
    t[mid] = if t[mid] == b'A' { b'B' } else { b'A' };
    o.lock()
        .unwrap()
        .enqueue(
            &bad_id,
            "KZ-ALA-001-W05",
            &bad_digest,
            &String::from_utf8(t).unwrap(),
        )
        .unwrap();
    // An oversized one (over the central's 64 KiB limit).
    let (big_id, big_digest, big) = bundle(&w, manifest::GENESIS, 8);
    let big = format!("{big}{}", "A".repeat(70 * 1024));
    let big = {
        let p: Vec<&str> = big.split('.').collect();
        p.join(".")
    };
    o.lock()
        .unwrap()
        .enqueue(&big_id, "KZ-ALA-001-W05", &big_digest, &big)
        .unwrap();
    // And a good one.
    let (good_id, good_digest, good) = bundle(&w, manifest::GENESIS, 9);
    o.lock()
        .unwrap()
        .enqueue(&good_id, "KZ-ALA-001-W05", &good_digest, &good)
        .unwrap();
    let up = uplink(&w, c.addr.port(), &w.pki.station, &w.pki.station_key);
    let r = up.drain(&o).await.unwrap();
    assert_eq!((r.delivered, r.quarantined), (1, 2), "{r:?}");
    let bad = o.lock().unwrap().status(&bad_id).unwrap().unwrap();
    assert_eq!(bad.state, State::Quarantined);
    assert!(bad.last_error.unwrap().contains("422"));
    let big = o.lock().unwrap().status(&big_id).unwrap().unwrap();
    assert_eq!(big.state, State::Quarantined);
    assert!(big.last_error.unwrap().contains("413"));
    assert!(
        o.lock().unwrap().has_bytes(&bad_id).unwrap(),
        "quarantined bundles are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_expired_and_foreign_station_certificates() {
    let w = world();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = central(&w, 1 << 20, listener).await;
    let (id, digest, jwe) = bundle(&w, manifest::GENESIS, 1);
    // Revoked: 403, a transient outcome (the station's certificate, not the bundle, is the problem).
    let fp = b64::sha256_hex(&pki::certs_from_pem(&w.pki.station).unwrap()[0]);
    std::fs::write(
        w.dir.path().join("revoked.txt"),
        format!("# revoked after loss\n{fp}\n"),
    )
    .unwrap();
    let up = uplink(&w, c.addr.port(), &w.pki.station, &w.pki.station_key);
    match up.send(&id, &digest, &jwe).await {
        tamga_agent::uplink::Outcome::Transient { reason, .. } => {
            assert!(reason.contains("403") && reason.contains("revoked"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(w.dir.path().join("revoked.txt"), "").unwrap();
    // Expired client certificate: the TLS handshake is refused.
    let (exp_cert, exp_key) =
        devpki::issue_station("KZ-ALA-001-W05", -1, &w.pki.station_ca, &w.pki.station_ca_key).unwrap();
    let up = uplink(&w, c.addr.port(), &exp_cert, &exp_key);
    assert!(matches!(
        up.send(&id, &digest, &jwe).await,
        tamga_agent::uplink::Outcome::Transient { .. }
    ));
    // A station certificate from another CA: refused at the handshake too.
    let other = devpki::generate("KZ-ALA-001-W05").unwrap();
    let chain = format!("{}\n{}", other.station, other.station_ca);
    let up = Uplink::new(
        &format!("https://localhost:{}", c.addr.port()),
        &chain,
        &other.station_key,
        &w.pki.root_ca,
        &w.pki.central,
        1,
    )
    .unwrap();
    match up.send(&id, &digest, &jwe).await {
        tamga_agent::uplink::Outcome::Transient { reason, .. } => {
            assert!(reason.contains("unreachable"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Another station's valid certificate uploading this station's bundle: 403 wrong station.
    let (w6, w6_key) =
        devpki::issue_station("KZ-ALA-001-W06", 30, &w.pki.station_ca, &w.pki.station_ca_key).unwrap();
    let up = uplink(&w, c.addr.port(), &w6, &w6_key);
    match up.send(&id, &digest, &jwe).await {
        tamga_agent::uplink::Outcome::Transient { reason, .. } => {
            assert!(reason.contains("KZ-ALA-001-W06"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// Child side of the crash test: enqueue a bundle, say so, send what is due; again and again until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by crash_safety_during_enqueue_and_upload as a child process"]
async fn crash_child_enqueue_and_upload() {
    let Ok(dir) = std::env::var("TAMGA_CRASH_DIR") else {
        return;
    };
    let port: u16 = std::env::var("TAMGA_CRASH_PORT").unwrap().parse().unwrap();
    let dir = std::path::PathBuf::from(dir);
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let w = World {
        pki: devpki::DevPki {
            root_ca: read("root-ca.pem"),
            root_ca_key: String::new(),
            station_ca: read("station-ca.pem"),
            station_ca_key: String::new(),
            central: read("central.pem"),
            central_key: String::new(),
            station: read("station.pem"),
            station_key: read("station.key"),
        },
        dir: tempfile::tempdir().unwrap(),
    };
    let o = Mutex::new(Outbox::open(&dir.join("station-data"), 0).unwrap());
    let up = uplink(&w, port, &w.pki.station, &w.pki.station_key);
    for i in 0u32.. {
        let prev = o
            .lock()
            .unwrap()
            .chain_head("KZ-ALA-001-W05")
            .unwrap()
            .unwrap_or_else(|| manifest::GENESIS.into());
        let (id, digest, jwe) = bundle(&w, &prev, (i % 251) as u8);
        o.lock()
            .unwrap()
            .enqueue(&id, "KZ-ALA-001-W05", &digest, &jwe)
            .unwrap();
        println!("saved {id}");
        up.drain(&o).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_safety_during_enqueue_and_upload() {
    use std::io::BufRead;
    let w = world();
    for (n, t) in [
        ("root-ca.pem", &w.pki.root_ca),
        ("station-ca.pem", &w.pki.station_ca),
        ("central.pem", &w.pki.central),
        ("station.pem", &w.pki.station),
        ("station.key", &w.pki.station_key),
    ] {
        std::fs::write(w.dir.path().join(n), t).unwrap();
    }
    std::fs::create_dir_all(w.dir.path().join("station-data")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = central(&w, 1 << 20, listener).await;
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = std::process::Command::new(&exe)
            .args([
                "crash_child_enqueue_and_upload",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TAMGA_CRASH_DIR", w.dir.path())
            .env("TAMGA_CRASH_PORT", c.addr.port().to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("saved ").map(str::to_owned))
                .collect::<Vec<_>>()
        });
        tokio::time::sleep(std::time::Duration::from_millis(200 + seed % 300)).await;
        child.kill().unwrap(); // SIGKILL, during an enqueue or an upload
        child.wait().unwrap();
        acknowledged.extend(reader.join().unwrap());
    }
    assert!(
        acknowledged.len() >= 10,
        "the child made progress: {}",
        acknowledged.len()
    );
    // Restart once more and let everything go out.
    let o = Mutex::new(Outbox::open(&w.dir.path().join("station-data"), 0).unwrap());
    let up = uplink(&w, c.addr.port(), &w.pki.station, &w.pki.station_key);
    up.drain(&o).await.unwrap();
    let st = station_status(&w, c.addr.port()).await;
    let store = tamga_central::store::FsStore::new(&w.dir.path().join("central-store")).unwrap();
    let index = tamga_central::store::Storage::station(&store, "KZ-ALA-001-W05").unwrap();
    let stored: Vec<&str> = index.links.iter().map(|l| l.bundle_id.as_str()).collect();
    let mut unique = stored.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "no bundle stored twice");
    for id in &acknowledged {
        assert_eq!(
            stored.iter().filter(|s| *s == id).count(),
            1,
            "{id} acknowledged as saved: stored exactly once"
        );
        assert_eq!(
            o.lock().unwrap().status(id).unwrap().unwrap().state,
            State::Delivered
        );
    }
    assert_eq!(st["chain"], "intact", "{st}");
}
