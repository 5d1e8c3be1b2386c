//! What the daemon tells its watchers: the event stream (Server-Sent Events on `GET /v1/events`) and the
//! Prometheus counters (`GET /v1/metrics`).
//!
//! Events go through a bounded broadcast channel: a slow page misses events (it is told how many, as a `lagged`
//! event, and re-reads state) rather than slowing a capture. The exposition format is written by hand: the
//! handful of counters here do not justify a metrics registry crate, and the central receiver does the same.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// One event on the stream. The SSE event name is `type`; the data is this object as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A device arrived, was removed, or failed a transaction.
    Device {
        role: &'static str,
        state: DeviceState,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A session was created, finalized (with its bundle) or cancelled.
    Session {
        session: String,
        state: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        bundle_id: Option<String>,
    },
    /// A capture's progress: `started`, `progress` (bytes of the image so far), `done`, `retry` or `failed`.
    Capture {
        session: String,
        what: String,
        stage: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        done: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The outbox's counts changed.
    Outbox(crate::outbox::Stats),
    /// The link to the central system changed: `up` (an upload went through) or `down` (uploads fail).
    Link(LinkState),
}

/// What the uplink last learned of the central system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkState {
    /// `unknown` (nothing sent yet), `up` or `down`.
    pub state: &'static str,
    /// Why it is down (the last upload's error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it last changed (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Device { .. } => "device",
            Event::Session { .. } => "session",
            Event::Capture { .. } => "capture",
            Event::Outbox(_) => "outbox",
            Event::Link(_) => "link",
        }
    }
}

/// What the supervisor knows of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Present (its port exists).
    Arrived,
    /// Its port disappeared (unplugged).
    Removed,
    /// A transaction with it failed.
    Failed,
    /// It stopped answering the supervisor's health check.
    Unresponsive,
    /// It answers the health check again.
    Responsive,
}

/// Events and counters, shared by the API handlers and the supervisor.
#[derive(Debug)]
pub struct Telemetry {
    events: broadcast::Sender<Event>,
    closing: watch::Sender<bool>,
    requests: Mutex<BTreeMap<u16, u64>>,
    sessions: Mutex<BTreeMap<&'static str, u64>>,
    captures: Mutex<BTreeMap<(String, &'static str), u64>>,
    device_errors: Mutex<BTreeMap<&'static str, u64>>,
    present: Mutex<BTreeMap<&'static str, bool>>,
    healthy: Mutex<BTreeMap<&'static str, bool>>,
    events_dropped: AtomicU64,
    link: Mutex<LinkState>,
    /// Open `/v1/events` streams.
    streams: Arc<AtomicUsize>,
}

/// One open event stream, counted until it is dropped (see [`Telemetry::stream_slot`]).
#[derive(Debug)]
pub struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            events: broadcast::channel(1024).0,
            closing: watch::channel(false).0,
            requests: Mutex::default(),
            sessions: Mutex::default(),
            captures: Mutex::default(),
            device_errors: Mutex::default(),
            present: Mutex::default(),
            healthy: Mutex::default(),
            events_dropped: AtomicU64::new(0),
            link: Mutex::new(LinkState {
                state: "unknown",
                detail: None,
                since_ms: None,
            }),
            streams: Arc::default(),
        }
    }
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K) {
    if let Ok(mut m) = m.lock() {
        *m.entry(k).or_default() += 1;
    }
}

impl Telemetry {
    /// Sends an event to every watcher (none is fine).
    pub fn emit(&self, e: Event) {
        tracing::debug!(event = e.name(), "event");
        let _ = self.events.send(e);
    }

    /// A new watcher's receiver and the shutdown signal its stream ends on.
    pub fn subscribe(&self) -> (broadcast::Receiver<Event>, watch::Receiver<bool>) {
        (self.events.subscribe(), self.closing.subscribe())
    }

    /// A place for one more event stream, or `None` when `max` are open.
    pub fn stream_slot(&self, max: usize) -> Option<StreamSlot> {
        self.streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot(self.streams.clone()))
    }

    /// The shutdown signal alone (for background tasks).
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every event stream (so a graceful shutdown does not wait on open pages).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// Counts events a slow watcher missed.
    pub fn dropped(&self, n: u64) {
        self.events_dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn request(&self, status: u16) {
        bump(&self.requests, status);
    }

    /// `created`, `finalized` or `cancelled`.
    pub fn session(&self, session: &str, state: &'static str, bundle_id: Option<String>) {
        bump(&self.sessions, state);
        self.emit(Event::Session {
            session: session.to_owned(),
            state,
            bundle_id,
        });
    }

    /// A capture's stage; `failed` also counts a device error for `role`.
    pub fn capture(
        &self,
        session: &str,
        role: &'static str,
        what: &str,
        stage: &'static str,
        detail: Option<String>,
    ) {
        if stage != "started" {
            bump(
                &self.captures,
                (what.split('/').next().unwrap_or(what).to_owned(), stage),
            );
        }
        if stage == "failed" {
            bump(&self.device_errors, role);
            self.emit(Event::Device {
                role,
                state: DeviceState::Failed,
                detail: detail.clone(),
            });
        }
        self.emit(Event::Capture {
            session: session.to_owned(),
            what: what.to_owned(),
            stage,
            done: None,
            total: None,
            detail,
        });
    }

    /// Image transfer progress.
    pub fn progress(&self, session: &str, what: &str, done: u64, total: u64) {
        self.emit(Event::Capture {
            session: session.to_owned(),
            what: what.to_owned(),
            stage: "progress",
            done: Some(done),
            total: Some(total),
            detail: None,
        });
    }

    /// Records a device's presence; emits `arrived`/`removed` when it changes (not for the first sighting of a
    /// present device).
    pub fn presence(&self, role: &'static str, present: bool) {
        self.transition(
            &self.present,
            role,
            present,
            [DeviceState::Arrived, DeviceState::Removed],
            None,
        );
    }

    /// Records a health check; emits `responsive`/`unresponsive` when the answer changes (not for a first good
    /// answer).
    pub fn health(&self, role: &'static str, result: Result<(), String>) {
        let ok = result.is_ok();
        let states = [DeviceState::Responsive, DeviceState::Unresponsive];
        self.transition(&self.healthy, role, ok, states, result.err());
    }

    /// Stores `role`'s new yes/no and emits `states[0]` (yes) or `states[1]` (no) when it changed; a first "yes"
    /// is the normal state and says nothing.
    fn transition(
        &self,
        m: &Mutex<BTreeMap<&'static str, bool>>,
        role: &'static str,
        now: bool,
        states: [DeviceState; 2],
        detail: Option<String>,
    ) {
        let before = match m.lock() {
            Ok(mut m) => m.insert(role, now),
            Err(_) => return,
        };
        if before != Some(now) && (before.is_some() || !now) {
            self.emit(Event::Device {
                role,
                state: states[usize::from(!now)],
                detail,
            });
        }
    }

    /// Records what an upload round learned of the link (`true`: something went through; `false`: uploads
    /// failed with `detail`); emits a `link` event when the state changes.
    pub fn link(&self, up: bool, detail: Option<String>, now_ms: i64) {
        let state = if up { "up" } else { "down" };
        let changed = match self.link.lock() {
            Ok(mut l) if l.state != state => {
                *l = LinkState {
                    state,
                    detail,
                    since_ms: Some(now_ms),
                };
                Some(l.clone())
            }
            Ok(mut l) => {
                l.detail = detail;
                None
            }
            Err(_) => None,
        };
        if let Some(l) = changed {
            self.emit(Event::Link(l));
        }
    }

    /// The link's state as last learned.
    pub fn link_state(&self) -> LinkState {
        self.link.lock().map_or_else(
            |_| LinkState {
                state: "unknown",
                detail: None,
                since_ms: None,
            },
            |l| l.clone(),
        )
    }

    /// Whether `role` answered its last health check (`None`: not checked).
    pub fn is_healthy(&self, role: &str) -> Option<bool> {
        self.healthy.lock().ok()?.get(role).copied()
    }

    /// Whether the supervisor last saw `role` present (`None`: not supervised).
    pub fn is_present(&self, role: &str) -> Option<bool> {
        self.present.lock().ok()?.get(role).copied()
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, outbox: Option<&crate::outbox::Stats>, now_ms: i64) -> String {
        let mut o = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(o, "{name}{labels} {v}");
            }
        };
        let map = |m: &Mutex<BTreeMap<&'static str, u64>>, label: &str| -> Vec<(String, f64)> {
            m.lock()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (format!("{{{label}=\"{k}\"}}"), *v as f64))
                        .collect()
                })
                .unwrap_or_default()
        };
        let requests = self
            .requests
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (format!("{{status=\"{k}\"}}"), *v as f64))
                    .collect()
            })
            .unwrap_or_default();
        family(
            "tamga_api_requests_total",
            "counter",
            "Local API requests by response status.",
            requests,
        );
        family(
            "tamga_sessions_total",
            "counter",
            "Applicant sessions by outcome (created, finalized, cancelled).",
            map(&self.sessions, "outcome"),
        );
        let captures = self
            .captures
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((k, s), v)| (format!("{{kind=\"{k}\",outcome=\"{s}\"}}"), *v as f64))
                    .collect()
            })
            .unwrap_or_default();
        family(
            "tamga_captures_total",
            "counter",
            "Captures by kind (document, face, finger) and outcome (done, retry, failed).",
            captures,
        );
        family(
            "tamga_device_errors_total",
            "counter",
            "Failed device transactions by role.",
            map(&self.device_errors, "role"),
        );
        let flags = |m: &Mutex<BTreeMap<&'static str, bool>>| -> Vec<(String, f64)> {
            m.lock()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (format!("{{role=\"{k}\"}}"), f64::from(u8::from(*v))))
                        .collect()
                })
                .unwrap_or_default()
        };
        let present = flags(&self.present);
        family(
            "tamga_device_present",
            "gauge",
            "1 when the supervised device's port is present.",
            present,
        );
        let healthy = flags(&self.healthy);
        family(
            "tamga_device_healthy",
            "gauge",
            "1 when the device answered its last health check.",
            healthy,
        );
        family(
            "tamga_events_dropped_total",
            "counter",
            "Events a slow event-stream client missed.",
            vec![(String::new(), self.events_dropped.load(Ordering::Relaxed) as f64)],
        );
        if let Some(s) = outbox {
            family(
                "tamga_outbox_bundles",
                "gauge",
                "Bundles in the outbox by state.",
                [
                    ("queued", s.queued),
                    ("sending", s.sending),
                    ("delivered", s.delivered),
                    ("quarantined", s.quarantined),
                ]
                .iter()
                .map(|(k, v)| (format!("{{state=\"{k}\"}}"), *v as f64))
                .collect(),
            );
            family(
                "tamga_outbox_pending_bytes",
                "gauge",
                "Bytes of sealed bundles not yet delivered.",
                vec![(String::new(), s.pending_bytes as f64)],
            );
            family(
                "tamga_outbox_oldest_pending_seconds",
                "gauge",
                "Age of the oldest undelivered bundle (0 when none).",
                vec![(
                    String::new(),
                    s.oldest_pending_ms
                        .map_or(0.0, |t| ((now_ms - t).max(0) as f64) / 1000.0),
                )],
            );
        }
        o
    }
}
