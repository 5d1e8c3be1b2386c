//! A development PKI for stations and the central system, made with rcgen (P-256 everywhere):
//!
//! ```text
//! root CA ─┬─ station-issuing CA ── station certificate (TLS client, signing; CN = station id)
//!          └─ central certificate (TLS server for localhost; its key also receives sealed bundles)
//! ```
//!
//! Production PKIs issue the same shapes from their own CAs; nothing here is special to development except that
//! the CA keys sit next to the certificates.
//!
//! Apart from it, a development device-provider PKI for SBI device services ([`generate_device_provider`]): SBI
//! signs with RS256, so RSA-2048 (keys by the `rsa` crate, which ring cannot generate; certificates by rcgen, which
//! signs with ring). The `rsa` crate only generates keys here: its timing advisory (RUSTSEC-2023-0071, Marvin)
//! concerns private-key operations, which it does not do in this crate.
//!
//! ```text
//! device-provider CA ── device certificate (digitalSignature; CN = device serial)
//! ```

use crate::error::BundleError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use time::{Duration, OffsetDateTime};

/// PEM texts of a development PKI.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub root_ca: String,
    pub root_ca_key: String,
    pub station_ca: String,
    pub station_ca_key: String,
    pub central: String,
    pub central_key: String,
    pub station: String,
    pub station_key: String,
}

/// PEM texts of a development device-provider PKI (RSA-2048, SHA-256).
#[derive(Debug, Clone)]
pub struct DevDeviceProvider {
    /// The device provider's CA: what a station is given with `--device-ca`.
    pub ca: String,
    pub ca_key: String,
    /// The device certificate (the `x5c` of a device's signatures) and its key (PKCS#8).
    pub device: String,
    pub device_key: String,
}

fn err(e: rcgen::Error) -> BundleError {
    BundleError::Internal(format!("certificate generation: {e}"))
}

fn key() -> Result<KeyPair, BundleError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)
}

fn params(cn: &str, days: i64) -> Result<CertificateParams, BundleError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Tamga development");
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + Duration::days(days);
    Ok(p)
}

/// Issues a station certificate for `station_id`, valid `days` (negative: already expired), from the station CA.
pub fn issue_station(
    station_id: &str,
    days: i64,
    station_ca_pem: &str,
    station_ca_key_pem: &str,
) -> Result<(String, String), BundleError> {
    let ca_key = KeyPair::from_pem(station_ca_key_pem).map_err(err)?;
    let ca_params = CertificateParams::from_ca_cert_pem(station_ca_pem).map_err(err)?;
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let k = key()?;
    let mut p = params(station_id, days.max(1))?;
    if days < 0 {
        p.not_before = OffsetDateTime::now_utc() - Duration::days(30);
        p.not_after = OffsetDateTime::now_utc() + Duration::days(days);
    }
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.subject_alt_names = vec![SanType::URI(
        format!("urn:tamga:station:{station_id}")
            .try_into()
            .map_err(err)?,
    )];
    let cert = p.signed_by(&k, &ca, &ca_key).map_err(err)?;
    Ok((cert.pem(), k.serialize_pem()))
}

/// A new station key and a certificate signing request for it (PEM texts: key, CSR).
pub fn request(station_id: &str) -> Result<(String, String), BundleError> {
    let k = key()?;
    let mut p = params(station_id, 397)?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let csr = p.serialize_request(&k).map_err(err)?;
    Ok((k.serialize_pem(), csr.pem().map_err(err)?))
}

/// Makes a whole development PKI with one station.
pub fn generate(station_id: &str) -> Result<DevPki, BundleError> {
    let root_key = key()?;
    let mut rp = params("Tamga Development Root CA", 3650)?;
    rp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    rp.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root = rp.self_signed(&root_key).map_err(err)?;

    let sca_key = key()?;
    let mut sp = params("Tamga Development Station CA", 1825)?;
    sp.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    sp.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let sca = sp.signed_by(&sca_key, &root, &root_key).map_err(err)?;

    let central_key = key()?;
    let mut cp = params("tamga-central", 825)?;
    cp.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().map_err(err)?),
        SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
    ];
    cp.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyAgreement];
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let central = cp.signed_by(&central_key, &root, &root_key).map_err(err)?;

    let (station, station_key) = issue_station(station_id, 397, &sca.pem(), &sca_key.serialize_pem())?;
    Ok(DevPki {
        root_ca: root.pem(),
        root_ca_key: root_key.serialize_pem(),
        station_ca: sca.pem(),
        station_ca_key: sca_key.serialize_pem(),
        central: central.pem(),
        central_key: central_key.serialize_pem(),
        station,
        station_key,
    })
}

/// A new RSA-2048 key, for rcgen.
fn rsa_key() -> Result<KeyPair, BundleError> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| BundleError::Internal(format!("RSA key generation: {e}")))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| BundleError::Internal(format!("RSA key encoding: {e}")))?;
    KeyPair::try_from(der.as_bytes()).map_err(err)
}

/// Makes a development device-provider PKI: its CA (10 years) and one device certificate (`serial` as common
/// name, 1 year, key usage digitalSignature) with its key.
pub fn generate_device_provider(serial: &str) -> Result<DevDeviceProvider, BundleError> {
    let ca_key = rsa_key()?;
    let mut cp = params("Tamga Development Device-Provider CA", 3650)?;
    cp.distinguished_name
        .push(DnType::OrganizationName, "Tamga development device provider");
    cp.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    cp.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = cp.self_signed(&ca_key).map_err(err)?;
    let device_key = rsa_key()?;
    let mut dp = params(serial, 365)?;
    dp.distinguished_name
        .push(DnType::OrganizationName, "Tamga development device provider");
    dp.is_ca = IsCa::ExplicitNoCa;
    dp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let device = dp.signed_by(&device_key, &ca, &ca_key).map_err(err)?;
    Ok(DevDeviceProvider {
        ca: ca.pem(),
        ca_key: ca_key.serialize_pem(),
        device: device.pem(),
        device_key: device_key.serialize_pem(),
    })
}
