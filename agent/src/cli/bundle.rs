//! `tamga bundle create | verify | inspect`: signed, sealed capture bundles from files, and their verification.

use super::{Context, EXIT_INVALID};
use crate::bundling::{Captures, Context as BuildContext, FaceItem, FingerItem, build, file_device};
use crate::capture::fingers::{ExceptionReason, FingerPosition};
use anyhow::{Context as _, bail};
use clap::Subcommand;
use p256::pkcs8::DecodePrivateKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tamga_bundle::manifest;
use tamga_bundle::pki;
use tamga_bundle::seal::{StationSigner, open, seal};

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Builds a signed, sealed bundle from files (the JWE compact serialization). Runs the agent's checks and
    /// refuses an incomplete or failing record unless --allow-incomplete.
    Create {
        /// A directory with station.key, station.pem, station-ca.pem and central.pem (`tamga certs init`).
        #[arg(long)]
        certs: PathBuf,
        /// MRZ lines, in order (2 or 3).
        #[arg(long = "mrz", required = true)]
        mrz: Vec<String>,
        /// The face photo (JPEG), as it will be sent.
        #[arg(long)]
        face: Option<PathBuf>,
        /// POSITION=FILE.png (8-bit grey, 500 ppi), e.g. right-thumb=rt.png. Repeat for each finger.
        #[arg(long = "finger")]
        fingers: Vec<String>,
        /// POSITION=REASON (amputated, bandaged, unable-to-capture).
        #[arg(long = "exception")]
        exceptions: Vec<String>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "KZ-ALA-001")]
        centre: String,
        #[arg(long, default_value = "integrator")]
        operator: String,
        /// SHA-256 of the station's previous manifest (hex); default: this is the station's first bundle.
        #[arg(long)]
        previous: Option<String>,
        #[arg(long)]
        allow_incomplete: bool,
        /// A TOML file with the station's `[photo_policy]` and `[fingerprint_policy]` tables (the agent's checks).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Decrypts and verifies everything; prints a report; exits 1 naming the first failure.
    Verify {
        file: PathBuf,
        /// The root CA the station chain must lead to.
        #[arg(long)]
        ca: PathBuf,
        /// The central system's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Decrypts and prints the manifest (with the verification verdict).
    Inspect {
        file: PathBuf,
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
}

fn position(name: &str) -> anyhow::Result<FingerPosition> {
    <FingerPosition as clap::ValueEnum>::from_str(name, true).map_err(|_| {
        anyhow::anyhow!("`{name}` is not a finger position; use right-thumb, right-index, ..., left-little")
    })
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

#[allow(clippy::too_many_arguments)]
fn create(
    certs: &Path,
    mrz: &[String],
    face: Option<&Path>,
    fingers: &[String],
    exceptions: &[String],
    out: &Path,
    centre: &str,
    operator: &str,
    previous: Option<&str>,
    allow_incomplete: bool,
    policy: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let photo_policy = super::photo::policy(policy)?;
    let finger_policy = match policy {
        Some(p) => {
            let src = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            if src.contains("[fingerprint_policy") {
                crate::capture::fingers::Policy::from_toml(&p.display().to_string(), &src)?
            } else {
                crate::capture::fingers::Policy::default()
            }
        }
        None => crate::capture::fingers::Policy::default(),
    };
    let key = super::certs::read_key(&certs.join("station.key"))?;
    let station = std::fs::read_to_string(certs.join("station.pem"))?;
    let station_ca = std::fs::read_to_string(certs.join("station-ca.pem"))?;
    let central = std::fs::read_to_string(certs.join("central.pem"))?;
    let signer = StationSigner::from_pem(&key, &[&station, &station_ca])?;
    let central_point = pki::cert_info(&pki::certs_from_pem(&central)?[0])?.public_point;
    let now = time::OffsetDateTime::now_utc();
    let mut problems: Vec<String> = Vec::new();
    let mut captures = Captures::default();

    let doc = tamga_mrz::parse_lines(mrz, &tamga_mrz::ParseOptions::new(super::today()))
        .map_err(|e| anyhow::anyhow!("--mrz: not an MRZ: {e}"))?;
    if !doc.valid {
        problems.push("the MRZ fails its check digits".into());
    }
    captures.document = Some(doc);

    for spec in fingers {
        let (pos, file) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--finger {spec}: write POSITION=FILE.png"))?;
        let pos = position(pos)?;
        let png = read(Path::new(file))?;
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .with_context(|| format!("{file}: not a PNG image"))?
            .to_luma8();
        let (w, h) = img.dimensions();
        let q = tamga_quality::fingerprint::assess(img.as_raw(), w as usize, h as usize, 500);
        let threshold = finger_policy.rule(pos).threshold;
        if q.score < threshold {
            problems.push(format!("{}: quality {} below {threshold}", pos.label(), q.score));
        }
        captures.fingers.push(FingerItem {
            position: pos,
            png,
            width: w,
            height: h,
            resolution_ppi: 500,
            score: q.score,
            quality: serde_json::to_value(&q)?,
            device: file_device(),
            captured_at: now,
            attempts: 1,
        });
    }
    if let Some(face) = face {
        let jpeg = read(face)?;
        let img = tamga_quality::photo::decode(&jpeg)?;
        let report = tamga_quality::photo::check_photo(&img, &photo_policy);
        for c in report.checks.iter().filter(|c| !c.passed) {
            problems.push(format!("photo {}: {}", c.name, c.advice));
        }
        captures.face = Some(FaceItem {
            width: img.width(),
            height: img.height(),
            jpeg,
            report: serde_json::to_value(&report)?,
            post_processing: 0,
            device: file_device(),
            captured_at: now,
            attempts: 1,
        });
    }
    for spec in exceptions {
        let (pos, reason) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--exception {spec}: write POSITION=REASON"))?;
        let pos = position(pos)?;
        let reason: ExceptionReason =
            serde_json::from_value(serde_json::Value::String(reason.replace('-', "_"))).map_err(|_| {
                anyhow::anyhow!("--exception {spec}: the reason is amputated, bandaged or unable-to-capture")
            })?;
        captures.exceptions.push((pos, reason));
    }
    let ctx = BuildContext {
        centre_id: centre.into(),
        station_id: signer.station_id().into(),
        operator_id: operator.into(),
        started_at: now,
        previous_bundle_sha256: previous.unwrap_or(manifest::GENESIS).to_lowercase(),
    };
    let (m, files) = build(&captures, &ctx).map_err(|e| anyhow::anyhow!(e))?;
    if !m.complete {
        let (missing, _, faces) = m.completeness();
        problems.push(format!(
            "incomplete: {} finger(s) without image or exception, {faces} face(s)",
            missing.len()
        ));
    }
    if !problems.is_empty() && !allow_incomplete {
        for p in &problems {
            eprintln!("tamga: {p}");
        }
        bail!(
            "the record is incomplete or fails its checks (listed above); --allow-incomplete builds it anyway"
        );
    }
    let sealed = seal(&m, &files, &signer, &central_point)?;
    std::fs::write(out, &sealed.jwe).with_context(|| format!("writing {}", out.display()))?;
    outln!(
        "bundle {} -> {} ({} bytes)",
        m.bundle_id,
        out.display(),
        sealed.jwe.len()
    );
    outln!(
        "manifest sha256 {} (the next bundle's --previous)",
        sealed.manifest_sha256
    );
    Ok(ExitCode::SUCCESS)
}

fn open_file(
    file: &Path,
    ca: &Path,
    key: &Path,
) -> anyhow::Result<Result<tamga_bundle::seal::Verified, tamga_bundle::BundleError>> {
    let jwe = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let key_pem = super::certs::read_key(key)?;
    let central = p256::SecretKey::from_pkcs8_pem(&key_pem)
        .map_err(|e| anyhow::anyhow!("{}: not a P-256 PKCS#8 key: {e}", key.display()))?;
    let root = pki::certs_from_pem(
        &std::fs::read_to_string(ca).with_context(|| format!("reading {}", ca.display()))?,
    )?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(open(&jwe, &central, &root[0], now))
}

pub fn run(cmd: BundleCommand, _ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        BundleCommand::Create {
            certs,
            mrz,
            face,
            fingers,
            exceptions,
            out,
            centre,
            operator,
            previous,
            allow_incomplete,
            policy,
        } => create(
            &certs,
            &mrz,
            face.as_deref(),
            &fingers,
            &exceptions,
            &out,
            &centre,
            &operator,
            previous.as_deref(),
            allow_incomplete,
            policy.as_deref(),
        ),
        BundleCommand::Verify { file, ca, key, json } => match open_file(&file, &ca, &key)? {
            Ok(v) => {
                if json {
                    outln!(
                        "{}",
                        serde_json::json!({
                            "ok": true, "bundle_id": v.manifest.bundle_id, "station_id": v.manifest.station_id,
                            "items": v.items.len(), "complete": v.manifest.complete,
                            "manifest_sha256": v.manifest_sha256, "previous_bundle_sha256": v.manifest.previous_bundle_sha256,
                        })
                    );
                } else {
                    outln!(
                        "OK bundle {} from station {}",
                        v.manifest.bundle_id,
                        v.manifest.station_id
                    );
                    outln!("   signature ES256 by the station certificate, chain to the CA verified");
                    outln!(
                        "   {} item(s), every SHA-256 and ISO record checked; complete: {}",
                        v.items.len(),
                        v.manifest.complete
                    );
                    outln!(
                        "   manifest sha256 {}; previous {}",
                        v.manifest_sha256,
                        v.manifest.previous_bundle_sha256
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                if json {
                    outln!("{}", serde_json::json!({"ok": false, "error": e.to_string()}));
                } else {
                    outln!("FAILED {e}");
                }
                Ok(ExitCode::from(EXIT_INVALID))
            }
        },
        BundleCommand::Inspect { file, ca, key } => match open_file(&file, &ca, &key)? {
            Ok(v) => {
                outln!("{}", serde_json::to_string_pretty(&v.manifest)?);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                outln!("not verified: {e}");
                Ok(ExitCode::from(EXIT_INVALID))
            }
        },
    }
}
