//! Where the central receiver keeps bundles: a storage trait, the default filesystem store, and the station's chain
//! index kept incrementally in memory.
//!
//! Filesystem layout under the store root (format 2):
//!
//! ```text
//! stations/<station_id>/bundles/<bundle_id>.jwe            the sealed bundle as received
//! stations/<station_id>/bundles/<bundle_id>.receipt.jws    the receipt returned for it
//! stations/<station_id>/chain.jsonl                        the station's chain: one link per line, appended
//! ```
//!
//! A line of `chain.jsonl` is one JSON object `{"bundle_id": .., "previous": .., "digest": ..}` (the bundle, the
//! predecessor digest its manifest names, its own manifest digest) followed by `\n`, in the order the bundles were
//! stored. Gaps, forks and the chain tip are derived from the links, never stored.
//!
//! Writes, in this order, for a new bundle: the bundle (written to a temporary `.<name>.tmp` in the same directory,
//! flushed, renamed into place, the directory flushed), then its link (appended to `chain.jsonl` and flushed; a
//! failed append is truncated away), then its receipt (like the bundle). So a receipt on disk always has its bundle
//! and its link: the index is never behind the receipt, and a bundle is "stored" exactly when its receipt exists.
//! A failure before the receipt leaves no receipt, so the station's retry stores the bundle again (the link is not
//! appended twice). A failed write removes its temporary file; temporary files left by a crash are removed when the
//! receiver next loads the station ([`Storage::recover`]), and a torn last line of `chain.jsonl` (its receipt was
//! never written) is cut off then (readers skip it).
//!
//! Format 1 kept the whole chain in `stations/<station_id>/index.json` (`{"station_id", "bundles",
//! "last_bundle_id", "links": [..]}`), rewritten on every upload. A station in format 1 is read as it is, and
//! converted when the receiver first loads it: its links are written to `chain.jsonl` (atomically), then
//! `index.json` is removed. A format-1 receipt
//! whose link was lost gets it back when the station uploads that bundle again (the receiver repairs the chain on
//! the duplicate path).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("station id `{0}` cannot be a directory name")]
    BadStation(String),
    #[error("bundle id `{0}` cannot be a file name")]
    BadBundle(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}, line {line}: not a chain link ({reason}); the store needs repair", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A gap or a fork in a station's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// `gap`: a bundle names a predecessor the central system has not received (yet: uploads run in parallel, so a
    /// gap can close when the missing bundle arrives). `fork`: two bundles name the same predecessor.
    pub kind: String,
    /// The predecessor digest concerned.
    pub previous: String,
    /// The bundles that name it.
    pub bundle_ids: Vec<String>,
}

/// One received bundle's place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub bundle_id: String,
    pub previous: String,
    pub digest: String,
}

/// The station's chain as the central system has received it: every link, with gaps, forks and the tip computed
/// from all of them at each call (the reference the incremental [`ChainIndex`] is tested against).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationIndex {
    pub station_id: String,
    pub bundles: u64,
    pub last_bundle_id: Option<String>,
    pub links: Vec<Link>,
}

impl StationIndex {
    /// Gaps and forks in the chain as received so far (derived from the links, so they close as bundles arrive).
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let genesis = tamga_bundle::manifest::GENESIS;
        let mut by_previous: std::collections::BTreeMap<&str, Vec<String>> =
            std::collections::BTreeMap::new();
        for l in &self.links {
            by_previous
                .entry(l.previous.as_str())
                .or_default()
                .push(l.bundle_id.clone());
        }
        let digests: HashSet<&str> = self.links.iter().map(|l| l.digest.as_str()).collect();
        let mut out = Vec::new();
        for (previous, ids) in by_previous {
            if ids.len() > 1 {
                out.push(Anomaly {
                    kind: "fork".into(),
                    previous: previous.to_owned(),
                    bundle_ids: ids.clone(),
                });
            }
            if previous != genesis && !digests.contains(previous) {
                out.push(Anomaly {
                    kind: "gap".into(),
                    previous: previous.to_owned(),
                    bundle_ids: ids,
                });
            }
        }
        out
    }

    /// The digest at the end of the longest chain from the first bundle (the station's latest known state).
    pub fn tip(&self) -> Option<&str> {
        let genesis = tamga_bundle::manifest::GENESIS;
        let mut cur = self.links.iter().find(|l| l.previous == genesis)?;
        let mut steps = 0;
        while let Some(next) = self.links.iter().find(|l| l.previous == cur.digest) {
            cur = next;
            steps += 1;
            if steps > self.links.len() {
                break;
            }
        }
        Some(&cur.digest)
    }
}

/// A station's chain kept incrementally: adding a link and asking for the tip or the anomalies cost O(1) and
/// O(anomalies), whatever the chain's length. Same results as [`StationIndex`].
#[derive(Debug, Clone, Default)]
pub struct ChainIndex {
    links: Vec<Link>,
    ids: HashSet<String>,
    digests: HashSet<String>,
    /// Predecessor digest -> the links naming it, in arrival order.
    children: HashMap<String, Vec<usize>>,
    forks: BTreeSet<String>,
    gaps: BTreeSet<String>,
    tip: Option<usize>,
}

impl ChainIndex {
    pub fn from_links(links: impl IntoIterator<Item = Link>) -> ChainIndex {
        let mut i = ChainIndex::default();
        for l in links {
            i.push(l);
        }
        i
    }

    /// Adds a link; `false` when a link of that bundle is already there (nothing changes).
    pub fn push(&mut self, link: Link) -> bool {
        if self.ids.contains(&link.bundle_id) {
            return false;
        }
        let genesis = tamga_bundle::manifest::GENESIS;
        let idx = self.links.len();
        let siblings = self.children.entry(link.previous.clone()).or_default();
        siblings.push(idx);
        let first_child = siblings.len() == 1;
        if !first_child {
            self.forks.insert(link.previous.clone());
        }
        if link.previous != genesis && !self.digests.contains(&link.previous) {
            self.gaps.insert(link.previous.clone());
        }
        self.gaps.remove(&link.digest);
        self.digests.insert(link.digest.clone());
        self.ids.insert(link.bundle_id.clone());
        let extends_tip = first_child
            && match self.tip {
                None => link.previous == genesis,
                Some(t) => self.links[t].digest == link.previous,
            };
        self.links.push(link);
        if extends_tip {
            self.tip = Some(self.walk(idx));
        }
        true
    }

    /// Follows first children from `start` to the end.
    fn walk(&self, start: usize) -> usize {
        let mut cur = start;
        for _ in 0..self.links.len() {
            match self.children.get(&self.links[cur].digest).and_then(|c| c.first()) {
                Some(&next) => cur = next,
                None => break,
            }
        }
        cur
    }

    pub fn contains(&self, bundle_id: &str) -> bool {
        self.ids.contains(bundle_id)
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    pub fn last_bundle_id(&self) -> Option<&str> {
        self.links.last().map(|l| l.bundle_id.as_str())
    }

    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// The digest at the end of the chain from the first bundle, following the first-received successor at forks.
    pub fn tip(&self) -> Option<&str> {
        self.tip.map(|t| self.links[t].digest.as_str())
    }

    /// Whether this predecessor digest is part of a gap or a fork now.
    pub fn is_anomalous(&self, previous: &str) -> bool {
        self.forks.contains(previous) || self.gaps.contains(previous)
    }

    /// Gaps and forks, ordered by predecessor digest (a fork before a gap of the same digest).
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let ids = |previous: &str| -> Vec<String> {
            self.children
                .get(previous)
                .map(|c| c.iter().map(|&i| self.links[i].bundle_id.clone()).collect())
                .unwrap_or_default()
        };
        let keys: BTreeSet<&String> = self.forks.iter().chain(self.gaps.iter()).collect();
        let mut out = Vec::new();
        for previous in keys {
            for (kind, set) in [("fork", &self.forks), ("gap", &self.gaps)] {
                if set.contains(previous) {
                    out.push(Anomaly {
                        kind: kind.into(),
                        previous: previous.clone(),
                        bundle_ids: ids(previous),
                    });
                }
            }
        }
        out
    }
}

/// Storage of accepted bundles. The receiver calls, for a new bundle and under the station's lock: `put_bundle`,
/// `append_link` (unless the station's chain already has the bundle), `put_receipt`; a bundle counts as stored once
/// its receipt exists.
pub trait Storage: Send + Sync {
    /// The stored receipt of a bundle, if it was accepted before.
    fn receipt(&self, station: &str, bundle_id: &str) -> Result<Option<String>, StoreError>;
    /// Where a bundle is (or will be) kept, for the receipt.
    fn reference(&self, station: &str, bundle_id: &str) -> String;
    /// Stores the sealed bundle, durably and atomically (a crash leaves the old file or the new one).
    fn put_bundle(&self, station: &str, bundle_id: &str, jwe: &[u8]) -> Result<(), StoreError>;
    /// Appends a link to the station's chain, durably.
    fn append_link(&self, station: &str, link: &Link) -> Result<(), StoreError>;
    /// Stores the receipt, durably and atomically.
    fn put_receipt(&self, station: &str, bundle_id: &str, receipt: &str) -> Result<(), StoreError>;
    /// Every link of the station's chain in the order appended (empty for an unknown station). The receiver reads
    /// it once per station and keeps the chain in memory from then on. Reading changes nothing.
    fn links(&self, station: &str) -> Result<Vec<Link>, StoreError>;
    /// Called by the receiver under the station's lock before it reads the station's links (at first use, and
    /// again after a failed append): finishes or undoes what a crash or a failed write left behind. The default
    /// does nothing.
    fn recover(&self, station: &str) -> Result<(), StoreError> {
        let _ = station;
        Ok(())
    }
    /// The station's chain as one value (tools and tests; the receiver uses [`Storage::links`] once).
    fn station(&self, station: &str) -> Result<StationIndex, StoreError> {
        let links = self.links(station)?;
        Ok(StationIndex {
            station_id: station.to_owned(),
            bundles: links.len() as u64,
            last_bundle_id: links.last().map(|l| l.bundle_id.clone()),
            links,
        })
    }
}

/// The default store: files under a root directory (the layout is this module's documentation).
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.starts_with('.')
}

const CHAIN: &str = "chain.jsonl";
const OLD_INDEX: &str = "index.json";

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// Creates `dir` (and its parents) durably: each new directory's parent is flushed.
fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_at(dir)(e)),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// The temporary name of `path` while it is written: `.<name>.tmp` next to it (no bundle id starts with a dot).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to a temporary file, flushes it, renames it over `path` and flushes the directory. On failure the
/// temporary file is removed.
fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().ok_or_else(|| StoreError::Io {
        path: path.to_owned(),
        source: std::io::Error::other("no parent directory"),
    })?;
    ensure_dir(dir)?;
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_at(path)(e));
    }
    sync_dir(dir)
}

/// Removes temporary files a crash left in `dir` (not recursive).
fn sweep_temporaries(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::info!(file = %e.path().display(), "removed a temporary file left by a crash")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), error = %err, "cannot remove a temporary file")
                }
            }
        }
    }
}

impl FsStore {
    pub fn new(root: &Path) -> Result<FsStore, StoreError> {
        ensure_dir(&root.join("stations"))?;
        Ok(FsStore {
            root: root.to_owned(),
        })
    }

    fn dir(&self, station: &str) -> Result<PathBuf, StoreError> {
        if !valid_segment(station) {
            return Err(StoreError::BadStation(station.to_owned()));
        }
        Ok(self.root.join("stations").join(station))
    }

    fn bundle_path(&self, station: &str, bundle_id: &str, ext: &str) -> Result<PathBuf, StoreError> {
        if !valid_segment(bundle_id) {
            return Err(StoreError::BadBundle(bundle_id.to_owned()));
        }
        Ok(self
            .dir(station)?
            .join("bundles")
            .join(format!("{bundle_id}.{ext}")))
    }

    /// Converts a format-1 station (`index.json`) to `chain.jsonl`.
    fn migrate(&self, dir: &Path) -> Result<(), StoreError> {
        let old = dir.join(OLD_INDEX);
        let chain = dir.join(CHAIN);
        if !old.exists() {
            return Ok(());
        }
        if !chain.exists() {
            let Some(index) = read_old_index(&old)? else {
                return Ok(());
            };
            let mut text = Vec::new();
            for l in &index.links {
                text.extend(link_line(l)?);
            }
            atomic_write(&chain, &text)?;
            tracing::info!(station_dir = %dir.display(), links = index.links.len(), "converted index.json to chain.jsonl");
        }
        std::fs::remove_file(&old).map_err(io_at(&old))?;
        sync_dir(dir)
    }
}

fn link_line(link: &Link) -> Result<Vec<u8>, StoreError> {
    let mut line = serde_json::to_vec(link).map_err(|e| StoreError::Io {
        path: PathBuf::from(CHAIN),
        source: std::io::Error::other(e),
    })?;
    line.push(b'\n');
    Ok(line)
}

impl Storage for FsStore {
    fn receipt(&self, station: &str, bundle_id: &str) -> Result<Option<String>, StoreError> {
        if !valid_segment(bundle_id) {
            return Ok(None);
        }
        let p = self.bundle_path(station, bundle_id, "receipt.jws")?;
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&p)(e)),
        }
    }

    fn reference(&self, station: &str, bundle_id: &str) -> String {
        format!("fs:stations/{station}/bundles/{bundle_id}.jwe")
    }

    fn put_bundle(&self, station: &str, bundle_id: &str, jwe: &[u8]) -> Result<(), StoreError> {
        atomic_write(&self.bundle_path(station, bundle_id, "jwe")?, jwe)
    }

    fn append_link(&self, station: &str, link: &Link) -> Result<(), StoreError> {
        let dir = self.dir(station)?;
        ensure_dir(&dir)?;
        let path = dir.join(CHAIN);
        let line = link_line(link)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_at(&path))?;
        let len = f.metadata().map_err(io_at(&path))?.len();
        if let Err(e) = f.write_all(&line).and_then(|()| f.sync_data()) {
            // Take a partial line back, so the next append starts on a line of its own (if this fails too, the
            // torn line is cut when the station is next loaded).
            let _ = f.set_len(len).and_then(|()| f.sync_data());
            return Err(io_at(&path)(e));
        }
        if len == 0 {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    fn put_receipt(&self, station: &str, bundle_id: &str, receipt: &str) -> Result<(), StoreError> {
        atomic_write(
            &self.bundle_path(station, bundle_id, "receipt.jws")?,
            receipt.as_bytes(),
        )
    }

    fn links(&self, station: &str) -> Result<Vec<Link>, StoreError> {
        let dir = self.dir(station)?;
        let path = dir.join(CHAIN);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Not converted yet: a format-1 station reads from its index.json.
                return Ok(read_old_index(&dir.join(OLD_INDEX))?
                    .map(|i| i.links)
                    .unwrap_or_default());
            }
            Err(e) => return Err(io_at(&path)(e)),
        };
        // A torn last line (its receipt was never written) is not a link; `recover` cuts it off.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut links = Vec::new();
        for (i, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let link: Link = serde_json::from_slice(line).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                line: i + 1,
                reason: e.to_string(),
            })?;
            links.push(link);
        }
        Ok(links)
    }

    /// Removes temporary files, cuts a torn last line of `chain.jsonl`, converts a format-1 station.
    fn recover(&self, station: &str) -> Result<(), StoreError> {
        let dir = self.dir(station)?;
        if !dir.is_dir() {
            return Ok(());
        }
        sweep_temporaries(&dir);
        sweep_temporaries(&dir.join("bundles"));
        self.migrate(&dir)?;
        let path = dir.join(CHAIN);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            tracing::warn!(file = %path.display(), bytes = bytes.len() - complete, "cutting a torn last chain line");
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(complete as u64).and_then(|()| f.sync_data()))
                .map_err(io_at(&path))?;
        }
        Ok(())
    }
}

fn read_old_index(path: &Path) -> Result<Option<StationIndex>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at(path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            line: e.line(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tamga_bundle::manifest::GENESIS;

    fn link(id: &str, previous: &str, digest: &str) -> Link {
        Link {
            bundle_id: id.into(),
            previous: previous.into(),
            digest: digest.into(),
        }
    }

    #[test]
    fn gaps_close_when_the_missing_bundle_arrives_forks_stay() {
        let mut i = StationIndex {
            station_id: "W".into(),
            ..StationIndex::default()
        };
        let mut c = ChainIndex::default();
        for l in [link("b1", GENESIS, "d1"), link("b3", "d2", "d3")] {
            i.links.push(l.clone());
            c.push(l);
        }
        let a = i.anomalies();
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].kind.as_str(), a[0].bundle_ids.clone()),
            ("gap", vec!["b3".to_owned()])
        );
        assert_eq!(c.anomalies(), a);
        i.links.push(link("b2", "d1", "d2"));
        c.push(link("b2", "d1", "d2"));
        assert!(i.anomalies().is_empty(), "the late bundle closed the gap");
        assert!(c.anomalies().is_empty());
        assert_eq!(i.tip(), Some("d3"));
        assert_eq!(c.tip(), Some("d3"));
        i.links.push(link("b2x", "d1", "d2x"));
        c.push(link("b2x", "d1", "d2x"));
        let a = i.anomalies();
        assert_eq!(a[0].kind, "fork");
        assert_eq!(a[0].bundle_ids, vec!["b2".to_owned(), "b2x".to_owned()]);
        assert_eq!(c.anomalies(), a);
        assert!(!c.push(link("b2", "d1", "d2")), "a bundle's link is kept once");
    }

    /// The incremental index agrees with the whole recomputation for chains with gaps, forks and late arrivals in
    /// any order.
    #[test]
    fn the_incremental_index_matches_the_whole_recomputation() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            // A chain of n links, some forks off random points, some links dropped, then shuffled.
            let n = 1 + (next() % 30) as usize;
            let mut links = Vec::new();
            let mut prev = GENESIS.to_owned();
            for k in 0..n {
                let d = format!("d{round}-{k}");
                links.push(link(&format!("b{k}"), &prev, &d));
                prev = d;
            }
            for f in 0..(next() % 4) {
                let at = (next() % n as u64) as usize;
                let p = links[at].previous.clone();
                links.push(link(&format!("f{f}"), &p, &format!("fd{round}-{f}")));
            }
            let drop = (next() % 3) as usize;
            for _ in 0..drop {
                if links.len() > 1 {
                    let at = (next() % links.len() as u64) as usize;
                    links.remove(at);
                }
            }
            for k in (1..links.len()).rev() {
                links.swap(k, (next() % (k as u64 + 1)) as usize);
            }
            let mut c = ChainIndex::default();
            let mut whole = StationIndex::default();
            for l in links {
                whole.links.push(l.clone());
                c.push(l);
                assert_eq!(c.anomalies(), whole.anomalies(), "round {round}");
                assert_eq!(c.tip(), whole.tip(), "round {round}");
            }
        }
    }

    #[test]
    fn fs_store_round_trip_and_refuses_path_tricks() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path()).unwrap();
        s.put_bundle("W1", "b1", b"jwe").unwrap();
        s.append_link("W1", &link("b1", GENESIS, "d1")).unwrap();
        s.put_receipt("W1", "b1", "receipt").unwrap();
        assert_eq!(s.receipt("W1", "b1").unwrap().as_deref(), Some("receipt"));
        assert_eq!(s.station("W1").unwrap().bundles, 1);
        assert_eq!(s.links("W1").unwrap(), vec![link("b1", GENESIS, "d1")]);
        assert!(s.put_bundle("../etc", "b1", b"x").is_err());
        assert!(s.append_link("../etc", &link("b1", GENESIS, "d1")).is_err());
        assert!(s.put_receipt("W1", "../../x", "y").is_err());
        assert!(s.receipt("W1", "../../x").unwrap().is_none());
        assert!(s.links("never-seen").unwrap().is_empty());
    }

    #[test]
    fn a_torn_last_line_and_crash_temporaries_are_cleaned_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path()).unwrap();
        s.append_link("W1", &link("b1", GENESIS, "d1")).unwrap();
        let station = dir.path().join("stations/W1");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(station.join(CHAIN))
            .unwrap();
        f.write_all(br#"{"bundle_id":"b2","prev"#).unwrap();
        std::fs::create_dir_all(station.join("bundles")).unwrap();
        std::fs::write(station.join("bundles/.b2.jwe.tmp"), b"half").unwrap();
        assert_eq!(
            s.links("W1").unwrap(),
            vec![link("b1", GENESIS, "d1")],
            "a torn line is no link"
        );
        assert!(
            station.join("bundles/.b2.jwe.tmp").exists(),
            "reading changes nothing"
        );
        s.recover("W1").unwrap();
        assert!(!station.join("bundles/.b2.jwe.tmp").exists());
        s.append_link("W1", &link("b2", "d1", "d2")).unwrap();
        assert_eq!(
            s.links("W1").unwrap().len(),
            2,
            "the next append starts on a line of its own"
        );
    }

    #[test]
    fn a_format_1_station_is_converted_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path()).unwrap();
        let station = dir.path().join("stations/W1");
        std::fs::create_dir_all(&station).unwrap();
        let old = StationIndex {
            station_id: "W1".into(),
            bundles: 2,
            last_bundle_id: Some("b2".into()),
            links: vec![link("b1", GENESIS, "d1"), link("b2", "d1", "d2")],
        };
        std::fs::write(station.join(OLD_INDEX), serde_json::to_vec_pretty(&old).unwrap()).unwrap();
        assert_eq!(s.links("W1").unwrap(), old.links, "read before conversion");
        s.recover("W1").unwrap();
        assert_eq!(s.links("W1").unwrap(), old.links);
        assert!(!station.join(OLD_INDEX).exists());
        assert!(station.join(CHAIN).exists());
        assert_eq!(s.station("W1").unwrap().links, old.links);
    }
}
