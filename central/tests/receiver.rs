//! The receiver under faults and abuse, over real mutual TLS on loopback (issue #12, the central receiver).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test
mod common;

use common::{World, upload};
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
