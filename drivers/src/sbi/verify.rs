//! Verification of what a device service signs, before anything of it is believed.
//!
//! A compact JWS is accepted only with `alg` RS256 (RSASSA-PKCS1-v1_5 with SHA-256; `none`, MACs and every other
//! algorithm are refused), no `crit` member, an `x5c` whose first certificate verifies the signature (ring) and
//! chains to one of the caller's device-provider CA certificates at the given time (rustls-webpki: signatures,
//! validity, CA constraints; any extended key usage, since device certificates carry none in practice), and whose
//! key usage, when the certificate has one, allows digitalSignature (MOSIP's mock leaf has no extensions, so a
//! missing key usage is not required). `x5u`/`jku` are never fetched.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::de::DeserializeOwned;
use webpki::{ExtendedKeyUsageValidator, KeyPurposeIdIter};

/// Why something signed by a device is not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("{what}: not a compact JWS ({why})")]
    Malformed { what: &'static str, why: String },
    #[error("{what}: algorithm {alg:?} refused (RS256 only)")]
    Algorithm { what: &'static str, alg: String },
    #[error("{what}: the header lists critical extensions {0:?}, which Tamga does not understand", .crit)]
    Critical { what: &'static str, crit: String },
    #[error("{what}: no x5c certificate in the header")]
    NoCertificate { what: &'static str },
    #[error("{what}: the signature does not verify with the x5c certificate")]
    Signature { what: &'static str },
    #[error("{what}: the device certificate does not chain to a trusted device-provider CA ({why})")]
    Untrusted { what: &'static str, why: String },
    #[error("{what}: the device certificate has expired")]
    Expired { what: &'static str },
    #[error("{what}: the device certificate is not valid yet")]
    NotYetValid { what: &'static str },
    #[error("{what}: the device certificate's key usage does not allow digital signatures")]
    KeyUsage { what: &'static str },
    #[error("{what}: the signed content is not what SBI specifies ({why})")]
    Payload { what: &'static str, why: String },
    #[error("the capture's digital id names another device than the one that was asked ({why})")]
    DigitalIdMismatch { why: String },
    #[error("the transaction id was not echoed (asked {asked:?}, answered {answered:?})")]
    TransactionId { asked: String, answered: String },
    #[error("the capture's timestamp {timestamp:?} is {why}")]
    Timestamp { timestamp: String, why: String },
    #[error("the capture's {field} is {answered:?}, {asked:?} was asked")]
    Field {
        field: &'static str,
        asked: String,
        answered: String,
    },
    #[error("the hash chain breaks at item {index} (the device says {stated}, the data gives {computed})")]
    HashChain {
        index: usize,
        stated: String,
        computed: String,
    },
    #[error("{finger:?} was asked but is missing from the answer")]
    FingerMissing { finger: String },
    #[error("{finger:?} is in the answer more than once")]
    FingerDuplicated { finger: String },
    #[error("{finger:?} is in the answer but was not asked")]
    FingerUnexpected { finger: String },
    #[error("the record for {finger:?}: {why}")]
    Record { finger: String, why: String },
    #[error("the quality score {0:?} is not a number from 0 to 100")]
    Quality(String),
    #[error("the device is not registered: its deviceInfo is unsigned")]
    Unsigned,
}

/// Device-provider CA certificates (DER) that a station trusts for device signatures.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Vec<u8>>,
}

/// A trust store that cannot be built.
#[derive(Debug, Clone, thiserror::Error)]
#[error("device-provider CA: {0}")]
pub struct TrustStoreError(String);

impl TrustStore {
    /// Every `CERTIFICATE` block of a PEM text (one or more CAs).
    pub fn from_pem(text: &str) -> Result<Self, TrustStoreError> {
        let mut t = TrustStore::default();
        t.add_pem(text)?;
        Ok(t)
    }

    /// Adds every `CERTIFICATE` block of a PEM text.
    pub fn add_pem(&mut self, text: &str) -> Result<(), TrustStoreError> {
        let blocks = pem::parse_many(text).map_err(|e| TrustStoreError(format!("not PEM: {e}")))?;
        let mut n = 0;
        for b in blocks.iter().filter(|b| b.tag() == "CERTIFICATE") {
            let der = b.contents().to_vec();
            webpki::anchor_from_trusted_cert(&CertificateDer::from(der.clone()))
                .map_err(|e| TrustStoreError(format!("an unusable certificate: {e:?}")))?;
            self.anchors.push(der);
            n += 1;
        }
        if n == 0 {
            return Err(TrustStoreError("no CERTIFICATE block".into()));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// Device certificates define no extended key usage: any is accepted (a malformed extension is not).
struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for p in iter {
            p?;
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct Header {
    alg: Option<String>,
    #[serde(default)]
    x5c: Vec<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A verified JWS: the payload bytes and the signer certificate's subject.
#[derive(Debug, Clone)]
pub struct Verified {
    pub payload: Vec<u8>,
    pub signer: String,
}

impl Verified {
    pub fn json<T: DeserializeOwned>(&self, what: &'static str) -> Result<T, VerifyError> {
        serde_json::from_slice(&self.payload).map_err(|e| VerifyError::Payload {
            what,
            why: e.to_string(),
        })
    }
}

fn b64url(what: &'static str, part: &str, s: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD.decode(s).map_err(|e| VerifyError::Malformed {
        what,
        why: format!("{part} is not unpadded base64url: {e}"),
    })
}

/// Decodes base64url with or without `=` padding (bioValue and unsigned deviceInfo come both ways).
pub fn b64url_lenient(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Whether a text has the shape of a compact JWS (three dot-separated parts).
pub fn looks_like_jws(s: &str) -> bool {
    s.split('.').count() == 3
}

/// Verifies a compact JWS signed by a device (see the module doc). `now` is Unix seconds.
pub fn verify_jws(
    what: &'static str,
    jws: &str,
    trust: &TrustStore,
    now: i64,
) -> Result<Verified, VerifyError> {
    let mut parts = jws.split('.');
    let (Some(h64), Some(p64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed {
            what,
            why: "not three dot-separated parts".into(),
        });
    };
    let header: Header =
        serde_json::from_slice(&b64url(what, "the header", h64)?).map_err(|e| VerifyError::Malformed {
            what,
            why: format!("the header is not a JSON object: {e}"),
        })?;
    match header.alg.as_deref() {
        Some("RS256") => {}
        other => {
            return Err(VerifyError::Algorithm {
                what,
                alg: other.unwrap_or("(none given)").to_owned(),
            });
        }
    }
    if let Some(c) = header.crit {
        return Err(VerifyError::Critical {
            what,
            crit: c.to_string(),
        });
    }
    if header.x5c.is_empty() {
        return Err(VerifyError::NoCertificate { what });
    }
    let chain: Vec<Vec<u8>> = header
        .x5c
        .iter()
        .map(|c| {
            STANDARD.decode(c).map_err(|e| VerifyError::Malformed {
                what,
                why: format!("x5c is not standard base64 DER: {e}"),
            })
        })
        .collect::<Result<_, _>>()?;
    let payload = b64url(what, "the payload", p64)?;
    let signature = b64url(what, "the signature", s64)?;

    // Signature first, with the leaf's RSA key (ring: PKCS#1 v1.5, SHA-256, 2048-8192 bits).
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).map_err(|e| VerifyError::Malformed {
        what,
        why: format!("x5c[0] is not an X.509 certificate: {e}"),
    })?;
    let spki = leaf.public_key();
    // rsaEncryption
    if spki.algorithm.algorithm.to_id_string() != "1.2.840.113549.1.1.1" {
        return Err(VerifyError::Algorithm {
            what,
            alg: format!(
                "RS256 with a non-RSA key ({})",
                spki.algorithm.algorithm.to_id_string()
            ),
        });
    }
    let signing_input_len = h64.len() + 1 + p64.len();
    let signing_input = &jws.as_bytes()[..signing_input_len];
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &spki.subject_public_key.data,
    )
    .verify(signing_input, &signature)
    .map_err(|_| VerifyError::Signature { what })?;

    // Key usage, when present, must allow signatures.
    match leaf.key_usage() {
        Ok(Some(ku)) if !ku.value.digital_signature() => return Err(VerifyError::KeyUsage { what }),
        Ok(_) => {}
        Err(e) => {
            return Err(VerifyError::Malformed {
                what,
                why: format!("x5c[0] key usage: {e}"),
            });
        }
    }

    // The chain to a trusted device-provider CA, valid now.
    if trust.is_empty() {
        return Err(VerifyError::Untrusted {
            what,
            why: "no device-provider CA is configured".into(),
        });
    }
    let anchors = trust
        .anchors
        .iter()
        .map(|a| webpki::anchor_from_trusted_cert(&CertificateDer::from(a.as_slice())).map(|t| t.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| VerifyError::Untrusted {
            what,
            why: format!("a CA certificate is unusable: {e:?}"),
        })?;
    let leaf_der = CertificateDer::from(chain[0].as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| VerifyError::Malformed {
        what,
        why: format!("x5c[0] is not usable: {e:?}"),
    })?;
    let inter: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &inter,
        time,
        AnyEku,
        None,
        None,
    )
    .map_err(|e| match e {
        webpki::Error::CertExpired { .. } => VerifyError::Expired { what },
        webpki::Error::CertNotValidYet { .. } => VerifyError::NotYetValid { what },
        webpki::Error::UnknownIssuer => VerifyError::Untrusted {
            what,
            why: "another CA issued it".into(),
        },
        other => VerifyError::Untrusted {
            what,
            why: format!("{other:?}"),
        },
    })?;
    Ok(Verified {
        payload,
        signer: leaf.subject().to_string(),
    })
}

/// The SBI hash chain: `UPPER_HEX(SHA-256(previous ‖ SHA-256(record)))`, where `previous` is SHA-256("") for the
/// first capture ("" or absent) and otherwise the 32 bytes of the previous hash (hex-decoded). This is what MOSIP's
/// mock and compliance toolkit compute.
pub fn chain_hash(previous_hex: &str, record: &[u8]) -> Option<String> {
    let previous: Vec<u8> = if previous_hex.trim().is_empty() {
        ring::digest::digest(&ring::digest::SHA256, b"").as_ref().to_vec()
    } else {
        hex_decode(previous_hex.trim())?
    };
    let current = ring::digest::digest(&ring::digest::SHA256, record);
    let mut input = previous;
    input.extend_from_slice(current.as_ref());
    Some(hex_upper(
        ring::digest::digest(&ring::digest::SHA256, &input).as_ref(),
    ))
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The few fields of an ISO/IEC 19794-4:2011 finger image record that the driver checks (it never decodes the
/// image). Offsets (big-endian), from the standard's general record header and finger representation header:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | format identifier `FIR\0` |
/// | 4 | 4 | version `020\0` |
/// | 8 | 4 | record length |
/// | 12 | 2 | number of finger representations |
/// | 14 | 1 | certification flag |
/// | 15 | 1 | number of distinct finger positions |
/// | 16 | 4 | representation length (first representation) |
/// | 20 | 9 | capture date and time |
/// | 29 | 1 + 2 + 2 | capture device technology, vendor id, type id |
/// | 34 | 1 | number of quality blocks q, then 5q bytes |
/// | 35 + 5q | (1 + 3c) | when the certification flag is set: number of certification blocks c, then 3c bytes |
/// | P | 1 | finger position (1 right thumb … 10 left little) |
/// | P + 12 | 1 | image compression algorithm (0 uncompressed, 2 WSQ, 3 JPEG, 4/5 JPEG 2000 lossy/lossless, 6 PNG) |
///
/// Checked against the project's own 2011 writer (`docs/bundle-format.md`) and against MOSIP's bio-utils reader
/// (finger representation header, Table 4: quality blocks, then certification blocks only when the flag is set,
/// then the position; compression codes, Table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFacts {
    pub finger_position: u8,
    pub compression: u8,
    pub representations: u16,
}

/// Reads [`RecordFacts`], or says why the bytes are not a 19794-4:2011 record.
pub fn read_record_facts(b: &[u8]) -> Result<RecordFacts, String> {
    if b.len() < 8 || &b[0..4] != b"FIR\0" {
        return Err("not an ISO/IEC 19794-4 finger record (format identifier is not FIR\\0)".into());
    }
    if &b[4..8] != b"020\0" {
        return Err(format!(
            "version {:?} is not 020 (19794-4:2011)",
            String::from_utf8_lossy(&b[4..7])
        ));
    }
    let at = |i: usize| b.get(i).copied().ok_or_else(|| format!("truncated at byte {i}"));
    let record_len = u32::from_be_bytes([at(8)?, at(9)?, at(10)?, at(11)?]) as usize;
    if record_len != b.len() {
        return Err(format!(
            "the record length says {record_len} bytes but {} are there",
            b.len()
        ));
    }
    let representations = u16::from_be_bytes([at(12)?, at(13)?]);
    if representations == 0 {
        return Err("the record holds no finger representation".into());
    }
    let certified = at(14)? != 0;
    let q = usize::from(at(34)?);
    let mut p = 35 + 5 * q;
    if certified {
        let c = usize::from(at(p)?);
        p += 1 + 3 * c;
    }
    Ok(RecordFacts {
        finger_position: at(p)?,
        compression: at(p + 12)?,
        representations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_chain_matches_the_vectors_computed_from_mosip_rules() {
        // Vectors from the research notes (hashlib, the byte form of MOSIP's mock and compliance toolkit).
        let h1 = chain_hash("", b"hello").unwrap_or_default();
        assert_eq!(
            h1,
            "2CDC406CAA00167E2D87877D4DB045B28B543BD869CBB69C17764E1F64196560"
        );
        let h2 = chain_hash(&h1, b"world").unwrap_or_default();
        assert_eq!(
            h2,
            "FEF7D7B0016654ECDEAF43D5BE2067C1CDEBCB3B3E5B61EE946AD013FDD16234"
        );
        let first = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(chain_hash(first, b"hello"), Some(h1));
        assert_eq!(chain_hash("XYZ", b"hello"), None);
    }

    #[test]
    fn refuses_none_and_hmac_before_anything_else() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let p = URL_SAFE_NO_PAD.encode(b"{}");
        let e = verify_jws("data", &format!("{h}.{p}."), &TrustStore::default(), 0);
        assert!(matches!(e, Err(VerifyError::Algorithm { .. })), "{e:?}");
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","x5c":[]}"#);
        let e = verify_jws("data", &format!("{h}.{p}.AAAA"), &TrustStore::default(), 0);
        assert!(matches!(e, Err(VerifyError::Algorithm { .. })), "{e:?}");
        assert!(matches!(
            verify_jws("data", "a.b", &TrustStore::default(), 0),
            Err(VerifyError::Malformed { .. })
        ));
    }

    #[test]
    fn record_reader_finds_position_after_quality_and_certification_blocks() {
        let mut r = b"FIR\x00020\x00".to_vec();
        r.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1]); // length (fixed below), 1 rep, not certified, 1 position
        r.extend_from_slice(&[0; 4]); // representation length
        r.extend_from_slice(&[0; 9 + 5]);
        r.push(1); // one quality block
        r.extend_from_slice(&[60, 0, 0, 0, 0]);
        r.push(7); // left index
        r.extend_from_slice(&[0, 1, 1, 244, 1, 244, 1, 244, 1, 244, 8, 6, 0]);
        let n = r.len() as u32;
        r[8..12].copy_from_slice(&n.to_be_bytes());
        let f = read_record_facts(&r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((f.finger_position, f.compression), (7, 6));
        r[0] = b'X';
        assert!(read_record_facts(&r).is_err());
    }
}
