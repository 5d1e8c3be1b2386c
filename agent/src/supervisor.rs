//! The device supervisor: watches each serial device's port for arrival and removal (a USB-serial adapter's
//! device node appears and disappears with the plug; udev symlinks likewise) and the outbox for changes, and tells
//! the event stream. The drivers reconnect on their own at the next transaction (with their own backoff); the
//! supervisor is what makes a removal visible before the operator presses a button. The camera is looked for on
//! the USB bus (by its selector) about once a second. An idle fingerprint scanner is asked every `health_every`
//! whether it answers (a module that lost power behind a still-present USB-serial adapter shows up here).

use crate::api::ApiState;
use crate::telemetry::Event;
use std::sync::Arc;
use std::time::Duration;

/// How often the ports and the outbox are looked at.
pub const PERIOD: Duration = Duration::from_millis(250);

/// Runs until the telemetry is closed (shutdown).
pub fn spawn(state: Arc<ApiState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (_, mut closing) = state.telemetry.subscribe();
        let mut last_outbox = None;
        let mut tick: u32 = 0;
        let mut last_health = tokio::time::Instant::now();
        loop {
            for (role, path) in &state.devices.watch {
                // `exists` follows symlinks: a dangling udev link counts as removed.
                state.telemetry.presence(role, path.exists());
            }
            if tick % 4 == 0 && state.devices.camera_present.is_some() {
                let s = state.clone();
                // USB enumeration blocks; it runs on the blocking pool.
                let present =
                    tokio::task::spawn_blocking(move || s.devices.camera_present.as_ref().and_then(|p| p()))
                        .await
                        .ok()
                        .flatten();
                if let Some(p) = present {
                    state.telemetry.presence("camera", p);
                }
            }
            if let (Some(every), Some((scanner, _))) =
                (state.devices.health_every, &state.devices.fingerprint)
                && last_health.elapsed() >= every
            {
                last_health = tokio::time::Instant::now();
                // Only an idle scanner is asked; a capture in progress is its own health check.
                let capturing = state
                    .devices
                    .fingerprint_capturing
                    .load(std::sync::atomic::Ordering::Acquire);
                if !capturing && let Ok(mut sc) = scanner.try_lock() {
                    let r = tokio::time::timeout(
                        Duration::from_secs(3),
                        sc.health_check(Duration::from_millis(500)),
                    )
                    .await
                    .map_err(|_| "no answer within 3 s".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    state.telemetry.health("fingerprint", r);
                }
            }
            tick = tick.wrapping_add(1);
            let stats = state.outbox.lock().ok().and_then(|o| o.stats().ok());
            if let Some(st) = stats
                && last_outbox.as_ref() != Some(&st)
            {
                if last_outbox.is_some() {
                    state.telemetry.emit(Event::Outbox(st.clone()));
                }
                last_outbox = Some(st);
            }
            tokio::select! {
                () = tokio::time::sleep(PERIOD) => {}
                _ = closing.changed() => return,
            }
        }
    })
}
