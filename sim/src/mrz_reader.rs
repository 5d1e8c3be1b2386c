//! A serial MRZ reader emulator: plays documents with a profile's framing on a pseudo-terminal, with faults.

use crate::pty::SimPort;
use std::io;
use std::path::Path;
use std::time::Duration;
use tamga_profiles::{Bcc, MrzFraming, Profile, SerialSettings};

/// A fault to inject while playing one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Send these bytes before the frame (line noise, a ready byte, a previous half frame).
    NoiseBefore(Vec<u8>),
    /// Replace the byte at `offset` of the encoded frame with `byte`.
    Garble { offset: usize, byte: u8 },
    /// Send only the first `keep` characters of line `line` (1-based).
    CutLine { line: usize, keep: usize },
    /// Stop for `pause` after `offset` bytes of the frame, then go on.
    Pause { offset: usize, pause: Duration },
    /// Unplug the reader after `offset` bytes of the frame; the rest is never sent.
    Disconnect { offset: usize },
}

/// The emulator.
#[derive(Debug)]
pub struct MrzReaderEmulator {
    port: SimPort,
    settings: SerialSettings,
    framing: MrzFraming,
    pace: bool,
}

/// What went wrong in the emulator itself.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("profile `{0}` has no [serial] and [mrz_framing]")]
    WrongProfile(String),
    #[error("simulated port: {0}")]
    Io(#[from] io::Error),
}

impl MrzReaderEmulator {
    /// Plugs a reader described by `profile` in at `link`. With `pace`, bytes leave at the profile's line rate.
    pub fn start(profile: &Profile, link: &Path, pace: bool) -> Result<Self, SimError> {
        let (Some(settings), Some(framing)) = (profile.serial, profile.mrz_framing.clone()) else {
            return Err(SimError::WrongProfile(profile.name.clone()));
        };
        Ok(MrzReaderEmulator {
            port: SimPort::plug(link)?,
            settings,
            framing,
            pace,
        })
    }

    /// The simulated port.
    pub fn port(&self) -> &SimPort {
        &self.port
    }

    /// The path a driver opens.
    pub fn path(&self) -> &Path {
        self.port.path()
    }

    /// Encodes `lines` as this reader frames them (the bytes a real reader of this profile sends).
    pub fn encode(&self, lines: &[&str]) -> Vec<u8> {
        encode(&self.framing, lines)
    }

    /// Plays one document, applying `faults`. Blocks until it is sent (paced, if asked).
    pub fn play(&self, lines: &[&str], faults: &[Fault]) -> Result<(), SimError> {
        let mut owned: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        for f in faults {
            if let Fault::CutLine { line, keep } = f
                && let Some(l) = owned.get_mut(line.saturating_sub(1))
            {
                l.truncate(*keep);
            }
        }
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let mut bytes = encode(&self.framing, &refs);
        for f in faults {
            if let Fault::Garble { offset, byte } = f
                && let Some(b) = bytes.get_mut(*offset)
            {
                *b = *byte;
            }
        }
        let pace = self
            .pace
            .then(|| (self.settings.baud, self.settings.bits_per_byte()));
        for f in faults {
            if let Fault::NoiseBefore(noise) = f {
                self.port.send(noise, pace)?;
            }
        }
        // Cut points: pauses and a disconnect, in frame order.
        let mut cuts: Vec<(usize, Option<Duration>)> = faults
            .iter()
            .filter_map(|f| match f {
                Fault::Pause { offset, pause } => Some((*offset, Some(*pause))),
                Fault::Disconnect { offset } => Some((*offset, None)),
                _ => None,
            })
            .collect();
        cuts.sort_by_key(|c| c.0);
        let mut sent = 0;
        for (offset, pause) in cuts {
            let offset = offset.min(bytes.len());
            self.port.send(&bytes[sent..offset], pace)?;
            sent = offset;
            match pause {
                Some(p) => std::thread::sleep(p),
                None => {
                    // Let the driver read what was sent before the cable goes.
                    std::thread::sleep(Duration::from_millis(50));
                    self.port.unplug();
                    return Ok(());
                }
            }
        }
        self.port.send(&bytes[sent..], pace)?;
        Ok(())
    }
}

/// Encodes `lines` with `framing`. The 3M-style header (between `frame_start` and `data_start`) is a three-digit
/// length and "OU"; skipped bytes are `0`.
pub fn encode(framing: &MrzFraming, lines: &[&str]) -> Vec<u8> {
    let sep = framing.line_separator.bytes();
    let mut body = Vec::new();
    if framing.empty_first_line && lines.len() == 2 {
        body.extend_from_slice(sep);
    }
    for line in lines {
        body.extend_from_slice(line.as_bytes());
        if let Some(pad) = framing.padding {
            let width: usize = if line.len() <= 30 { 30 } else { 44 };
            body.extend(std::iter::repeat_n(pad, width.saturating_sub(line.len())));
        }
        body.extend_from_slice(sep);
    }
    let mut out = framing.frame_start.clone();
    if !framing.data_start.is_empty() {
        out.extend_from_slice(format!("{:03}OU", body.len() % 1000).as_bytes());
        out.extend_from_slice(&framing.data_start);
    }
    out.extend(std::iter::repeat_n(b'0', usize::from(framing.skip)));
    out.extend_from_slice(&body);
    out.extend_from_slice(&framing.frame_end);
    if framing.bcc == Bcc::Xor {
        let bcc = out[framing.frame_start.len()..].iter().fold(0u8, |a, b| a ^ b);
        out.push(bcc);
    }
    out
}
