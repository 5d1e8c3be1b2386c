//! The durable outbox: sealed bundles waiting for the central system, and the receipts that ended their wait.
//!
//! # On disk
//!
//! One SQLite database (`outbox.sqlite` in the data directory; bundled SQLite through rusqlite), in WAL mode with
//! `synchronous = FULL`: a transaction that returned has reached the disk, and a crash at any instant leaves the
//! database at a committed state. Tables:
//!
//! - `bundles(bundle_id TEXT PRIMARY KEY, seq INTEGER UNIQUE, station_id, manifest_sha256, jwe BLOB, size,
//!   state, attempts, next_attempt_ms, last_error, enqueued_ms, delivered_ms, receipt TEXT)`;
//! - `chain(station_id TEXT PRIMARY KEY, last_manifest_sha256)`: the station's hash chain head, updated in the same
//!   transaction as the enqueue, so the chain and the queue never disagree;
//! - `meta(key, value)`: `schema_version = 1`.
//!
//! The bundles are applicants' biometrics: nobody but the daemon's account may read them. [`Outbox::open`] creates a
//! missing data directory 0700; an existing one must belong to the process's account (or the process is root), and
//! loses every permission for other accounts and write permission for its group (a group may keep read and search,
//! as `deploy/tamga.service` gives group `tamga` so operators reach `api.token`). The database is created 0600
//! before SQLite opens it, so SQLite creates its `-wal` and `-shm` with the same mode; files left by an earlier
//! version with looser modes are set to 0600 at each open.
//!
//! # States and transitions
//!
//! ```text
//! enqueue ──> queued ──claim──> sending ──receipt verified──> delivered (jwe purged, receipt kept)
//!               ^                  │
//!               └──transient error─┤ (attempts + 1, next_attempt_ms = backoff)
//!                                  └──permanent rejection──> quarantined (jwe kept, never deleted automatically)
//! open(): every `sending` row returns to `queued` (the process died during an upload; uploads are idempotent by
//! bundle id, so sending again is safe).
//! release(): a claimed bundle whose outcome could not be filed (a failed write) returns to `queued`; the uplink
//! keeps the ids whose release failed too and releases them before its next claim, so nothing waits for a restart.
//! ```
//!
//! # Invariants
//!
//! - `enqueue` returns `Ok` only after the commit: what the operator was told is saved is on disk.
//! - Nothing is evicted to make room: below the disk reserve, `enqueue` is refused (`OutboxError::DiskReserve`)
//!   and the caller refuses new sessions; the queue is untouched.
//! - A bundle's bytes are deleted only when its receipt is stored, in the same transaction.
//! - Only sealed bundles enter (the caller passes a JWE; the outbox checks its shape).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};

/// Delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Sending,
    Delivered,
    Quarantined,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Sending => "sending",
            State::Delivered => "delivered",
            State::Quarantined => "quarantined",
        }
    }
}

/// Why the outbox refused.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "the disk holding {path} has {free} bytes free, below the reserve of {reserve}: new sessions are refused \
         until space is freed (delivered bundles are purged as receipts arrive; ask the technician to free disk)"
    )]
    DiskReserve { path: PathBuf, free: u64, reserve: u64 },
    #[error("bundle {0} is already in the outbox")]
    Duplicate(String),
    #[error("not a sealed bundle (a JWE compact serialization with five parts): refusing to queue it")]
    NotSealed,
    #[error("outbox database {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot read the free space of {path}: {reason}")]
    Statvfs { path: PathBuf, reason: String },
    #[error(
        "data directory {path} belongs to uid {owner}, and this process runs as uid {uid}: run the agent as the \
         directory's owner, or give it a directory of its own (`[paths] data_dir`)"
    )]
    ForeignDataDir { path: PathBuf, owner: u32, uid: u32 },
    #[error("{path} is not a directory: the outbox needs a data directory of its own")]
    NotADirectory { path: PathBuf },
    #[error("making {path} private to the agent's account: {source}")]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One bundle's delivery status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleStatus {
    pub state: State,
    /// The central system's signed receipt, once delivered.
    pub receipt: Option<String>,
    pub last_error: Option<String>,
}

/// A bundle claimed for sending.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub bundle_id: String,
    pub manifest_sha256: String,
    pub jwe: String,
    pub attempts: u32,
}

/// Counts for the operator's screen and the technician.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub queued: u64,
    pub sending: u64,
    pub delivered: u64,
    pub quarantined: u64,
    /// Bytes of sealed bundles waiting (queued, sending, quarantined).
    pub pending_bytes: u64,
    /// Enqueue time of the oldest undelivered bundle (Unix ms).
    pub oldest_pending_ms: Option<i64>,
}

/// The outbox.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    reserve: u64,
}

/// Maps a database error to one that names the outbox file; owns its copy of the path, so it can live beside a
/// transaction that borrows the connection.
fn db_error(path: &Path) -> impl Fn(rusqlite::Error) -> OutboxError + use<> {
    let path = path.to_owned();
    move |source| OutboxError::Db {
        path: path.clone(),
        source,
    }
}

fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

/// Free bytes on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64, OutboxError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| OutboxError::Statvfs {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// The mode of a data directory the outbox creates.
pub const DIR_MODE: u32 = 0o700;
/// What an existing data directory loses: group write and everything for other accounts.
const DIR_MODE_STRIP: u32 = 0o027;
/// The mode of the database and its `-wal`, `-shm` (and `-journal`).
pub const FILE_MODE: u32 = 0o600;
/// The files SQLite keeps beside the database.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates `dir` 0700 when missing; otherwise checks it is ours and takes away what other accounts could do with it.
fn secure_dir(dir: &Path) -> Result<(), OutboxError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let io = |source| OutboxError::Permissions {
        path: dir.to_owned(),
        source,
    };
    let set_mode =
        |mode: u32| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io);
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(io)?;
            // The umask may only take bits away; set the mode explicitly all the same.
            set_mode(DIR_MODE)
        }
        Err(e) => Err(io(e)),
        Ok(meta) if !meta.is_dir() => Err(OutboxError::NotADirectory { path: dir.to_owned() }),
        Ok(meta) => {
            let uid = nix::unistd::geteuid().as_raw();
            if meta.uid() != uid && uid != 0 {
                return Err(OutboxError::ForeignDataDir {
                    path: dir.to_owned(),
                    owner: meta.uid(),
                    uid,
                });
            }
            let mode = meta.mode() & 0o7777;
            if mode & DIR_MODE_STRIP != 0 {
                set_mode(mode & !DIR_MODE_STRIP)?;
            }
            Ok(())
        }
    }
}

/// Creates the database file 0600 if missing (SQLite then creates its companions with that mode) and sets the mode
/// of the database and of any companion left with another mode.
fn secure_files(path: &Path) -> Result<(), OutboxError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| OutboxError::Permissions { path: p, source }
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io(path))?;
    let mut files = vec![path.to_owned()];
    for suffix in COMPANIONS {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for f in &files {
        match std::fs::metadata(f) {
            Ok(m) if m.mode() & 0o7777 != FILE_MODE => {
                std::fs::set_permissions(f, std::fs::Permissions::from_mode(FILE_MODE)).map_err(io(f))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(f)(e)),
        }
    }
    Ok(())
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, refusing new bundles when fewer than `reserve` bytes would remain.
    /// Creates `dir` 0700 when missing and keeps the directory and the database files private (see the module
    /// documentation).
    pub fn open(dir: &Path, reserve: u64) -> Result<Outbox, OutboxError> {
        let path = dir.join("outbox.sqlite");
        secure_dir(dir)?;
        secure_files(&path)?;
        let db = db_error(&path);
        let conn = Connection::open(&path).map_err(&db)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(&db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(&db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&db)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS bundles (
                bundle_id TEXT PRIMARY KEY,
                seq INTEGER UNIQUE NOT NULL,
                station_id TEXT NOT NULL,
                manifest_sha256 TEXT NOT NULL,
                jwe BLOB,
                size INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'delivered', 'quarantined')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_ms INTEGER NOT NULL,
                last_error TEXT,
                enqueued_ms INTEGER NOT NULL,
                delivered_ms INTEGER,
                receipt TEXT
            );
            CREATE INDEX IF NOT EXISTS bundles_due ON bundles (state, next_attempt_ms);
            CREATE TABLE IF NOT EXISTS chain (station_id TEXT PRIMARY KEY, last_manifest_sha256 TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
            UPDATE bundles SET state = 'queued' WHERE state = 'sending';",
        )
        .map_err(&db)?;
        Ok(Outbox { conn, path, reserve })
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> OutboxError + use<> {
        db_error(&self.path)
    }

    /// The station's chain head: the manifest digest its next bundle must carry.
    pub fn chain_head(&self, station_id: &str) -> Result<Option<String>, OutboxError> {
        self.conn
            .query_row(
                "SELECT last_manifest_sha256 FROM chain WHERE station_id = ?1",
                [station_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db())
    }

    /// Changes the disk reserve (the demo's console uses it to play a full disk).
    pub fn set_reserve(&mut self, reserve: u64) {
        self.reserve = reserve;
    }

    /// Refuses when the disk is below the reserve (before a session starts, and before each enqueue).
    pub fn check_reserve(&self, incoming: u64) -> Result<(), OutboxError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let free = free_bytes(dir)?;
        if free < self.reserve.saturating_add(incoming) {
            return Err(OutboxError::DiskReserve {
                path: self.path.clone(),
                free,
                reserve: self.reserve,
            });
        }
        Ok(())
    }

    /// Stores a sealed bundle durably and advances the station's chain, in one transaction. Returns after the
    /// commit has reached the disk.
    pub fn enqueue(
        &mut self,
        bundle_id: &str,
        station_id: &str,
        manifest_sha256: &str,
        jwe: &str,
    ) -> Result<(), OutboxError> {
        if jwe.split('.').count() != 5 {
            return Err(OutboxError::NotSealed);
        }
        self.check_reserve(jwe.len() as u64)?;
        let db = db_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&db)?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM bundles WHERE bundle_id = ?1", [bundle_id], |_| {
                Ok(true)
            })
            .optional()
            .map_err(&db)?
            .unwrap_or(false);
        if exists {
            return Err(OutboxError::Duplicate(bundle_id.to_owned()));
        }
        let seq: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM bundles", [], |r| r.get(0))
            .map_err(&db)?;
        let now = now_ms();
        tx.execute(
            "INSERT INTO bundles (bundle_id, seq, station_id, manifest_sha256, jwe, size, state, next_attempt_ms, enqueued_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7)",
            params![bundle_id, seq, station_id, manifest_sha256, jwe.as_bytes(), jwe.len() as i64, now],
        )
        .map_err(&db)?;
        tx.execute(
            "INSERT INTO chain (station_id, last_manifest_sha256) VALUES (?1, ?2)
             ON CONFLICT (station_id) DO UPDATE SET last_manifest_sha256 = excluded.last_manifest_sha256",
            params![station_id, manifest_sha256],
        )
        .map_err(&db)?;
        tx.commit().map_err(&db)
    }

    /// Claims up to `limit` bundles that are due, oldest first, marking them `sending`.
    pub fn claim_due(&mut self, limit: usize) -> Result<Vec<Claimed>, OutboxError> {
        let db = db_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&db)?;
        let claimed = {
            let mut st = tx
                .prepare(
                    "SELECT bundle_id, jwe, attempts, manifest_sha256 FROM bundles WHERE state = 'queued' AND next_attempt_ms <= ?1
                     ORDER BY seq LIMIT ?2",
                )
                .map_err(&db)?;
            let rows = st
                .query_map(params![now_ms(), limit as i64], |r| {
                    let jwe: Vec<u8> = r.get(1)?;
                    Ok(Claimed {
                        bundle_id: r.get(0)?,
                        jwe: String::from_utf8_lossy(&jwe).into_owned(),
                        attempts: r.get(2)?,
                        manifest_sha256: r.get(3)?,
                    })
                })
                .map_err(&db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&db)?
        };
        for c in &claimed {
            tx.execute(
                "UPDATE bundles SET state = 'sending' WHERE bundle_id = ?1",
                [&c.bundle_id],
            )
            .map_err(&db)?;
        }
        tx.commit().map_err(&db)?;
        Ok(claimed)
    }

    /// Claims the oldest queued bundle whatever its backoff: the probe that tells when the link is back.
    pub fn claim_oldest(&mut self) -> Result<Option<Claimed>, OutboxError> {
        let db = db_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&db)?;
        let c = tx
            .query_row(
                "SELECT bundle_id, jwe, attempts, manifest_sha256 FROM bundles WHERE state = 'queued' ORDER BY seq LIMIT 1",
                [],
                |r| {
                    let jwe: Vec<u8> = r.get(1)?;
                    Ok(Claimed {
                        bundle_id: r.get(0)?,
                        jwe: String::from_utf8_lossy(&jwe).into_owned(),
                        attempts: r.get(2)?,
                        manifest_sha256: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(&db)?;
        if let Some(c) = &c {
            tx.execute(
                "UPDATE bundles SET state = 'sending' WHERE bundle_id = ?1",
                [&c.bundle_id],
            )
            .map_err(&db)?;
        }
        tx.commit().map_err(&db)?;
        Ok(c)
    }

    /// The link is back: every queued bundle is due now (the backlog drains at full speed).
    pub fn make_all_due(&mut self) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "UPDATE bundles SET next_attempt_ms = 0 WHERE state = 'queued'",
                [],
            )
            .map(drop)
            .map_err(self.db())
    }

    /// The receipt is verified: store it and purge the bundle's bytes, in one transaction.
    pub fn mark_delivered(&mut self, bundle_id: &str, receipt: &str) -> Result<(), OutboxError> {
        let n = self
            .conn
            .execute(
                "UPDATE bundles SET state = 'delivered', receipt = ?2, jwe = NULL, delivered_ms = ?3, last_error = NULL
                 WHERE bundle_id = ?1 AND state IN ('sending', 'queued')",
                params![bundle_id, receipt, now_ms()],
            )
            .map_err(self.db())?;
        if n == 0 {
            tracing::warn!(bundle_id, "receipt for a bundle that is not being sent");
        }
        Ok(())
    }

    /// A transient failure: back to `queued`, due again at `next_attempt_ms`.
    pub fn mark_retry(
        &mut self,
        bundle_id: &str,
        error: &str,
        next_attempt_ms: i64,
    ) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "UPDATE bundles SET state = 'queued', attempts = attempts + 1, last_error = ?2, next_attempt_ms = ?3
                 WHERE bundle_id = ?1 AND state = 'sending'",
                params![bundle_id, error, next_attempt_ms],
            )
            .map(drop)
            .map_err(self.db())
    }

    /// Returns claimed bundles whose outcome could not be filed to `queued`, due as they were (an upload whose
    /// result was lost; sending again is safe, uploads are idempotent by bundle id). Rows no longer `sending` are
    /// left alone.
    pub fn release(&mut self, bundle_ids: &[String]) -> Result<(), OutboxError> {
        let db = db_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&db)?;
        for id in bundle_ids {
            tx.execute(
                "UPDATE bundles SET state = 'queued' WHERE bundle_id = ?1 AND state = 'sending'",
                [id],
            )
            .map_err(&db)?;
        }
        tx.commit().map_err(&db)
    }

    /// The central system rejected the bundle permanently: kept, never deleted automatically.
    pub fn mark_quarantined(&mut self, bundle_id: &str, reason: &str) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "UPDATE bundles SET state = 'quarantined', attempts = attempts + 1, last_error = ?2
                 WHERE bundle_id = ?1",
                params![bundle_id, reason],
            )
            .map(drop)
            .map_err(self.db())
    }

    /// The state, receipt and last error of one bundle.
    pub fn status(&self, bundle_id: &str) -> Result<Option<BundleStatus>, OutboxError> {
        self.conn
            .query_row(
                "SELECT state, receipt, last_error FROM bundles WHERE bundle_id = ?1",
                [bundle_id],
                |r| {
                    let s: String = r.get(0)?;
                    let state = match s.as_str() {
                        "queued" => State::Queued,
                        "sending" => State::Sending,
                        "delivered" => State::Delivered,
                        _ => State::Quarantined,
                    };
                    Ok(BundleStatus {
                        state,
                        receipt: r.get(1)?,
                        last_error: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.db())
    }

    /// Whether the bundle's bytes are still on disk.
    pub fn has_bytes(&self, bundle_id: &str) -> Result<bool, OutboxError> {
        self.conn
            .query_row(
                "SELECT jwe IS NOT NULL FROM bundles WHERE bundle_id = ?1",
                [bundle_id],
                |r| r.get(0),
            )
            .optional()
            .map(|o| o.unwrap_or(false))
            .map_err(self.db())
    }

    /// Every bundle id in enqueue order.
    pub fn ids(&self) -> Result<Vec<String>, OutboxError> {
        let mut st = self
            .conn
            .prepare("SELECT bundle_id FROM bundles ORDER BY seq")
            .map_err(self.db())?;
        let rows = st.query_map([], |r| r.get(0)).map_err(self.db())?;
        rows.collect::<Result<Vec<String>, _>>().map_err(self.db())
    }

    pub fn stats(&self) -> Result<Stats, OutboxError> {
        let mut s = Stats::default();
        let mut st = self
            .conn
            .prepare("SELECT state, COUNT(*), COALESCE(SUM(CASE WHEN jwe IS NULL THEN 0 ELSE size END), 0), MIN(enqueued_ms) FROM bundles GROUP BY state")
            .map_err(self.db())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, u64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .map_err(self.db())?;
        for row in rows {
            let (state, n, bytes, oldest) = row.map_err(self.db())?;
            match state.as_str() {
                "queued" => s.queued = n,
                "sending" => s.sending = n,
                "delivered" => s.delivered = n,
                _ => s.quarantined = n,
            }
            if state != State::Delivered.as_str() {
                s.pending_bytes += bytes;
                s.oldest_pending_ms = match (s.oldest_pending_ms, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(s)
    }
}
