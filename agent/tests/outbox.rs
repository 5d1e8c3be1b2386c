//! The durable outbox: states, purge on receipt, the disk reserve, and crash safety under SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tamga_agent::outbox::{Outbox, OutboxError, State};

fn jwe(n: usize) -> String {
    format!("eyJhbGciOiJFQ0RILUVTIn0..aXY.{}.dGFn", "Y".repeat(n))
}

#[test]
fn states_purge_and_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 0).unwrap();
    o.enqueue("b1", "W01", &"a".repeat(64), &jwe(1000)).unwrap();
    o.enqueue("b2", "W01", &"b".repeat(64), &jwe(1000)).unwrap();
    assert_eq!(
        o.chain_head("W01").unwrap().as_deref(),
        Some("b".repeat(64).as_str())
    );
    assert!(matches!(
        o.enqueue("b1", "W01", &"c".repeat(64), &jwe(10)),
        Err(OutboxError::Duplicate(_))
    ));
    assert!(matches!(
        o.enqueue("b3", "W01", &"c".repeat(64), "not-a-jwe"),
        Err(OutboxError::NotSealed)
    ));
    let claimed = o.claim_due(10).unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.bundle_id.as_str()).collect::<Vec<_>>(),
        ["b1", "b2"],
        "oldest first"
    );
    o.mark_delivered("b1", "receipt-jws").unwrap();
    assert_eq!(o.status("b1").unwrap().unwrap().state, State::Delivered);
    assert_eq!(
        o.status("b1").unwrap().unwrap().receipt.as_deref(),
        Some("receipt-jws")
    );
    assert!(!o.has_bytes("b1").unwrap(), "delivered bundles are purged");
    o.mark_quarantined("b2", "422: manifest signature does not verify")
        .unwrap();
    assert!(o.has_bytes("b2").unwrap(), "quarantined bundles are kept");
    let s = o.stats().unwrap();
    assert_eq!((s.delivered, s.quarantined, s.queued), (1, 1, 0));
}

#[test]
fn retries_wait_and_sending_returns_to_queued_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut o = Outbox::open(dir.path(), 0).unwrap();
        o.enqueue("b1", "W01", &"a".repeat(64), &jwe(10)).unwrap();
        o.enqueue("b2", "W01", &"b".repeat(64), &jwe(10)).unwrap();
        assert_eq!(o.claim_due(1).unwrap().len(), 1);
        let later = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 60_000;
        o.mark_retry("b1", "connection refused", later).unwrap();
        assert_eq!(
            o.claim_due(10).unwrap()[0].bundle_id,
            "b2",
            "b1 waits for its backoff"
        );
        // The process dies here with b2 in `sending`.
    }
    let mut o = Outbox::open(dir.path(), 0).unwrap();
    assert_eq!(o.status("b2").unwrap().unwrap().state, State::Queued);
    assert_eq!(o.claim_due(10).unwrap()[0].bundle_id, "b2");
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

const DB_FILES: [&str; 3] = ["outbox.sqlite", "outbox.sqlite-wal", "outbox.sqlite-shm"];

/// Another account on the workstation reads neither the directory nor the database with its WAL and shared memory.
#[test]
fn a_new_data_directory_and_the_database_files_are_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("var-lib-tamga");
    let mut o = Outbox::open(&dir, 0).unwrap();
    o.enqueue("b1", "W01", &"a".repeat(64), &jwe(1000)).unwrap();
    assert_eq!(mode(&dir), 0o700, "the data directory");
    for f in DB_FILES {
        // In WAL mode SQLite keeps the -wal and -shm files while a connection is open.
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
}

/// A directory made by `mkdir` under the usual umask, with a database whose files an earlier version left readable
/// by everyone: the next open takes the other accounts' access away.
#[test]
fn an_existing_data_directory_and_database_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let set = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    set(&dir, 0o777);
    let mut first = Outbox::open(&dir, 0).unwrap();
    first.enqueue("b1", "W01", &"a".repeat(64), &jwe(1000)).unwrap();
    for f in DB_FILES {
        set(&dir.join(f), 0o644);
    }
    set(&dir, 0o777);
    // A second open while the first still holds the WAL (as `tamga outbox status` beside the daemon), then work.
    let mut second = Outbox::open(&dir, 0).unwrap();
    second.enqueue("b2", "W01", &"b".repeat(64), &jwe(1000)).unwrap();
    assert_eq!(
        mode(&dir),
        0o750,
        "others lose everything, the group its write permission (it may keep search, see deploy/tamga.service)"
    );
    for f in DB_FILES {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    assert_eq!(first.ids().unwrap(), ["b1", "b2"]);
}

#[test]
fn below_the_disk_reserve_nothing_is_queued_and_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 0).unwrap();
    o.enqueue("b1", "W01", &"a".repeat(64), &jwe(10)).unwrap();
    drop(o);
    let mut o = Outbox::open(dir.path(), u64::MAX / 4).unwrap();
    let e = o.enqueue("b2", "W01", &"b".repeat(64), &jwe(10)).unwrap_err();
    assert!(matches!(e, OutboxError::DiskReserve { .. }), "{e}");
    assert!(e.to_string().contains("new sessions are refused"), "{e}");
    assert!(o.check_reserve(0).is_err());
    assert_eq!(o.ids().unwrap(), ["b1"]);
    assert_eq!(
        o.chain_head("W01").unwrap().as_deref(),
        Some("a".repeat(64).as_str()),
        "the chain did not move"
    );
}

/// Child side of the crash test: enqueues until killed, printing each id after `enqueue` returned.
#[test]
#[ignore = "run by crash_safety_under_sigkill as a child process"]
fn outbox_child_enqueue_loop() {
    let Ok(dir) = std::env::var("TAMGA_OUTBOX_CHILD_DIR") else {
        return;
    };
    let start: usize = std::env::var("TAMGA_OUTBOX_CHILD_START")
        .unwrap()
        .parse()
        .unwrap();
    let mut o = Outbox::open(std::path::Path::new(&dir), 0).unwrap();
    for i in start.. {
        let id = format!("b-{i:06}");
        o.enqueue(&id, "W01", &format!("{i:064}"), &jwe(20_000)).unwrap();
        println!("saved {id}");
    }
}

#[test]
fn crash_safety_under_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = 0usize;
    for _ in 0..12 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(&exe)
            .args([
                "outbox_child_enqueue_loop",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TAMGA_OUTBOX_CHILD_DIR", dir.path())
            .env("TAMGA_OUTBOX_CHILD_START", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("saved ").map(str::to_owned))
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(150 + seed % 250));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let saved = reader.join().unwrap();
        next += saved.len() + 1000; // the next run starts on fresh ids
        acknowledged.extend(saved);
    }
    assert!(
        acknowledged.len() > 20,
        "the child made progress: {}",
        acknowledged.len()
    );
    let o = Outbox::open(dir.path(), 0).unwrap();
    let ids = o.ids().unwrap();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no bundle stored twice");
    for id in &acknowledged {
        assert!(
            ids.contains(id),
            "{id} was acknowledged as saved but is not in the outbox"
        );
    }
}
