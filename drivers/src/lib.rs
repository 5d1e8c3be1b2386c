//! Tamga's device drivers: transports and one module per device protocol.
//!
//! Architecture invariant: nothing in this crate touches the network, the outbox, or keys. A driver turns bytes
//! from a device into typed captures (an MRZ record, an image) and typed errors that say what to do; checking,
//! signing and forwarding happen in the agent.
//!
//! - [`serial`]: opening serial ports from profile settings, with errors that name the fix.
//! - [`mrz_serial`]: passport readers that send the MRZ as text over a serial line.
//! - [`zfm`]: ZFM / R30x / AS608 / R50x fingerprint modules over UART.

pub mod mrz_serial;
pub mod ptp;
pub mod sbi;
pub mod serial;
pub mod usb;
pub mod zfm;
