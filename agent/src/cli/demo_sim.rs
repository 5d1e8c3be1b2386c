//! The simulated applicant and the simulator console of `tamga demo` (without `--applicants`).
//!
//! The operator drives the page; the simulated applicant answers the devices as a person at the window would: it
//! lays the passport on the reader when the page asks for a read, puts the requested finger on the scanner, lifts
//! it after the image is taken, and stands in front of the camera. Lines on standard input change what happens
//! next (a rejected photo, a bad finger, an unplugged device, the central system going down), so a tester, human
//! or a browser test, can walk every path of the page. Type `help` for the list.

use crate::capture::fingers::FingerPosition;
use crate::telemetry::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tamga_sim::fingerprint::FingerSpec;
use tamga_sim::mrz_reader::MrzReaderEmulator;
use tamga_sim::passports::{PassportKind, td3};
use tamga_sim::ptp_camera::SimCamera;
use tamga_sim::zfm::ZfmEmulator;

/// What the applicant does at the next finger request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FingerKind {
    Good,
    /// Only the fingertip on the glass: a low score, the operator is told to retry.
    Partial,
    /// Does not put the finger down.
    Absent,
}

/// What the camera sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scene {
    Good,
    /// The studio light failed: the photo is far too dark.
    Dark,
    /// The applicant stepped away: the backdrop alone.
    Empty,
}

struct Plan {
    passport: PassportKind,
    fingers: VecDeque<FingerKind>,
    applicants: u64,
}

/// The simulated devices and the simulated person in front of them.
pub struct SimApplicant {
    pub mrz: Arc<MrzReaderEmulator>,
    pub zfm: ZfmEmulator,
    pub camera: SimCamera,
    /// The portrait the camera normally sees (PNG bytes).
    pub portrait: &'static [u8],
    plan: Mutex<Plan>,
}

/// The embedded central receiver, which the console can stop and start again on the same port.
pub struct CentralCtl {
    pub config: tamga_central::CentralConfig,
    pub store_dir: std::path::PathBuf,
    pub port: u16,
    pub running: Option<tamga_central::Running>,
}

impl CentralCtl {
    pub async fn up(&mut self) -> anyhow::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.running = Some(tamga_central::start(
            self.config.clone(),
            Box::new(tamga_central::store::FsStore::new(&self.store_dir)?),
            listener,
        )?);
        Ok(())
    }

    pub async fn down(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

impl std::fmt::Debug for SimApplicant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimApplicant").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CentralCtl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CentralCtl")
            .field("port", &self.port)
            .field("up", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

/// The side of the square frame the simulated camera delivers (about 2 MP).
pub const SCENE_SIZE: u32 = 1400;

/// What the camera sees, as the JPEG it delivers: the portrait (PNG bytes) under `scene`.
pub fn scene_jpeg(portrait: &[u8], scene: Scene) -> anyhow::Result<Vec<u8>> {
    let img = image::load_from_memory(portrait)?
        .resize_exact(SCENE_SIZE, SCENE_SIZE, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let img = match scene {
        Scene::Good => img,
        Scene::Dark => image::imageops::colorops::brighten(&img, -150),
        // The backdrop alone: the portrait's top-left corner colour everywhere.
        Scene::Empty => image::RgbImage::from_pixel(SCENE_SIZE, SCENE_SIZE, *img.get_pixel(4, 4)),
    };
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&img)?;
    Ok(jpeg)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SimApplicant {
    pub fn new(
        mrz: Arc<MrzReaderEmulator>,
        zfm: ZfmEmulator,
        camera: SimCamera,
        portrait: &'static [u8],
    ) -> Self {
        SimApplicant {
            mrz,
            zfm,
            camera,
            portrait,
            plan: Mutex::new(Plan {
                passport: PassportKind::Good,
                fingers: VecDeque::new(),
                applicants: 0,
            }),
        }
    }

    /// Answers the devices' requests as they appear on the daemon's event stream, until it closes.
    pub async fn react(self: Arc<Self>, telemetry: &crate::telemetry::Telemetry) {
        let (mut rx, mut closing) = telemetry.subscribe();
        loop {
            let e = tokio::select! {
                r = rx.recv() => r,
                _ = closing.changed() => return,
            };
            let e = match e {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            match e {
                Event::Session { state: "created", .. } => lock(&self.plan).applicants += 1,
                Event::Capture { what, stage, .. } => self.clone().on_capture(&what, stage),
                _ => {}
            }
        }
    }

    fn on_capture(self: Arc<Self>, what: &str, stage: &str) {
        match (what, stage) {
            ("document", "started") => {
                let (kind, n) = {
                    let p = lock(&self.plan);
                    (p.passport, p.applicants)
                };
                let today = crate::cli::today();
                let lines = td3(kind, n, (today.year(), today.month() as u8, today.day()));
                tokio::task::spawn_blocking(move || {
                    // The applicant hands the passport over; the operator lays it on the glass.
                    std::thread::sleep(Duration::from_millis(600));
                    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                    if let Err(e) = self.mrz.play(&refs, &[]) {
                        tracing::warn!(error = %e, "simulated reader could not play the passport");
                    }
                });
            }
            (w, "started") if w.starts_with("finger/") => {
                let Ok(pos) = <FingerPosition as clap::ValueEnum>::from_str(&w[7..], true) else {
                    return;
                };
                let (kind, n) = {
                    let mut p = lock(&self.plan);
                    (p.fingers.pop_front().unwrap_or(FingerKind::Good), p.applicants)
                };
                let mut spec = FingerSpec::good(n, pos.code(), 256, 288, 500);
                // Each capture starts with an empty glass, even when the applicant's lift after the previous one
                // was missed (a watcher too slow under load misses events).
                self.zfm.lift_finger();
                match kind {
                    FingerKind::Absent => return,
                    FingerKind::Partial => spec.contact = 0.08,
                    FingerKind::Good => {}
                }
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    self.zfm.place_finger(spec);
                });
            }
            // The applicant lifts the finger once the scanner has taken it (or given up).
            (w, "done" | "retry" | "failed") if w.starts_with("finger/") => self.zfm.lift_finger(),
            _ => {}
        }
    }

    fn scene(&self, scene: Scene) -> anyhow::Result<()> {
        let jpeg = scene_jpeg(self.portrait, scene)?;
        self.camera.set_photos(vec![(jpeg, SCENE_SIZE, SCENE_SIZE)]);
        Ok(())
    }

    /// Runs one console command; the answer is one line.
    pub async fn command(
        &self,
        line: &str,
        central: &tokio::sync::Mutex<CentralCtl>,
        outbox: &std::sync::Mutex<crate::outbox::Outbox>,
    ) -> anyhow::Result<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ok = |s: &str| Ok(format!("ok: {s}"));
        match words.as_slice() {
            [] => Ok(String::new()),
            ["help"] => Ok(HELP.trim_end().to_owned()),
            ["passport", kind] => {
                let k = match *kind {
                    "good" => PassportKind::Good,
                    "expired" => PassportKind::Expired,
                    "misprinted" => PassportKind::BadCheckDigit,
                    other => anyhow::bail!("passport `{other}`: use good, expired or misprinted"),
                };
                lock(&self.plan).passport = k;
                ok(&format!("the next passports are {kind}"))
            }
            ["finger", kind] | ["finger", kind, _] => {
                let k = match *kind {
                    "good" => FingerKind::Good,
                    "partial" => FingerKind::Partial,
                    "absent" => FingerKind::Absent,
                    other => anyhow::bail!("finger `{other}`: use good, partial or absent"),
                };
                let times: usize = match words.get(2) {
                    Some(n) => n.parse().map_err(|_| anyhow::anyhow!("`{n}` is not a count"))?,
                    None => 1,
                };
                lock(&self.plan).fingers.extend(std::iter::repeat_n(k, times));
                ok(&format!("the next {times} finger(s): {kind}"))
            }
            ["photo", kind] => {
                let s = match *kind {
                    "good" => Scene::Good,
                    "dark" => Scene::Dark,
                    "empty" => Scene::Empty,
                    other => anyhow::bail!("photo `{other}`: use good, dark or empty"),
                };
                self.scene(s)?;
                ok(&format!("the camera sees: {kind}"))
            }
            [verb @ ("unplug" | "plug"), role] => {
                let plug = *verb == "plug";
                match *role {
                    "document" if plug => self.mrz.port().replug()?,
                    "document" => self.mrz.port().unplug(),
                    "fingerprint" if plug => self.zfm.port().replug()?,
                    "fingerprint" => self.zfm.port().unplug(),
                    "camera" if plug => self.camera.replug(),
                    "camera" => self.camera.unplug(),
                    other => anyhow::bail!("`{other}`: use document, fingerprint or camera"),
                }
                ok(&format!("{role} {verb}ged"))
            }
            ["central", "down"] => {
                central.lock().await.down().await;
                ok("central system down")
            }
            ["central", "up"] => {
                central.lock().await.up().await?;
                ok("central system up")
            }
            ["disk", state @ ("full" | "ok")] => {
                // A reserve no disk can meet plays a full disk; the outbox refuses new bundles, keeps the old.
                let reserve = if *state == "full" { u64::MAX / 2 } else { 0 };
                lock(outbox).set_reserve(reserve);
                ok(&format!("disk {state}"))
            }
            _ => anyhow::bail!("unknown command `{line}`; type `help`"),
        }
    }
}

const HELP: &str = "\
simulator commands (one per line):
  passport good|expired|misprinted   what the next applicants lay on the reader (default good)
  photo good|dark|empty              what the camera sees from now on (default good)
  finger good|partial|absent [N]     how the applicant places the next N fingers (default good)
  unplug|plug document|fingerprint|camera
  central down|up                    stop or restart the embedded central receiver
  disk full|ok                       the outbox sees the disk below its reserve (refuses new bundles), or not
  quit                               stop the demo
";

/// Standard input's lines, read on a thread of its own that nobody waits for. A read blocked on a terminal or an
/// open pipe cannot be cancelled; `tokio::io::stdin` runs it on the runtime's blocking pool, which the runtime's
/// shutdown waits for, so SIGTERM or Ctrl-C stopped the demo only at the next line typed. The process ends under
/// this thread instead.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let reader = std::thread::Builder::new()
        .name("demo-console".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { return };
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = reader {
        tracing::warn!(error = %e, "no thread for the simulator console; standard input is not read");
    }
    rx
}

/// Reads console commands from standard input until `quit` or its end; answers on standard output.
pub async fn console(
    sim: Arc<SimApplicant>,
    central: Arc<tokio::sync::Mutex<CentralCtl>>,
    outbox: Arc<std::sync::Mutex<crate::outbox::Outbox>>,
    quit: tokio::sync::oneshot::Sender<()>,
) {
    let mut lines = stdin_lines();
    while let Some(line) = lines.recv().await {
        let line = line.trim();
        if line == "quit" {
            let _ = quit.send(());
            return;
        }
        let answer = match sim.command(line, &central, &outbox).await {
            Ok(a) => a,
            Err(e) => format!("error: {e:#}"),
        };
        if !answer.is_empty() {
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "{answer}");
        }
    }
    // Standard input ended (a service, or `< /dev/null`): keep serving until Ctrl-C.
}
