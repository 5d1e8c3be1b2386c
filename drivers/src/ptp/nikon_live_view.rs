//! Nikon's live view over PTP, the vendor extension (VendorExtensionID 0x0000000A) most D-SLRs and many mirrorless
//! Nikons implement: StartLiveView (0x9201), GetLiveViewImg (0x9203, data in) and EndLiveView (0x9202), as
//! libgphoto2 documents them. ISO 15740 itself has no live view.
//!
//! A GetLiveViewImg data phase is a model-specific header (64 to 384 bytes, carrying focus and level data) followed
//! by one baseline JPEG; the header's length differs between models, so the JPEG is found by its markers (SOI
//! `FF D8` to the last EOI `FF D9`), as libgphoto2 does. Right after StartLiveView the camera answers DeviceBusy
//! until the first frame is ready.

use super::codes::Response;
use super::dataset::DeviceInfo;
use super::{PtpCamera, PtpError};
use crate::usb::UsbTransport;
use std::time::{Duration, Instant};

/// Nikon's vendor extension id in DeviceInfo.
pub const NIKON_VENDOR_EXTENSION: u32 = 0x0000_000A;
pub const START_LIVE_VIEW: u16 = 0x9201;
pub const END_LIVE_VIEW: u16 = 0x9202;
pub const GET_LIVE_VIEW_IMG: u16 = 0x9203;

/// Whether the camera says it has Nikon live view (vendor extension and the three operations).
pub fn supported(info: &DeviceInfo) -> bool {
    info.vendor_extension_id == NIKON_VENDOR_EXTENSION
        && [START_LIVE_VIEW, END_LIVE_VIEW, GET_LIVE_VIEW_IMG]
            .iter()
            .all(|op| info.operations.contains(op))
}

/// The JPEG inside a live view data phase: from the first SOI to the last EOI.
pub fn jpeg_of(frame: &[u8]) -> Option<&[u8]> {
    let start = frame.windows(2).position(|w| w == [0xFF, 0xD8])?;
    let end = frame.windows(2).rposition(|w| w == [0xFF, 0xD9])?;
    (end > start).then(|| &frame[start..end + 2])
}

impl<T: UsbTransport> PtpCamera<T> {
    #[tracing::instrument(name = "ptp_nikon_start_live_view", skip(self))]
    pub fn nikon_start_live_view(&mut self) -> Result<(), PtpError> {
        self.transaction(START_LIVE_VIEW, &[], None, None).map(drop)
    }

    #[tracing::instrument(name = "ptp_nikon_end_live_view", skip(self))]
    pub fn nikon_end_live_view(&mut self) -> Result<(), PtpError> {
        self.transaction(END_LIVE_VIEW, &[], None, None).map(drop)
    }

    /// One live view frame's JPEG, waiting up to `ready` while the camera answers DeviceBusy.
    #[tracing::instrument(name = "ptp_nikon_live_view_frame", skip(self))]
    pub fn nikon_live_view_frame(&mut self, ready: Duration) -> Result<Vec<u8>, PtpError> {
        let deadline = Instant::now() + ready;
        loop {
            match self.transaction(GET_LIVE_VIEW_IMG, &[], None, None) {
                Ok((_, data)) => {
                    return jpeg_of(&data).map(<[u8]>::to_vec).ok_or_else(|| {
                        PtpError::Protocol(format!(
                            "live view frame of {} bytes holds no JPEG (no FF D8 ... FF D9)",
                            data.len()
                        ))
                    });
                }
                Err(PtpError::Response {
                    response: Response::DeviceBusy,
                    ..
                }) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(30)),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jpeg_is_found_behind_any_header_length() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 0xFF, 0xD9];
        for header in [0usize, 64, 128, 384] {
            let mut frame = vec![0u8; header];
            frame.extend_from_slice(&jpeg);
            assert_eq!(jpeg_of(&frame), Some(&jpeg[..]), "header {header}");
        }
        assert_eq!(jpeg_of(&[0u8; 100]), None);
        assert_eq!(jpeg_of(&[0xFF, 0xD9, 0xFF, 0xD8]), None);
    }
}
