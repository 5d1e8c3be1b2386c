//! The revocation list: SHA-256 fingerprints (hex) of revoked station certificates' DER, one per line; blank lines
//! and lines starting with `#` are ignored. Anything else on a line is an error.
//!
//! It fails closed. The list is loaded and validated at start (an unreadable or invalid list stops the start); it
//! is checked for changes (inode, size, modification and change times) on every request that needs it, and
//! re-read at least once a second while requests come; a new version replaces the old one only once it has been
//! read and parsed completely. When it cannot be read or does not parse, every request is refused
//! (`503 revocation_list_unavailable`) until a valid list is in place: a revoked station is never accepted because
//! its revocation could not be read.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why the list cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RevocationError {
    #[error(
        "the revocation list {path} cannot be read ({reason}): station requests are refused until it is a readable file of fingerprints"
    )]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "the revocation list {path}, line {line}: `{text}` is not a SHA-256 fingerprint (64 hex digits) or a # comment; station requests are refused until it is fixed"
    )]
    Invalid {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

#[derive(Debug)]
struct State {
    /// The version the result was read from (`None`: absent).
    stamp: Option<Stamp>,
    read_at: Instant,
    result: Result<Arc<HashSet<String>>, RevocationError>,
}

/// How long a read is trusted when the file's stamp has not changed (a rewrite of the same size within one
/// timestamp tick is invisible to the stamp).
const REREAD_AFTER: Duration = Duration::from_secs(1);

/// A revocation list file, re-read when it changes.
#[derive(Debug)]
pub struct RevocationList {
    path: PathBuf,
    may_be_absent: bool,
    state: Mutex<State>,
}

fn parse(path: &Path, text: &str) -> Result<HashSet<String>, RevocationError> {
    let mut out = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.len() != 64 || !l.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RevocationError::Invalid {
                path: path.to_owned(),
                line: i + 1,
                text: l.chars().take(80).collect(),
            });
        }
        out.insert(l.to_ascii_lowercase());
    }
    Ok(out)
}

impl RevocationList {
    /// Loads and validates the list. An absent file is an error unless `may_be_absent` (then it is empty until it
    /// appears).
    pub fn load(path: &Path, may_be_absent: bool) -> Result<RevocationList, RevocationError> {
        let state = Self::read(path, may_be_absent);
        if let Err(e) = &state.result {
            return Err(e.clone());
        }
        Ok(RevocationList {
            path: path.to_owned(),
            may_be_absent,
            state: Mutex::new(state),
        })
    }

    fn stamp(path: &Path) -> std::io::Result<Stamp> {
        let m = std::fs::metadata(path)?;
        Ok(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    fn read(path: &Path, may_be_absent: bool) -> State {
        let unreadable = |e: std::io::Error| RevocationError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let read_at = Instant::now();
        let stamp = match Self::stamp(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_be_absent => {
                return State {
                    stamp: None,
                    read_at,
                    result: Ok(Arc::new(HashSet::new())),
                };
            }
            Err(e) => {
                return State {
                    stamp: None,
                    read_at,
                    result: Err(unreadable(e)),
                };
            }
        };
        let result = std::fs::read_to_string(path)
            .map_err(unreadable)
            .and_then(|t| parse(path, &t))
            .map(Arc::new);
        State {
            stamp: Some(stamp),
            read_at,
            result,
        }
    }

    /// The current list (blocking: it may stat and read the file). An error means: refuse the request.
    pub fn current(&self) -> Result<Arc<HashSet<String>>, RevocationError> {
        let mut state = self.state.lock().map_err(|_| RevocationError::Unreadable {
            path: self.path.clone(),
            reason: "the list's lock was poisoned".into(),
        })?;
        let now_stamp = Self::stamp(&self.path).ok();
        if now_stamp != state.stamp || state.read_at.elapsed() >= REREAD_AFTER || state.result.is_err() {
            *state = Self::read(&self.path, self.may_be_absent);
        }
        state.result.clone()
    }

    /// Whether the certificate with this fingerprint (SHA-256 hex of its DER) is revoked.
    pub fn is_revoked(&self, fingerprint: &str) -> Result<bool, RevocationError> {
        Ok(self.current()?.contains(&fingerprint.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_fingerprints_and_comments_and_names_the_bad_line() {
        let p = Path::new("r.txt");
        let fp = "AB".repeat(32);
        let set = parse(p, &format!("# lost\n\n  {fp}  \n")).unwrap();
        assert!(set.contains(&fp.to_ascii_lowercase()));
        let e = parse(p, &format!("{fp}\nnope\n")).unwrap_err();
        assert_eq!(
            e,
            RevocationError::Invalid {
                path: p.into(),
                line: 2,
                text: "nope".into()
            }
        );
    }
}
