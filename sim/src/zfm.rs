//! A ZFM-family fingerprint module emulator (R307, AS608, R503, ... as their profiles describe them) on a
//! pseudo-terminal.
//!
//! It speaks the packet protocol with its own small codec (deliberately not the driver's, so that a bug in one is
//! not mirrored in the other), keeps the module's state (password, system parameters, image buffer, settings that
//! wait for a power cycle), paces its bytes at its baud rate when asked, stays silent when the host talks at the
//! wrong baud rate (as a real UART would only see framing errors), and serves synthetic fingerprints from
//! [`crate::fingerprint`]. Faults are injected with [`ZfmEmulator::inject`].

use crate::fingerprint::{FingerSpec, render};
use crate::pty::SimPort;
use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tamga_profiles::{Feature, FingerprintModel, Profile, SettingsApply};

/// Faults, consumed in order when they apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZfmFault {
    /// The next reply leaves with a wrong checksum.
    CorruptReply,
    /// Bytes of line noise before the next reply.
    NoiseBeforeReply(Vec<u8>),
    /// The next image upload omits data packet `index` (0-based).
    DropDataPacket { index: usize },
    /// The next image upload stops after `packets` data packets and the module is unplugged.
    UnplugAfterPackets { packets: usize },
    /// The next capture answers "capture failed" (0x03).
    CaptureFailed,
    /// The next capture with GetImageEx answers "poor image" (0x07); GenImg answers "too few features" is not
    /// sent by real modules, so GenImg captures normally.
    PoorImage,
    /// Silence: the next `replies` commands get no answer.
    Silence { replies: usize },
}

#[derive(Debug)]
struct State {
    model: FingerprintModel,
    /// Settings in force.
    baud_n: u8,
    packet_code: u8,
    security: u8,
    /// Settings written to flash, in force after the next power cycle.
    flash_baud_n: u8,
    flash_packet_code: u8,
    flash_security: u8,
    verified: bool,
    /// The finger on the sensor, rendered at the module's image size when it was placed (a real sensor's timing
    /// does not depend on the host's CPU, so neither does the emulator's: nothing is rendered while replying).
    finger: Option<Vec<u8>>,
    buffer: Option<Vec<u8>>,
    faults: VecDeque<ZfmFault>,
    pace: bool,
    led: Option<[u8; 4]>,
    seen: Vec<u8>,
}

impl State {
    fn baud(&self) -> u32 {
        9600 * u32::from(self.baud_n)
    }
    fn packet_size(&self) -> usize {
        32 << self.packet_code
    }
    fn take_fault(&mut self, pred: impl Fn(&ZfmFault) -> bool) -> Option<ZfmFault> {
        let i = self.faults.iter().position(pred)?;
        self.faults.remove(i)
    }
}

/// The emulator: a background thread answering on a simulated serial port.
#[derive(Debug)]
pub struct ZfmEmulator {
    port: Arc<SimPort>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn encode(address: u32, pid: u8, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() + 2) as u16;
    let mut v = vec![0xEF, 0x01];
    v.extend_from_slice(&address.to_be_bytes());
    v.push(pid);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(payload);
    let sum = payload
        .iter()
        .fold(u16::from(pid) + (len >> 8) + (len & 0xFF), |s, &b| {
            s.wrapping_add(u16::from(b))
        });
    v.extend_from_slice(&sum.to_be_bytes());
    v
}

/// Extracts one command packet from `buf` (for `address`), dropping anything that is not one.
fn decode(buf: &mut Vec<u8>, address: u32) -> Option<Vec<u8>> {
    loop {
        let start = buf.windows(2).position(|w| w == [0xEF, 0x01])?;
        buf.drain(..start);
        if buf.len() < 9 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([buf[7], buf[8]]));
        if !(2..=258).contains(&len) {
            buf.drain(..1);
            continue;
        }
        if buf.len() < 9 + len {
            return None;
        }
        let frame: Vec<u8> = buf.drain(..9 + len).collect();
        let addr = u32::from_be_bytes([frame[2], frame[3], frame[4], frame[5]]);
        let payload = &frame[9..9 + len - 2];
        let sum = frame[6..9 + len - 2]
            .iter()
            .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        let got = u16::from_be_bytes([frame[9 + len - 2], frame[9 + len - 1]]);
        // A real module ignores packets for other addresses and answers 0x01 to a corrupt one; we ignore both
        // for other addresses and signal the corrupt one with an empty payload.
        if addr != address || frame[6] != 0x01 {
            continue;
        }
        if sum != got {
            return Some(Vec::new());
        }
        return Some(payload.to_vec());
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ZfmEmulator {
    /// Plugs a module described by `profile` in at `link` and starts answering.
    pub fn start(profile: &Profile, link: &Path, pace: bool) -> io::Result<ZfmEmulator> {
        let (Some(serial), Some(model)) = (profile.serial, profile.fingerprint.clone()) else {
            return Err(io::Error::other(format!(
                "profile `{}` is not a zfm profile",
                profile.name
            )));
        };
        let n = u8::try_from(serial.baud / 9600).unwrap_or(6);
        let code = match model.default_packet_size {
            32 => 0,
            64 => 1,
            256 => 3,
            _ => 2,
        };
        let state = State {
            baud_n: n,
            packet_code: code,
            security: 3,
            flash_baud_n: n,
            flash_packet_code: code,
            flash_security: 3,
            verified: false,
            finger: None,
            buffer: None,
            faults: VecDeque::new(),
            pace,
            led: None,
            seen: Vec::new(),
            model,
        };
        let port = Arc::new(SimPort::plug(link)?);
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (port, state, stop) = (port.clone(), state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("zfm-emulator".into())
                .spawn(move || serve(&port, &state, &stop))?
        };
        let emu = ZfmEmulator {
            port,
            state,
            stop,
            thread: Some(thread),
        };
        emu.announce_ready();
        Ok(emu)
    }

    fn announce_ready(&self) {
        let (ready, delay) = {
            let s = lock(&self.state);
            (s.model.ready_byte, s.model.power_up_delay_ms)
        };
        if ready {
            std::thread::sleep(Duration::from_millis(u64::from(delay.min(100))));
            let _ = self.port.send(&[0x55], None);
        }
    }

    /// The path a driver opens.
    pub fn path(&self) -> &Path {
        self.port.path()
    }

    /// The simulated port (unplug, replug).
    pub fn port(&self) -> &SimPort {
        &self.port
    }

    /// Puts a finger on the sensor.
    pub fn place_finger(&self, mut spec: FingerSpec) {
        let (w, h) = {
            let s = lock(&self.state);
            (s.model.image_width, s.model.image_height)
        };
        spec.width = u32::from(w);
        spec.height = u32::from(h);
        let image = render(&spec);
        lock(&self.state).finger = Some(image);
    }

    /// Lifts the finger.
    pub fn lift_finger(&self) {
        lock(&self.state).finger = None;
    }

    /// Queues a fault.
    pub fn inject(&self, fault: ZfmFault) {
        lock(&self.state).faults.push_back(fault);
    }

    /// Paces bytes at the baud rate (or not).
    pub fn set_pacing(&self, pace: bool) {
        lock(&self.state).pace = pace;
    }

    /// Instruction codes received so far.
    pub fn instructions_seen(&self) -> Vec<u8> {
        lock(&self.state).seen.clone()
    }

    /// The baud rate the module is running at.
    pub fn baud(&self) -> u32 {
        lock(&self.state).baud()
    }

    /// The data packet size in force.
    pub fn packet_size(&self) -> usize {
        lock(&self.state).packet_size()
    }

    /// The last LED command (ctrl, speed, colour, count).
    pub fn led(&self) -> Option<[u8; 4]> {
        lock(&self.state).led
    }

    /// Sets a module password (VfyPwd must then come first).
    pub fn set_password(&self, password: u32) {
        let mut s = lock(&self.state);
        s.model.password = password;
        s.verified = false;
    }

    /// Power off and on: settings written to flash take effect, the buffer and the password state are lost.
    pub fn power_cycle(&self) -> io::Result<()> {
        self.port.unplug();
        {
            let mut s = lock(&self.state);
            s.baud_n = s.flash_baud_n;
            s.packet_code = s.flash_packet_code;
            s.security = s.flash_security;
            s.verified = false;
            s.buffer = None;
        }
        std::thread::sleep(Duration::from_millis(50));
        self.port.replug()?;
        self.announce_ready();
        Ok(())
    }
}

impl Drop for ZfmEmulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(port: &SimPort, state: &Mutex<State>, stop: &AtomicBool) {
    let mut buf = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match port.recv(Duration::from_millis(20)) {
            Ok(bytes) => buf.extend_from_slice(&bytes),
            Err(_) => {
                buf.clear();
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        }
        let address = lock(state).model.address;
        while let Some(cmd) = decode(&mut buf, address) {
            // A host at the wrong baud rate would only produce framing errors on a real UART: stay silent.
            let module_baud = lock(state).baud();
            if port.host_baud().is_some_and(|b| b != module_baud) {
                continue;
            }
            if let Err(e) = answer(port, state, &cmd) {
                tracing::debug!(error = %e, "emulator could not answer (unplugged?)");
            }
        }
    }
}

fn answer(port: &SimPort, state: &Mutex<State>, cmd: &[u8]) -> io::Result<()> {
    let mut s = lock(state);
    let address = s.model.address;
    let pace = s.pace.then(|| (s.baud(), 10));
    let Some(&instr) = cmd.first() else {
        // Corrupt packet: "packet receive error".
        let reply = encode(address, 0x07, &[0x01]);
        drop(s);
        return port.send(&reply, pace);
    };
    s.seen.push(instr);
    if let Some(ZfmFault::Silence { replies }) = s.take_fault(|f| matches!(f, ZfmFault::Silence { .. })) {
        if replies > 1 {
            s.faults.push_front(ZfmFault::Silence { replies: replies - 1 });
        }
        return Ok(());
    }
    let has = |s: &State, f: Feature| s.model.has(f);
    let ack = |code: u8, extra: &[u8]| {
        let mut p = vec![code];
        p.extend_from_slice(extra);
        encode(address, 0x07, &p)
    };
    let mut after: Option<Vec<u8>> = None;
    let reply = if s.model.password != 0 && !s.verified && instr != 0x13 {
        ack(0x21, &[])
    } else {
        match instr {
            0x13 => {
                let pwd = cmd
                    .get(1..5)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if pwd == Some(s.model.password) {
                    s.verified = true;
                    ack(0x00, &[])
                } else {
                    ack(0x13, &[])
                }
            }
            0x40 if has(&s, Feature::Handshake) => ack(0x00, &[]),
            0x36 if has(&s, Feature::CheckSensor) => ack(0x00, &[]),
            0x30 if has(&s, Feature::Cancel) => ack(0x00, &[]),
            0x0F => {
                let mut b = Vec::with_capacity(16);
                let status: u16 = u16::from(s.verified) << 2 | u16::from(s.buffer.is_some()) << 3;
                b.extend_from_slice(&status.to_be_bytes());
                b.extend_from_slice(&0x0009u16.to_be_bytes());
                b.extend_from_slice(&200u16.to_be_bytes());
                b.extend_from_slice(&u16::from(s.security).to_be_bytes());
                b.extend_from_slice(&address.to_be_bytes());
                b.extend_from_slice(&u16::from(s.packet_code).to_be_bytes());
                b.extend_from_slice(&u16::from(s.baud_n).to_be_bytes());
                ack(0x00, &b)
            }
            0x0E => {
                let (reg, value) = (cmd.get(1).copied().unwrap_or(0), cmd.get(2).copied().unwrap_or(0));
                let ok = match reg {
                    4 => s.model.baud_multipliers.contains(&value),
                    5 => s.model.security_levels.contains(&value),
                    6 => value <= 3 && s.model.packet_sizes.contains(&(32u16 << value)),
                    _ => false,
                };
                if !(4..=6).contains(&reg) {
                    ack(0x1A, &[])
                } else if !ok {
                    ack(0x1B, &[])
                } else {
                    match reg {
                        4 => s.flash_baud_n = value,
                        5 => s.flash_security = value,
                        _ => s.flash_packet_code = value,
                    }
                    if s.model.settings_apply == SettingsApply::Immediate {
                        // In force for the next command; this acknowledge still goes out at the old rate
                        // (`pace` was taken before).
                        match reg {
                            4 => s.baud_n = value,
                            5 => s.security = value,
                            _ => s.packet_code = value,
                        }
                    }
                    ack(0x00, &[])
                }
            }
            0x01 | 0x28 => {
                let extended = instr == 0x28;
                if extended && !has(&s, Feature::GetImageEx) {
                    ack(0xFC, &[])
                } else if s.finger.is_none() {
                    ack(0x02, &[])
                } else if s.take_fault(|f| *f == ZfmFault::CaptureFailed).is_some() {
                    ack(0x03, &[])
                } else if extended && s.take_fault(|f| *f == ZfmFault::PoorImage).is_some() {
                    ack(0x07, &[])
                } else {
                    s.buffer = s.finger.clone();
                    ack(0x00, &[])
                }
            }
            0x0A => match s.buffer.clone() {
                None => ack(0x0F, &[]),
                Some(img) => {
                    let packed: Vec<u8> = img
                        .chunks(2)
                        .map(|p| (p[0] & 0xF0) | (p.get(1).copied().unwrap_or(0) >> 4))
                        .collect();
                    let size = s.packet_size();
                    let drop_index = match s.take_fault(|f| matches!(f, ZfmFault::DropDataPacket { .. })) {
                        Some(ZfmFault::DropDataPacket { index }) => Some(index),
                        _ => None,
                    };
                    let unplug_after =
                        match s.take_fault(|f| matches!(f, ZfmFault::UnplugAfterPackets { .. })) {
                            Some(ZfmFault::UnplugAfterPackets { packets }) => Some(packets),
                            _ => None,
                        };
                    let chunks: Vec<&[u8]> = packed.chunks(size).collect();
                    let mut data = Vec::with_capacity(packed.len() + chunks.len() * 11);
                    for (i, c) in chunks.iter().enumerate() {
                        if unplug_after == Some(i) {
                            break;
                        }
                        if drop_index == Some(i) {
                            continue;
                        }
                        let pid = if i + 1 == chunks.len() { 0x08 } else { 0x02 };
                        data.extend_from_slice(&encode(address, pid, c));
                    }
                    let mut out = ack(0x00, &[]);
                    out.extend_from_slice(&data);
                    if unplug_after.is_some() {
                        drop(s);
                        port.send(&out, pace)?;
                        std::thread::sleep(Duration::from_millis(30));
                        port.unplug();
                        return Ok(());
                    }
                    out
                }
            },
            0x3C if has(&s, Feature::ProdInfo) => {
                let mut b = Vec::with_capacity(46);
                let field = |t: &str, n: usize| {
                    let mut v = t.as_bytes().to_vec();
                    v.resize(n, 0);
                    v
                };
                b.extend(field("R503", 16));
                b.extend(field("0001", 4));
                b.extend(field("SIM00042", 8));
                b.extend_from_slice(&[1, 2]);
                b.extend(field("FPC1020", 8));
                b.extend_from_slice(&s.model.image_width.to_be_bytes());
                b.extend_from_slice(&s.model.image_height.to_be_bytes());
                b.extend_from_slice(&1536u16.to_be_bytes());
                b.extend_from_slice(&200u16.to_be_bytes());
                ack(0x00, &b)
            }
            0x3A if has(&s, Feature::FirmwareVersion) => {
                let mut v = b"SIM-ZFM 1.2.0".to_vec();
                v.resize(32, 0);
                ack(0x00, &v)
            }
            0x35 if has(&s, Feature::AuraLed) => {
                let p = [1, 2, 3, 4].map(|i| cmd.get(i).copied().unwrap_or(0));
                if (1..=6).contains(&p[0]) && (1..=7).contains(&p[2]) {
                    s.led = Some(p);
                    ack(0x00, &[])
                } else {
                    ack(0x01, &[])
                }
            }
            0x3D if has(&s, Feature::SoftReset) => {
                s.verified = false;
                s.buffer = None;
                if s.model.ready_byte {
                    after = Some(vec![0x55]);
                }
                ack(0x00, &[])
            }
            _ => ack(0xFC, &[]),
        }
    };
    let mut reply = reply;
    if s.take_fault(|f| *f == ZfmFault::CorruptReply).is_some()
        && let Some(last) = reply.last_mut()
    {
        *last ^= 0x5A;
    }
    if let Some(ZfmFault::NoiseBeforeReply(noise)) =
        s.take_fault(|f| matches!(f, ZfmFault::NoiseBeforeReply(_)))
    {
        reply.splice(0..0, noise);
    }
    drop(s);
    port.send(&reply, pace)?;
    if let Some(bytes) = after {
        std::thread::sleep(Duration::from_millis(20));
        port.send(&bytes, None)?;
    }
    Ok(())
}
