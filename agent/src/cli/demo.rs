//! `tamga demo`: the whole station without hardware (see [`run`]); `tamga demo-readers`: the passport path alone.
//!
//! `tamga demo-readers`: the passport path end to end without hardware. For each reader profile (or the one given), a
//! simulated reader is plugged in on a pseudo-terminal, plays the ICAO specimen documents with that profile's
//! framing at its line rate, and the real serial driver reads and checks them. One JSON line per document.

use super::{Context, EXIT_INVALID};
use anyhow::Context as _;
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tamga_drivers::mrz_serial::MrzReader;
use tamga_mrz::{Mrz, ParseOptions};
use tamga_profiles::DeviceKind;
use tamga_sim::mrz_reader::MrzReaderEmulator;
use tamga_sim::specimens;

#[derive(Debug, clap::Args)]
pub struct ReadersDemoArgs {
    /// Only this reader profile (default: every reader profile).
    #[arg(long)]
    profile: Option<String>,
    /// Send bytes as fast as the pty takes them instead of at the profile's line rate.
    #[arg(long)]
    no_pace: bool,
}

#[derive(Serialize)]
struct DemoLine<'a> {
    profile: &'a str,
    port: String,
    document: &'a str,
    mrz: &'a Mrz,
}

pub fn run_readers(args: ReadersDemoArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let catalog = ctx.catalog()?;
    let profiles: Vec<_> = match &args.profile {
        Some(name) => vec![catalog.get(name)?.clone()],
        None => catalog
            .all()
            .iter()
            .filter(|p| p.kind == DeviceKind::MrzReader)
            .cloned()
            .collect(),
    };
    let dir = tempfile::Builder::new()
        .prefix("tamga-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let opts = ParseOptions::new(super::today());
    let mut failures = 0;
    for profile in &profiles {
        let link = dir.path().join(format!("tty-{}", profile.name));
        let emu = Arc::new(
            MrzReaderEmulator::start(profile, &link, !args.no_pace)
                .with_context(|| format!("starting the simulated reader for {}", profile.name))?,
        );
        let mut reader = MrzReader::new(profile, &link)?;
        for (name, lines) in specimens::ALL {
            let player = {
                let emu = emu.clone();
                std::thread::spawn(move || emu.play(lines, &[]))
            };
            let read = rt.block_on(reader.read_document(Duration::from_secs(20), &opts));
            player
                .join()
                .map_err(|_| anyhow::anyhow!("simulated reader thread panicked"))??;
            let read = read.with_context(|| format!("{}: reading {name}", profile.name))?;
            // The specimens carry the ICAO dates; "expired" is expected and is not a failure here.
            if !read.mrz.valid {
                failures += 1;
            }
            let line = DemoLine {
                profile: &profile.name,
                port: link.display().to_string(),
                document: name,
                mrz: &read.mrz,
            };
            outln!("{}", serde_json::to_string(&line)?);
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

/// The public-domain astronaut portrait (scikit-image; see quality/tests/fixtures/photos/SOURCES.md), served as
/// JPEG by the simulated camera.
static PORTRAIT_PNG: &[u8] = include_bytes!("../../../quality/tests/fixtures/photos/astronaut.png");

/// A simulated PTP camera serving the portrait, scaled to a 2 MP frame as a real camera would deliver it.
pub fn simulated_camera() -> anyhow::Result<tamga_sim::ptp_camera::SimCamera> {
    let jpeg = super::demo_sim::scene_jpeg(PORTRAIT_PNG, super::demo_sim::Scene::Good)?;
    Ok(tamga_sim::ptp_camera::SimCamera::new(
        "Tamga",
        "Simulated PTP camera",
        // With Nikon-style live view, so the page's preview works in the demo.
        tamga_sim::ptp_camera::SimQuirks {
            live_view: true,
            ..Default::default()
        },
        vec![(jpeg, super::demo_sim::SCENE_SIZE, super::demo_sim::SCENE_SIZE)],
    ))
}

/// `tamga demo`: a development PKI, an embedded central receiver, simulated devices (an MRZ reader and a
/// fingerprint module on pseudo-terminals, a PTP camera), the daemon with its API; optionally N scripted applicants.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Work folder (PKI, data, central store); default: a new temporary folder.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Run this many scripted applicants through the API, wait for their receipts, print timings, and exit.
    #[arg(long)]
    applicants: Option<usize>,
    /// API port (0: any free port).
    #[arg(long, default_value_t = 4480)]
    port: u16,
    /// The operator page's language until the operator picks another: en, ru or kk.
    #[arg(long, default_value = "en", value_parser = clap::builder::PossibleValuesParser::new(crate::ui::LANGUAGES))]
    language: String,
}

struct DemoWorld {
    mrz: Arc<MrzReaderEmulator>,
    zfm: tamga_sim::zfm::ZfmEmulator,
    base: String,
    token: String,
}

fn simulated_devices(
    dir: &std::path::Path,
    catalog: &tamga_profiles::Catalog,
) -> anyhow::Result<(
    crate::api::Devices,
    Arc<MrzReaderEmulator>,
    tamga_sim::zfm::ZfmEmulator,
    tamga_sim::ptp_camera::SimCamera,
)> {
    use tamga_drivers::usb::UsbTransport;
    let mrz_profile = catalog.get("desko-penta-serial")?;
    let mrz = Arc::new(MrzReaderEmulator::start(mrz_profile, &dir.join("ttyMRZ"), true)?);
    let fp_profile = catalog.get("zhiantec-r307")?;
    let zfm = tamga_sim::zfm::ZfmEmulator::start(fp_profile, &dir.join("ttyFP"), false)?;
    let cam = simulated_camera()?;
    let opener = cam.clone();
    let camera = tamga_drivers::ptp::device::PhotoCamera::new(
        catalog.get("generic-ptp-camera")?,
        Box::new(move || opener.open().map(|t| Box::new(t) as Box<dyn UsbTransport>)),
    )?;
    let dev = |model: &str, profile: &str| tamga_bundle::manifest::Device {
        model: model.into(),
        serial: "SIM".into(),
        firmware: "-".into(),
        profile: profile.into(),
        profile_sha256: tamga_bundle::manifest::GENESIS.into(),
    };
    let devices = crate::api::Devices {
        document: Some((
            tokio::sync::Mutex::new(MrzReader::new(mrz_profile, mrz.path())?),
            dev("simulated DESKO reader", "desko-penta-serial"),
        )),
        fingerprint: Some((
            tokio::sync::Mutex::new(tamga_drivers::zfm::FingerprintScanner::new(
                fp_profile,
                zfm.path(),
            )?),
            dev("simulated R307", "zhiantec-r307"),
        )),
        camera: Some((
            Arc::new(std::sync::Mutex::new(camera)),
            dev("simulated PTP camera", "generic-ptp-camera"),
        )),
        watch: vec![
            ("document", mrz.path().to_owned()),
            ("fingerprint", zfm.path().to_owned()),
        ],
        camera_capturing: Default::default(),
        fingerprint_capturing: Default::default(),
        health_every: Some(std::time::Duration::from_secs(10)),
        camera_present: Some(Box::new({
            let c = cam.clone();
            move || Some(c.is_plugged())
        })),
    };
    Ok((devices, mrz, zfm, cam))
}

pub fn run(args: DemoArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let temp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("tamga-demo-")
                .tempdir()
                .context("creating a temporary folder")?;
            temp.path().to_owned()
        }
    };
    let catalog = ctx.catalog()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let station = "KZ-ALA-001-W01";
        // A work folder used before keeps its PKI, outbox and central store: the demo can be stopped (or killed)
        // and started again, and what was saved is delivered.
        let pki_dir = dir.join("pki");
        std::fs::create_dir_all(&pki_dir)?;
        let pki = match super::certs::read_dev_pki(&pki_dir)? {
            Some(p) => p,
            None => {
                let p = tamga_bundle::devpki::generate(station)?;
                super::certs::write_dev_pki(&pki_dir, &p)?;
                p
            }
        };
        // The embedded central receiver, on a port of its own that it keeps across `central down` / `up`.
        let central_port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await?
            .local_addr()?
            .port();
        let mut central = super::demo_sim::CentralCtl {
            config: tamga_central::CentralConfig {
                cert_pem: pki.central.clone(),
                key_pem: pki.central_key.clone(),
                client_ca_pem: pki.root_ca.clone(),
                revocation_list: None,
                max_body_bytes: 64 << 20,
            },
            store_dir: dir.join("central"),
            port: central_port,
            running: None,
        };
        central.up().await?;
        let (devices, mrz, zfm, cam) = simulated_devices(&dir, &catalog)?;
        let data = dir.join("data");
        // The outbox creates the data folder 0700 (and its database 0600) before the key is written there.
        let outbox = crate::outbox::Outbox::open(&data, 0)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("port {} is taken: pass --port 0 for any free port", args.port))?;
        let listener_addr = listener.local_addr()?;
        let port = listener_addr.port();
        let signer =
            tamga_bundle::seal::StationSigner::from_pem(&pki.station_key, &[&pki.station, &pki.station_ca])?;
        let central_point =
            tamga_bundle::pki::cert_info(&tamga_bundle::pki::certs_from_pem(&pki.central)?[0])?.public_point;
        let token = crate::api::token(&data, false)?;
        let (hosts, allowed_origins) = crate::api::own_addresses(listener_addr);
        let state = Arc::new(crate::api::ApiState {
            token: token.clone(),
            hosts,
            allowed_origins,
            station_id: station.into(),
            centre_id: "KZ-ALA-001".into(),
            language: args.language.clone(),
            policy: crate::capture::fingers::Policy::default(),
            // The demo portrait is shot against a studio backdrop with a gradient.
            photo_policy: tamga_quality::photo::PhotoPolicy {
                background_uniformity_max: 40.0,
                ..Default::default()
            },
            devices,
            sessions: tokio::sync::Mutex::new(Default::default()),
            outbox: Arc::new(std::sync::Mutex::new(outbox)),
            signer,
            central_point,
            today: super::today,
            telemetry: Default::default(),
            limits: Default::default(),
        });
        let uplink = crate::uplink::Uplink::new(
            &format!("https://localhost:{central_port}"),
            &format!("{}\n{}", pki.station, pki.station_ca),
            &pki.station_key,
            &pki.root_ca,
            &pki.central,
            4,
        )?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // SIGTERM and SIGINT are caught from here on, before the page's address is printed: a signal that comes
        // before the server first polls its shutdown future still stops it cleanly.
        let signals = crate::daemon::shutdown_signal().context("catching SIGTERM and SIGINT")?;
        let server = tokio::spawn(crate::daemon::serve(
            state.clone(),
            listener,
            64 * 1024,
            Some(uplink),
            async move {
                tokio::select! {
                    // `quit` (or the end of --applicants); not the console going away at the end of standard input.
                    Ok(()) = stop_rx => {}
                    () = signals => {}
                }
            },
        ));
        let base = format!("http://127.0.0.1:{port}");
        outln!("Tamga demo: station {station}, work folder {}", dir.display());
        outln!("  local API  {base}   token {token}");
        outln!("  central    https://localhost:{central_port} (embedded, mutual TLS)");
        let Some(n) = args.applicants else {
            // The operator drives the page; a simulated applicant answers the devices; the console steers it.
            outln!("  operator page  {}", super::page::url(listener_addr, &token));
            outln!("  simulator commands on standard input (`help`); Ctrl-C or `quit` stops");
            let sim = Arc::new(super::demo_sim::SimApplicant::new(mrz, zfm, cam, PORTRAIT_PNG));
            let reacting = {
                let (sim, state) = (sim.clone(), state.clone());
                tokio::spawn(async move { sim.react(&state.telemetry).await })
            };
            let central = Arc::new(tokio::sync::Mutex::new(central));
            let outbox = state.outbox.clone();
            tokio::spawn(super::demo_sim::console(sim, central.clone(), outbox, stop_tx));
            let _ = server.await;
            reacting.abort();
            central.lock().await.down().await;
            return Ok::<ExitCode, anyhow::Error>(ExitCode::SUCCESS);
        };
        let world = DemoWorld {
            mrz,
            zfm,
            base,
            token,
        };
        let code = applicants(&world, n).await?;
        let _ = stop_tx.send(());
        let _ = server.await;
        Ok(code)
    })
}

/// N applicants through the API: document, photo, ten fingers (a retry on one, an exception on another),
/// finalize; then every receipt.
async fn applicants(w: &DemoWorld, n: usize) -> anyhow::Result<ExitCode> {
    use crate::capture::fingers::FingerPosition;
    use std::time::Instant;
    let http = reqwest::Client::new();
    let post = |path: String| http.post(format!("{}{path}", w.base)).bearer_auth(&w.token);
    let mut bundles = Vec::new();
    let total = Instant::now();
    for a in 0..n {
        let mut times: Vec<(&str, u128)> = Vec::new();
        let t = Instant::now();
        let s: serde_json::Value = post("/v1/sessions".into())
            .json(&serde_json::json!({"operator_id": "demo"}))
            .send()
            .await?
            .json()
            .await?;
        let id = s["session_id"].as_str().unwrap_or_default().to_owned();
        let t0 = Instant::now();
        let mrz = w.mrz.clone();
        let player = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            mrz.play(specimens::TD3, &[])
        });
        let doc = post(format!("/v1/sessions/{id}/document")).send().await?;
        player
            .join()
            .map_err(|_| anyhow::anyhow!("reader emulator failed"))??;
        anyhow::ensure!(doc.status().is_success(), "document: {}", doc.text().await?);
        times.push(("document", t0.elapsed().as_millis()));
        let t1 = Instant::now();
        let face: serde_json::Value = post(format!("/v1/sessions/{id}/face"))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(face["accepted"] == true, "photo refused: {face}");
        times.push(("photo", t1.elapsed().as_millis()));
        let t2 = Instant::now();
        for pos in FingerPosition::ALL {
            let name = serde_json::to_value(pos)?.as_str().unwrap_or_default().to_owned();
            if pos == FingerPosition::LeftLittle && a % 2 == 1 {
                post(format!("/v1/sessions/{id}/fingers/{name}/exception"))
                    .json(&serde_json::json!({"reason": "bandaged"}))
                    .send()
                    .await?;
                continue;
            }
            if pos == FingerPosition::RightIndex {
                // A first attempt with only the fingertip on the glass: the operator is told to retry.
                let mut partial =
                    tamga_sim::fingerprint::FingerSpec::good(a as u64, pos.code(), 256, 288, 500);
                partial.contact = 0.08;
                w.zfm.place_finger(partial);
                let r: serde_json::Value = post(format!("/v1/sessions/{id}/fingers/{name}"))
                    .send()
                    .await?
                    .json()
                    .await?;
                anyhow::ensure!(r["next"]["next"] == "retry", "expected a retry: {r}");
            }
            w.zfm.place_finger(tamga_sim::fingerprint::FingerSpec::good(
                a as u64,
                pos.code(),
                256,
                288,
                500,
            ));
            let r: serde_json::Value = post(format!("/v1/sessions/{id}/fingers/{name}"))
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(r["next"]["next"] == "accepted", "{name}: {r}");
        }
        times.push(("ten fingers", t2.elapsed().as_millis()));
        let t3 = Instant::now();
        let done: serde_json::Value = post(format!("/v1/sessions/{id}/finalize"))
            .send()
            .await?
            .json()
            .await?;
        let bundle = done["bundle_id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("finalize: {done}"))?
            .to_owned();
        times.push(("finalize", t3.elapsed().as_millis()));
        let line: Vec<String> = times.iter().map(|(k, v)| format!("{k} {v} ms")).collect();
        outln!(
            "applicant {}: {} | total {} ms | bundle {bundle}",
            a + 1,
            line.join(", "),
            t.elapsed().as_millis()
        );
        bundles.push(bundle);
    }
    // Every bundle delivered, with a verified receipt.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut delivered = 0;
        for b in &bundles {
            let st: serde_json::Value = http
                .get(format!("{}/v1/bundles/{b}", w.base))
                .bearer_auth(&w.token)
                .send()
                .await?
                .json()
                .await?;
            if st["state"] == "delivered" {
                delivered += 1;
            }
        }
        if delivered == bundles.len() {
            outln!(
                "{n} applicant(s) in {} ms; {delivered} bundle(s) delivered with verified receipts",
                total.elapsed().as_millis()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() > deadline {
            outln!(
                "only {delivered} of {} bundle(s) delivered within 60 s",
                bundles.len()
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
