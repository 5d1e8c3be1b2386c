//! `[camera]`: a PTP camera's capture behaviour (quirks from libgphoto2's model table) and transfer policy.

use crate::Problem;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Validated camera description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CameraModel {
    /// Never sends CaptureComplete (libgphoto2 `PTP_NO_CAPTURE_COMPLETE`).
    pub no_capture_complete: bool,
    /// Sends no ObjectAdded; the new object is found by handle diff (libgphoto2 `PTP_NIKON_BROKEN_CAP`).
    pub no_object_added: bool,
    /// Time from InitiateCapture to the image being announced.
    pub capture_timeout_ms: u32,
    /// Time allowed for one USB transfer.
    pub transfer_timeout_ms: u32,
    /// Delete the photo from the camera's card after the transfer (biometric data must not stay there).
    pub delete_after_transfer: bool,
    /// Live preview.
    pub live_view: LiveView,
}

/// Whether the camera's live view is used for the operator's preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveView {
    /// Used when the camera advertises a live view the driver speaks (Nikon's 0x9201-0x9203 today).
    #[default]
    Auto,
    /// Never used (a camera whose live view misbehaves).
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCamera {
    #[serde(default)]
    no_capture_complete: bool,
    #[serde(default)]
    no_object_added: bool,
    #[serde(default = "capture_default")]
    capture_timeout_ms: Spanned<u32>,
    #[serde(default = "transfer_default")]
    transfer_timeout_ms: Spanned<u32>,
    #[serde(default = "yes")]
    delete_after_transfer: bool,
    #[serde(default)]
    live_view: LiveView,
}

fn capture_default() -> Spanned<u32> {
    Spanned::new(0..0, 15_000)
}
fn transfer_default() -> Spanned<u32> {
    Spanned::new(0..0, 5_000)
}
fn yes() -> bool {
    true
}

pub(crate) fn validate(raw: Spanned<RawCamera>) -> Result<CameraModel, Problem> {
    let r = raw.into_inner();
    for (key, v, lo, hi) in [
        ("capture_timeout_ms", &r.capture_timeout_ms, 1_000, 120_000),
        ("transfer_timeout_ms", &r.transfer_timeout_ms, 500, 60_000),
    ] {
        let n = *v.get_ref();
        if !(lo..=hi).contains(&n) {
            return Err(Problem::new(
                v.span(),
                format!("key `camera.{key}`: {n} is outside {lo}..={hi}"),
            ));
        }
    }
    Ok(CameraModel {
        no_capture_complete: r.no_capture_complete,
        no_object_added: r.no_object_added,
        capture_timeout_ms: r.capture_timeout_ms.into_inner(),
        transfer_timeout_ms: r.transfer_timeout_ms.into_inner(),
        delete_after_transfer: r.delete_after_transfer,
        live_view: r.live_view,
    })
}
