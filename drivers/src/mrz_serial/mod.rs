//! Serial MRZ readers: passport and ID readers that send the machine readable zone as text over a serial line
//! (RS-232, USB-CDC or a USB-serial bridge), framed as the device profile's `[mrz_framing]` says.
//!
//! The driver opens the port with the profile's line settings, reassembles one document from the byte stream
//! ([`deframer`]), and parses it with [`tamga_mrz`]. It survives the reader being unplugged and plugged back: a
//! document in flight is reported lost ([`MrzReadError::Disconnected`]), and the next read waits for the port to
//! return and reopens it, without restarting anything.

pub mod deframer;

use crate::serial::{self, OpenError, OpenErrorKind};
use deframer::{Deframer, Event, FrameError};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tamga_mrz::{Mrz, MrzError, ParseOptions};
use tamga_profiles::{MrzFraming, Profile, SerialSettings};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tokio_serial::SerialStream;
use tracing::{debug, info, warn};

/// A document read from the reader.
#[derive(Debug, Clone)]
pub struct MrzRead {
    /// The parsed and checked MRZ.
    pub mrz: Mrz,
    /// The document text as the reader framed it (envelope removed), for audit.
    pub raw: String,
}

/// Why no document came back.
#[derive(Debug, thiserror::Error)]
pub enum MrzReadError {
    /// The profile is not for a serial MRZ reader.
    #[error("profile `{0}` is not a serial MRZ reader profile (it needs [serial] and [mrz_framing])")]
    WrongProfile(String),
    /// The port cannot be opened for a reason waiting will not fix.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The port stayed absent until the deadline.
    #[error(
        "reader on {path} is not connected ({waited:?} waited): plug it in; `tamga devices scan` lists ports"
    )]
    Unavailable { path: PathBuf, waited: Duration },
    /// The port went away while reading.
    #[error(
        "reader on {path} was disconnected{}; reconnect it (the next read waits for it)",
        if *.mid_document { " in the middle of a document, which is lost: scan it again" } else { "" }
    )]
    Disconnected { path: PathBuf, mid_document: bool },
    /// No document within the deadline.
    #[error("no document within {0:?}: lay the document on the reader (or swipe it) and try again")]
    Timeout(Duration),
    /// A broken frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A whole frame arrived but its text is not an MRZ.
    #[error("the reader sent text that is not an MRZ: {source}; scan the document again")]
    NotMrz {
        #[source]
        source: MrzError,
        raw: String,
    },
}

/// A serial MRZ reader bound to a port path.
#[derive(Debug)]
pub struct MrzReader {
    profile: String,
    path: PathBuf,
    settings: SerialSettings,
    framing: MrzFraming,
    port: Option<SerialStream>,
    deframer: Deframer,
    pending: VecDeque<u8>,
}

const REOPEN_MIN: Duration = Duration::from_millis(50);
const REOPEN_MAX: Duration = Duration::from_secs(2);

impl MrzReader {
    /// A reader on `path` described by `profile`. Nothing is opened until the first read.
    pub fn new(profile: &Profile, path: &Path) -> Result<Self, MrzReadError> {
        let (Some(settings), Some(framing)) = (profile.serial, profile.mrz_framing.clone()) else {
            return Err(MrzReadError::WrongProfile(profile.name.clone()));
        };
        Ok(MrzReader {
            profile: profile.name.clone(),
            path: path.to_owned(),
            settings,
            deframer: Deframer::new(framing.clone()),
            framing,
            port: None,
            pending: VecDeque::new(),
        })
    }

    /// The port path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while the port is open.
    pub fn is_connected(&self) -> bool {
        self.port.is_some()
    }

    /// Opens the port now (reads open it on demand); useful to report a wrong path at start-up.
    pub fn connect(&mut self) -> Result<(), OpenError> {
        if self.port.is_none() {
            self.port = Some(serial::open(&self.path, &self.settings)?);
            self.deframer.reset();
            self.pending.clear();
            info!(port = %self.path.display(), settings = %self.settings.summary(), "reader port opened");
        }
        Ok(())
    }

    /// Waits up to `timeout` for one document and returns it parsed and checked.
    ///
    /// A frame error, text that is not an MRZ, or a disconnection ends the read at once with an error that says
    /// what to do; the reader stays usable for the next read.
    #[tracing::instrument(name = "mrz_read", skip(self, opts), fields(profile = %self.profile, port = %self.path.display()))]
    pub async fn read_document(
        &mut self,
        timeout: Duration,
        opts: &ParseOptions,
    ) -> Result<MrzRead, MrzReadError> {
        let deadline = Instant::now() + timeout;
        let idle = Duration::from_millis(u64::from(self.framing.inter_byte_timeout_ms));
        let mut backoff = REOPEN_MIN;
        let mut buf = [0u8; 256];
        loop {
            while let Some(b) = self.pending.pop_front() {
                if let Some(ev) = self.deframer.push(b) {
                    return self.finish(ev, opts);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(if self.port.is_some() {
                    MrzReadError::Timeout(timeout)
                } else {
                    MrzReadError::Unavailable {
                        path: self.path.clone(),
                        waited: timeout,
                    }
                });
            }
            if self.port.is_none() {
                match self.connect() {
                    Ok(()) => backoff = REOPEN_MIN,
                    Err(e) if e.kind == OpenErrorKind::Absent => {
                        debug!(retry_in = ?backoff, "reader port absent; waiting for it to return");
                        tokio::time::sleep(backoff.min(deadline - now)).await;
                        backoff = (backoff * 2).min(REOPEN_MAX);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let Some(port) = self.port.as_mut() else { continue };
            let wait = if self.deframer.in_progress() {
                idle.min(deadline - now)
            } else {
                deadline - now
            };
            match tokio::time::timeout(wait, port.read(&mut buf)).await {
                Err(_) => {
                    if let Some(ev) = self.deframer.on_idle() {
                        return self.finish(ev, opts);
                    }
                }
                Ok(Ok(n)) if n > 0 => {
                    debug!(bytes = n, "received");
                    self.pending.extend(&buf[..n]);
                }
                Ok(Ok(_)) | Ok(Err(_)) => {
                    let mid_document = self.deframer.in_progress();
                    warn!(mid_document, "reader port closed under us (unplugged?)");
                    self.port = None;
                    self.deframer.reset();
                    self.pending.clear();
                    return Err(MrzReadError::Disconnected {
                        path: self.path.clone(),
                        mid_document,
                    });
                }
            }
        }
    }

    fn finish(&mut self, ev: Event, opts: &ParseOptions) -> Result<MrzRead, MrzReadError> {
        match ev {
            Event::Error(e) => {
                warn!(error = %e, "bad frame");
                Err(e.into())
            }
            Event::Document(bytes) => {
                let raw = String::from_utf8_lossy(&bytes).into_owned();
                match tamga_mrz::parse(&raw, opts) {
                    Ok(mrz) => {
                        info!(format = %mrz.format, valid = mrz.valid, corrections = mrz.corrections.len(), "document read");
                        Ok(MrzRead { mrz, raw })
                    }
                    Err(source) => {
                        warn!(error = %source, "frame is not an MRZ");
                        Err(MrzReadError::NotMrz { source, raw })
                    }
                }
            }
        }
    }
}
