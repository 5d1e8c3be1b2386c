//! The device supervisor: one task per device, and one for the outbox, all ending at shutdown.
//!
//! - Serial devices: the port is watched for arrival and removal (a USB-serial adapter's device node appears and
//!   disappears with the plug; udev symlinks likewise).
//! - The camera: looked for on the USB bus by its selector about once a second.
//! - The fingerprint scanner, when idle, is asked every `health_every` whether it answers (a module that lost
//!   power behind a still-present USB-serial adapter shows up here); the check reconnects it when it is back. The
//!   document reader is passive (it speaks when a document is laid on it), so its health is its port's presence.
//! - The outbox: its counts, as an event when they change.
//! - Sessions: those left idle longer than the API's `session_idle` are expired (their captures dropped).
//!
//! The drivers reconnect on their own at the next transaction, with backoff; the supervisor is what makes a
//! change visible before the operator presses a button.

use crate::api::ApiState;
use crate::telemetry::Event;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// How often ports and the outbox are looked at.
pub const PERIOD: Duration = Duration::from_millis(250);
/// How often the USB bus is enumerated for the camera.
pub const USB_PERIOD: Duration = Duration::from_secs(1);

/// Starts the tasks; the handle completes when all have ended (after the telemetry is closed).
pub fn spawn(state: Arc<ApiState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for (role, path) in state.devices.watch.clone() {
            tasks.spawn(watch_port(state.clone(), role, path));
        }
        if state.devices.camera_present.is_some() {
            tasks.spawn(watch_camera(state.clone()));
        }
        if let (Some(every), Some(_)) = (state.devices.health_every, &state.devices.fingerprint) {
            tasks.spawn(check_scanner(state.clone(), every));
        }
        tasks.spawn(expire_sessions(state.clone()));
        tasks.spawn(watch_outbox(state));
        while tasks.join_next().await.is_some() {}
    })
}

/// Waits `d`; true when the agent is stopping.
async fn stopping(closing: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *closing.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = closing.changed() => true,
    }
}

/// Expires idle sessions, looking about four times per idle period (at most every 30 s).
#[tracing::instrument(name = "expire_sessions", skip(s))]
async fn expire_sessions(s: Arc<ApiState>) {
    let mut closing = s.telemetry.closing();
    let every = (s.limits.session_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
    while !stopping(&mut closing, every).await {
        crate::api::expire_sessions(&s).await;
    }
}

#[tracing::instrument(name = "supervise_port", skip(s, path), fields(port = %path.display()))]
async fn watch_port(s: Arc<ApiState>, role: &'static str, path: PathBuf) {
    let mut closing = s.telemetry.closing();
    loop {
        // `exists` follows symlinks: a dangling udev link counts as removed.
        s.telemetry.presence(role, path.exists());
        if stopping(&mut closing, PERIOD).await {
            return;
        }
    }
}

#[tracing::instrument(name = "supervise_camera", skip(s))]
async fn watch_camera(s: Arc<ApiState>) {
    let mut closing = s.telemetry.closing();
    loop {
        let st = s.clone();
        // USB enumeration blocks; it runs on the blocking pool.
        let present =
            tokio::task::spawn_blocking(move || st.devices.camera_present.as_ref().and_then(|p| p()))
                .await
                .ok()
                .flatten();
        if let Some(p) = present {
            s.telemetry.presence("camera", p);
        }
        if stopping(&mut closing, USB_PERIOD).await {
            return;
        }
    }
}

#[tracing::instrument(name = "supervise_scanner", skip(s))]
async fn check_scanner(s: Arc<ApiState>, every: Duration) {
    let mut closing = s.telemetry.closing();
    let Some((scanner, _)) = &s.devices.fingerprint else {
        return;
    };
    loop {
        if stopping(&mut closing, every).await {
            return;
        }
        // Only an idle scanner is asked; a capture in progress is its own health check.
        if s.devices.fingerprint_capturing.load(Ordering::Acquire) {
            continue;
        }
        let Ok(mut sc) = scanner.try_lock() else {
            continue;
        };
        let r = tokio::time::timeout(
            Duration::from_secs(3),
            sc.health_check(Duration::from_millis(500)),
        )
        .await
        .map_err(|_| "no answer within 3 s".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()));
        drop(sc);
        s.telemetry.health("fingerprint", r);
    }
}

#[tracing::instrument(name = "supervise_outbox", skip(s))]
async fn watch_outbox(s: Arc<ApiState>) {
    let mut closing = s.telemetry.closing();
    let mut last = None;
    loop {
        let stats = s.outbox.lock().ok().and_then(|o| o.stats().ok());
        if let Some(st) = stats
            && last.as_ref() != Some(&st)
        {
            if last.is_some() {
                s.telemetry.emit(Event::Outbox(st.clone()));
            }
            last = Some(st);
        }
        if stopping(&mut closing, PERIOD).await {
            return;
        }
    }
}
