//! The daemon: the local API and the uplink loop, with graceful shutdown.
//!
//! `tamga run --config FILE` builds everything from the station configuration: the devices (serial ports, USB
//! selectors) with their profiles, the outbox, the signing identity, the uplink, and the API (served by
//! [`crate::http`] within [`ApiLimits`](crate::api::ApiLimits)). At start it says once what it found
//! ([`report_start`]). The uplink drains the outbox every two seconds; sessions left idle expire. On SIGTERM or
//! SIGINT the API stops taking requests, in-flight requests finish (their durable writes included), devices are
//! released when their owners drop.

use crate::api::{ApiState, Devices, router};
use crate::outbox::Outbox;
use crate::station::StationConfig;
use crate::uplink::Uplink;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tamga_bundle::manifest::Device;
use tamga_bundle::seal::StationSigner;
use tamga_drivers::mrz_serial::MrzReader;
use tamga_drivers::ptp::device::PhotoCamera;
use tamga_drivers::usb::rusb_transport::RusbTransport;
use tamga_drivers::usb::{UsbSelector, UsbTransport};
use tamga_drivers::zfm::FingerprintScanner;
use tamga_profiles::Catalog;
use tracing::{info, warn};

/// Serves the API on `listener` and runs the uplink loop until `shutdown` completes.
pub async fn serve(
    state: Arc<ApiState>,
    listener: tokio::net::TcpListener,
    max_body: usize,
    uplink: Option<Uplink>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = Arc::new(tokio::sync::Notify::new());
    let loop_task = uplink.map(|up| {
        let (outbox, stop, st) = (state.outbox.clone(), stop.clone(), state.clone());
        tokio::spawn(async move {
            loop {
                let now_ms = || (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
                match up.drain(&outbox).await {
                    Ok(r) if r.delivered > 0 || r.quarantined > 0 => st.telemetry.link(true, None, now_ms()),
                    Ok(r) if r.retried > 0 => st.telemetry.link(false, r.last_error, now_ms()),
                    Ok(_) => {}
                    Err(e) => {
                        warn!(error = %e, "uplink drain failed");
                        st.telemetry.link(false, Some(e.to_string()), now_ms());
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    () = stop.notified() => return,
                }
            }
        })
    });
    let supervisor = crate::supervisor::spawn(state.clone());
    let app = router(state.clone(), max_body);
    let addr = listener.local_addr()?;
    info!(%addr, page = %format!("http://{addr}/"), "local API and operator page listening (`tamga page --open` opens the page with its key)");
    let closing = state.clone();
    crate::http::serve(listener, app, &state.limits, async move {
        shutdown.await;
        // Open event streams end now, so the shutdown does not wait on the operator's page.
        closing.telemetry.close();
    })
    .await;
    stop.notify_waiters();
    state.telemetry.close();
    let _ = supervisor.await;
    if let Some(t) = loop_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    info!("stopped");
    Ok(())
}

fn device_info(profile: &tamga_profiles::Profile, profile_file_sha256: String) -> Device {
    Device {
        model: format!("{} {}", profile.vendor, profile.model),
        serial: "-".into(),
        firmware: "-".into(),
        profile: profile.name.clone(),
        profile_sha256: profile_file_sha256,
    }
}

fn profile_digest(name: &str) -> String {
    tamga_profiles::BUILTIN
        .iter()
        .find(|(f, _)| f.strip_suffix(".toml") == Some(name))
        .map_or_else(
            || tamga_bundle::manifest::GENESIS.to_owned(),
            |(_, src)| tamga_bundle::b64::sha256_hex(src.as_bytes()),
        )
}

/// Builds the API state and the uplink from a configuration; `api_addr` is the address the API's listener is
/// bound to (the Host names and Origins of the page follow from it).
pub fn from_config(cfg: &StationConfig, api_addr: SocketAddr) -> anyhow::Result<(Arc<ApiState>, Uplink)> {
    let catalog = match &cfg.paths.profiles_dir {
        Some(d) => Catalog::with_dir(d)?,
        None => Catalog::builtin()?,
    };
    let certs = &cfg.paths.certs_dir;
    let read = |n: &str| {
        std::fs::read_to_string(certs.join(n)).with_context(|| format!("reading {}", certs.join(n).display()))
    };
    let key = tamga_bundle::pki::read_private_key(&certs.join("station.key"))?;
    let (station, station_ca, central, root) = (
        read("station.pem")?,
        read("station-ca.pem")?,
        read("central.pem")?,
        read("root-ca.pem")?,
    );
    let signer = StationSigner::from_pem(&key, &[&station, &station_ca])?;
    if signer.station_id() != cfg.station.id {
        anyhow::bail!(
            "station.id `{}` differs from the station certificate's `{}`: fix the configuration or install the right certificate",
            cfg.station.id,
            signer.station_id()
        );
    }
    let central_point =
        tamga_bundle::pki::cert_info(&tamga_bundle::pki::certs_from_pem(&central)?[0])?.public_point;
    // The outbox creates the data folder (0700) and keeps it private.
    let outbox = Outbox::open(&cfg.paths.data_dir, cfg.outbox.reserve_bytes)?;
    let mut devices = Devices {
        health_every: Some(Duration::from_secs(10)),
        ..Devices::default()
    };
    for d in &cfg.devices {
        let profile = catalog.get(&d.profile)?;
        let info = device_info(profile, profile_digest(&profile.name));
        match (d.role.as_str(), &d.port, &d.usb) {
            ("document", Some(port), _) => {
                devices.watch.push(("document", port.clone()));
                devices.document = Some((tokio::sync::Mutex::new(MrzReader::new(profile, port)?), info));
            }
            ("fingerprint", Some(port), _) => {
                devices.watch.push(("fingerprint", port.clone()));
                devices.fingerprint = Some((
                    tokio::sync::Mutex::new(FingerprintScanner::new(profile, port)?),
                    info,
                ));
            }
            ("camera", _, Some(sel)) => {
                let selector: UsbSelector = sel.parse().map_err(|e: String| anyhow::anyhow!(e))?;
                let probe = selector.clone();
                devices.camera_present = Some(Box::new(move || {
                    tamga_drivers::usb::discovery::list()
                        .ok()
                        .map(|l| l.iter().any(|d| d.still_image && probe.matches_info(d)))
                }));
                let opener = Box::new(move || {
                    RusbTransport::open(&selector).map(|t| Box::new(t) as Box<dyn UsbTransport>)
                });
                devices.camera = Some((
                    Arc::new(std::sync::Mutex::new(PhotoCamera::new(profile, opener)?)),
                    info,
                ));
            }
            _ => anyhow::bail!(
                "device with role `{}` is incomplete (see the configuration check)",
                d.role
            ),
        }
    }
    // The operator page is served from the API's own address, so its origins are always allowed.
    let (hosts, own_origins) = crate::api::own_addresses(api_addr);
    let mut allowed_origins = cfg.api.allowed_origins.clone();
    for own in own_origins {
        if !allowed_origins.contains(&own) {
            allowed_origins.push(own);
        }
    }
    let state = Arc::new(ApiState {
        token: crate::api::token(&cfg.paths.data_dir, cfg.api.token_group_readable)?,
        hosts,
        allowed_origins,
        station_id: cfg.station.id.clone(),
        centre_id: cfg.station.centre.clone(),
        language: cfg.ui.language.clone(),
        policy: cfg.fingerprint_policy.clone(),
        photo_policy: cfg.photo_policy.clone(),
        devices,
        sessions: tokio::sync::Mutex::new(Default::default()),
        outbox: Arc::new(std::sync::Mutex::new(outbox)),
        signer,
        central_point,
        today: crate::station::today,
        telemetry: Default::default(),
        limits: cfg.api.limits(),
    });
    let uplink = Uplink::new(
        &cfg.central.url,
        &format!("{station}\n{station_ca}"),
        &key,
        &root,
        &central,
        cfg.central.concurrency,
    )?;
    Ok((state, uplink))
}

/// Says once, at start, what the daemon found: each configured device (present, absent with the path or USB
/// selector it looked for, present but not answering or not the kind configured), the roles with no device, the
/// link to the central system, and the outbox's backlog. What is missing is a warning, with what to do.
pub async fn report_start(cfg: &StationConfig, state: &ApiState, uplink: &Uplink) {
    for role in ["document", "fingerprint", "camera"] {
        let Some(d) = cfg.devices.iter().find(|d| d.role == role) else {
            info!(
                role,
                "no device configured for this role (add a [[devices]] entry to use it)"
            );
            continue;
        };
        let profile = d.profile.as_str();
        match (role, &d.port, &d.usb) {
            (_, Some(port), _) if !port.exists() => warn!(
                role,
                profile,
                port = %port.display(),
                "device absent: nothing at its port; plug it in, or fix `port` in the configuration \
                 (`tamga devices scan` lists the ports)"
            ),
            ("fingerprint", Some(port), _) => {
                let Some((scanner, _)) = &state.devices.fingerprint else {
                    continue;
                };
                let answer = scanner.lock().await.connect(Duration::from_secs(3)).await;
                match answer {
                    Ok(()) => info!(role, profile, port = %port.display(), "device present and answering"),
                    Err(e) => warn!(
                        role,
                        profile,
                        port = %port.display(),
                        error = %e,
                        "device present but not answering as its profile: wrong model or profile, or no power \
                         (`tamga devices info` asks it)"
                    ),
                }
            }
            (_, Some(port), _) => info!(role, profile, port = %port.display(), "device present"),
            (_, None, Some(selector)) => {
                let sel = selector.clone();
                let found = tokio::task::spawn_blocking(move || {
                    let wanted: UsbSelector = sel.parse()?;
                    let list = tamga_drivers::usb::discovery::list().map_err(|e| e.to_string())?;
                    let matching: Vec<_> = list.into_iter().filter(|d| wanted.matches_info(d)).collect();
                    Ok::<_, String>((matching.iter().any(|d| d.still_image), !matching.is_empty()))
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
                match found {
                    Ok((true, _)) => info!(role, profile, usb = %selector, "device present"),
                    Ok((false, true)) => warn!(
                        role,
                        profile,
                        usb = %selector,
                        "a USB device matches but is not a still-image (PTP) camera: wrong model, or the camera \
                         is in mass-storage mode (set its USB mode to PTP / PC remote)"
                    ),
                    Ok((false, false)) => warn!(
                        role,
                        profile,
                        usb = %selector,
                        "device absent: no USB device matches; plug it in and switch it on, or fix `usb` in the \
                         configuration (`tamga devices scan` lists the cameras)"
                    ),
                    Err(e) => {
                        warn!(role, profile, usb = %selector, error = %e, "cannot look for the device on USB")
                    }
                }
            }
            _ => {}
        }
    }
    match uplink.check().await {
        Ok(()) => info!(url = %cfg.central.url, "central system reachable (mutual TLS)"),
        Err(e) => warn!(
            url = %cfg.central.url,
            error = %e,
            "central system unreachable: bundles are kept in the outbox and sent when it answers"
        ),
    }
    let stats = state.outbox.lock().ok().map(|o| o.stats());
    match stats {
        Some(Ok(st)) if st.quarantined > 0 => warn!(
            queued = st.queued + st.sending,
            quarantined = st.quarantined,
            pending_bytes = st.pending_bytes,
            "outbox: quarantined bundles need the technician (`tamga outbox status --data DIR`)"
        ),
        Some(Ok(st)) => info!(
            queued = st.queued + st.sending,
            pending_bytes = st.pending_bytes,
            "outbox backlog"
        ),
        Some(Err(e)) => warn!(error = %e, "outbox: cannot read its counts"),
        None => warn!("outbox: its lock is poisoned"),
    }
}

/// Catches SIGTERM and SIGINT from now on (a signal that comes right after the start, before anything awaits the
/// future, still stops the agent gracefully); the future resolves at the first of them.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: stopping"),
            _ = int.recv() => info!("SIGINT: stopping"),
        }
    })
}
