//! A PTP camera as a device of the station: opened through an opener (libusb with a selector in production, the
//! simulated camera in tests and the demo), reopened after it is unplugged and plugged back, with the profile's
//! quirks and timeouts.

use super::nikon_live_view;
use super::{CaptureQuirks, CapturedObject, PtpCamera, PtpError};
use crate::ptp::codes::Response;
use crate::ptp::dataset::DeviceInfo;
use crate::usb::{Pipe, UsbError, UsbTransport};
use std::time::{Duration, Instant};
use tamga_profiles::{CameraModel, LiveView, Profile};
use tracing::{info, warn};

impl<T: UsbTransport + ?Sized> UsbTransport for Box<T> {
    fn bulk_out(&mut self, data: &[u8], timeout: Duration) -> Result<usize, UsbError> {
        (**self).bulk_out(data, timeout)
    }
    fn bulk_in(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, UsbError> {
        (**self).bulk_in(buf, timeout)
    }
    fn interrupt_in(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, UsbError> {
        (**self).interrupt_in(buf, timeout)
    }
    fn control_out(
        &mut self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, UsbError> {
        (**self).control_out(request, value, data, timeout)
    }
    fn control_in(
        &mut self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, UsbError> {
        (**self).control_in(request, value, buf, timeout)
    }
    fn clear_halt(&mut self, pipe: Pipe) -> Result<(), UsbError> {
        (**self).clear_halt(pipe)
    }
    fn max_packet_size(&self) -> usize {
        (**self).max_packet_size()
    }
}

/// Opens the camera's USB interface (again).
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn UsbTransport>, UsbError> + Send>;

/// Errors of a camera device.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("profile `{0}` is not a ptp-usb camera profile")]
    WrongProfile(String),
    #[error("the camera is not connected ({waited:?} waited): {last}")]
    Unavailable { waited: Duration, last: UsbError },
    #[error(
        "the camera `{model}` has no live view this driver speaks (Nikon's 0x9201-0x9203), or its profile sets `live_view = \"none\"`: use the still photo"
    )]
    NoLiveView { model: String },
    #[error(transparent)]
    Ptp(#[from] PtpError),
}

/// A camera of the station.
pub struct PhotoCamera {
    profile: String,
    model: CameraModel,
    opener: Opener,
    cam: Option<PtpCamera<Box<dyn UsbTransport>>>,
    info: Option<DeviceInfo>,
    /// Live view is running (ended before a capture and when the preview stops).
    live: bool,
}

impl std::fmt::Debug for PhotoCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhotoCamera")
            .field("profile", &self.profile)
            .field("connected", &self.cam.is_some())
            .finish()
    }
}

impl PhotoCamera {
    pub fn new(profile: &Profile, opener: Opener) -> Result<Self, CameraError> {
        let model = profile
            .camera
            .clone()
            .ok_or_else(|| CameraError::WrongProfile(profile.name.clone()))?;
        Ok(PhotoCamera {
            profile: profile.name.clone(),
            model,
            opener,
            cam: None,
            info: None,
            live: false,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.cam.is_some()
    }

    /// What the camera said about itself at the last connection.
    pub fn device_info(&self) -> Option<&DeviceInfo> {
        self.info.as_ref()
    }

    /// Opens the camera, waiting up to `wait` for it to appear, and opens a session.
    #[tracing::instrument(name = "camera_connect", skip(self), fields(profile = %self.profile))]
    pub fn connect(&mut self, wait: Duration) -> Result<(), CameraError> {
        if self.cam.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + wait;
        let mut backoff = Duration::from_millis(50);
        let transport = loop {
            match (self.opener)() {
                Ok(t) => break t,
                Err(e @ (UsbError::NotFound(_) | UsbError::Disconnected)) => {
                    if Instant::now() + backoff >= deadline {
                        return Err(CameraError::Unavailable {
                            waited: wait,
                            last: e,
                        });
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(PtpError::Usb(e).into()),
            }
        };
        let mut cam = PtpCamera::new(
            transport,
            Duration::from_millis(u64::from(self.model.transfer_timeout_ms)),
        );
        let info = cam.device_info()?;
        cam.open_session()?;
        info!(manufacturer = %info.manufacturer, model = %info.model, "camera connected");
        self.info = Some(info);
        self.cam = Some(cam);
        self.live = false;
        Ok(())
    }

    /// Whether the operator's preview can use this camera's live view (known after a connection).
    pub fn has_live_view(&self) -> bool {
        self.model.live_view == LiveView::Auto && self.info.as_ref().is_some_and(nikon_live_view::supported)
    }

    /// One live view frame (a JPEG), starting live view if it is not running. The camera stays in live view
    /// until [`PhotoCamera::stop_preview`] or the next capture.
    #[tracing::instrument(name = "camera_preview_frame", skip(self), fields(profile = %self.profile))]
    pub fn preview_frame(&mut self) -> Result<Vec<u8>, CameraError> {
        self.connect(Duration::from_secs(2))?;
        if !self.has_live_view() {
            return Err(CameraError::NoLiveView {
                model: self.info.as_ref().map(|i| i.model.clone()).unwrap_or_default(),
            });
        }
        let Some(cam) = self.cam.as_mut() else {
            return Err(CameraError::Unavailable {
                waited: Duration::ZERO,
                last: UsbError::Disconnected,
            });
        };
        let frame = (|| {
            if !self.live {
                cam.nikon_start_live_view()?;
                self.live = true;
            }
            cam.nikon_live_view_frame(Duration::from_secs(2))
        })();
        match frame {
            Ok(f) => Ok(f),
            Err(e) if e.is_disconnect() => {
                warn!("camera disconnected during live view");
                self.cam = None;
                self.live = false;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Ends live view if it is running.
    pub fn stop_preview(&mut self) -> Result<(), CameraError> {
        if let (true, Some(cam)) = (self.live, self.cam.as_mut()) {
            self.live = false;
            cam.nikon_end_live_view()?;
        }
        Ok(())
    }

    /// Captures one photo: connects if needed, retries a busy camera, recovers a stalled one once, and drops the
    /// connection when the camera is gone (the next call reconnects).
    #[tracing::instrument(name = "camera_capture", skip(self, progress), fields(profile = %self.profile))]
    pub fn capture(&mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<CapturedObject, CameraError> {
        self.connect(Duration::from_secs(2))?;
        // A still capture ends live view first (Nikon bodies refuse or mis-capture otherwise).
        if let Err(e) = self.stop_preview() {
            warn!(error = %e, "ending live view before the capture");
        }
        let quirks = CaptureQuirks {
            no_capture_complete: self.model.no_capture_complete,
            no_object_added: self.model.no_object_added,
        };
        let timeout = Duration::from_millis(u64::from(self.model.capture_timeout_ms));
        let mut busy_retries = 3;
        let mut recovered = false;
        loop {
            let Some(cam) = self.cam.as_mut() else {
                return Err(CameraError::Unavailable {
                    waited: Duration::ZERO,
                    last: UsbError::Disconnected,
                });
            };
            match cam.capture(quirks, timeout, self.model.delete_after_transfer, progress) {
                Ok(obj) => return Ok(obj),
                Err(PtpError::Response {
                    response: Response::DeviceBusy,
                    ..
                }) if busy_retries > 0 => {
                    busy_retries -= 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) if e.is_disconnect() => {
                    warn!("camera disconnected");
                    self.cam = None;
                    return Err(e.into());
                }
                Err(e @ (PtpError::Usb(UsbError::Stall(_)) | PtpError::Protocol(_))) if !recovered => {
                    warn!(error = %e, "recovering the camera");
                    recovered = true;
                    if let Err(r) = cam.recover().and_then(|()| cam.open_session()) {
                        self.cam = None;
                        return Err(r.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
