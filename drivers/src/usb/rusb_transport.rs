//! [`UsbTransport`] on libusb through rusb: opens a device by selector, finds its Still Image interface
//! (class 6, subclass 1, protocol 1) and endpoints, detaches a kernel driver if one is bound, claims the
//! interface, and releases everything on drop.

use super::{Pipe, UsbError, UsbSelector, UsbTransport};
use rusb::{Context, Device, DeviceHandle, Direction, TransferType, UsbContext};
use std::time::Duration;
use tracing::{debug, info};

/// Still Image class, subclass and protocol.
pub const STILL_IMAGE: (u8, u8, u8) = (6, 1, 1);

fn map(e: rusb::Error, pipe: Pipe, ids: (u16, u16)) -> UsbError {
    match e {
        rusb::Error::NoDevice => UsbError::Disconnected,
        rusb::Error::Busy => UsbError::Busy,
        rusb::Error::Access => UsbError::PermissionDenied {
            vid: ids.0,
            pid: ids.1,
        },
        rusb::Error::Timeout => UsbError::Timeout(pipe),
        rusb::Error::Pipe => UsbError::Stall(pipe),
        rusb::Error::NotFound => UsbError::NotFound(format!("{:04x}:{:04x}", ids.0, ids.1)),
        rusb::Error::Io | rusb::Error::Overflow => UsbError::Protocol(e.to_string()),
        other => UsbError::Other(other.to_string()),
    }
}

/// The endpoints of a Still Image interface.
#[derive(Debug, Clone, Copy)]
struct Endpoints {
    interface: u8,
    bulk_out: u8,
    bulk_in: u8,
    interrupt_in: Option<u8>,
    max_packet: usize,
}

fn still_image_endpoints<T: UsbContext>(device: &Device<T>) -> Option<Endpoints> {
    let config = device.active_config_descriptor().ok()?;
    for iface in config.interfaces() {
        for alt in iface.descriptors() {
            if (alt.class_code(), alt.sub_class_code(), alt.protocol_code()) != STILL_IMAGE {
                continue;
            }
            let (mut bulk_out, mut bulk_in, mut interrupt_in, mut max_packet) = (None, None, None, 512);
            for ep in alt.endpoint_descriptors() {
                match (ep.transfer_type(), ep.direction()) {
                    (TransferType::Bulk, Direction::Out) => bulk_out = Some(ep.address()),
                    (TransferType::Bulk, Direction::In) => {
                        bulk_in = Some(ep.address());
                        max_packet = usize::from(ep.max_packet_size());
                    }
                    (TransferType::Interrupt, Direction::In) => interrupt_in = Some(ep.address()),
                    _ => {}
                }
            }
            return Some(Endpoints {
                interface: alt.interface_number(),
                bulk_out: bulk_out?,
                bulk_in: bulk_in?,
                interrupt_in,
                max_packet,
            });
        }
    }
    None
}

/// Whether `device` matches `selector`.
fn matches<T: UsbContext>(device: &Device<T>, selector: &UsbSelector) -> bool {
    match selector {
        UsbSelector::BusAddress { bus, address } => {
            device.bus_number() == *bus && device.address() == *address
        }
        UsbSelector::Id { vid, pid, serial } => {
            let Ok(d) = device.device_descriptor() else {
                return false;
            };
            if d.vendor_id() != *vid || d.product_id() != *pid {
                return false;
            }
            match serial {
                None => true,
                Some(want) => device
                    .open()
                    .ok()
                    .and_then(|h| h.read_serial_number_string_ascii(&d).ok())
                    .is_some_and(|got| &got == want),
            }
        }
    }
}

/// A claimed Still Image interface.
#[derive(Debug)]
pub struct RusbTransport {
    handle: DeviceHandle<Context>,
    ep: Endpoints,
    ids: (u16, u16),
    reattach: bool,
}

impl RusbTransport {
    /// Opens the first device that matches `selector` and has a Still Image interface.
    pub fn open(selector: &UsbSelector) -> Result<RusbTransport, UsbError> {
        // No USB bus at all: the camera is simply not there.
        let ctx = super::context().map_err(|e| match e {
            UsbError::NoBus => {
                UsbError::NotFound(format!("{selector} (no USB bus: {} is missing)", super::USBFS))
            }
            e => e,
        })?;
        let devices = ctx
            .devices()
            .map_err(|e| UsbError::Other(format!("libusb: {e}")))?;
        let device = devices
            .iter()
            .find(|d| matches(d, selector) && still_image_endpoints(d).is_some())
            .ok_or_else(|| UsbError::NotFound(selector.to_string()))?;
        let ids = device
            .device_descriptor()
            .map(|d| (d.vendor_id(), d.product_id()))
            .unwrap_or((0, 0));
        let ep = still_image_endpoints(&device).ok_or_else(|| UsbError::NotFound(selector.to_string()))?;
        let handle = device.open().map_err(|e| map(e, Pipe::Control, ids))?;
        let reattach = matches!(handle.kernel_driver_active(ep.interface), Ok(true));
        if reattach {
            info!(
                interface = ep.interface,
                "detaching the kernel driver from the camera interface"
            );
            handle
                .detach_kernel_driver(ep.interface)
                .map_err(|e| map(e, Pipe::Control, ids))?;
        }
        handle
            .claim_interface(ep.interface)
            .map_err(|e| map(e, Pipe::Control, ids))?;
        debug!(?ep, vid = ids.0, pid = ids.1, "still image interface claimed");
        Ok(RusbTransport {
            handle,
            ep,
            ids,
            reattach,
        })
    }
}

impl Drop for RusbTransport {
    fn drop(&mut self) {
        let _ = self.handle.release_interface(self.ep.interface);
        if self.reattach {
            let _ = self.handle.attach_kernel_driver(self.ep.interface);
        }
    }
}

const CLASS_OUT: u8 = 0x21; // host to device, class, interface
const CLASS_IN: u8 = 0xA1; // device to host, class, interface

impl UsbTransport for RusbTransport {
    fn bulk_out(&mut self, data: &[u8], timeout: Duration) -> Result<usize, UsbError> {
        self.handle
            .write_bulk(self.ep.bulk_out, data, timeout)
            .map_err(|e| map(e, Pipe::BulkOut, self.ids))
    }

    fn bulk_in(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, UsbError> {
        self.handle
            .read_bulk(self.ep.bulk_in, buf, timeout)
            .map_err(|e| map(e, Pipe::BulkIn, self.ids))
    }

    fn interrupt_in(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, UsbError> {
        let Some(ep) = self.ep.interrupt_in else {
            std::thread::sleep(timeout);
            return Err(UsbError::Timeout(Pipe::InterruptIn));
        };
        self.handle
            .read_interrupt(ep, buf, timeout)
            .map_err(|e| map(e, Pipe::InterruptIn, self.ids))
    }

    fn control_out(
        &mut self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, UsbError> {
        self.handle
            .write_control(
                CLASS_OUT,
                request,
                value,
                u16::from(self.ep.interface),
                data,
                timeout,
            )
            .map_err(|e| map(e, Pipe::Control, self.ids))
    }

    fn control_in(
        &mut self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, UsbError> {
        self.handle
            .read_control(
                CLASS_IN,
                request,
                value,
                u16::from(self.ep.interface),
                buf,
                timeout,
            )
            .map_err(|e| map(e, Pipe::Control, self.ids))
    }

    fn clear_halt(&mut self, pipe: Pipe) -> Result<(), UsbError> {
        let ep = match pipe {
            Pipe::BulkOut => self.ep.bulk_out,
            Pipe::BulkIn => self.ep.bulk_in,
            Pipe::InterruptIn => self.ep.interrupt_in.unwrap_or(self.ep.bulk_in),
            Pipe::Control => return Ok(()),
        };
        self.handle.clear_halt(ep).map_err(|e| map(e, pipe, self.ids))
    }

    fn max_packet_size(&self) -> usize {
        self.ep.max_packet
    }
}
