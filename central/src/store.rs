//! Where the central receiver keeps bundles: a storage trait, and the default filesystem store.
//!
//! Filesystem layout under the store root:
//!
//! ```text
//! stations/<station_id>/bundles/<bundle_id>.jwe            the sealed bundle as received
//! stations/<station_id>/bundles/<bundle_id>.receipt.jws    the receipt returned for it
//! stations/<station_id>/index.json                         the station's chain: last digest, count, anomalies
//! ```
//!
//! Every file is written to a temporary name, flushed to disk, renamed into place, and its directory flushed: a
//! crash leaves either the old or the new file, never a torn one. The receipt is written after the bundle, so a
//! receipt on disk always has its bundle.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// The station's chain as the central system has received it.
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
        let mut out = Vec::new();
        for (previous, ids) in by_previous {
            if ids.len() > 1 {
                out.push(Anomaly {
                    kind: "fork".into(),
                    previous: previous.to_owned(),
                    bundle_ids: ids.clone(),
                });
            }
            if previous != genesis && !self.links.iter().any(|l| l.digest == previous) {
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

/// Storage of accepted bundles.
pub trait Storage: Send + Sync {
    /// The stored receipt of a bundle, if it was accepted before.
    fn receipt(&self, station: &str, bundle_id: &str) -> std::io::Result<Option<String>>;
    /// Where a bundle is (or will be) kept, for the receipt.
    fn reference(&self, station: &str, bundle_id: &str) -> String;
    /// Stores a bundle and its receipt atomically, and updates the station's index.
    fn put(
        &self,
        station: &str,
        bundle_id: &str,
        jwe: &str,
        receipt: &str,
        index: &StationIndex,
    ) -> std::io::Result<()>;
    /// The station's index.
    fn station(&self, station: &str) -> std::io::Result<StationIndex>;
}

/// The default store: files under a root directory.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    lock: Mutex<()>,
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.starts_with('.')
}

fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

impl FsStore {
    pub fn new(root: &Path) -> std::io::Result<FsStore> {
        std::fs::create_dir_all(root.join("stations"))?;
        Ok(FsStore {
            root: root.to_owned(),
            lock: Mutex::new(()),
        })
    }

    fn dir(&self, station: &str) -> std::io::Result<PathBuf> {
        if !valid_segment(station) {
            return Err(std::io::Error::other(format!(
                "station id `{station}` cannot be a directory name"
            )));
        }
        Ok(self.root.join("stations").join(station))
    }
}

impl Storage for FsStore {
    fn receipt(&self, station: &str, bundle_id: &str) -> std::io::Result<Option<String>> {
        if !valid_segment(bundle_id) {
            return Ok(None);
        }
        let p = self
            .dir(station)?
            .join("bundles")
            .join(format!("{bundle_id}.receipt.jws"));
        match std::fs::read_to_string(p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn reference(&self, station: &str, bundle_id: &str) -> String {
        format!("fs:stations/{station}/bundles/{bundle_id}.jwe")
    }

    fn put(
        &self,
        station: &str,
        bundle_id: &str,
        jwe: &str,
        receipt: &str,
        index: &StationIndex,
    ) -> std::io::Result<()> {
        if !valid_segment(bundle_id) {
            return Err(std::io::Error::other("bundle id cannot be a file name"));
        }
        let _guard = self
            .lock
            .lock()
            .map_err(|_| std::io::Error::other("store lock poisoned"))?;
        let dir = self.dir(station)?;
        let bundles = dir.join("bundles");
        atomic_write(&bundles.join(format!("{bundle_id}.jwe")), jwe.as_bytes())?;
        atomic_write(
            &bundles.join(format!("{bundle_id}.receipt.jws")),
            receipt.as_bytes(),
        )?;
        let json = serde_json::to_vec_pretty(index).map_err(std::io::Error::other)?;
        atomic_write(&dir.join("index.json"), &json)
    }

    fn station(&self, station: &str) -> std::io::Result<StationIndex> {
        match std::fs::read(self.dir(station)?.join("index.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StationIndex {
                station_id: station.to_owned(),
                ..StationIndex::default()
            }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
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
        i.links.push(link("b1", GENESIS, "d1"));
        i.links.push(link("b3", "d2", "d3"));
        let a = i.anomalies();
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].kind.as_str(), a[0].bundle_ids.clone()),
            ("gap", vec!["b3".to_owned()])
        );
        i.links.push(link("b2", "d1", "d2"));
        assert!(i.anomalies().is_empty(), "the late bundle closed the gap");
        assert_eq!(i.tip(), Some("d3"));
        i.links.push(link("b2x", "d1", "d2x"));
        let a = i.anomalies();
        assert_eq!(a[0].kind, "fork");
        assert_eq!(a[0].bundle_ids, vec!["b2".to_owned(), "b2x".to_owned()]);
    }

    #[test]
    fn fs_store_round_trip_and_refuses_path_tricks() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path()).unwrap();
        let idx = StationIndex {
            station_id: "W1".into(),
            bundles: 1,
            ..StationIndex::default()
        };
        s.put("W1", "b1", "jwe", "receipt", &idx).unwrap();
        assert_eq!(s.receipt("W1", "b1").unwrap().as_deref(), Some("receipt"));
        assert_eq!(s.station("W1").unwrap().bundles, 1);
        assert!(s.put("../etc", "b1", "x", "y", &idx).is_err());
        assert!(s.receipt("W1", "../../x").unwrap().is_none());
    }
}
