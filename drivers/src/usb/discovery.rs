//! USB device discovery and hotplug: lists attached devices with their Still Image interfaces, and reports
//! arrivals and removals (libusb hotplug where it is supported, polling otherwise).
//!
//! Not tested against a real bus here (the build machines have none): `diff` (the polling path) is unit-tested,
//! and the umockdev test exercises enumeration through libusb.

use super::UsbError;
use super::rusb_transport::STILL_IMAGE;
use rusb::UsbContext;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One attached USB device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbDeviceInfo {
    pub bus: u8,
    pub address: u8,
    pub vid: u16,
    pub pid: u16,
    /// Has an interface of the Still Image class (PTP camera).
    pub still_image: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

impl UsbDeviceInfo {
    /// The `BUS-ADDRESS` key of this device.
    pub fn key(&self) -> (u8, u8) {
        (self.bus, self.address)
    }
}

/// An arrival or a removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum UsbEvent {
    Arrived(UsbDeviceInfo),
    Left(UsbDeviceInfo),
}

/// Lists attached devices.
pub fn list() -> Result<Vec<UsbDeviceInfo>, UsbError> {
    let ctx = super::context()?;
    let devices = ctx
        .devices()
        .map_err(|e| UsbError::Other(format!("libusb: {e}")))?;
    let mut out = Vec::new();
    for d in devices.iter() {
        let Ok(desc) = d.device_descriptor() else { continue };
        let still_image = d.active_config_descriptor().is_ok_and(|c| {
            c.interfaces().any(|i| {
                i.descriptors()
                    .any(|a| (a.class_code(), a.sub_class_code(), a.protocol_code()) == STILL_IMAGE)
            })
        });
        let (product, serial) = match d.open() {
            Ok(h) => (
                h.read_product_string_ascii(&desc).ok(),
                h.read_serial_number_string_ascii(&desc).ok(),
            ),
            Err(_) => (None, None),
        };
        out.push(UsbDeviceInfo {
            bus: d.bus_number(),
            address: d.address(),
            vid: desc.vendor_id(),
            pid: desc.product_id(),
            still_image,
            product,
            serial,
        });
    }
    Ok(out)
}

/// The change between two listings.
pub fn diff(before: &[UsbDeviceInfo], after: &[UsbDeviceInfo]) -> Vec<UsbEvent> {
    let b: BTreeMap<_, _> = before.iter().map(|d| (d.key(), d)).collect();
    let a: BTreeMap<_, _> = after.iter().map(|d| (d.key(), d)).collect();
    let mut ev: Vec<UsbEvent> = b
        .iter()
        .filter(|(k, _)| !a.contains_key(*k))
        .map(|(_, d)| UsbEvent::Left((*d).clone()))
        .collect();
    ev.extend(
        a.iter()
            .filter(|(k, _)| !b.contains_key(*k))
            .map(|(_, d)| UsbEvent::Arrived((*d).clone())),
    );
    ev
}

/// True when libusb on this system delivers hotplug events.
pub fn hotplug_supported() -> bool {
    rusb::has_hotplug()
}

/// Describes a device for events (strings only where the device can be opened).
fn info_of<T: UsbContext>(d: &rusb::Device<T>) -> Option<UsbDeviceInfo> {
    let desc = d.device_descriptor().ok()?;
    let still_image = d.active_config_descriptor().is_ok_and(|c| {
        c.interfaces().any(|i| {
            i.descriptors()
                .any(|a| (a.class_code(), a.sub_class_code(), a.protocol_code()) == STILL_IMAGE)
        })
    });
    Some(UsbDeviceInfo {
        bus: d.bus_number(),
        address: d.address(),
        vid: desc.vendor_id(),
        pid: desc.product_id(),
        still_image,
        product: None,
        serial: None,
    })
}

struct HotplugForwarder {
    tx: tokio::sync::mpsc::Sender<UsbEvent>,
    known: BTreeMap<(u8, u8), UsbDeviceInfo>,
}

impl<T: UsbContext> rusb::Hotplug<T> for HotplugForwarder {
    fn device_arrived(&mut self, device: rusb::Device<T>) {
        if let Some(i) = info_of(&device) {
            self.known.insert(i.key(), i.clone());
            let _ = self.tx.try_send(UsbEvent::Arrived(i));
        }
    }

    fn device_left(&mut self, device: rusb::Device<T>) {
        // A departed device can no longer be asked for its descriptors: report what was known of it.
        let key = (device.bus_number(), device.address());
        let info = self.known.remove(&key).unwrap_or(UsbDeviceInfo {
            bus: key.0,
            address: key.1,
            vid: 0,
            pid: 0,
            still_image: false,
            product: None,
            serial: None,
        });
        let _ = self.tx.try_send(UsbEvent::Left(info));
    }
}

/// Watches for arrivals and removals until the receiver is dropped, sending events to `tx`: libusb hotplug where
/// this libusb supports it (a thread runs its event loop), polling every `interval` otherwise. Devices present at
/// the start are not reported.
pub fn watch(interval: Duration, tx: tokio::sync::mpsc::Sender<UsbEvent>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if hotplug_supported()
            && let Ok(ctx) = super::context()
        {
            let known = list()
                .unwrap_or_default()
                .into_iter()
                .map(|d| (d.key(), d))
                .collect();
            let forwarder = HotplugForwarder {
                tx: tx.clone(),
                known,
            };
            let mut builder = rusb::HotplugBuilder::new();
            builder.enumerate(false);
            if let Ok(_registration) = builder.register::<rusb::Context, _>(&ctx, Box::new(forwarder)) {
                while !tx.is_closed() {
                    let _ = ctx.handle_events(Some(interval));
                }
                return;
            }
        }
        let mut known = list().unwrap_or_default();
        loop {
            std::thread::sleep(interval);
            if tx.is_closed() {
                return;
            }
            let Ok(now) = list() else { continue };
            for e in diff(&known, &now) {
                if tx.blocking_send(e).is_err() {
                    return;
                }
            }
            known = now;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(bus: u8, address: u8, vid: u16) -> UsbDeviceInfo {
        UsbDeviceInfo {
            bus,
            address,
            vid,
            pid: 1,
            still_image: true,
            product: None,
            serial: None,
        }
    }

    #[test]
    fn diff_reports_arrivals_and_removals() {
        let before = vec![dev(1, 2, 0x04b0), dev(1, 3, 0x1a98)];
        let after = vec![dev(1, 3, 0x1a98), dev(1, 4, 0x04b0)];
        assert_eq!(
            diff(&before, &after),
            vec![
                UsbEvent::Left(dev(1, 2, 0x04b0)),
                UsbEvent::Arrived(dev(1, 4, 0x04b0))
            ]
        );
    }
}
