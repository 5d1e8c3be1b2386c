//! A simulated serial port: a pseudo-terminal whose slave end appears at a stable path (a symlink, as udev's
//! `/dev/serial/by-id/...` links do), and which can be "unplugged" (the pty closes and the link disappears) and
//! "plugged back" (a new pty behind the same link).

use serialport::{SerialPort, TTYPort};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The device end of a simulated serial port.
#[derive(Debug)]
pub struct SimPort {
    link: PathBuf,
    /// Master (device side) and slave (held so the pty stays valid until the driver opens it).
    ends: Mutex<Option<(TTYPort, TTYPort)>>,
}

fn io_err(e: serialport::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl SimPort {
    /// Creates a pty and points `link` at its slave end.
    pub fn plug(link: &Path) -> io::Result<SimPort> {
        let port = SimPort {
            link: link.to_owned(),
            ends: Mutex::new(None),
        };
        port.replug()?;
        Ok(port)
    }

    /// The path a driver opens.
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// Plugs the device back (a new pty behind the same link). Does nothing if it is plugged in.
    pub fn replug(&self) -> io::Result<()> {
        let mut ends = self
            .ends
            .lock()
            .map_err(|_| io::Error::other("simulated port lock poisoned"))?;
        if ends.is_some() {
            return Ok(());
        }
        let (master, slave) = TTYPort::pair().map_err(io_err)?;
        let target = slave.name().ok_or_else(|| io::Error::other("pty has no name"))?;
        let tmp = self.link.with_extension("new");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)?;
        std::fs::rename(&tmp, &self.link)?;
        tracing::debug!(link = %self.link.display(), pty = %target, "simulated device plugged in");
        *ends = Some((master, slave));
        Ok(())
    }

    /// Unplugs the device: the pty closes (the driver's reads fail) and the link disappears.
    pub fn unplug(&self) {
        // The device node goes first, as udev removes it: a driver reopening at once finds nothing rather than
        // the closing pty.
        let _ = std::fs::remove_file(&self.link);
        if let Ok(mut ends) = self.ends.lock() {
            *ends = None;
        }
        tracing::debug!(link = %self.link.display(), "simulated device unplugged");
    }

    /// True while plugged in.
    pub fn is_plugged(&self) -> bool {
        self.ends.lock().map(|e| e.is_some()).unwrap_or(false)
    }

    /// Runs `f` on the device end; `NotConnected` while unplugged.
    fn with_master<T>(&self, f: impl FnOnce(&mut TTYPort) -> io::Result<T>) -> io::Result<T> {
        let mut ends = self
            .ends
            .lock()
            .map_err(|_| io::Error::other("simulated port lock poisoned"))?;
        match ends.as_mut() {
            Some((master, _)) => f(master),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "simulated device is unplugged",
            )),
        }
    }

    /// Reads what the host sent, waiting up to `timeout`. Empty when nothing came; an error when unplugged.
    pub fn recv(&self, timeout: Duration) -> io::Result<Vec<u8>> {
        use std::io::Read;
        self.with_master(|master| {
            master.set_timeout(timeout).map_err(io_err)?;
            let mut buf = [0u8; 512];
            match master.read(&mut buf) {
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            }
        })
    }

    /// The baud rate the host has set on its end of the line (a pty shares one termios between its users), or
    /// `None` while unplugged. Lets a simulated device notice a host talking at the wrong rate.
    pub fn host_baud(&self) -> Option<u32> {
        let ends = self.ends.lock().ok()?;
        let (_, slave) = ends.as_ref()?;
        slave.baud_rate().ok()
    }

    /// Writes `bytes` from the device side. With `pace`, byte `i` leaves no earlier than `i * bits / baud`
    /// seconds after the first, as on a real line of `baud` with `bits` per byte (a pty alone is instantaneous).
    pub fn send(&self, bytes: &[u8], pace: Option<(u32, u32)>) -> io::Result<()> {
        let start = Instant::now();
        let chunk = if pace.is_some() { 1 } else { bytes.len().max(1) };
        for (i, part) in bytes.chunks(chunk).enumerate() {
            if let Some((baud, bits)) = pace {
                let due = start + Duration::from_secs_f64(i as f64 * f64::from(bits) / f64::from(baud));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            self.with_master(|master| {
                master.write_all(part)?;
                master.flush()
            })?;
        }
        Ok(())
    }
}

impl Drop for SimPort {
    fn drop(&mut self) {
        self.unplug();
    }
}
