//! Reassembles MRZ documents from the byte stream of a serial reader, as its profile's framing describes.
//!
//! Pure state machine: bytes go in with [`Deframer::push`], silence is reported with [`Deframer::on_idle`], and
//! out come whole documents or typed frame errors. It resynchronises on its own: bytes outside a frame are noise
//! and are dropped; a new frame start inside a frame ends the old one as truncated; an over-long frame is dropped.

use tamga_profiles::{Bcc, MrzFraming};

/// What the deframer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The text of one document: lines with their separators, padding removed.
    Document(Vec<u8>),
    /// A frame that cannot be trusted; the document must be scanned again.
    Error(FrameError),
}

/// A broken frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The block check byte does not match the frame.
    #[error(
        "block check failed (computed 0x{computed:02X}, received 0x{received:02X}): the line corrupted the document; \
         scan it again, and if it repeats check the cable"
    )]
    Bcc { computed: u8, received: u8 },
    /// The frame ended before its end marker.
    #[error("document cut short: {0}; scan it again")]
    Truncated(&'static str),
    /// No end marker within the profile's size limit.
    #[error(
        "frame longer than {0} bytes without an end marker: the reader's framing differs from its profile \
         (check `frame_end` with `tamga profiles show`)"
    )]
    Overflow(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hunting,
    Header,
    Skip(u8),
    Data,
    Check,
}

/// The deframer for one reader.
#[derive(Debug, Clone)]
pub struct Deframer {
    framing: MrzFraming,
    state: State,
    buf: Vec<u8>,
    bcc: u8,
    dropped: u64,
}

impl Deframer {
    pub fn new(framing: MrzFraming) -> Self {
        let mut d = Deframer {
            framing,
            state: State::Hunting,
            buf: Vec::new(),
            bcc: 0,
            dropped: 0,
        };
        d.reset();
        d
    }

    /// Forgets any partial document.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.bcc = 0;
        self.state = if self.framing.frameless() {
            State::Data
        } else {
            State::Hunting
        };
    }

    /// True while a document is partly received.
    pub fn in_progress(&self) -> bool {
        match self.state {
            State::Hunting => false,
            State::Data if self.framing.frameless() => self.buf.iter().any(|b| !b.is_ascii_whitespace()),
            _ => true,
        }
    }

    /// Bytes dropped as noise outside frames so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn after_start(&self) -> State {
        if !self.framing.data_start.is_empty() {
            State::Header
        } else if self.framing.skip > 0 {
            State::Skip(self.framing.skip)
        } else {
            State::Data
        }
    }

    fn begin_frame(&mut self) {
        self.buf.clear();
        self.bcc = 0;
        self.state = self.after_start();
    }

    fn fail(&mut self, e: FrameError) -> Option<Event> {
        self.reset();
        Some(Event::Error(e))
    }

    fn text(&self, end: usize) -> Vec<u8> {
        let pad = self.framing.padding;
        self.buf[..end]
            .iter()
            .copied()
            .filter(|&b| Some(b) != pad)
            .collect()
    }

    /// Feeds one byte.
    pub fn push(&mut self, b: u8) -> Option<Event> {
        let f = &self.framing;
        if self.state != State::Hunting && !f.frameless() && self.buf.len() >= usize::from(f.max_frame_bytes)
        {
            let max = f.max_frame_bytes;
            return self.fail(FrameError::Overflow(max));
        }
        match self.state {
            State::Hunting => {
                self.buf.push(b);
                if self.buf.ends_with(&self.framing.frame_start) {
                    self.dropped += (self.buf.len() - self.framing.frame_start.len()) as u64;
                    self.begin_frame();
                } else if self.buf.len() >= self.framing.frame_start.len() {
                    // Keep only what could still be the beginning of a frame start.
                    let keep = self.framing.frame_start.len() - 1;
                    let cut = self.buf.len() - keep;
                    self.dropped += cut as u64;
                    self.buf.drain(..cut);
                }
                None
            }
            State::Header => {
                self.bcc ^= b;
                self.buf.push(b);
                if self.restarted() {
                    return self.truncated_restart();
                }
                if self.buf.ends_with(&self.framing.data_start) {
                    self.buf.clear();
                    self.state = if self.framing.skip > 0 {
                        State::Skip(self.framing.skip)
                    } else {
                        State::Data
                    };
                }
                None
            }
            State::Skip(n) => {
                self.bcc ^= b;
                self.buf.push(b);
                if self.restarted() {
                    return self.truncated_restart();
                }
                if n > 1 {
                    self.state = State::Skip(n - 1);
                } else {
                    self.buf.clear();
                    self.state = State::Data;
                }
                None
            }
            State::Data if self.framing.frameless() => self.push_frameless(b),
            State::Data => {
                self.bcc ^= b;
                self.buf.push(b);
                if self.restarted() {
                    return self.truncated_restart();
                }
                if self.buf.ends_with(&self.framing.frame_end) {
                    if self.framing.bcc == Bcc::Xor {
                        self.state = State::Check;
                        return None;
                    }
                    let doc = self.text(self.buf.len() - self.framing.frame_end.len());
                    self.reset();
                    return Some(Event::Document(doc));
                }
                None
            }
            State::Check => {
                let computed = self.bcc;
                if computed != b {
                    let e = FrameError::Bcc {
                        computed,
                        received: b,
                    };
                    if self.framing.frame_start == [b] {
                        // What came in place of the check byte opens a new frame: keep it, so that a stray
                        // end marker in line noise does not swallow the next document's start.
                        self.begin_frame();
                        return Some(Event::Error(e));
                    }
                    return self.fail(e);
                }
                let doc = self.text(self.buf.len() - self.framing.frame_end.len());
                self.reset();
                Some(Event::Document(doc))
            }
        }
    }

    fn restarted(&self) -> bool {
        let start = &self.framing.frame_start;
        start != &self.framing.frame_end && self.buf.ends_with(start)
    }

    fn truncated_restart(&mut self) -> Option<Event> {
        self.begin_frame();
        Some(Event::Error(FrameError::Truncated(
            "a new document started before the previous one ended",
        )))
    }

    fn push_frameless(&mut self, b: u8) -> Option<Event> {
        self.buf.push(b);
        if self.buf.len() > usize::from(self.framing.max_frame_bytes) {
            let max = self.framing.max_frame_bytes;
            return self.fail(FrameError::Overflow(max));
        }
        if b != b'\r' && b != b'\n' {
            return None;
        }
        let text = self.text(self.buf.len());
        let lines: Vec<&[u8]> = text
            .split(|&c| c == b'\r' || c == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|l| !l.is_empty())
            .collect();
        let complete = match lines.as_slice() {
            [a, b] => a.len() == b.len() && (a.len() == 36 || a.len() == 44),
            [a, b, c] => a.len() == 30 && b.len() == 30 && c.len() == 30,
            _ => false,
        };
        if complete {
            self.reset();
            return Some(Event::Document(text));
        }
        None
    }

    /// Reports that the line has been silent for the profile's `inter_byte_timeout_ms`.
    pub fn on_idle(&mut self) -> Option<Event> {
        if !self.in_progress() {
            // Hunting: a partial frame start; frameless: stray line ends. Neither is a document.
            self.dropped += self.buf.len() as u64;
            self.buf.clear();
            return None;
        }
        if self.framing.frameless() {
            let doc = self.text(self.buf.len());
            self.reset();
            return Some(Event::Document(doc));
        }
        self.fail(FrameError::Truncated(
            "the reader went silent in the middle of a document",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tamga_profiles::LineSeparator;

    fn framing() -> MrzFraming {
        MrzFraming {
            frame_start: vec![0x01],
            data_start: vec![0x02],
            skip: 1,
            line_separator: LineSeparator::Cr,
            empty_first_line: true,
            padding: Some(b'_'),
            frame_end: vec![0x03],
            bcc: Bcc::Xor,
            inter_byte_timeout_ms: 500,
            max_frame_bytes: 512,
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x01, b'4', b'2', b'O', b'U', 0x02, b'F'];
        v.extend_from_slice(body);
        v.push(0x03);
        let bcc = v[1..].iter().fold(0, |a, b| a ^ b);
        v.push(bcc);
        v
    }

    fn feed(d: &mut Deframer, bytes: &[u8]) -> Vec<Event> {
        bytes.iter().filter_map(|&b| d.push(b)).collect()
    }

    #[test]
    fn framed_document_with_header_skip_padding_and_bcc() {
        let mut d = Deframer::new(framing());
        let ev = feed(
            &mut d,
            &[b"noise\x55".as_slice(), &frame(b"\rAB__\rCD\r")].concat(),
        );
        assert_eq!(ev, vec![Event::Document(b"\rAB\rCD\r".to_vec())]);
        assert_eq!(d.dropped(), 6);
        assert!(!d.in_progress());
    }

    #[test]
    fn bad_bcc_is_an_error_and_the_next_frame_still_reads() {
        let mut d = Deframer::new(framing());
        let mut bad = frame(b"AB\r");
        *bad.last_mut().unwrap() ^= 0xFF;
        let ev = feed(&mut d, &[bad, frame(b"CD\r")].concat());
        assert!(matches!(ev[0], Event::Error(FrameError::Bcc { .. })));
        assert_eq!(ev[1], Event::Document(b"CD\r".to_vec()));
    }

    #[test]
    fn new_frame_inside_a_frame_truncates() {
        let mut d = Deframer::new(framing());
        let cut = &frame(b"ABCDEF\r")[..9];
        let ev = feed(&mut d, &[cut, &frame(b"XY\r")].concat());
        assert!(matches!(ev[0], Event::Error(FrameError::Truncated(_))));
        assert_eq!(ev[1], Event::Document(b"XY\r".to_vec()));
    }

    #[test]
    fn silence_mid_frame_truncates() {
        let mut d = Deframer::new(framing());
        feed(&mut d, &frame(b"ABCDEF\r")[..9]);
        assert!(d.in_progress());
        assert!(matches!(
            d.on_idle(),
            Some(Event::Error(FrameError::Truncated(_)))
        ));
        assert!(d.on_idle().is_none());
    }

    #[test]
    fn overflow_resynchronises() {
        let mut d = Deframer::new(MrzFraming {
            max_frame_bytes: 128,
            ..framing()
        });
        let mut long = vec![0x01, 0x02, b'F'];
        long.extend(std::iter::repeat_n(b'A', 200));
        let ev = feed(&mut d, &[long, frame(b"OK\r")].concat());
        assert_eq!(ev[0], Event::Error(FrameError::Overflow(128)));
        assert_eq!(ev.last(), Some(&Event::Document(b"OK\r".to_vec())));
    }

    #[test]
    fn multi_byte_markers() {
        let f = MrzFraming {
            frame_start: vec![0x1C, 0x02],
            data_start: vec![],
            skip: 0,
            frame_end: vec![0x03, 0x1D],
            bcc: Bcc::None,
            padding: None,
            ..framing()
        };
        let mut d = Deframer::new(f);
        let ev = feed(
            &mut d,
            b"\x1C\x1C\x02AB\x03\x1D\x02\x1DCD\x1C\x02EF\rGH\r\x03\x1D",
        );
        assert_eq!(
            ev,
            vec![
                Event::Document(b"AB".to_vec()),
                Event::Document(b"EF\rGH\r".to_vec())
            ]
        );
    }

    proptest::proptest! {
        /// Whatever noise precedes it, a clean frame is decoded, and nothing panics.
        #[test]
        fn any_noise_then_a_clean_frame_decodes(noise in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                                multi in proptest::bool::ANY) {
            let f = if multi {
                MrzFraming { frame_start: vec![0x1C, 0x02], data_start: vec![], skip: 1, frame_end: vec![0x03, 0x1D],
                             bcc: Bcc::None, ..framing() }
            } else {
                framing()
            };
            let mut d = Deframer::new(f);
            for &b in &noise {
                let _ = d.push(b);
            }
            let clean: Vec<u8> = if multi {
                [b"\x1C\x02F".as_slice(), b"AB\rCD\r", b"\x03\x1D"].concat()
            } else {
                frame(b"AB\rCD\r")
            };
            let events = feed(&mut d, &clean);
            proptest::prop_assert_eq!(events.last(), Some(&Event::Document(b"AB\rCD\r".to_vec())));
        }
    }

    #[test]
    fn frameless_completes_on_line_count_or_silence() {
        let f = MrzFraming {
            frame_start: vec![],
            data_start: vec![],
            skip: 0,
            frame_end: vec![],
            bcc: Bcc::None,
            padding: None,
            line_separator: LineSeparator::Crlf,
            ..framing()
        };
        let mut d = Deframer::new(f);
        let l44 = "A".repeat(44);
        let two = format!("{l44}\r\n{l44}\r\n");
        let ev = feed(&mut d, two.as_bytes());
        // Complete at the CR of the last line; its LF is a stray line end that the next document ignores.
        assert_eq!(
            ev,
            vec![Event::Document(two.trim_end_matches('\n').as_bytes().to_vec())]
        );
        let l30 = "B".repeat(30);
        let ev = feed(&mut d, format!("{l30}\r\n{l30}\r\n").as_bytes());
        assert!(ev.is_empty(), "two lines of 30 may be the start of a TD1");
        assert!(matches!(d.on_idle(), Some(Event::Document(_))));
        assert!(d.on_idle().is_none());
    }
}
