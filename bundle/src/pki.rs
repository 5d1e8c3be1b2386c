//! Keys and certificates: reading PEM files, the public key inside a certificate, and the station certificate
//! chain check (RFC 5280 path validation by rustls-webpki: signatures, validity dates, CA constraints, and the
//! TLS-client extended key usage every station certificate carries).

use crate::error::BundleError;
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::*;

/// Reads every `CERTIFICATE` block of a PEM file's text, as DER.
pub fn certs_from_pem(text: &str) -> Result<Vec<Vec<u8>>, BundleError> {
    let blocks = ::pem::parse_many(text).map_err(|e| BundleError::Key(format!("PEM: {e}")))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    if certs.is_empty() {
        return Err(BundleError::Key("no CERTIFICATE in the PEM file".into()));
    }
    Ok(certs)
}

/// Reads a private key file (PEM text), refusing it when its group or others may read it: a key other accounts
/// can read is not private, and a station or receiver that starts with one would hide the leak. The error names
/// the file, its mode and the fix.
pub fn read_private_key(path: &std::path::Path) -> Result<String, BundleError> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let io = |e: std::io::Error| BundleError::Key(format!("reading {}: {e}", path.display()));
    // The mode is read from the file opened, not from its name: what is checked is what is read.
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mode = f.metadata().map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(BundleError::Key(format!(
            "{}: key file mode is {mode:o}; group and others must not read a private key: run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let mut pem = String::new();
    f.read_to_string(&mut pem).map_err(io)?;
    Ok(pem)
}

/// Reads a PKCS#8 `PRIVATE KEY` PEM block as DER.
pub fn pkcs8_from_pem(text: &str) -> Result<Vec<u8>, BundleError> {
    let block = ::pem::parse(text).map_err(|e| BundleError::Key(format!("PEM: {e}")))?;
    if block.tag() != "PRIVATE KEY" {
        return Err(BundleError::Key(format!(
            "expected a PKCS#8 `PRIVATE KEY`, found `{}`",
            block.tag()
        )));
    }
    Ok(block.into_contents())
}

/// What a certificate says that a bundle check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject common name (the station id for station certificates).
    pub common_name: String,
    /// The uncompressed P-256 public point (65 bytes).
    pub public_point: Vec<u8>,
    /// Expiry, Unix seconds.
    pub not_after: i64,
    pub not_before: i64,
}

/// Reads the fields of a DER certificate with a P-256 key.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, BundleError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| BundleError::Certificate(format!("not X.509 DER: {e}")))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let spki = cert.public_key();
    let point = spki.subject_public_key.data.to_vec();
    if point.len() != 65 || point[0] != 4 {
        return Err(BundleError::Certificate(format!(
            "`{common_name}`: the key is not an uncompressed P-256 point"
        )));
    }
    Ok(CertInfo {
        common_name,
        public_point: point,
        not_after: cert.validity().not_after.timestamp(),
        not_before: cert.validity().not_before.timestamp(),
    })
}

/// Checks that `chain` (leaf first, then intermediates) leads to `root_der`, valid at `now` (Unix seconds), for TLS
/// client use (the station certificate's purpose). Returns the leaf's fields.
pub fn verify_station_chain(chain: &[Vec<u8>], root_der: &[u8], now: i64) -> Result<CertInfo, BundleError> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(BundleError::Certificate("x5c is empty".into()));
    };
    let root = CertificateDer::from(root_der.to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&root)
        .map_err(|e| BundleError::Certificate(format!("the CA certificate is unusable: {e:?}")))?
        .to_owned();
    let leaf_der = CertificateDer::from(leaf.clone());
    let ee = webpki::EndEntityCert::try_from(&leaf_der)
        .map_err(|e| BundleError::Certificate(format!("x5c[0] is not a usable certificate: {e:?}")))?;
    let inter: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let info = cert_info(leaf)?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &inter,
        time,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map_err(|e| {
        let why = match e {
            webpki::Error::CertExpired { .. } => "the station certificate has expired".to_owned(),
            webpki::Error::CertNotValidYet { .. } => "the station certificate is not valid yet".to_owned(),
            webpki::Error::UnknownIssuer => {
                "the station certificate does not chain to the trusted CA (another CA issued it)".to_owned()
            }
            webpki::Error::InvalidSignatureForPublicKey => {
                "the station certificate does not chain to the trusted CA: a signature in the chain does not verify \
                 (a certificate from another CA with the same name?)"
                    .to_owned()
            }
            other => format!("chain rejected: {other:?}"),
        };
        BundleError::Certificate(format!("`{}`: {why}", info.common_name))
    })?;
    Ok(info)
}
