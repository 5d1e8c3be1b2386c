//! Tamga's device drivers: transports and one module per device protocol.
//!
//! Architecture invariant: nothing in this crate touches the outbox, private keys, or any host but this one. A
//! driver turns bytes from a device into typed captures (an MRZ record, an image) and typed errors that say what to
//! do; checking, signing and forwarding happen in the agent. The one exception to "bytes from a device" is the SBI
//! driver, whose devices sit behind vendors' HTTP services on 127.0.0.1 and sign what they send: it speaks HTTP to
//! the loopback only and verifies those signatures with public certificates (no private key).
//!
//! - [`serial`]: opening serial ports from profile settings, with errors that name the fix.
//! - [`mrz_serial`]: passport readers that send the MRZ as text over a serial line.
//! - [`zfm`]: ZFM / R30x / AS608 / R50x fingerprint modules over UART.
//! - [`sbi`]: slap fingerprint scanners through MOSIP SBI device services on 127.0.0.1, with every signature checked.

pub mod mrz_serial;
pub mod ptp;
pub mod sbi;
pub mod serial;
pub mod usb;
pub mod zfm;
