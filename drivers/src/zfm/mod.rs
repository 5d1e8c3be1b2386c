//! ZFM-family fingerprint modules (ZFM-20, R30x, AS608, R50x) over UART.
//!
//! - [`packet`]: the packet layer (framing, checksum, resynchronising parser).
//! - [`command`]: instruction and confirmation codes, parameter blocks.
//! - [`Zfm`]: the protocol client, generic over any async byte stream (a serial port in production).
//! - [`FingerprintScanner`]: a module on a serial port, as its profile describes it: opens and reopens the port,
//!   discovers the baud rate, picks the largest packet size the model allows, and captures images.
//!
//! "No finger" and "poor image" are [`CaptureOutcome::Retry`] outcomes for the operator, not errors.

pub mod command;
pub mod packet;

use crate::serial::{self, OpenError, OpenErrorKind};
use command::{Confirmation, Instruction, ProdInfo, RetryReason, SysParams};
use packet::{Packet, PacketError, PacketParser, Pid};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tamga_profiles::{Feature, FingerprintModel, Profile, SerialSettings, SettingsApply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// An 8-bit greyscale image, row-major from the top-left, as the sensor delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreyImage {
    pub width: u32,
    pub height: u32,
    /// Pixels per inch.
    pub resolution_ppi: u16,
    pub pixels: Vec<u8>,
}

/// Why the module did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ZfmError {
    #[error(
        "the module did not answer within {0:?}: check the cable, the power and the baud rate (`tamga devices info` discovers it)"
    )]
    Timeout(Duration),
    #[error("the line is gone (device unplugged?): {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Packet(#[from] PacketError),
    #[error("the module answered {pid:?} where an acknowledge was expected: the line is out of step; retry")]
    UnexpectedPacket { pid: Pid },
    #[error("the module refused {instruction:?}: {code}")]
    Refused {
        instruction: Instruction,
        code: Confirmation,
    },
    #[error("wrong module password: set `fingerprint.password` in the profile to the module's password")]
    WrongPassword,
    #[error("the acknowledge to {0:?} is too short")]
    ShortReply(Instruction),
    #[error(
        "image upload: expected {expected} bytes, received {received}: a data packet was lost; capture again"
    )]
    ImageSize { expected: usize, received: usize },
    #[error("image upload: a data packet of {found} bytes where the packet size is {expected}")]
    PacketSize { expected: usize, found: usize },
    #[error("{0} is not supported by this model (see its profile's `features`)")]
    Unsupported(&'static str),
    #[error("{what} {value} is not allowed by this model; allowed: {allowed}")]
    NotAllowed {
        what: &'static str,
        value: u32,
        allowed: String,
    },
}

impl ZfmError {
    /// True when the link itself failed and the port should be reopened.
    pub fn is_link_failure(&self) -> bool {
        matches!(self, ZfmError::Io(_) | ZfmError::Timeout(_))
    }
}

/// The result of one capture attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// An image is in the module's buffer.
    Captured,
    /// The applicant must try again.
    Retry(RetryReason),
}

/// System parameters a technician may change (SetSysPara registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysParam {
    /// Register 4: baud = 9600 x N.
    BaudMultiplier(u8),
    /// Register 5: 1-5.
    SecurityLevel(u8),
    /// Register 6: 0-3 for 32/64/128/256 bytes.
    PacketSizeCode(u8),
}

impl SysParam {
    fn register(self) -> (u8, u8) {
        match self {
            SysParam::BaudMultiplier(n) => (4, n),
            SysParam::SecurityLevel(n) => (5, n),
            SysParam::PacketSizeCode(n) => (6, n),
        }
    }
}

/// LED ring effects (R503 AuraLedConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedEffect {
    Breathing = 1,
    Flashing = 2,
    On = 3,
    Off = 4,
    FadeOn = 5,
    FadeOff = 6,
}

/// LED colours (R503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedColour {
    Red = 1,
    Blue = 2,
    Purple = 3,
}

/// The protocol client over a byte stream.
#[derive(Debug)]
pub struct Zfm<S> {
    stream: S,
    address: u32,
    parser: PacketParser,
    reply_timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Zfm<S> {
    /// A client for the module at `address`; each reply must come within `reply_timeout`.
    pub fn new(stream: S, address: u32, reply_timeout: Duration) -> Self {
        Zfm {
            stream,
            address,
            parser: PacketParser::new(address),
            reply_timeout,
        }
    }

    /// The stream, for the caller to drop or reconfigure.
    pub fn into_inner(self) -> S {
        self.stream
    }

    async fn send(&mut self, pid: Pid, payload: Vec<u8>) -> Result<(), ZfmError> {
        let bytes = Packet::new(self.address, pid, payload).encode();
        self.stream.write_all(&bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next packet, within `timeout`.
    async fn recv(&mut self, timeout: Duration) -> Result<Packet, ZfmError> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1024];
        loop {
            if let Some(p) = self.parser.next_packet() {
                return Ok(p?);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ZfmError::Timeout(timeout));
            }
            match tokio::time::timeout(deadline - now, self.stream.read(&mut buf)).await {
                Err(_) => return Err(ZfmError::Timeout(timeout)),
                Ok(Ok(0)) => {
                    return Err(ZfmError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "port closed",
                    )));
                }
                Ok(Ok(n)) => self.parser.push(&buf[..n]),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Sends a command and returns the confirmation code and the rest of the acknowledge payload.
    async fn command(
        &mut self,
        instruction: Instruction,
        params: &[u8],
    ) -> Result<(Confirmation, Vec<u8>), ZfmError> {
        let mut payload = Vec::with_capacity(1 + params.len());
        payload.push(instruction as u8);
        payload.extend_from_slice(params);
        self.send(Pid::Command, payload).await?;
        let reply = self.recv(self.reply_timeout).await?;
        if reply.pid != Pid::Ack {
            return Err(ZfmError::UnexpectedPacket { pid: reply.pid });
        }
        let Some((&code, rest)) = reply.payload.split_first() else {
            return Err(ZfmError::ShortReply(instruction));
        };
        let code = Confirmation::from_byte(code);
        debug!(?instruction, %code, "ack");
        Ok((code, rest.to_vec()))
    }

    async fn expect_ok(&mut self, instruction: Instruction, params: &[u8]) -> Result<Vec<u8>, ZfmError> {
        match self.command(instruction, params).await? {
            (Confirmation::Ok, rest) => Ok(rest),
            (Confirmation::WrongPassword | Confirmation::PasswordRequired, _) => Err(ZfmError::WrongPassword),
            (code, _) => Err(ZfmError::Refused { instruction, code }),
        }
    }

    /// VfyPwd: required before anything else once a module has a password.
    #[tracing::instrument(name = "zfm_verify_password", skip_all)]
    pub async fn verify_password(&mut self, password: u32) -> Result<(), ZfmError> {
        self.expect_ok(Instruction::VfyPwd, &password.to_be_bytes())
            .await
            .map(drop)
    }

    /// HandShake (R50x): the module answers 0x00 when it is healthy.
    #[tracing::instrument(name = "zfm_handshake", skip_all)]
    pub async fn handshake(&mut self) -> Result<(), ZfmError> {
        self.expect_ok(Instruction::HandShake, &[]).await.map(drop)
    }

    /// ReadSysPara.
    #[tracing::instrument(name = "zfm_read_sys_para", skip_all)]
    pub async fn read_sys_para(&mut self) -> Result<SysParams, ZfmError> {
        let rest = self.expect_ok(Instruction::ReadSysPara, &[]).await?;
        SysParams::parse(&rest).ok_or(ZfmError::ShortReply(Instruction::ReadSysPara))
    }

    /// ReadProdInfo (R50x).
    #[tracing::instrument(name = "zfm_read_prod_info", skip_all)]
    pub async fn read_prod_info(&mut self) -> Result<ProdInfo, ZfmError> {
        let rest = self.expect_ok(Instruction::ReadProdInfo, &[]).await?;
        ProdInfo::parse(&rest).ok_or(ZfmError::ShortReply(Instruction::ReadProdInfo))
    }

    /// GetFwVer (R50x): the firmware version string.
    #[tracing::instrument(name = "zfm_firmware_version", skip_all)]
    pub async fn firmware_version(&mut self) -> Result<String, ZfmError> {
        let rest = self.expect_ok(Instruction::GetFwVer, &[]).await?;
        Ok(String::from_utf8_lossy(&rest)
            .trim_end_matches(['\0', ' '])
            .to_owned())
    }

    /// SetSysPara. The acknowledge comes under the old settings.
    #[tracing::instrument(name = "zfm_set_sys_para", skip(self))]
    pub async fn set_sys_para(&mut self, param: SysParam) -> Result<(), ZfmError> {
        let (reg, value) = param.register();
        self.expect_ok(Instruction::SetSysPara, &[reg, value])
            .await
            .map(drop)
    }

    /// One capture attempt: GenImg, or GetImageEx (which also judges image quality) where the model has it.
    pub async fn capture_once(&mut self, extended: bool) -> Result<CaptureOutcome, ZfmError> {
        let instruction = if extended {
            Instruction::GetImageEx
        } else {
            Instruction::GenImg
        };
        let (code, _) = self.command(instruction, &[]).await?;
        match (code, code.retry()) {
            (Confirmation::Ok, _) => Ok(CaptureOutcome::Captured),
            (_, Some(reason)) => Ok(CaptureOutcome::Retry(reason)),
            (code, None) => Err(ZfmError::Refused { instruction, code }),
        }
    }

    /// Polls for a finger until `deadline`; returns the first outcome that is not "no finger" (or "no finger" at
    /// the deadline).
    #[tracing::instrument(name = "zfm_wait_finger", skip(self))]
    pub async fn wait_finger(
        &mut self,
        extended: bool,
        deadline: Instant,
        poll: Duration,
    ) -> Result<CaptureOutcome, ZfmError> {
        loop {
            let outcome = self.capture_once(extended).await?;
            if outcome != CaptureOutcome::Retry(RetryReason::NoFinger) || Instant::now() + poll >= deadline {
                return Ok(outcome);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// UpImage: uploads the image buffer and unpacks it (4 bits per pixel, high nibble = left pixel, n x 17).
    /// `progress(received, total)` is called after every data packet.
    #[tracing::instrument(name = "zfm_up_image", skip(self, progress))]
    pub async fn up_image(
        &mut self,
        width: u32,
        height: u32,
        packet_size: usize,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<u8>, ZfmError> {
        let total = (width as usize) * (height as usize) / 2;
        self.expect_ok(Instruction::UpImage, &[]).await?;
        let mut packed = Vec::with_capacity(total);
        // Data packets are never acknowledged: a lost one shows as a short or late image.
        let per_packet = self.reply_timeout.max(Duration::from_millis(500));
        loop {
            let p = self.recv(per_packet).await?;
            match p.pid {
                Pid::Data | Pid::EndData => {
                    if p.pid == Pid::Data && p.payload.len() != packet_size {
                        return Err(ZfmError::PacketSize {
                            expected: packet_size,
                            found: p.payload.len(),
                        });
                    }
                    packed.extend_from_slice(&p.payload);
                    progress(packed.len().min(total), total);
                    if packed.len() > total {
                        return Err(ZfmError::ImageSize {
                            expected: total,
                            received: packed.len(),
                        });
                    }
                    if p.pid == Pid::EndData {
                        break;
                    }
                }
                pid => return Err(ZfmError::UnexpectedPacket { pid }),
            }
        }
        if packed.len() != total {
            return Err(ZfmError::ImageSize {
                expected: total,
                received: packed.len(),
            });
        }
        Ok(unpack_nibbles(&packed))
    }

    /// AuraLedConfig (R503).
    pub async fn led(
        &mut self,
        effect: LedEffect,
        speed: u8,
        colour: LedColour,
        count: u8,
    ) -> Result<(), ZfmError> {
        self.expect_ok(
            Instruction::AuraLedConfig,
            &[effect as u8, speed, colour as u8, count],
        )
        .await
        .map(drop)
    }

    /// SoftRst: the module restarts (R50x then sends 0x55, which the parser skips).
    pub async fn soft_reset(&mut self) -> Result<(), ZfmError> {
        self.expect_ok(Instruction::SoftRst, &[]).await.map(drop)
    }

    /// Cancel (R503): aborts a pending operation.
    pub async fn cancel(&mut self) -> Result<(), ZfmError> {
        self.expect_ok(Instruction::Cancel, &[]).await.map(drop)
    }

    /// CheckSensor (R50x).
    pub async fn check_sensor(&mut self) -> Result<(), ZfmError> {
        self.expect_ok(Instruction::CheckSensor, &[]).await.map(drop)
    }
}

/// Expands 4-bit pixels (two per byte, high nibble first) to 8 bits (n x 17, so 0x0 -> 0 and 0xF -> 255).
pub fn unpack_nibbles(packed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packed.len() * 2);
    for &b in packed {
        out.push((b >> 4) * 17);
        out.push((b & 0x0F) * 17);
    }
    out
}

/// Settings a technician may change; `None` leaves one as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub baud: Option<u32>,
    pub security: Option<u8>,
    /// Data packet size in bytes (32, 64, 128, 256).
    pub packet_size: Option<usize>,
}

/// What `devices info` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModuleInfo {
    pub port: String,
    pub baud: u32,
    pub system: SysParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<ProdInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    pub packet_size: usize,
}

/// A finished capture.
#[derive(Debug, Clone)]
pub struct Captured {
    pub image: GreyImage,
    /// Data packet size used for the upload.
    pub packet_size: usize,
}

/// Errors of a module on a serial port.
#[derive(Debug, thiserror::Error)]
pub enum ScannerError {
    #[error("profile `{0}` is not a zfm fingerprint profile (it needs [serial] and [fingerprint])")]
    WrongProfile(String),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("scanner on {path} is not connected ({waited:?} waited): plug it in")]
    Unavailable { path: PathBuf, waited: Duration },
    #[error(
        "scanner on {path} stopped answering{}: {source}. Reconnect it; the next capture reopens the port",
        if *.mid_transfer { " in the middle of the image transfer (the image is lost)" } else { "" }
    )]
    Disconnected {
        path: PathBuf,
        mid_transfer: bool,
        #[source]
        source: ZfmError,
    },
    #[error(
        "no module answers on {path} at any legal baud rate ({tried}): check power, wiring (TX/RX crossed) and the profile"
    )]
    NotFound { path: PathBuf, tried: String },
    #[error(transparent)]
    Module(ZfmError),
}

/// A ZFM module on a serial port, described by its profile.
#[derive(Debug)]
pub struct FingerprintScanner {
    profile: String,
    path: PathBuf,
    settings: SerialSettings,
    model: FingerprintModel,
    client: Option<Zfm<tokio_serial::SerialStream>>,
    packet_size: usize,
    /// Image size: the device's own report where it gives one (ReadProdInfo), else the profile's.
    image_size: (u16, u16),
    reply_timeout: Duration,
}

impl FingerprintScanner {
    /// A scanner on `path`. Nothing is opened until first use.
    pub fn new(profile: &Profile, path: &Path) -> Result<Self, ScannerError> {
        let (Some(settings), Some(model)) = (profile.serial, profile.fingerprint.clone()) else {
            return Err(ScannerError::WrongProfile(profile.name.clone()));
        };
        Ok(FingerprintScanner {
            profile: profile.name.clone(),
            path: path.to_owned(),
            packet_size: usize::from(model.default_packet_size),
            image_size: (model.image_width, model.image_height),
            settings,
            model,
            client: None,
            reply_timeout: Duration::from_millis(1000),
        })
    }

    /// The model description from the profile.
    pub fn model(&self) -> &FingerprintModel {
        &self.model
    }

    /// The image size in use (width, height).
    pub fn image_size(&self) -> (u16, u16) {
        self.image_size
    }

    /// SoftRst (models with `soft-reset`): the module restarts; the port stays open.
    pub async fn soft_reset(&mut self) -> Result<(), ScannerError> {
        if !self.model.has(Feature::SoftReset) {
            return Err(ScannerError::Module(ZfmError::Unsupported("soft reset")));
        }
        self.link(|c| Box::pin(c.soft_reset())).await
    }

    /// Cancel (models with `cancel`).
    pub async fn cancel(&mut self) -> Result<(), ScannerError> {
        if !self.model.has(Feature::Cancel) {
            return Err(ScannerError::Module(ZfmError::Unsupported("cancel")));
        }
        self.link(|c| Box::pin(c.cancel())).await
    }

    /// The baud rate in use.
    pub fn baud(&self) -> u32 {
        self.settings.baud
    }

    /// True while the port is open.
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    async fn open_at(&mut self, baud: u32) -> Result<(), ScannerError> {
        let settings = SerialSettings {
            baud,
            ..self.settings
        };
        let stream = serial::open(&self.path, &settings)?;
        let mut client = Zfm::new(stream, self.model.address, self.reply_timeout);
        if self.model.password != 0 {
            client
                .verify_password(self.model.password)
                .await
                .map_err(ScannerError::Module)?;
        }
        self.client = Some(client);
        self.settings.baud = baud;
        Ok(())
    }

    /// Opens the port if needed, waiting up to `wait` for it to appear, and checks that the module answers.
    #[tracing::instrument(name = "zfm_connect", skip(self), fields(profile = %self.profile, port = %self.path.display()))]
    pub async fn connect(&mut self, wait: Duration) -> Result<(), ScannerError> {
        if self.client.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + wait;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.open_at(self.settings.baud).await {
                Ok(()) => break,
                Err(ScannerError::Open(e)) if e.kind == OpenErrorKind::Absent => {
                    if Instant::now() + backoff >= deadline {
                        return Err(ScannerError::Unavailable {
                            path: self.path.clone(),
                            waited: wait,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
        // A module that just got power needs its start-up time before it answers.
        if self.model.has(Feature::Handshake)
            && let Err(e) = self.link(|c| Box::pin(c.handshake())).await
        {
            self.client = None;
            return Err(e);
        }
        if self.model.has(Feature::ProdInfo) {
            match self.link(|c| Box::pin(c.read_prod_info())).await {
                Ok(p) if p.image_width > 0 && p.image_height > 0 && p.image_width % 2 == 0 => {
                    if (p.image_width, p.image_height) != self.image_size {
                        warn!(
                            device = ?(p.image_width, p.image_height),
                            profile = ?self.image_size,
                            "the module reports another image size than its profile; using the module's"
                        );
                    }
                    self.image_size = (p.image_width, p.image_height);
                }
                Ok(_) => {}
                Err(e) => {
                    self.client = None;
                    return Err(e);
                }
            }
        }
        match self.link(|c| Box::pin(c.read_sys_para())).await {
            Ok(p) => {
                self.packet_size = p.packet_size();
                info!(
                    baud = self.settings.baud,
                    packet_size = self.packet_size,
                    "scanner connected"
                );
                Ok(())
            }
            Err(e) => {
                // Not connected unless the module answers: release the port for whoever fixes the problem.
                self.client = None;
                Err(e)
            }
        }
    }

    /// Runs one client call; on a link failure drops the port so that the next call reopens it.
    async fn link<T>(
        &mut self,
        f: impl for<'a> FnOnce(
            &'a mut Zfm<tokio_serial::SerialStream>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, ZfmError>> + Send + 'a>,
        >,
    ) -> Result<T, ScannerError> {
        let Some(client) = self.client.as_mut() else {
            return Err(ScannerError::Unavailable {
                path: self.path.clone(),
                waited: Duration::ZERO,
            });
        };
        match f(client).await {
            Ok(v) => Ok(v),
            Err(e) if e.is_link_failure() => {
                warn!(error = %e, "scanner link failed; closing the port");
                self.client = None;
                Err(ScannerError::Disconnected {
                    path: self.path.clone(),
                    mid_transfer: false,
                    source: e,
                })
            }
            Err(e) => Err(ScannerError::Module(e)),
        }
    }

    /// Tries the profile's baud rate, then every other legal rate, until the module answers ReadSysPara.
    /// Returns the rate found; the scanner stays connected at it.
    #[tracing::instrument(name = "zfm_discover_baud", skip(self), fields(profile = %self.profile, port = %self.path.display()))]
    pub async fn discover_baud(&mut self) -> Result<u32, ScannerError> {
        let mut order = vec![self.settings.baud];
        order.extend(
            self.model
                .bauds()
                .into_iter()
                .rev()
                .filter(|&b| b != self.settings.baud),
        );
        let saved = self.reply_timeout;
        self.reply_timeout = Duration::from_millis(300);
        let mut tried = Vec::new();
        let mut found = None;
        for baud in order {
            self.client = None;
            tried.push(baud.to_string());
            self.open_at(baud).await?;
            if let Ok(p) = self.link(|c| Box::pin(c.read_sys_para())).await {
                self.packet_size = p.packet_size();
                info!(baud, "module answers");
                found = Some(baud);
                break;
            }
            debug!(baud, "no answer");
        }
        self.reply_timeout = saved;
        if let Some(c) = self.client.take() {
            // Reopen with the normal reply timeout.
            drop(c);
            self.open_at(self.settings.baud).await?;
        }
        found.ok_or_else(|| ScannerError::NotFound {
            path: self.path.clone(),
            tried: tried.join(", "),
        })
    }

    /// Whether the module answers: opens the port if needed (waiting up to `wait`) and reads its system parameters
    /// (ReadSysPara, which every ZFM model has). A failure closes the port, so the next use reconnects.
    #[tracing::instrument(name = "zfm_health", skip(self), fields(profile = %self.profile, port = %self.path.display()))]
    pub async fn health_check(&mut self, wait: Duration) -> Result<(), ScannerError> {
        self.connect(wait).await?;
        self.link(|c| Box::pin(c.read_sys_para())).await.map(drop)
    }

    /// System parameters, product information and firmware version where the model has them.
    pub async fn info(&mut self) -> Result<ModuleInfo, ScannerError> {
        let system = self.link(|c| Box::pin(c.read_sys_para())).await?;
        let product = if self.model.has(Feature::ProdInfo) {
            Some(self.link(|c| Box::pin(c.read_prod_info())).await?)
        } else {
            None
        };
        let firmware = if self.model.has(Feature::FirmwareVersion) {
            Some(self.link(|c| Box::pin(c.firmware_version())).await?)
        } else {
            None
        };
        Ok(ModuleInfo {
            port: self.path.display().to_string(),
            baud: self.settings.baud,
            packet_size: system.packet_size(),
            system,
            product,
            firmware,
        })
    }

    /// Changes the baud rate, security level and/or data packet size, refusing values the model does not allow.
    /// A new baud rate is used for the next commands when the model applies settings at once; otherwise every
    /// change takes effect at the module's next power-up.
    pub async fn configure(&mut self, change: &Settings) -> Result<(), ScannerError> {
        let refuse = |what: &'static str, value: u32, allowed: Vec<String>| {
            Err(ScannerError::Module(ZfmError::NotAllowed {
                what,
                value,
                allowed: allowed.join(", "),
            }))
        };
        let n = change.baud.map(|b| (b, u8::try_from(b / 9600).unwrap_or(0)));
        if let Some((b, n)) = n
            && (b % 9600 != 0 || !self.model.baud_multipliers.contains(&n))
        {
            return refuse(
                "baud rate",
                b,
                self.model.bauds().iter().map(u32::to_string).collect(),
            );
        }
        if let Some(s) = change.security
            && !self.model.security_levels.contains(&s)
        {
            return refuse(
                "security level",
                u32::from(s),
                self.model.security_levels.iter().map(u8::to_string).collect(),
            );
        }
        let code = match change.packet_size {
            Some(size) => match command::packet_size_code(size) {
                Some(code) if self.model.packet_sizes.iter().any(|&p| usize::from(p) == size) => Some(code),
                _ => {
                    let allowed = self.model.packet_sizes.iter().map(u16::to_string).collect();
                    return refuse("packet size", u32::try_from(size).unwrap_or(u32::MAX), allowed);
                }
            },
            None => None,
        };
        if let Some(s) = change.security {
            self.link(move |c| Box::pin(c.set_sys_para(SysParam::SecurityLevel(s))))
                .await?;
        }
        if let Some(code) = code {
            self.link(move |c| Box::pin(c.set_sys_para(SysParam::PacketSizeCode(code))))
                .await?;
            if self.model.settings_apply == SettingsApply::Immediate {
                self.packet_size = command::packet_size_of(u16::from(code));
            }
        }
        if let Some((b, n)) = n {
            self.link(move |c| Box::pin(c.set_sys_para(SysParam::BaudMultiplier(n))))
                .await?;
            if self.model.settings_apply == SettingsApply::Immediate {
                self.client = None;
                self.open_at(b).await?;
            }
        }
        Ok(())
    }

    /// Makes the module use the largest data packet size the model allows (fewer packets, less framing).
    /// Returns the packet size in use afterwards.
    pub async fn use_largest_packets(&mut self) -> Result<usize, ScannerError> {
        let largest = self
            .model
            .packet_sizes
            .iter()
            .copied()
            .max()
            .map_or(128, usize::from);
        if self.packet_size >= largest || self.model.settings_apply != SettingsApply::Immediate {
            return Ok(self.packet_size);
        }
        let code = command::packet_size_code(largest).unwrap_or(2);
        self.link(move |c| Box::pin(c.set_sys_para(SysParam::PacketSizeCode(code))))
            .await?;
        let p = self.link(|c| Box::pin(c.read_sys_para())).await?;
        self.packet_size = p.packet_size();
        Ok(self.packet_size)
    }

    /// Waits up to `timeout` for a finger and captures once. A retry outcome is returned as such.
    #[tracing::instrument(name = "zfm_capture", skip(self), fields(profile = %self.profile, port = %self.path.display()))]
    pub async fn capture(&mut self, timeout: Duration) -> Result<CaptureOutcome, ScannerError> {
        let extended = self.model.has(Feature::GetImageEx);
        let deadline = Instant::now() + timeout;
        self.link(move |c| Box::pin(c.wait_finger(extended, deadline, Duration::from_millis(100))))
            .await
    }

    /// Drives the LED ring (models with `aura-led`).
    pub async fn led(
        &mut self,
        effect: LedEffect,
        speed: u8,
        colour: LedColour,
        count: u8,
    ) -> Result<(), ScannerError> {
        if !self.model.has(Feature::AuraLed) {
            return Err(ScannerError::Module(ZfmError::Unsupported("LED control")));
        }
        self.link(move |c| Box::pin(c.led(effect, speed, colour, count)))
            .await
    }

    /// Uploads the captured image, reporting progress.
    #[tracing::instrument(name = "zfm_upload", skip(self, progress), fields(profile = %self.profile, port = %self.path.display()))]
    pub async fn upload(
        &mut self,
        progress: impl FnMut(usize, usize) + Send + 'static,
    ) -> Result<Captured, ScannerError> {
        let (w, h) = (u32::from(self.image_size.0), u32::from(self.image_size.1));
        let packet_size = self.packet_size;
        let result = self
            .link(move |c| Box::pin(c.up_image(w, h, packet_size, progress)))
            .await;
        match result {
            Ok(pixels) => Ok(Captured {
                image: GreyImage {
                    width: w,
                    height: h,
                    resolution_ppi: self.model.resolution_ppi,
                    pixels,
                },
                packet_size,
            }),
            Err(ScannerError::Disconnected { path, source, .. }) => Err(ScannerError::Disconnected {
                path,
                mid_transfer: true,
                source,
            }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_unpack_high_first_and_scale_to_full_range() {
        assert_eq!(unpack_nibbles(&[0xF0, 0x18]), vec![255, 0, 17, 136]);
    }
}
