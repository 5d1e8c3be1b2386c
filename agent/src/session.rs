//! The applicant session: document, face, ten fingers, review, finalize.
//!
//! Everything captured lives in this value, in memory, until `finalize` seals it into a bundle and the outbox has
//! it on disk; `cancel` (or dropping the session) leaves nothing behind. `finalize` checks completeness (a valid
//! document, an accepted face, ten fingers or ten decisions, the policy met), builds and signs the bundle, enqueues
//! it durably, and only then returns the bundle id.

use crate::bundling::{self, Captures, FaceItem, FingerItem};
use crate::capture::fingers::{ExceptionReason, FingerPosition, FingerState, Next, Policy, TenFingers};
use crate::capture::png_out;
use crate::outbox::{Outbox, OutboxError};
use std::collections::BTreeMap;
use tamga_bundle::manifest::{self, Device};
use tamga_bundle::seal::{StationSigner, seal};
use tamga_quality::photo::{PhotoPolicy, PhotoReport, check_photo, crop_jpeg, decode};

/// Why a session step or the finalize was refused; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no document read yet: lay the passport on the reader")]
    NoDocument,
    #[error("the document's check digits fail: read it again, or check it by hand")]
    DocumentInvalid,
    #[error("no accepted photo yet: take the photo again following the advice")]
    NoFace,
    #[error("fingers without an image or an exception: {0}")]
    FingersMissing(String),
    #[error("the photo cannot be read: {0}")]
    Photo(String),
    #[error("building the bundle: {0}")]
    Build(String),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(
        "operator id {0}: use 1 to {OPERATOR_ID_MAX} letters, digits, spaces and . _ @ - ' (the operator's name, \
         login or staff number)"
    )]
    OperatorId(String),
}

/// The longest operator id a session accepts, in characters (it is signed into every bundle).
pub const OPERATOR_ID_MAX: usize = 64;

/// Checks an operator id: 1 to [`OPERATOR_ID_MAX`] characters, letters of any script, digits, inner spaces and
/// `. _ @ - '`; no control characters, no other symbols, no space at either end.
pub fn check_operator_id(id: &str) -> Result<(), SessionError> {
    if id.is_empty() {
        return Err(SessionError::OperatorId("is empty".into()));
    }
    let n = id.chars().count();
    if n > OPERATOR_ID_MAX {
        return Err(SessionError::OperatorId(format!("is {n} characters long")));
    }
    if id.starts_with(' ') || id.ends_with(' ') {
        return Err(SessionError::OperatorId("begins or ends with a space".into()));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '@' | '-' | '\'')))
    {
        return Err(SessionError::OperatorId(format!("contains {c:?}")));
    }
    Ok(())
}

/// What the operator's screen shows of a session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionState {
    pub id: String,
    pub document: Option<serde_json::Value>,
    pub face_accepted: bool,
    pub face_attempts: u32,
    /// The last photo's check report (accepted or not), so a reloaded page shows it again.
    pub face_report: Option<serde_json::Value>,
    pub fingers: BTreeMap<FingerPosition, FingerState>,
    pub missing: Vec<FingerPosition>,
    /// The best image's quality per captured finger (score and findings).
    pub finger_quality: BTreeMap<FingerPosition, serde_json::Value>,
    pub ready: bool,
}

/// A finalized session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    pub bundle_id: String,
    pub manifest_sha256: String,
}

/// A photo decoded, checked and (when accepted) cropped: the CPU work of a photo attempt, done without the
/// session (see [`assess_photo`]).
#[derive(Debug)]
pub struct AssessedPhoto {
    pub report: PhotoReport,
    face: Option<AcceptedFace>,
}

#[derive(Debug)]
struct AcceptedFace {
    width: u32,
    height: u32,
    jpeg: Vec<u8>,
    report: serde_json::Value,
    post_processing: u16,
}

/// Decodes a photo (within [`tamga_quality::photo::decode`]'s limits for camera images), runs every check and,
/// when accepted, makes the 35x45 crop. Pure CPU work: the API runs it on the blocking pool.
pub fn assess_photo(photo: &[u8], policy: &PhotoPolicy) -> Result<AssessedPhoto, SessionError> {
    let img = decode(photo).map_err(|e| SessionError::Photo(e.to_string()))?;
    let report = check_photo(&img, policy);
    let face = if report.accepted {
        let crop = crop_jpeg(&img, &report, policy).map_err(|e| SessionError::Photo(e.to_string()))?;
        let out = decode(&crop).map_err(|e| SessionError::Photo(e.to_string()))?;
        let resized = report.crop.is_some_and(|(_, _, w, _)| w > policy.crop_width);
        Some(AcceptedFace {
            width: out.width(),
            height: out.height(),
            jpeg: crop,
            report: serde_json::to_value(&report).map_err(|e| SessionError::Build(e.to_string()))?,
            post_processing: 2 | if resized { 4 } else { 0 },
        })
    } else {
        None
    };
    Ok(AssessedPhoto { report, face })
}

/// A finger image scored and encoded: the CPU work of a finger attempt, done without the session.
#[derive(Debug)]
pub struct AssessedFinger {
    pub quality: tamga_quality::fingerprint::Quality,
    quality_json: serde_json::Value,
    png: Vec<u8>,
    width: u32,
    height: u32,
    resolution_ppi: u16,
}

/// Scores a finger image (8-bit grey) and encodes it as the PNG the bundle would carry.
pub fn assess_finger(
    pixels: &[u8],
    width: u32,
    height: u32,
    resolution_ppi: u16,
) -> Result<AssessedFinger, SessionError> {
    let quality = tamga_quality::fingerprint::assess(pixels, width as usize, height as usize, resolution_ppi);
    let png = png_out::encode_grey(width, height, resolution_ppi, pixels)
        .map_err(|e| SessionError::Build(e.to_string()))?;
    Ok(AssessedFinger {
        quality_json: serde_json::to_value(&quality).map_err(|e| SessionError::Build(e.to_string()))?,
        quality,
        png,
        width,
        height,
        resolution_ppi,
    })
}

/// One applicant.
#[derive(Debug, Clone)]
pub struct ApplicantSession {
    id: String,
    operator_id: String,
    started_at: time::OffsetDateTime,
    policy: Policy,
    photo_policy: PhotoPolicy,
    document: Option<tamga_mrz::Mrz>,
    face: Option<FaceItem>,
    face_attempts: u32,
    face_report: Option<serde_json::Value>,
    fingers: TenFingers,
    best: BTreeMap<FingerPosition, FingerItem>,
    /// When the operator last used the session (the API expires sessions left idle).
    touched: std::time::Instant,
    /// Being sealed and queued (the API refuses changes meanwhile).
    finalizing: bool,
}

impl ApplicantSession {
    pub fn new(operator_id: &str, policy: Policy, photo_policy: PhotoPolicy) -> Self {
        ApplicantSession {
            id: uuid::Uuid::now_v7().to_string(),
            operator_id: operator_id.into(),
            started_at: time::OffsetDateTime::now_utc(),
            policy,
            photo_policy,
            document: None,
            face: None,
            face_attempts: 0,
            face_report: None,
            fingers: TenFingers::default(),
            best: BTreeMap::new(),
            touched: std::time::Instant::now(),
            finalizing: false,
        }
    }

    /// Whether the session is being sealed and queued (see [`ApplicantSession::set_finalizing`]).
    pub fn finalizing(&self) -> bool {
        self.finalizing
    }

    /// Marks the session as being sealed and queued from a copy: changes are refused until it is cleared.
    pub fn set_finalizing(&mut self, on: bool) {
        self.finalizing = on;
    }

    /// Marks the session as used now.
    pub fn touch(&mut self) {
        self.touched = std::time::Instant::now();
    }

    /// How long since the session was last used.
    pub fn idle_for(&self) -> std::time::Duration {
        self.touched.elapsed()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The document as read (a new read replaces it).
    pub fn set_document(&mut self, mrz: tamga_mrz::Mrz) {
        self.document = Some(mrz);
    }

    /// Checks a photo from the camera; when accepted, keeps its 35x45 crop. Returns the report for the screen.
    /// ([`assess_photo`] then [`ApplicantSession::record_photo`]: the API runs the first on the blocking pool,
    /// without the sessions' lock.)
    pub fn add_photo(&mut self, photo: &[u8], device: Device) -> Result<PhotoReport, SessionError> {
        let assessed = assess_photo(photo, &self.photo_policy);
        self.record_photo(assessed, device)
    }

    /// Records a photo attempt assessed by [`assess_photo`]: counts it, keeps its report, and keeps the crop when
    /// it was accepted (an earlier accepted photo stays when a retake fails).
    pub fn record_photo(
        &mut self,
        assessed: Result<AssessedPhoto, SessionError>,
        device: Device,
    ) -> Result<PhotoReport, SessionError> {
        self.face_attempts += 1;
        let AssessedPhoto { report, face } = assessed?;
        self.face_report = serde_json::to_value(&report).ok();
        if let Some(face) = face {
            self.face = Some(FaceItem {
                width: face.width,
                height: face.height,
                jpeg: face.jpeg,
                report: face.report,
                post_processing: face.post_processing,
                device,
                captured_at: time::OffsetDateTime::now_utc(),
                attempts: self.face_attempts,
            });
        }
        Ok(report)
    }

    /// Records a finger image (8-bit grey): scores it, keeps the best attempt, says what to do next.
    /// ([`assess_finger`] then [`ApplicantSession::record_finger`].)
    pub fn add_finger(
        &mut self,
        position: FingerPosition,
        pixels: &[u8],
        width: u32,
        height: u32,
        resolution_ppi: u16,
        device: Device,
    ) -> Result<(Next, tamga_quality::fingerprint::Quality), SessionError> {
        let assessed = assess_finger(pixels, width, height, resolution_ppi)?;
        Ok(self.record_finger(position, assessed, device))
    }

    /// Records a finger image assessed by [`assess_finger`]: keeps it when it is the finger's best attempt, says
    /// what to do next.
    pub fn record_finger(
        &mut self,
        position: FingerPosition,
        assessed: AssessedFinger,
        device: Device,
    ) -> (Next, tamga_quality::fingerprint::Quality) {
        let AssessedFinger {
            quality: q,
            quality_json,
            png,
            width,
            height,
            resolution_ppi,
        } = assessed;
        let next = self.fingers.record(&self.policy, position, q.score);
        let attempts = match self.fingers.fingers.get(&position) {
            Some(FingerState::Captured { attempts, .. }) => *attempts as u32,
            Some(FingerState::Pending { scores }) => scores.len() as u32,
            _ => 1,
        };
        let better = self.best.get(&position).is_none_or(|b| q.score > b.score);
        if better {
            self.best.insert(
                position,
                FingerItem {
                    position,
                    png,
                    width,
                    height,
                    resolution_ppi,
                    score: q.score,
                    quality: quality_json,
                    device,
                    captured_at: time::OffsetDateTime::now_utc(),
                    attempts,
                },
            );
        } else if let Some(b) = self.best.get_mut(&position) {
            b.attempts = attempts;
        }
        (next, q)
    }

    /// Declares that a finger cannot be captured; its images, if any, are dropped.
    /// The accepted photo's 35x45 crop as it will be sent (JPEG).
    pub fn face_jpeg(&self) -> Option<&[u8]> {
        self.face.as_ref().map(|f| f.jpeg.as_slice())
    }

    /// The best image of a finger as it will be sent (PNG).
    pub fn finger_png(&self, position: FingerPosition) -> Option<&[u8]> {
        self.best.get(&position).map(|b| b.png.as_slice())
    }

    pub fn declare_exception(&mut self, position: FingerPosition, reason: ExceptionReason) {
        self.fingers.declare_exception(position, reason);
        self.best.remove(&position);
    }

    pub fn state(&self) -> SessionState {
        let missing = self.fingers.missing();
        SessionState {
            id: self.id.clone(),
            document: self.document.as_ref().and_then(|d| serde_json::to_value(d).ok()),
            face_accepted: self.face.is_some(),
            face_attempts: self.face_attempts,
            face_report: self.face_report.clone(),
            fingers: self.fingers.fingers.clone(),
            finger_quality: self.best.iter().map(|(p, b)| (*p, b.quality.clone())).collect(),
            ready: missing.is_empty()
                && self.face.is_some()
                && self.document.as_ref().is_some_and(|d| d.valid),
            missing,
        }
    }

    /// Checks completeness, builds, signs and seals the bundle, and enqueues it durably; only then returns.
    /// On refusal the session is handed back unchanged, so the operator can complete it.
    pub fn finalize(
        self,
        signer: &StationSigner,
        central_point: &[u8],
        outbox: &mut Outbox,
        centre_id: &str,
    ) -> Result<Finalized, (Box<ApplicantSession>, SessionError)> {
        let refuse = |s: ApplicantSession, e: SessionError| Err((Box::new(s), e));
        match &self.document {
            None => return refuse(self, SessionError::NoDocument),
            Some(d) if !d.valid => return refuse(self, SessionError::DocumentInvalid),
            Some(_) => {}
        }
        if self.face.is_none() {
            return refuse(self, SessionError::NoFace);
        }
        let missing = self.fingers.missing();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|p| p.label()).collect();
            return refuse(self, SessionError::FingersMissing(names.join(", ")));
        }
        if let Err(e) = outbox.check_reserve(0) {
            return refuse(self, e.into());
        }
        let previous = match outbox.chain_head(signer.station_id()) {
            Ok(p) => p.unwrap_or_else(|| manifest::GENESIS.to_owned()),
            Err(e) => return refuse(self, e.into()),
        };
        let captures = Captures {
            document: self.document.clone(),
            face: self.face.clone(),
            fingers: self.best.values().cloned().collect(),
            exceptions: self
                .fingers
                .fingers
                .iter()
                .filter_map(|(p, s)| match s {
                    FingerState::Exception { reason, .. } => Some((*p, *reason)),
                    _ => None,
                })
                .collect(),
        };
        let ctx = bundling::Context {
            centre_id: centre_id.into(),
            station_id: signer.station_id().into(),
            operator_id: self.operator_id.clone(),
            started_at: self.started_at,
            previous_bundle_sha256: previous,
        };
        let (m, files) = match bundling::build(&captures, &ctx) {
            Ok(x) => x,
            Err(e) => return refuse(self, SessionError::Build(e)),
        };
        let sealed = match seal(&m, &files, signer, central_point) {
            Ok(s) => s,
            Err(e) => return refuse(self, SessionError::Build(e.to_string())),
        };
        if let Err(e) = outbox.enqueue(
            &m.bundle_id,
            signer.station_id(),
            &sealed.manifest_sha256,
            &sealed.jwe,
        ) {
            return refuse(self, e.into());
        }
        Ok(Finalized {
            bundle_id: m.bundle_id,
            manifest_sha256: sealed.manifest_sha256,
        })
    }

    /// Discards everything captured; nothing of it was ever written to disk.
    pub fn cancel(self) {}
}
