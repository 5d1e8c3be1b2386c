//! A simulated PTP camera behind the same [`UsbTransport`] trait the driver uses on libusb.
//!
//! It keeps a camera's state (session, storage, objects, properties), answers operations with containers and
//! datasets built by its own small encoder (not the driver's), delivers bulk-in data with USB transfer semantics
//! (a transfer ends at a short packet or when the host's buffer is full; a data phase that is a multiple of the
//! packet size ends with a zero-length packet), queues events on the interrupt pipe with the event orders of real
//! cameras, and serves the JPEG photos it is given. Faults: busy, stall, unplug in the middle of an object, slow
//! events, a camera that captures silently.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tamga_drivers::usb::{Pipe, UsbError, UsbTransport};

/// Event orders real cameras show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimQuirks {
    /// A folder (association) is added, and announced, before the image.
    pub association_first: bool,
    /// CaptureComplete comes before ObjectAdded.
    pub capture_complete_first: bool,
    /// No ObjectAdded events.
    pub no_object_added: bool,
    /// No CaptureComplete event.
    pub no_capture_complete: bool,
    /// Nikon live view (vendor extension 0x0000000A, operations 0x9201-0x9203): each frame is a 384-byte header
    /// and the next photo's JPEG; the first two GetLiveViewImg after StartLiveView answer DeviceBusy.
    pub live_view: bool,
}

/// Faults, consumed when they apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CamFault {
    /// InitiateCapture answers DeviceBusy this many times.
    Busy { times: u32 },
    /// The next bulk-in read stalls until the host clears the halt.
    StallNextBulkIn,
    /// The camera is unplugged after this many bytes of the next GetObject data phase.
    UnplugMidObject { after_bytes: usize },
    /// Events come this late.
    SlowEvents(Duration),
    /// The next capture sends no events at all.
    SilentCapture,
}

#[derive(Debug, Clone)]
struct Obj {
    format: u16,
    parent: u32,
    name: String,
    data: Vec<u8>,
    width: u32,
    height: u32,
}

#[derive(Debug, Clone)]
struct Prop {
    datatype: u16,
    value: Vec<u8>,
    allowed: Vec<Vec<u8>>,
}

struct Transfer {
    bytes: Vec<u8>,
    pos: usize,
    zlp: bool,
}

struct Cam {
    manufacturer: String,
    model: String,
    serial: String,
    quirks: SimQuirks,
    generation: u64,
    plugged: bool,
    session: bool,
    objects: BTreeMap<u32, Obj>,
    next_handle: u32,
    photos: Vec<(Vec<u8>, u32, u32)>,
    next_photo: usize,
    bulk_in: VecDeque<Transfer>,
    events: VecDeque<(Instant, Vec<u8>)>,
    data_phase_for: Option<(u16, u32, Vec<u32>)>,
    props: BTreeMap<u16, Prop>,
    faults: Vec<CamFault>,
    stalled: bool,
    unplug_after: Option<usize>,
    max_packet: usize,
    ops_seen: Vec<u16>,
    last_tid: u32,
    busy: bool,
    /// Live view running, and how many more GetLiveViewImg answer DeviceBusy.
    live: Option<u32>,
    live_frames: u32,
}

/// The camera, shared between the test (which controls it) and the transports it hands out.
#[derive(Clone)]
pub struct SimCamera {
    cam: Arc<Mutex<Cam>>,
}

impl std::fmt::Debug for SimCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimCamera")
    }
}

fn lock(c: &Mutex<Cam>) -> MutexGuard<'_, Cam> {
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// --- the simulator's own little-endian encoder ---------------------------------------------------------------
fn container(kind: u16, code: u16, tid: u32, params: &[u32]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((12 + 4 * params.len()) as u32).to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&code.to_le_bytes());
    v.extend_from_slice(&tid.to_le_bytes());
    for p in params {
        v.extend_from_slice(&p.to_le_bytes());
    }
    v
}
fn data_container(code: u16, tid: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.extend_from_slice(&((12 + payload.len()) as u32).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&code.to_le_bytes());
    v.extend_from_slice(&tid.to_le_bytes());
    v.extend_from_slice(payload);
    v
}
fn put_str(v: &mut Vec<u8>, s: &str) {
    if s.is_empty() {
        v.push(0);
        return;
    }
    let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
    v.push(units.len() as u8);
    for u in units {
        v.extend_from_slice(&u.to_le_bytes());
    }
}
fn put_u16s(v: &mut Vec<u8>, xs: &[u16]) {
    v.extend_from_slice(&(xs.len() as u32).to_le_bytes());
    for x in xs {
        v.extend_from_slice(&x.to_le_bytes());
    }
}
fn put_u32s(v: &mut Vec<u8>, xs: &[u32]) {
    v.extend_from_slice(&(xs.len() as u32).to_le_bytes());
    for x in xs {
        v.extend_from_slice(&x.to_le_bytes());
    }
}

const STORAGE: u32 = 0x0001_0001;
const OPS: &[u16] = &[
    0x1001, 0x1002, 0x1003, 0x1004, 0x1005, 0x1007, 0x1008, 0x1009, 0x100B, 0x100E, 0x1014, 0x1015, 0x1016,
];

impl SimCamera {
    /// A camera with the given identity and event-order quirks; `photos` are JPEG files with their sizes, served
    /// in turn by each capture.
    pub fn new(
        manufacturer: &str,
        model: &str,
        quirks: SimQuirks,
        photos: Vec<(Vec<u8>, u32, u32)>,
    ) -> SimCamera {
        let mut props = BTreeMap::new();
        let s = |t: &str| {
            let mut v = Vec::new();
            put_str(&mut v, t);
            v
        };
        props.insert(
            0x5003,
            Prop {
                datatype: 0xFFFF,
                value: s("3000x2000"),
                allowed: vec![s("3000x2000"), s("1500x1000")],
            },
        );
        props.insert(
            0x5005,
            Prop {
                datatype: 0x0004,
                value: 2u16.to_le_bytes().to_vec(),
                allowed: [1u16, 2, 4, 6].iter().map(|v| v.to_le_bytes().to_vec()).collect(),
            },
        );
        props.insert(
            0x500F,
            Prop {
                datatype: 0x0004,
                value: 200u16.to_le_bytes().to_vec(),
                allowed: [100u16, 200, 400, 800, 1600]
                    .iter()
                    .map(|v| v.to_le_bytes().to_vec())
                    .collect(),
            },
        );
        props.insert(
            0x500D,
            Prop {
                datatype: 0x0006,
                value: 125u32.to_le_bytes().to_vec(),
                allowed: [40u32, 80, 125, 250, 500]
                    .iter()
                    .map(|v| v.to_le_bytes().to_vec())
                    .collect(),
            },
        );
        let cam = Cam {
            manufacturer: manufacturer.into(),
            model: model.into(),
            serial: "SIM0001".into(),
            quirks,
            generation: 0,
            plugged: true,
            session: false,
            objects: BTreeMap::new(),
            next_handle: 0x100,
            photos,
            next_photo: 0,
            bulk_in: VecDeque::new(),
            events: VecDeque::new(),
            data_phase_for: None,
            props,
            faults: Vec::new(),
            stalled: false,
            unplug_after: None,
            max_packet: 512,
            ops_seen: Vec::new(),
            last_tid: 0,
            busy: false,
            live: None,
            live_frames: 0,
        };
        SimCamera {
            cam: Arc::new(Mutex::new(cam)),
        }
    }

    /// A transport to the camera as it is plugged now (what opening the USB device gives).
    pub fn open(&self) -> Result<SimTransport, UsbError> {
        let c = lock(&self.cam);
        if !c.plugged {
            return Err(UsbError::NotFound("simulated camera".into()));
        }
        Ok(SimTransport {
            cam: self.cam.clone(),
            generation: c.generation,
        })
    }

    /// Replaces what the camera sees: the JPEG files (with sizes) later captures and live view frames serve.
    pub fn set_photos(&self, photos: Vec<(Vec<u8>, u32, u32)>) {
        let mut c = lock(&self.cam);
        c.photos = photos;
        c.next_photo = 0;
    }

    pub fn inject(&self, f: CamFault) {
        lock(&self.cam).faults.push(f);
    }

    /// Unplugs: every open transport fails with Disconnected; the session and pending data are gone.
    pub fn unplug(&self) {
        let mut c = lock(&self.cam);
        c.plugged = false;
        c.session = false;
        c.bulk_in.clear();
        c.events.clear();
    }

    /// Plugs back in (a new device generation: old transports stay dead, as on a real bus).
    pub fn is_plugged(&self) -> bool {
        lock(&self.cam).plugged
    }

    pub fn replug(&self) {
        let mut c = lock(&self.cam);
        c.plugged = true;
        c.generation += 1;
    }

    /// Objects on the simulated card.
    pub fn object_count(&self) -> usize {
        lock(&self.cam).objects.len()
    }

    /// Operation codes received, in order.
    pub fn ops_seen(&self) -> Vec<u16> {
        lock(&self.cam).ops_seen.clone()
    }

    /// The current value bytes of a property.
    pub fn prop_value(&self, code: u16) -> Option<Vec<u8>> {
        lock(&self.cam).props.get(&code).map(|p| p.value.clone())
    }
}

impl Cam {
    fn take_fault(&mut self, pred: impl Fn(&CamFault) -> bool) -> Option<CamFault> {
        let i = self.faults.iter().position(pred)?;
        Some(self.faults.remove(i))
    }

    fn queue_data(&mut self, code: u16, tid: u32, payload: &[u8]) {
        let bytes = data_container(code, tid, payload);
        let zlp = bytes.len().is_multiple_of(self.max_packet);
        self.bulk_in.push_back(Transfer { bytes, pos: 0, zlp });
    }

    fn respond(&mut self, code: u16, tid: u32, params: &[u32]) {
        self.bulk_in.push_back(Transfer {
            bytes: container(3, code, tid, params),
            pos: 0,
            zlp: false,
        });
    }

    fn event(&mut self, at: Instant, code: u16, params: &[u32]) {
        self.events
            .push_back((at, container(4, code, self.last_tid, params)));
    }

    fn device_info(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&100u16.to_le_bytes());
        let lv = self.quirks.live_view;
        v.extend_from_slice(&(if lv { 0x0000_000Au32 } else { 0 }).to_le_bytes());
        v.extend_from_slice(&(if lv { 100u16 } else { 0 }).to_le_bytes());
        put_str(&mut v, "");
        v.extend_from_slice(&0u16.to_le_bytes());
        let mut ops = OPS.to_vec();
        if lv {
            ops.extend_from_slice(&[0x9201, 0x9202, 0x9203]);
        }
        put_u16s(&mut v, &ops);
        put_u16s(&mut v, &[0x4002, 0x4003, 0x4006, 0x400A, 0x400D]);
        put_u16s(&mut v, &self.props.keys().copied().collect::<Vec<_>>());
        put_u16s(&mut v, &[0x3801]);
        put_u16s(&mut v, &[0x3001, 0x3801]);
        put_str(&mut v, &self.manufacturer);
        put_str(&mut v, &self.model);
        put_str(&mut v, "1.0");
        put_str(&mut v, &self.serial);
        v
    }

    fn object_info(&self, o: &Obj) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&STORAGE.to_le_bytes());
        v.extend_from_slice(&o.format.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&(o.data.len() as u32).to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        for x in [
            0u32,
            0,
            0,
            o.width,
            o.height,
            if o.format == 0x3001 { 0 } else { 24 },
            o.parent,
        ] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(&(if o.format == 0x3001 { 1u16 } else { 0 }).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        put_str(&mut v, &o.name);
        put_str(&mut v, "20261121T100000");
        put_str(&mut v, "20261121T100000");
        put_str(&mut v, "");
        v
    }

    fn prop_desc(&self, code: u16, p: &Prop) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&code.to_le_bytes());
        v.extend_from_slice(&p.datatype.to_le_bytes());
        v.push(1);
        v.extend_from_slice(&p.allowed[0]);
        v.extend_from_slice(&p.value);
        v.push(2);
        v.extend_from_slice(&(p.allowed.len() as u16).to_le_bytes());
        for a in &p.allowed {
            v.extend_from_slice(a);
        }
        v
    }

    fn command(&mut self, code: u16, tid: u32, params: &[u32]) {
        self.ops_seen.push(code);
        self.last_tid = tid;
        let p0 = params.first().copied().unwrap_or(0);
        let needs_session = !matches!(code, 0x1001 | 0x1002);
        if needs_session && !self.session {
            return self.respond(0x2003, tid, &[]);
        }
        match code {
            0x1001 => {
                let d = self.device_info();
                self.queue_data(code, tid, &d);
                self.respond(0x2001, tid, &[]);
            }
            0x1002 => {
                if self.session {
                    return self.respond(0x201E, tid, &[1]);
                }
                self.session = true;
                self.respond(0x2001, tid, &[]);
            }
            0x1003 => {
                self.session = false;
                self.respond(0x2001, tid, &[]);
            }
            0x1004 => {
                let mut d = Vec::new();
                put_u32s(&mut d, &[STORAGE]);
                self.queue_data(code, tid, &d);
                self.respond(0x2001, tid, &[]);
            }
            0x1007 => {
                let mut d = Vec::new();
                put_u32s(&mut d, &self.objects.keys().copied().collect::<Vec<_>>());
                self.queue_data(code, tid, &d);
                self.respond(0x2001, tid, &[]);
            }
            0x1008 => match self.objects.get(&p0) {
                Some(o) => {
                    let d = self.object_info(o);
                    self.queue_data(code, tid, &d);
                    self.respond(0x2001, tid, &[]);
                }
                None => self.respond(0x2009, tid, &[]),
            },
            0x1009 => match self.objects.get(&p0).map(|o| o.data.clone()) {
                Some(data) => {
                    if let Some(CamFault::UnplugMidObject { after_bytes }) =
                        self.take_fault(|f| matches!(f, CamFault::UnplugMidObject { .. }))
                    {
                        self.unplug_after = Some(after_bytes);
                    }
                    self.queue_data(code, tid, &data);
                    self.respond(0x2001, tid, &[]);
                }
                None => self.respond(0x2009, tid, &[]),
            },
            0x100B => {
                if self.objects.remove(&p0).is_some() {
                    self.respond(0x2001, tid, &[]);
                } else {
                    self.respond(0x2009, tid, &[]);
                }
            }
            0x100E => self.initiate_capture(tid),
            0x1014 => match self.props.get(&(p0 as u16)) {
                Some(p) => {
                    let d = self.prop_desc(p0 as u16, p);
                    self.queue_data(code, tid, &d);
                    self.respond(0x2001, tid, &[]);
                }
                None => self.respond(0x200A, tid, &[]),
            },
            0x1015 => match self.props.get(&(p0 as u16)).map(|p| p.value.clone()) {
                Some(v) => {
                    self.queue_data(code, tid, &v);
                    self.respond(0x2001, tid, &[]);
                }
                None => self.respond(0x200A, tid, &[]),
            },
            0x1016 => self.data_phase_for = Some((code, tid, params.to_vec())),
            0x9201 if self.quirks.live_view => {
                self.live = Some(2);
                self.respond(0x2001, tid, &[]);
            }
            0x9202 if self.quirks.live_view => {
                let was = self.live.take();
                // Nikon's NotLiveView (0xA00B) when it was not running.
                self.respond(if was.is_some() { 0x2001 } else { 0xA00B }, tid, &[]);
            }
            0x9203 if self.quirks.live_view => match self.live {
                None => self.respond(0xA00B, tid, &[]),
                Some(n) if n > 0 => {
                    self.live = Some(n - 1);
                    self.respond(0x2019, tid, &[]);
                }
                Some(_) if self.photos.is_empty() => self.respond(0x2002, tid, &[]),
                Some(_) => {
                    // A model-specific header (here 384 bytes, with 0xFF bytes that are not a JPEG marker), then
                    // the JPEG.
                    let mut frame = vec![0u8; 384];
                    frame[..4].copy_from_slice(&[0xFF, 0x00, 0xFF, 0xD0]);
                    frame[4..8].copy_from_slice(&self.live_frames.to_le_bytes());
                    self.live_frames += 1;
                    let photo = &self.photos[self.live_frames as usize % self.photos.len()].0;
                    frame.extend_from_slice(photo);
                    self.queue_data(code, tid, &frame);
                    self.respond(0x2001, tid, &[]);
                }
            },
            _ => self.respond(0x2005, tid, &[]),
        }
    }

    fn initiate_capture(&mut self, tid: u32) {
        // As on Nikon bodies: no still capture while live view runs.
        if self.live.is_some() {
            return self.respond(0x2019, tid, &[]);
        }
        if let Some(CamFault::Busy { times }) = self.take_fault(|f| matches!(f, CamFault::Busy { .. })) {
            if times > 1 {
                self.faults.push(CamFault::Busy { times: times - 1 });
            }
            return self.respond(0x2019, tid, &[]);
        }
        if self.photos.is_empty() {
            return self.respond(0x2002, tid, &[]);
        }
        let (data, w, h) = self.photos[self.next_photo % self.photos.len()].clone();
        self.next_photo += 1;
        self.respond(0x2001, tid, &[]);
        let delay = match self.take_fault(|f| matches!(f, CamFault::SlowEvents(_))) {
            Some(CamFault::SlowEvents(d)) => d,
            _ => Duration::from_millis(30),
        };
        let silent = self.take_fault(|f| *f == CamFault::SilentCapture).is_some();
        let mut at = Instant::now() + delay;
        let step = Duration::from_millis(20);
        let q = self.quirks;
        let mut parent = 0;
        if q.association_first {
            let folder = self.next_handle;
            self.next_handle += 1;
            self.objects.insert(
                folder,
                Obj {
                    format: 0x3001,
                    parent: 0,
                    name: format!("{}CANON", 100 + folder % 10),
                    data: Vec::new(),
                    width: 0,
                    height: 0,
                },
            );
            parent = folder;
            if !q.no_object_added && !silent {
                self.event(at, 0x4002, &[folder]);
                at += step;
            }
        }
        let handle = self.next_handle;
        self.next_handle += 1;
        self.objects.insert(
            handle,
            Obj {
                format: 0x3801,
                parent,
                name: format!("IMG_{handle:04}.JPG"),
                data,
                width: w,
                height: h,
            },
        );
        if silent {
            return;
        }
        if q.capture_complete_first && !q.no_capture_complete {
            self.event(at, 0x400D, &[tid]);
            at += step;
        }
        if !q.no_object_added {
            self.event(at, 0x4002, &[handle]);
            at += step;
        }
        if !q.capture_complete_first && !q.no_capture_complete {
            self.event(at, 0x400D, &[tid]);
        }
    }

    fn data_in(&mut self, bytes: &[u8]) {
        let Some((code, tid, params)) = self.data_phase_for.take() else {
            return;
        };
        let payload = bytes.get(12..).unwrap_or(&[]);
        let code16 = params.first().copied().unwrap_or(0) as u16;
        match self.props.get_mut(&code16) {
            Some(p) if p.allowed.iter().any(|a| a == payload) => {
                p.value = payload.to_vec();
                self.respond(0x2001, tid, &[]);
                let at = Instant::now();
                self.event(at, 0x4006, &[u32::from(code16)]);
            }
            Some(_) => self.respond(0x201C, tid, &[]),
            None => {
                let _ = code;
                self.respond(0x200A, tid, &[]);
            }
        }
    }
}

/// One open connection to the simulated camera.
pub struct SimTransport {
    cam: Arc<Mutex<Cam>>,
    generation: u64,
}

impl std::fmt::Debug for SimTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimTransport")
    }
}

impl SimTransport {
    fn live(&self) -> Result<MutexGuard<'_, Cam>, UsbError> {
        let c = lock(&self.cam);
        if !c.plugged || c.generation != self.generation {
            return Err(UsbError::Disconnected);
        }
        Ok(c)
    }
}

impl UsbTransport for SimTransport {
    fn bulk_out(&mut self, data: &[u8], _timeout: Duration) -> Result<usize, UsbError> {
        let mut c = self.live()?;
        if data.is_empty() {
            return Ok(0);
        }
        if data.len() < 12 {
            return Err(UsbError::Protocol("container shorter than its header".into()));
        }
        let kind = u16::from_le_bytes([data[4], data[5]]);
        let code = u16::from_le_bytes([data[6], data[7]]);
        let tid = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        match kind {
            1 => {
                let params: Vec<u32> = data[12..]
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                c.command(code, tid, &params);
            }
            2 => c.data_in(data),
            _ => return Err(UsbError::Protocol(format!("container type {kind} on bulk-out"))),
        }
        Ok(data.len())
    }

    fn bulk_in(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, UsbError> {
        let mut c = self.live()?;
        if c.stalled || c.take_fault(|f| *f == CamFault::StallNextBulkIn).is_some() {
            c.stalled = true;
            return Err(UsbError::Stall(Pipe::BulkIn));
        }
        let Some(t) = c.bulk_in.front_mut() else {
            drop(c);
            std::thread::sleep(timeout.min(Duration::from_millis(50)));
            return Err(UsbError::Timeout(Pipe::BulkIn));
        };
        let remaining = t.bytes.len() - t.pos;
        let n = remaining.min(buf.len());
        buf[..n].copy_from_slice(&t.bytes[t.pos..t.pos + n]);
        t.pos += n;
        let (done, zlp_separate) = (t.pos == t.bytes.len(), t.zlp && n == buf.len());
        let is_data = t.bytes.get(4) == Some(&2);
        let sent_total = t.pos;
        if done {
            c.bulk_in.pop_front();
            if zlp_separate {
                c.bulk_in.push_front(Transfer {
                    bytes: Vec::new(),
                    pos: 0,
                    zlp: false,
                });
            }
        }
        if is_data
            && let Some(limit) = c.unplug_after
            && sent_total >= limit
        {
            c.unplug_after = None;
            c.plugged = false;
            c.session = false;
            c.bulk_in.clear();
            return Err(UsbError::Disconnected);
        }
        Ok(n)
    }

    fn interrupt_in(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, UsbError> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut c = self.live()?;
                if let Some((at, _)) = c.events.front()
                    && *at <= Instant::now()
                    && let Some((_, e)) = c.events.pop_front()
                {
                    let n = e.len().min(buf.len());
                    buf[..n].copy_from_slice(&e[..n]);
                    return Ok(n);
                }
            }
            if Instant::now() >= deadline {
                return Err(UsbError::Timeout(Pipe::InterruptIn));
            }
            std::thread::sleep(Duration::from_millis(5).min(deadline - Instant::now()));
        }
    }

    fn control_out(
        &mut self,
        request: u8,
        _value: u16,
        _data: &[u8],
        _timeout: Duration,
    ) -> Result<usize, UsbError> {
        let mut c = self.live()?;
        match request {
            0x64 => {
                c.bulk_in.clear();
                c.busy = false;
            }
            0x66 => {
                c.bulk_in.clear();
                c.session = false;
                c.stalled = false;
            }
            _ => return Err(UsbError::Stall(Pipe::Control)),
        }
        Ok(_data.len())
    }

    fn control_in(
        &mut self,
        request: u8,
        _value: u16,
        buf: &mut [u8],
        _timeout: Duration,
    ) -> Result<usize, UsbError> {
        let c = self.live()?;
        if request != 0x67 {
            return Err(UsbError::Stall(Pipe::Control));
        }
        let code: u16 = if c.stalled || c.busy { 0x2019 } else { 0x2001 };
        let mut v = 4u16.to_le_bytes().to_vec();
        v.extend_from_slice(&code.to_le_bytes());
        let n = v.len().min(buf.len());
        buf[..n].copy_from_slice(&v[..n]);
        Ok(n)
    }

    fn clear_halt(&mut self, _pipe: Pipe) -> Result<(), UsbError> {
        let mut c = self.live()?;
        c.stalled = false;
        c.bulk_in.clear();
        Ok(())
    }

    fn max_packet_size(&self) -> usize {
        lock(&self.cam).max_packet
    }
}
