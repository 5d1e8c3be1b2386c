#!/usr/bin/env python3
"""Build a test "Tamga capture bundle" for exercising tools/verify_bundle.py.

    python3 tools/make_test_bundle.py OUTDIR [--manual-jwe] [--tamper MODE]

OUTDIR receives a throw-away development PKI and one bundle:

    root-ca.pem / root-ca.key          self-signed root CA (P-256)
    station-ca.pem / station-ca.key    station-issuing CA, signed by the root
    station.pem / station.key          station certificate, signed by station CA
    central.key                        central system's P-256 key, PKCS#8 PEM
    central.pub.pem                    its public key (SubjectPublicKeyInfo)
    bundle.jwe                         the bundle, JWE compact serialization

Existing key/cert files in OUTDIR are reused, so a second bundle can be made
under the same PKI; a fresh OUTDIR gives a fresh, unrelated PKI (handy for the
"chain to a different root" negative test).

The bundle has the shape the Rust implementation produces:

* JWE compact, protected header {"alg":"ECDH-ES","enc":"A256GCM","epk":{...},
  "cty":"application/zip","typ":"tamga-bundle+jwe"}, empty encrypted key,
  96-bit IV, AAD = ASCII of the base64url protected header.
* plaintext: ZIP, every entry STORED, holding manifest.jws + two dummy items.
* manifest.jws: JWS compact, ES256, protected header {"alg":"ES256",
  "typ":"tamga-manifest+jws","x5c":[station DER, station-CA DER]} (standard
  base64 with padding, RFC 7515 4.1.6), payload = manifest JSON.

By default the JWE is made by jwcrypto.  --manual-jwe builds it by hand with
`cryptography` only (ECDH P-256, Concat KDF SHA-256 with AlgorithmID "A256GCM",
empty PartyUInfo/PartyVInfo, SuppPubInfo 256, then AES-256-GCM), i.e. the way
an independent implementation such as the Rust one does it; that jwcrypto
decrypts it shows the derivation matches.

--tamper MODE produces deliberately broken bundles:
  ciphertext   flip one bit of one byte of the JWE ciphertext
  item         change one byte of an item after it was hashed and signed
  signature    flip one byte of the manifest JWS signature

Needs jwcrypto (which pulls in cryptography); exit 3 if it is missing.
"""

import argparse
import base64
import datetime
import hashlib
import io
import json
import os
import struct
import sys
import zipfile

try:
    from jwcrypto import jwe, jwk, jws
    from jwcrypto.common import base64url_decode, base64url_encode
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
    from cryptography.x509.oid import NameOID
except ImportError as exc:  # pragma: no cover
    print(f"make_test_bundle: jwcrypto/cryptography not importable ({exc}); "
          "python3 -m pip install --no-input jwcrypto", file=sys.stderr)
    sys.exit(3)


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_or_make_key(path):
    if os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    _write(path, _key_pem(key))
    return key


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tamga test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_cert(subject_cn, subject_key, issuer_cert, issuer_key, ca, path_len):
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name = issuer_cert.subject if issuer_cert else _name(subject_cn)
    b = (x509.CertificateBuilder()
         .subject_name(_name(subject_cn))
         .issuer_name(issuer_name)
         .public_key(subject_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len if ca else None),
                        critical=True)
         .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                                      encipher_only=False, decipher_only=False),
                        critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()),
                        critical=False))
    ikey = issuer_key if issuer_key else subject_key
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()),
                        critical=False)
    return b.sign(ikey, hashes.SHA256())


def _load_or_make_cert(path, *args):
    if os.path.exists(path):
        with open(path, "rb") as f:
            return x509.load_pem_x509_certificate(f.read())
    cert = _make_cert(*args)
    _write(path, cert.public_bytes(serialization.Encoding.PEM))
    return cert


def make_pki(out):
    root_key = _load_or_make_key(os.path.join(out, "root-ca.key"))
    root = _load_or_make_cert(os.path.join(out, "root-ca.pem"),
                              "Tamga Test Root CA", root_key, None, None, True, 1)
    sca_key = _load_or_make_key(os.path.join(out, "station-ca.key"))
    sca = _load_or_make_cert(os.path.join(out, "station-ca.pem"),
                             "Tamga Test Station CA", sca_key, root, root_key, True, 0)
    st_key = _load_or_make_key(os.path.join(out, "station.key"))
    st = _load_or_make_cert(os.path.join(out, "station.pem"),
                            "station-TEST-0001", st_key, sca, sca_key, False, None)
    central = _load_or_make_key(os.path.join(out, "central.key"))
    _write(os.path.join(out, "central.pub.pem"), central.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return st_key, st, sca, central


def manual_jwe(plaintext, protected_extra, central_pub):
    """ECDH-ES + A256GCM JWE compact, built without jwcrypto."""
    eph = ec.generate_private_key(ec.SECP256R1())
    nums = eph.public_key().public_numbers()
    epk = {"kty": "EC", "crv": "P-256",
           "x": base64url_encode(nums.x.to_bytes(32, "big")),
           "y": base64url_encode(nums.y.to_bytes(32, "big"))}
    header = dict(protected_extra)
    header["epk"] = epk
    z = eph.exchange(ec.ECDH(), central_pub)
    enc = b"A256GCM"
    other = (struct.pack(">I", len(enc)) + enc + struct.pack(">I", 0) + struct.pack(">I", 0)
             + struct.pack(">I", 256))
    cek = ConcatKDFHash(hashes.SHA256(), 32, other).derive(z)
    b64h = base64url_encode(json.dumps(header, separators=(",", ":")).encode())
    iv = os.urandom(12)
    ct_tag = AESGCM(cek).encrypt(iv, plaintext, b64h.encode("ascii"))
    return ".".join([b64h, "", base64url_encode(iv), base64url_encode(ct_tag[:-16]),
                     base64url_encode(ct_tag[-16:])])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--manual-jwe", action="store_true",
                    help="build the JWE with cryptography only, not jwcrypto")
    ap.add_argument("--tamper", choices=["none", "ciphertext", "item", "signature"],
                    default="none")
    ap.add_argument("--output", default="bundle.jwe", help="file name inside OUTDIR")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    st_key, st, sca, central = make_pki(args.outdir)

    items = {"items/0001-face.jpg": b"\xff\xd8\xff\xe0 dummy face image " + os.urandom(64),
             "items/0002-finger.png": b"\x89PNG\r\n\x1a\n dummy fingerprint " + os.urandom(64)}
    manifest = {
        "format": "tamga-bundle", "version": 1,
        "bundle_id": base64url_encode(os.urandom(12)),
        "station_id": "station-TEST-0001",
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "items": [{"file": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                  for name, data in items.items()],
        "previous_bundle_sha256": hashlib.sha256(b"previous").hexdigest(),
    }
    x5c = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
           for c in (st, sca)]
    s = jws.JWS(json.dumps(manifest, separators=(",", ":")).encode("utf-8"))
    s.add_signature(jwk.JWK.from_pyca(st_key), None,
                    protected=json.dumps({"alg": "ES256", "typ": "tamga-manifest+jws",
                                          "x5c": x5c}, separators=(",", ":")))
    manifest_jws = s.serialize(compact=True)
    if args.tamper == "signature":
        h, p, sig = manifest_jws.split(".")
        sig = bytearray(base64url_decode(sig))
        sig[5] ^= 0x01
        manifest_jws = ".".join([h, p, base64url_encode(bytes(sig))])
    if args.tamper == "item":
        first = next(iter(items))
        items[first] = bytes([items[first][0] ^ 0x01]) + items[first][1:]

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in [("manifest.jws", manifest_jws.encode("ascii"))] + list(items.items()):
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            z.writestr(zi, data)
    plaintext = buf.getvalue()

    protected = {"alg": "ECDH-ES", "enc": "A256GCM", "cty": "application/zip",
                 "typ": "tamga-bundle+jwe"}
    if args.manual_jwe:
        compact = manual_jwe(plaintext, protected, central.public_key())
    else:
        e = jwe.JWE(plaintext, protected=json.dumps(protected))
        e.add_recipient(jwk.JWK.from_pyca(central.public_key()))
        compact = e.serialize(compact=True)
    if args.tamper == "ciphertext":
        parts = compact.split(".")
        ct = bytearray(base64url_decode(parts[3]))
        ct[len(ct) // 2] ^= 0x01
        parts[3] = base64url_encode(bytes(ct))
        compact = ".".join(parts)

    path = os.path.join(args.outdir, args.output)
    _write(path, compact.encode("ascii"))
    print(f"wrote {path} (bundle_id {manifest['bundle_id']}, {len(items)} items, "
          f"{'manual' if args.manual_jwe else 'jwcrypto'} JWE, tamper={args.tamper})")


if __name__ == "__main__":
    main()
