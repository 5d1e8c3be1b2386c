//! USB transport: the narrow interface device drivers use ([`UsbTransport`]), its implementation on libusb
//! through rusb ([`rusb_transport`]), device selection ([`UsbSelector`]) and discovery with hotplug
//! ([`discovery`]).
//!
//! Drivers are generic over [`UsbTransport`], so the same PTP code runs against real libusb and against the
//! simulated camera in `tamga-sim`.

pub mod discovery;
pub mod rusb_transport;

use std::time::Duration;

/// Which pipe a transfer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipe {
    BulkOut,
    BulkIn,
    InterruptIn,
    Control,
}

/// Why a USB operation failed, classified for the technician.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsbError {
    #[error("the USB device was disconnected: plug it back in (it is picked up again automatically)")]
    Disconnected,
    #[error(
        "the USB device is busy: another program (gvfs, gphoto2, a photo importer) holds it; stop that program"
    )]
    Busy,
    #[error(
        "permission denied opening USB device {vid:04x}:{pid:04x}: install the udev rule \
         `SUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"{vid:04x}\", ATTR{{idProduct}}==\"{pid:04x}\", MODE=\"0660\", GROUP=\"tamga\"` \
         in /etc/udev/rules.d/70-tamga.rules, then `udevadm control --reload` and replug"
    )]
    PermissionDenied { vid: u16, pid: u16 },
    #[error("USB transfer on {0:?} timed out")]
    Timeout(Pipe),
    #[error("USB endpoint stalled on {0:?}")]
    Stall(Pipe),
    #[error("no USB device matches {0}: check the cable; `tamga devices scan` lists what is attached")]
    NotFound(String),
    #[error("USB protocol error: {0}")]
    Protocol(String),
    #[error(
        "this machine shows no USB bus ({USBFS} is missing): on a workstation, check that the kernel's USB support \
         is loaded; in a container, pass the host's {USBFS} in"
    )]
    NoBus,
    #[error("USB error: {0}")]
    Other(String),
}

/// Where Linux shows USB devices to programs (usbfs); libusb built without udev needs it.
pub const USBFS: &str = "/dev/bus/usb";

/// A libusb context. libusb (built without udev) cannot start without usbfs: that case is [`UsbError::NoBus`],
/// which says what is missing, rather than libusb's "Other error".
pub fn context() -> Result<rusb::Context, UsbError> {
    rusb::Context::new().map_err(|e| {
        if std::path::Path::new(USBFS).exists() {
            UsbError::Other(format!("libusb: {e}"))
        } else {
            UsbError::NoBus
        }
    })
}

/// The transfers a still-image device needs: bulk out, bulk in, interrupt in, and class control requests on its
/// interface. Blocking, with timeouts; a driver runs it on a blocking thread.
pub trait UsbTransport: Send {
    /// Writes `data` to the bulk-out endpoint; returns the bytes written.
    fn bulk_out(&mut self, data: &[u8], timeout: Duration) -> Result<usize, UsbError>;
    /// Reads one transfer from the bulk-in endpoint into `buf` (ends at a short packet or when `buf` is full).
    fn bulk_in(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, UsbError>;
    /// Reads one transfer from the interrupt-in endpoint (events).
    fn interrupt_in(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, UsbError>;
    /// A class request to the interface, host to device.
    fn control_out(
        &mut self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, UsbError>;
    /// A class request to the interface, device to host.
    fn control_in(
        &mut self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, UsbError>;
    /// Clears a halt (stall) on a bulk endpoint.
    fn clear_halt(&mut self, pipe: Pipe) -> Result<(), UsbError>;
    /// wMaxPacketSize of the bulk-in endpoint (a data phase that is a multiple of it ends with a zero-length
    /// packet).
    fn max_packet_size(&self) -> usize;
}

/// How a technician names a USB device: `VID:PID`, `VID:PID:SERIAL`, or `BUS-ADDRESS` (`001-005`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsbSelector {
    Id {
        vid: u16,
        pid: u16,
        serial: Option<String>,
    },
    BusAddress {
        bus: u8,
        address: u8,
    },
}

impl UsbSelector {
    /// Whether a listed device is the one this selector names.
    pub fn matches_info(&self, d: &discovery::UsbDeviceInfo) -> bool {
        match self {
            UsbSelector::Id { vid, pid, serial } => {
                d.vid == *vid && d.pid == *pid && serial.as_ref().is_none_or(|s| d.serial.as_ref() == Some(s))
            }
            UsbSelector::BusAddress { bus, address } => d.bus == *bus && d.address == *address,
        }
    }
}

impl std::str::FromStr for UsbSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a USB selector: write VID:PID (04b0:0428), VID:PID:SERIAL, or BUS-ADDRESS (001-005)"
            )
        };
        if let Some((bus, addr)) = s.split_once('-') {
            return Ok(UsbSelector::BusAddress {
                bus: bus.parse().map_err(|_| bad())?,
                address: addr.parse().map_err(|_| bad())?,
            });
        }
        let mut parts = s.splitn(3, ':');
        let vid = parts
            .next()
            .and_then(|v| u16::from_str_radix(v, 16).ok())
            .ok_or_else(bad)?;
        let pid = parts
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
            .ok_or_else(bad)?;
        let serial = parts.next().map(str::to_owned).filter(|s| !s.is_empty());
        Ok(UsbSelector::Id { vid, pid, serial })
    }
}

impl std::fmt::Display for UsbSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsbSelector::Id {
                vid,
                pid,
                serial: None,
            } => write!(f, "{vid:04x}:{pid:04x}"),
            UsbSelector::Id {
                vid,
                pid,
                serial: Some(s),
            } => write!(f, "{vid:04x}:{pid:04x}:{s}"),
            UsbSelector::BusAddress { bus, address } => write!(f, "{bus:03}-{address:03}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_matches_the_listed_device_it_names() {
        let d = discovery::UsbDeviceInfo {
            bus: 1,
            address: 5,
            vid: 0x04b0,
            pid: 0x0428,
            still_image: true,
            product: None,
            serial: Some("A1".into()),
        };
        for (sel, want) in [
            ("04b0:0428", true),
            ("04b0:0428:A1", true),
            ("04b0:0428:B2", false),
            ("04b0:0429", false),
            ("001-005", true),
            ("001-006", false),
        ] {
            assert_eq!(
                sel.parse::<UsbSelector>().unwrap().matches_info(&d),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn selectors() {
        assert_eq!(
            "04b0:0428".parse(),
            Ok(UsbSelector::Id {
                vid: 0x04b0,
                pid: 0x0428,
                serial: None
            })
        );
        assert_eq!(
            "04B0:0428:ABC123".parse(),
            Ok(UsbSelector::Id {
                vid: 0x04b0,
                pid: 0x0428,
                serial: Some("ABC123".into())
            })
        );
        assert_eq!(
            "001-005".parse(),
            Ok(UsbSelector::BusAddress { bus: 1, address: 5 })
        );
        assert!("nikon".parse::<UsbSelector>().unwrap_err().contains("VID:PID"));
        assert_eq!(
            UsbSelector::BusAddress { bus: 1, address: 5 }.to_string(),
            "001-005"
        );
    }
}
