//! Why a bundle cannot be made or cannot be trusted. Each variant names the layer that failed; the message names
//! the precise reason, so the central system can log it and the station can act on it.

/// A bundle error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The JWE envelope is malformed, altered, or sealed to another key.
    #[error("sealed envelope: {0}")]
    Envelope(String),
    /// The ZIP archive inside is malformed or holds what it must not.
    #[error("archive: {0}")]
    Archive(String),
    /// The manifest JWS or JSON is malformed.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The manifest signature does not verify.
    #[error("signature: {0}")]
    Signature(String),
    /// The station certificate chain is not trusted.
    #[error("certificate: {0}")]
    Certificate(String),
    /// An item does not match the manifest.
    #[error("item {file}: {reason}")]
    Item { file: String, reason: String },
    /// The record is not what a bundle must hold.
    #[error("record: {0}")]
    Structure(String),
    /// The bundle cannot be sealed.
    #[error("sealing: {0}")]
    Sealing(String),
    /// A key or certificate file is unusable.
    #[error("key material: {0}")]
    Key(String),
    #[error("internal: {0}")]
    Internal(String),
}
