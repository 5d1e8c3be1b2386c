//! PTP (ISO 15740) cameras over USB (the Still Image class: interface 6/1/1).
//!
//! - [`container`]: the generic container codec; [`dataset`]: DeviceInfo, ObjectInfo, DevicePropDesc;
//!   [`codes`]: operation, response, event and format codes.
//! - [`PtpCamera`]: sessions and transactions over any [`UsbTransport`] (libusb in production, the simulated
//!   camera in tests): device info, storages, objects, properties, capture with the known event-order quirks,
//!   and the class requests that recover a stuck camera.

pub mod codes;
pub mod container;
pub mod dataset;
pub mod device;
pub mod nikon_live_view;

use crate::usb::{Pipe, UsbError, UsbTransport};
use codes::{Response, event, op};
use container::{HEADER_LEN, Header, Kind};
use dataset::{DeviceInfo, DevicePropDesc, ObjectInfo, PropValue};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Why a camera operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PtpError {
    #[error(transparent)]
    Usb(#[from] UsbError),
    #[error("the camera answered 0x{operation:04X} with {response}{}", advice(*.response))]
    Response { operation: u16, response: Response },
    #[error("PTP protocol error: {0}")]
    Protocol(String),
    #[error("the camera did not deliver within the time allowed: {0}")]
    Timeout(String),
    #[error(
        "the capture produced no image: check that the camera is in a still-photo mode with a memory card"
    )]
    NoImage,
}

fn advice(r: Response) -> &'static str {
    match r {
        Response::DeviceBusy => "; the camera is busy: wait a moment and capture again",
        Response::StoreFull => "; the memory card is full: delete photos on the camera",
        Response::StoreNotAvailable => {
            "; no memory card: insert one (the camera stores the photo before transfer)"
        }
        Response::SessionNotOpen => "; the session was lost (camera restarted?): reconnect",
        Response::OperationNotSupported => "; this camera cannot do that over PTP (check its profile)",
        _ => "",
    }
}

impl PtpError {
    /// True when the link is gone and the camera must be reopened.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, PtpError::Usb(UsbError::Disconnected))
    }
}

/// How a camera reports a capture (libgphoto2's model flags; see the camera profiles). Whatever the flags, both
/// event orders (ObjectAdded then CaptureComplete, or the reverse) are accepted and folders are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaptureQuirks {
    /// Never sends CaptureComplete (libgphoto2 `PTP_NO_CAPTURE_COMPLETE`): the capture is done shortly after the
    /// last ObjectAdded.
    pub no_capture_complete: bool,
    /// Sends no ObjectAdded (libgphoto2 `PTP_NIKON_BROKEN_CAP`): the new object is found by comparing
    /// GetObjectHandles before and after.
    pub no_object_added: bool,
}

/// A PTP event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub code: u16,
    pub transaction_id: u32,
    pub params: Vec<u32>,
}

/// A captured and transferred object.
#[derive(Debug, Clone)]
pub struct CapturedObject {
    pub handle: u32,
    pub info: ObjectInfo,
    pub data: Vec<u8>,
}

/// A camera session over a transport.
#[derive(Debug)]
pub struct PtpCamera<T> {
    t: T,
    session: Option<u32>,
    next_tid: u32,
    timeout: Duration,
    /// Largest bulk-in read (a multiple of the packet size).
    chunk: usize,
}

const SESSION_ID: u32 = 1;

impl<T: UsbTransport> PtpCamera<T> {
    /// A camera on `t`; each transfer may take up to `timeout`.
    pub fn new(t: T, timeout: Duration) -> Self {
        let mp = t.max_packet_size().max(64);
        PtpCamera {
            t,
            session: None,
            next_tid: 0,
            timeout,
            chunk: (256 * 1024 / mp) * mp,
        }
    }

    /// The transport, for the caller to drop.
    pub fn into_inner(self) -> T {
        self.t
    }

    /// True while a session is open.
    pub fn in_session(&self) -> bool {
        self.session.is_some()
    }

    fn tid(&mut self) -> u32 {
        if self.session.is_none() {
            return 0;
        }
        let t = self.next_tid;
        self.next_tid = self.next_tid.wrapping_add(1).max(1);
        t
    }

    /// One transaction: command, optional data out, optional data in (passed to `sink` as it arrives), response.
    /// Returns the response parameters and the data received.
    fn transaction(
        &mut self,
        operation: u16,
        params: &[u32],
        data_out: Option<&[u8]>,
        mut progress: Option<&mut dyn FnMut(usize, usize)>,
    ) -> Result<(Vec<u32>, Vec<u8>), PtpError> {
        let tid = self.tid();
        debug!(operation = format_args!("0x{operation:04X}"), tid, "ptp command");
        self.t.bulk_out(
            &container::encode(Kind::Command, operation, tid, params),
            self.timeout,
        )?;
        let mp = self.t.max_packet_size();
        if let Some(d) = data_out {
            let c = container::encode_data(operation, tid, d);
            self.t.bulk_out(&c, self.timeout)?;
            if c.len().is_multiple_of(mp) {
                self.t.bulk_out(&[], self.timeout)?;
            }
        }
        let mut buf = vec![0u8; self.chunk];
        let n = self.t.bulk_in(&mut buf, self.timeout)?;
        let first = &buf[..n];
        let header = Header::parse(first)?;
        let mut data = Vec::new();
        let resp_bytes: Vec<u8> = if header.kind == Kind::Data {
            if header.code != operation || header.transaction_id != tid {
                return Err(PtpError::Protocol(format!(
                    "data container for 0x{:04X}/tid {} in answer to 0x{operation:04X}/tid {tid}",
                    header.code, header.transaction_id
                )));
            }
            let total = (header.length != u32::MAX).then(|| header.length as usize - HEADER_LEN);
            data.extend_from_slice(&first[HEADER_LEN..]);
            if let (Some(t), Some(p)) = (total, progress.as_mut()) {
                p(data.len(), t);
            }
            let mut last = n;
            // A transfer ends with a short packet; a full one means more follows (or a zero-length packet).
            while last == self.chunk && total.is_none_or(|t| data.len() < t) {
                last = self.t.bulk_in(&mut buf, self.timeout)?;
                data.extend_from_slice(&buf[..last]);
                if let (Some(t), Some(p)) = (total, progress.as_mut()) {
                    p(data.len().min(t), t);
                }
            }
            if let Some(t) = total
                && data.len() != t
            {
                return Err(PtpError::Protocol(format!(
                    "data phase of {} bytes, container said {t}",
                    data.len()
                )));
            }
            // A data phase whose length is a multiple of the packet size ends with a zero-length packet.
            let mut resp = self.read_nonempty(&mut buf)?;
            if resp.is_empty() {
                resp = self.read_nonempty(&mut buf)?;
            }
            resp
        } else {
            first.to_vec()
        };
        let rh = Header::parse(&resp_bytes)?;
        if rh.kind != Kind::Response {
            return Err(PtpError::Protocol(format!(
                "expected a response container, got {:?}",
                rh.kind
            )));
        }
        if rh.transaction_id != tid {
            return Err(PtpError::Protocol(format!(
                "response for tid {} to tid {tid}",
                rh.transaction_id
            )));
        }
        let response = Response::from_code(rh.code);
        if response != Response::Ok {
            return Err(PtpError::Response { operation, response });
        }
        Ok((container::params(&resp_bytes), data))
    }

    /// Reads the next bulk-in transfer (possibly a zero-length packet).
    fn read_nonempty(&mut self, buf: &mut [u8]) -> Result<Vec<u8>, PtpError> {
        let n = self.t.bulk_in(buf, self.timeout)?;
        Ok(buf[..n].to_vec())
    }

    /// GetDeviceInfo (works without a session).
    #[tracing::instrument(name = "ptp_device_info", skip(self))]
    pub fn device_info(&mut self) -> Result<DeviceInfo, PtpError> {
        let (_, d) = self.transaction(op::GET_DEVICE_INFO, &[], None, None)?;
        DeviceInfo::parse(&d)
    }

    /// OpenSession. A camera that says a session is already open keeps it; we adopt it.
    #[tracing::instrument(name = "ptp_open_session", skip(self))]
    pub fn open_session(&mut self) -> Result<(), PtpError> {
        if self.session.is_some() {
            return Ok(());
        }
        match self.transaction(op::OPEN_SESSION, &[SESSION_ID], None, None) {
            Ok(_)
            | Err(PtpError::Response {
                response: Response::SessionAlreadyOpen,
                ..
            }) => {
                self.session = Some(SESSION_ID);
                self.next_tid = 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// CloseSession.
    pub fn close_session(&mut self) -> Result<(), PtpError> {
        if self.session.is_none() {
            return Ok(());
        }
        let r = self.transaction(op::CLOSE_SESSION, &[], None, None).map(drop);
        self.session = None;
        r
    }

    pub fn storage_ids(&mut self) -> Result<Vec<u32>, PtpError> {
        let (_, d) = self.transaction(op::GET_STORAGE_IDS, &[], None, None)?;
        dataset::Reader::new(&d, "StorageIDs").array_u32()
    }

    /// GetObjectHandles on all storages, all formats, all parents.
    pub fn object_handles(&mut self) -> Result<Vec<u32>, PtpError> {
        let (_, d) = self.transaction(op::GET_OBJECT_HANDLES, &[0xFFFF_FFFF, 0, 0], None, None)?;
        dataset::Reader::new(&d, "ObjectHandles").array_u32()
    }

    pub fn object_info(&mut self, handle: u32) -> Result<ObjectInfo, PtpError> {
        let (_, d) = self.transaction(op::GET_OBJECT_INFO, &[handle], None, None)?;
        ObjectInfo::parse(&d)
    }

    /// GetObject, with progress (bytes received, total).
    #[tracing::instrument(name = "ptp_get_object", skip(self, progress))]
    pub fn get_object(
        &mut self,
        handle: u32,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<u8>, PtpError> {
        let (_, d) = self.transaction(op::GET_OBJECT, &[handle], None, Some(progress))?;
        Ok(d)
    }

    pub fn delete_object(&mut self, handle: u32) -> Result<(), PtpError> {
        self.transaction(op::DELETE_OBJECT, &[handle, 0], None, None)
            .map(drop)
    }

    pub fn prop_desc(&mut self, code: u16) -> Result<DevicePropDesc, PtpError> {
        let (_, d) = self.transaction(op::GET_DEVICE_PROP_DESC, &[u32::from(code)], None, None)?;
        DevicePropDesc::parse(&d)
    }

    /// Sets a property after checking the value against its description.
    pub fn set_prop(&mut self, code: u16, value: &PropValue) -> Result<(), PtpError> {
        let desc = self.prop_desc(code)?;
        if !desc.writable || !desc.allows(value) {
            return Err(PtpError::Protocol(format!(
                "property 0x{code:04X} does not accept {value:?} (writable: {}, allowed: {:?})",
                desc.writable, desc.form
            )));
        }
        let bytes = value.encode(desc.datatype)?;
        self.transaction(op::SET_DEVICE_PROP_VALUE, &[u32::from(code)], Some(&bytes), None)
            .map(drop)
    }

    /// The next event from the interrupt endpoint, or `None` when none comes within `wait`.
    pub fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, PtpError> {
        let mut buf = [0u8; 64];
        match self.t.interrupt_in(&mut buf, wait) {
            Ok(n) if n >= HEADER_LEN => {
                let h = Header::parse(&buf[..n])?;
                if h.kind != Kind::Event {
                    return Err(PtpError::Protocol(format!(
                        "{:?} container on the event pipe",
                        h.kind
                    )));
                }
                Ok(Some(Event {
                    code: h.code,
                    transaction_id: h.transaction_id,
                    params: container::params(&buf[..n]),
                }))
            }
            Ok(_) => Ok(None),
            Err(UsbError::Timeout(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// InitiateCapture, then the events, with the quirks; transfers the image, deletes it from the camera when
    /// `delete_after`, and returns it.
    #[tracing::instrument(name = "ptp_capture", skip(self, progress))]
    pub fn capture(
        &mut self,
        quirks: CaptureQuirks,
        timeout: Duration,
        delete_after: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<CapturedObject, PtpError> {
        self.open_session()?;
        let before = self.object_handles()?;
        self.transaction(op::INITIATE_CAPTURE, &[0, 0], None, None)?;
        let deadline = Instant::now() + timeout;
        let mut added: Vec<u32> = Vec::new();
        let mut complete_at: Option<Instant> = None;
        let mut last_added_at: Option<Instant> = None;
        // After CaptureComplete with nothing added yet, how long to wait for a late ObjectAdded (some cameras send
        // them in that order) before looking for the object by handle diff.
        let late_added = if quirks.no_object_added {
            Duration::from_millis(300)
        } else {
            Duration::from_millis(1500)
        };
        // Without CaptureComplete: quiet time after the last ObjectAdded (a folder may come before the image).
        let settle = Duration::from_millis(500);
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let done = match (complete_at, last_added_at) {
                (Some(_), Some(_)) => true,
                (Some(c), None) => now >= c + late_added,
                (None, Some(a)) => quirks.no_capture_complete && now >= a + settle,
                (None, None) => false,
            };
            if done {
                break;
            }
            match self.next_event((deadline - now).min(Duration::from_millis(100)))? {
                Some(e) if e.code == event::OBJECT_ADDED => {
                    if let Some(&h) = e.params.first() {
                        // A new folder is not the image: keep waiting for the image itself.
                        if self.object_info(h)?.is_association() {
                            debug!(handle = h, "folder added");
                        } else {
                            debug!(handle = h, "object added");
                            added.push(h);
                            last_added_at = Some(Instant::now());
                        }
                    }
                }
                Some(e) if e.code == event::CAPTURE_COMPLETE => complete_at = Some(Instant::now()),
                Some(e) if e.code == event::STORE_FULL => {
                    return Err(PtpError::Response {
                        operation: op::INITIATE_CAPTURE,
                        response: Response::StoreFull,
                    });
                }
                Some(e) => debug!(code = format_args!("0x{:04X}", e.code), "event ignored"),
                None => {}
            }
        }
        if complete_at.is_none() && added.is_empty() && !quirks.no_object_added {
            return Err(PtpError::Timeout(format!(
                "no CaptureComplete or ObjectAdded within {timeout:?}"
            )));
        }
        // Without ObjectAdded (or only folders), look for what the capture added.
        let mut candidates = added;
        if candidates.is_empty() {
            let after = self.object_handles()?;
            candidates = after.into_iter().filter(|h| !before.contains(h)).collect();
            info!(
                found = candidates.len(),
                "no ObjectAdded event: new objects found by handle diff"
            );
        }
        // The image is the last non-association object.
        for &h in candidates.iter().rev() {
            let info = self.object_info(h)?;
            if info.is_association() {
                continue;
            }
            let data = self.get_object(h, progress)?;
            if data.len() != info.compressed_size as usize {
                warn!(
                    got = data.len(),
                    expected = info.compressed_size,
                    "object size differs from ObjectInfo"
                );
            }
            if delete_after {
                // Biometric photos do not stay on the camera's card.
                self.delete_object(h)?;
            }
            return Ok(CapturedObject {
                handle: h,
                info,
                data,
            });
        }
        Err(PtpError::NoImage)
    }

    /// Recovers a stuck camera: Get Device Status; Cancel the pending transaction if busy; clear halted pipes;
    /// Device Reset as the last resort. The session must be opened again afterwards.
    #[tracing::instrument(name = "ptp_recover", skip(self))]
    pub fn recover(&mut self) -> Result<(), PtpError> {
        let mut status = [0u8; 32];
        let n = self
            .t
            .control_in(codes::class::GET_DEVICE_STATUS, 0, &mut status, self.timeout)?;
        let code = if n >= 4 {
            u16::from_le_bytes([status[2], status[3]])
        } else {
            0
        };
        if Response::from_code(code) != Response::Ok {
            let tid = self.next_tid.wrapping_sub(1);
            let mut cancel = vec![0x01, 0x40];
            cancel.extend_from_slice(&tid.to_le_bytes());
            self.t
                .control_out(codes::class::CANCEL, 0, &cancel, self.timeout)?;
        }
        let _ = self.t.clear_halt(Pipe::BulkIn);
        let _ = self.t.clear_halt(Pipe::BulkOut);
        self.session = None;
        match self.device_info() {
            Ok(_) => Ok(()),
            Err(_) => {
                self.t
                    .control_out(codes::class::DEVICE_RESET, 0, &[], self.timeout)?;
                self.device_info().map(drop)
            }
        }
    }
}
