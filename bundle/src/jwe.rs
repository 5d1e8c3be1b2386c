//! JWE (RFC 7516) compact serialization with `alg` ECDH-ES (direct key agreement, RFC 7518 section 4.6) and `enc`
//! A256GCM, to a P-256 recipient key.
//!
//! Sealing uses ring: an ephemeral P-256 key, ECDH with the recipient's public key, the Concat KDF (NIST SP
//! 800-56A, one SHA-256 round: `SHA-256(00000001 || Z || OtherInfo)`), AES-256-GCM with a random 96-bit IV and the
//! ASCII of the base64url protected header as AAD. Opening uses the RustCrypto `p256` crate for the static-key
//! ECDH (ring only offers ephemeral keys), then ring's AES-GCM: two implementations meet in every round trip.

use crate::b64;
use crate::error::BundleError;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The media type of a sealed bundle (`typ`) and of its plaintext (`cty`).
pub const TYP: &str = "tamga-bundle+jwe";
pub const CTY: &str = "application/zip";

/// The ephemeral public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Epk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
}

/// The protected header. Exactly these members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub alg: String,
    pub enc: String,
    pub epk: Epk,
    pub cty: String,
    pub typ: String,
}

/// The Concat KDF of RFC 7518 section 4.6.2 (NIST SP 800-56A, SHA-256): `keydatalen` bits (at most 256, one
/// round) from the shared secret `z`, with AlgorithmID `alg_id` (the `enc` value for direct ECDH-ES) and the
/// PartyUInfo / PartyVInfo bytes (`apu` / `apv`, empty unless the header carries them); every field is prefixed by
/// its length as a 32-bit big-endian integer, and SuppPubInfo is `keydatalen` as a 32-bit big-endian integer.
pub fn concat_kdf_general(z: &[u8], alg_id: &[u8], apu: &[u8], apv: &[u8], keydatalen: u32) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(z);
    for field in [alg_id, apu, apv] {
        ctx.update(&(field.len() as u32).to_be_bytes());
        ctx.update(field);
    }
    ctx.update(&keydatalen.to_be_bytes());
    let digest = ctx.finish();
    digest.as_ref()[..(keydatalen as usize / 8).min(32)].to_vec()
}

/// The key for direct ECDH-ES with A256GCM: 256 bits, AlgorithmID "A256GCM", no apu/apv.
pub fn concat_kdf(z: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&concat_kdf_general(z, b"A256GCM", &[], &[], 256));
    out
}

/// Encrypts `plaintext` to the recipient's uncompressed P-256 public point (65 bytes, `04 || X || Y`).
pub fn seal(plaintext: &[u8], recipient_point: &[u8]) -> Result<String, BundleError> {
    let rng = SystemRandom::new();
    let eph = EphemeralPrivateKey::generate(&ECDH_P256, &rng)
        .map_err(|_| BundleError::Internal("ephemeral key".into()))?;
    let eph_pub = eph
        .compute_public_key()
        .map_err(|_| BundleError::Internal("ephemeral public key".into()))?;
    let p = eph_pub.as_ref();
    if p.len() != 65 {
        return Err(BundleError::Internal("unexpected P-256 point encoding".into()));
    }
    let header = Header {
        alg: "ECDH-ES".into(),
        enc: "A256GCM".into(),
        epk: Epk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: b64::url(&p[1..33]),
            y: b64::url(&p[33..65]),
        },
        cty: CTY.into(),
        typ: TYP.into(),
    };
    let header_b64 =
        b64::url(&serde_json::to_vec(&header).map_err(|e| BundleError::Internal(e.to_string()))?);
    let cek = agree_ephemeral(eph, &UnparsedPublicKey::new(&ECDH_P256, recipient_point), |z| {
        concat_kdf(z)
    })
    .map_err(|_| BundleError::Sealing("the central system's public key is not a valid P-256 point".into()))?;
    let mut iv = [0u8; 12];
    rng.fill(&mut iv)
        .map_err(|_| BundleError::Internal("random IV".into()))?;
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &cek).map_err(|_| BundleError::Internal("AES key".into()))?,
    );
    let mut buf = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header_b64.as_bytes()),
            &mut buf,
        )
        .map_err(|_| BundleError::Internal("AES-GCM".into()))?;
    Ok(format!(
        "{header_b64}..{}.{}.{}",
        b64::url(&iv),
        b64::url(&buf),
        b64::url(tag.as_ref())
    ))
}

/// Decrypts a sealed bundle with the recipient's private key.
pub fn open(compact: &str, recipient: &p256::SecretKey) -> Result<(Header, Vec<u8>), BundleError> {
    let bad = |why: &str| BundleError::Envelope(why.to_owned());
    let parts: Vec<&str> = compact.trim_end_matches('\n').split('.').collect();
    let [h, ek, iv, ct, tag] = parts[..] else {
        return Err(bad("not a JWE compact serialization (needs 5 parts)"));
    };
    let header_json = b64::url_decode(h).ok_or_else(|| bad("protected header is not base64url"))?;
    let header: Header =
        serde_json::from_slice(&header_json).map_err(|e| bad(&format!("protected header: {e}")))?;
    if header.alg != "ECDH-ES" || header.enc != "A256GCM" {
        return Err(bad(&format!(
            "alg/enc {}/{} are not ECDH-ES/A256GCM",
            header.alg, header.enc
        )));
    }
    if header.typ != TYP || header.cty != CTY {
        return Err(bad(&format!(
            "typ/cty {}/{} are not {TYP}/{CTY}",
            header.typ, header.cty
        )));
    }
    if !ek.is_empty() {
        return Err(bad(
            "ECDH-ES direct key agreement has an empty encrypted key part",
        ));
    }
    if header.epk.kty != "EC" || header.epk.crv != "P-256" {
        return Err(bad("epk is not an EC P-256 key"));
    }
    let (x, y) = (
        b64::url_decode(&header.epk.x).ok_or_else(|| bad("epk.x is not base64url"))?,
        b64::url_decode(&header.epk.y).ok_or_else(|| bad("epk.y is not base64url"))?,
    );
    if x.len() != 32 || y.len() != 32 {
        return Err(bad("epk coordinates must be 32 bytes each"));
    }
    let mut point = vec![4u8];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let epk = p256::PublicKey::from_sec1_bytes(&point).map_err(|_| bad("epk is not a point on P-256"))?;
    let shared = p256::ecdh::diffie_hellman(recipient.to_nonzero_scalar(), epk.as_affine());
    let cek = concat_kdf(shared.raw_secret_bytes());
    let iv = b64::url_decode(iv).ok_or_else(|| bad("IV is not base64url"))?;
    let iv: [u8; 12] = iv.try_into().map_err(|_| bad("A256GCM needs a 96-bit IV"))?;
    let mut buf = b64::url_decode(ct).ok_or_else(|| bad("ciphertext is not base64url"))?;
    let tag = b64::url_decode(tag).ok_or_else(|| bad("tag is not base64url"))?;
    if tag.len() != 16 {
        return Err(bad("A256GCM tag must be 16 bytes"));
    }
    buf.extend_from_slice(&tag);
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &cek).map_err(|_| BundleError::Internal("AES key".into()))?,
    );
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(h.as_bytes()),
            &mut buf,
        )
        .map_err(|_| {
            BundleError::Envelope(
                "decryption failed: the bundle was altered, or it is sealed to another central key".into(),
            )
        })?;
    let n = plain.len();
    buf.truncate(n);
    Ok((header, buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 Appendix C: ECDH-ES key agreement with A128GCM, apu "Alice", apv "Bob".
    #[test]
    fn rfc7518_appendix_c() {
        let d = b64::url_decode("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw").unwrap();
        let bob = p256::SecretKey::from_slice(&d).unwrap();
        let mut alice = vec![4u8];
        alice.extend(b64::url_decode("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0").unwrap());
        alice.extend(b64::url_decode("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps").unwrap());
        let alice = p256::PublicKey::from_sec1_bytes(&alice).unwrap();
        let z = p256::ecdh::diffie_hellman(bob.to_nonzero_scalar(), alice.as_affine());
        assert_eq!(
            &z.raw_secret_bytes()[..],
            [
                158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163,
                218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196
            ]
        );
        let k = concat_kdf_general(z.raw_secret_bytes(), b"A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(b64::url(&k), "VqqN6vgjbSBcIijNcacQGg");
    }

    #[test]
    fn seal_then_open() {
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let point = secret.public_key().to_sec1_bytes();
        let jwe = seal(b"hello", &point).unwrap();
        let (h, plain) = open(&jwe, &secret).unwrap();
        assert_eq!(plain, b"hello");
        assert_eq!((h.alg.as_str(), h.enc.as_str()), ("ECDH-ES", "A256GCM"));
    }
}
