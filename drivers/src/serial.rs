//! Serial transport: opens a port (RS-232, USB-CDC, USB-serial bridge, or a pseudo-terminal in tests) with the
//! settings of a device profile, as an async tokio stream.

use std::path::{Path, PathBuf};
use tamga_profiles::{FlowControl, Parity, SerialSettings, StopBits};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// Why a port could not be opened, classified for the technician.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenErrorKind {
    /// The path does not exist (device unplugged, wrong path).
    Absent,
    /// The user may not open the device.
    PermissionDenied,
    /// Another program holds the port.
    Busy,
    /// The port refused the settings or another I/O error occurred.
    Other,
}

/// A port that cannot be opened, with the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot open serial port {path}: {detail}. {}", self.hint())]
pub struct OpenError {
    pub path: PathBuf,
    pub kind: OpenErrorKind,
    pub detail: String,
}

impl OpenError {
    /// What the technician should do.
    pub fn hint(&self) -> &'static str {
        match self.kind {
            OpenErrorKind::Absent => {
                "Check that the device is plugged in and powered; `tamga devices scan` lists the serial ports present"
            }
            OpenErrorKind::PermissionDenied => {
                "Add the agent's user to the `dialout` group (then log in again) or install the udev rule from the README"
            }
            OpenErrorKind::Busy => "Another program has the port open; stop it (`fuser -v PORT` shows which)",
            OpenErrorKind::Other => "Check the profile's serial settings against the device's configuration",
        }
    }
}

fn classify(e: &tokio_serial::Error) -> OpenErrorKind {
    use std::io::ErrorKind as K;
    if e.description.contains("exclusive lock") {
        return OpenErrorKind::Busy;
    }
    match e.kind() {
        tokio_serial::ErrorKind::NoDevice => OpenErrorKind::Absent,
        tokio_serial::ErrorKind::Io(K::NotFound) => OpenErrorKind::Absent,
        tokio_serial::ErrorKind::Io(K::PermissionDenied) => OpenErrorKind::PermissionDenied,
        tokio_serial::ErrorKind::Io(K::ResourceBusy | K::WouldBlock) => OpenErrorKind::Busy,
        _ if e.description.contains("busy") || e.description.contains("lock") => OpenErrorKind::Busy,
        _ => OpenErrorKind::Other,
    }
}

/// Opens `path` with `settings`. Must be called within a tokio runtime.
pub fn open(path: &Path, settings: &SerialSettings) -> Result<SerialStream, OpenError> {
    let data_bits = match settings.data_bits {
        5 => tokio_serial::DataBits::Five,
        6 => tokio_serial::DataBits::Six,
        7 => tokio_serial::DataBits::Seven,
        _ => tokio_serial::DataBits::Eight,
    };
    let parity = match settings.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stop_bits = match settings.stop_bits {
        StopBits::One => tokio_serial::StopBits::One,
        StopBits::Two => tokio_serial::StopBits::Two,
    };
    let flow = match settings.flow_control {
        FlowControl::None => tokio_serial::FlowControl::None,
        FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        FlowControl::Software => tokio_serial::FlowControl::Software,
    };
    // A path that does not exist is reported as such before the serial layer turns it into a vaguer error.
    if std::fs::metadata(path).is_err() {
        return Err(OpenError {
            path: path.to_owned(),
            kind: OpenErrorKind::Absent,
            detail: "no such device".into(),
        });
    }
    tokio_serial::new(path.to_string_lossy(), settings.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(flow)
        .open_native_async()
        .map_err(|e| OpenError {
            path: path.to_owned(),
            kind: classify(&e),
            detail: e.description.clone(),
        })
}
