#!/usr/bin/env python3
"""Independent verifier for a Tamga capture bundle (reference oracle).

    python3 tools/verify_bundle.py BUNDLE.jwe --key central.key --ca root-ca.pem [--json]

Checks, in this order, and stops at the first failure:

1. Outer JWE (RFC 7516 compact): exactly five parts, each canonical unpadded
   base64url; protected header is a JSON object without duplicate members and
   with exactly the members alg="ECDH-ES", enc="A256GCM", epk, cty=
   "application/zip", typ="tamga-bundle+jwe"; epk is {"kty":"EC","crv":"P-256",
   "x","y"} with 32-byte coordinates and no "d"; encrypted key empty; IV 96
   bits; tag 128 bits.
2. Decryption with jwcrypto (JWE.deserialize + decrypt, only ECDH-ES/A256GCM
   allowed) using the JWK from the PKCS#8 PEM given by --key.  As a second
   opinion the CEK is also derived by hand (RFC 7518 4.6.2 Concat KDF:
   AlgorithmID = "A256GCM", empty PartyUInfo/PartyVInfo, SuppPubInfo = 256)
   and the ciphertext decrypted with AES-GCM, AAD = ASCII of the first part;
   both plaintexts must be identical.
3. Plaintext is a ZIP: no duplicate names, every entry STORED and not
   encrypted, safe relative names, CRCs good, manifest.jws present.
4. manifest.jws (RFC 7515 compact): three canonical base64url parts; header
   members exactly alg="ES256", typ="tamga-manifest+jws", x5c; x5c is a list of
   exactly two standard-base64 (with padding, RFC 7515 4.1.6) DER certificates;
   signature exactly 64 bytes (R||S, RFC 7518 3.4); jwcrypto JWS.verify with
   alg="ES256" and the P-256 public key of x5c[0].
5. Chain with `cryptography`: x5c[0] directly issued by x5c[1] (name and
   signature), x5c[1] directly issued by the --ca root; all three within their
   validity period now; issuers have basicConstraints cA=TRUE (path length
   respected) and, if keyUsage is present, keyCertSign; the station cert is not
   a CA and, if keyUsage is present, has digitalSignature.
6. Manifest JSON (UTF-8, no duplicate members): format="tamga-bundle",
   version=1, bundle_id and station_id non-empty strings, items a list of
   {"file", "sha256" (64 lowercase hex), ...} with unique files present in the
   ZIP, previous_bundle_sha256 null or 64 lowercase hex; every ZIP entry other
   than manifest.jws is listed; every item's SHA-256 is recomputed and compared.

Output: a short text report, or with --json one object
{"ok": bool, "bundle_id": str|null, "station_id": str|null, "items": int,
"error": str|null}.  Exit status: 0 verified, 1 first failure (named in the
report), 2 usage error, 3 jwcrypto (or cryptography) not importable (one line
on stderr, so callers can skip).  One trailing newline in BUNDLE.jwe is
tolerated; any other whitespace is an error.

Dependency: `python3 -m pip install --no-input jwcrypto` (tested: jwcrypto
1.6.1 with cryptography 50.0.2, CPython 3.11).
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import io
import json
import re
import struct
import sys
import zipfile

try:
    from jwcrypto import jwe as jwcrypto_jwe
    from jwcrypto import jwk as jwcrypto_jwk
    from jwcrypto import jws as jwcrypto_jws
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
except ImportError as _exc:
    _IMPORT_ERROR = _exc
else:
    _IMPORT_ERROR = None


class Fail(Exception):
    """A verification failure; the message names the failed check."""


_B64URL = re.compile(r"\A[A-Za-z0-9_-]*\Z")
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


def b64url_strict(part, what):
    """Decode canonical, unpadded base64url (RFC 7515 section 2)."""
    if not _B64URL.match(part) or len(part) % 4 == 1:
        raise Fail(f"{what}: not unpadded base64url")
    data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != part:
        raise Fail(f"{what}: non-canonical base64url (stray trailing bits)")
    return data


def b64std_strict(text, what):
    """Decode standard base64 with padding, as x5c requires (RFC 7515 4.1.6)."""
    if not isinstance(text, str):
        raise Fail(f"{what}: not a string")
    if "-" in text or "_" in text:
        raise Fail(f"{what}: base64url alphabet used, x5c needs standard base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise Fail(f"{what}: not standard padded base64 ({exc})") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise Fail(f"{what}: non-canonical base64")
    return data


def _no_dups(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise Fail(f"duplicate JSON member {k!r}")
        seen[k] = v
    return seen


def json_object(data, what):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Fail(f"{what}: not UTF-8") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_dups)
    except Fail as exc:
        raise Fail(f"{what}: {exc}") from None
    except ValueError as exc:
        raise Fail(f"{what}: invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise Fail(f"{what}: not a JSON object")
    return obj


def expect_members(obj, expected, what):
    keys = set(obj)
    if keys != set(expected):
        missing = sorted(set(expected) - keys)
        extra = sorted(keys - set(expected))
        raise Fail(f"{what}: members differ (missing {missing}, unexpected {extra})")


# --- 1 + 2: outer JWE ------------------------------------------------------

def check_jwe_structure(compact):
    parts = compact.split(".")
    if len(parts) != 5:
        raise Fail(f"JWE: compact serialization needs 5 parts, found {len(parts)}")
    raw = [b64url_strict(p, f"JWE part {i + 1}") for i, p in enumerate(parts)]
    hdr = json_object(raw[0], "JWE protected header")
    expect_members(hdr, ["alg", "enc", "epk", "cty", "typ"], "JWE protected header")
    for name, want in [("alg", "ECDH-ES"), ("enc", "A256GCM"),
                       ("cty", "application/zip"), ("typ", "tamga-bundle+jwe")]:
        if hdr[name] != want:
            raise Fail(f"JWE header {name}={hdr[name]!r}, expected {want!r}")
    epk = hdr["epk"]
    if not isinstance(epk, dict):
        raise Fail("JWE header epk: not an object")
    if "d" in epk:
        raise Fail("JWE header epk contains a private key ('d')")
    expect_members(epk, ["kty", "crv", "x", "y"], "JWE header epk")
    if epk["kty"] != "EC" or epk["crv"] != "P-256":
        raise Fail(f"JWE header epk: kty/crv {epk['kty']!r}/{epk['crv']!r}, expected EC/P-256")
    coords = []
    for c in ("x", "y"):
        if not isinstance(epk[c], str):
            raise Fail(f"JWE header epk.{c}: not a string")
        v = b64url_strict(epk[c], f"JWE header epk.{c}")
        if len(v) != 32:
            raise Fail(f"JWE header epk.{c}: {len(v)} bytes, RFC 7518 6.2.1.2 needs 32")
        coords.append(int.from_bytes(v, "big"))
    try:
        epk_pub = ec.EllipticCurvePublicNumbers(coords[0], coords[1],
                                                ec.SECP256R1()).public_key()
    except ValueError:
        raise Fail("JWE header epk: point not on P-256") from None
    if raw[1]:
        raise Fail(f"JWE encrypted key must be empty for ECDH-ES, is {len(raw[1])} bytes")
    if len(raw[2]) != 12:
        raise Fail(f"JWE IV is {len(raw[2]) * 8} bits, A256GCM needs 96")
    if len(raw[4]) != 16:
        raise Fail(f"JWE tag is {len(raw[4]) * 8} bits, A256GCM needs 128")
    return parts, raw, epk_pub


def load_central_key(path):
    try:
        with open(path, "rb") as f:
            pem = f.read()
    except OSError as exc:
        raise Fail(f"central key: {exc}") from None
    if b"-----BEGIN PRIVATE KEY-----" not in pem:
        raise Fail("central key: not a PKCS#8 PEM ('BEGIN PRIVATE KEY')")
    try:
        key = jwcrypto_jwk.JWK.from_pem(pem)
    except Exception as exc:  # noqa: BLE001 - report whatever jwcrypto says
        raise Fail(f"central key: jwcrypto cannot load it ({exc})") from None
    if key.get("kty") != "EC" or key.get("crv") != "P-256" or not key.has_private:
        raise Fail("central key: not a P-256 private key")
    return key


def decrypt_jwe(compact, key, parts, raw, epk_pub):
    token = jwcrypto_jwe.JWE()
    token.allowed_algs = ["ECDH-ES", "A256GCM"]
    try:
        token.deserialize(compact)
        token.decrypt(key)
    except Exception as exc:  # noqa: BLE001
        raise Fail(f"JWE decryption failed (jwcrypto: {type(exc).__name__}: {exc})") from None
    plaintext = token.payload
    # Second opinion, by hand (RFC 7518 4.6.2 / NIST SP 800-56A Concat KDF).
    z = key.get_op_key("unwrapKey").exchange(ec.ECDH(), epk_pub)
    alg_id = b"A256GCM"
    other = (struct.pack(">I", len(alg_id)) + alg_id
             + struct.pack(">I", 0) + struct.pack(">I", 0) + struct.pack(">I", 256))
    cek = ConcatKDFHash(hashes.SHA256(), 32, other).derive(z)
    if token.cek != cek:
        raise Fail("JWE: jwcrypto CEK differs from the hand-derived Concat KDF CEK")
    try:
        manual = AESGCM(cek).decrypt(raw[2], raw[3] + raw[4], parts[0].encode("ascii"))
    except Exception:  # noqa: BLE001
        raise Fail("JWE: hand-made AES-GCM decryption failed") from None
    if manual != plaintext:
        raise Fail("JWE: jwcrypto and hand-made plaintexts differ")
    return plaintext


# --- 3: ZIP ----------------------------------------------------------------

def open_zip(plaintext):
    try:
        zf = zipfile.ZipFile(io.BytesIO(plaintext))
    except zipfile.BadZipFile as exc:
        raise Fail(f"plaintext is not a ZIP archive ({exc})") from None
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise Fail("ZIP: duplicate entry names")
    for i in infos:
        n = i.filename
        if (not n or n.startswith("/") or "\\" in n or ".." in n.split("/")
                or n.endswith("/")):
            raise Fail(f"ZIP: unsafe or directory entry name {n!r}")
        if i.compress_type != zipfile.ZIP_STORED:
            raise Fail(f"ZIP: entry {n!r} uses compression method {i.compress_type}, "
                       "expected 0 (STORED)")
        if i.flag_bits & 0x1:
            raise Fail(f"ZIP: entry {n!r} is encrypted")
    try:
        bad = zf.testzip()
    except Exception as exc:  # noqa: BLE001
        raise Fail(f"ZIP: cannot read entries ({exc})") from None
    if bad is not None:
        raise Fail(f"ZIP: CRC mismatch in {bad!r}")
    if "manifest.jws" not in names:
        raise Fail("ZIP: no manifest.jws")
    return zf


# --- 4: manifest JWS -------------------------------------------------------

def check_manifest_jws(compact):
    parts = compact.split(".")
    if len(parts) != 3:
        raise Fail(f"manifest.jws: compact JWS needs 3 parts, found {len(parts)}")
    raw = [b64url_strict(p, f"manifest.jws part {i + 1}") for i, p in enumerate(parts)]
    hdr = json_object(raw[0], "manifest.jws header")
    expect_members(hdr, ["alg", "typ", "x5c"], "manifest.jws header")
    if hdr["alg"] != "ES256":
        raise Fail(f"manifest.jws alg={hdr['alg']!r}, expected 'ES256'")
    if hdr["typ"] != "tamga-manifest+jws":
        raise Fail(f"manifest.jws typ={hdr['typ']!r}, expected 'tamga-manifest+jws'")
    x5c = hdr["x5c"]
    if not isinstance(x5c, list) or len(x5c) != 2:
        raise Fail("manifest.jws x5c: must be [station cert, station CA cert]")
    certs = []
    for i, entry in enumerate(x5c):
        der = b64std_strict(entry, f"manifest.jws x5c[{i}]")
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise Fail(f"manifest.jws x5c[{i}]: not a DER certificate ({exc})") from None
    if len(raw[2]) != 64:
        raise Fail(f"manifest.jws signature is {len(raw[2])} bytes, ES256 needs 64 (R||S)")
    pub = certs[0].public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
        raise Fail("manifest.jws x5c[0]: public key is not P-256")
    token = jwcrypto_jws.JWS()
    token.allowed_algs = ["ES256"]
    try:
        token.deserialize(compact)
        token.verify(jwcrypto_jwk.JWK.from_pyca(pub), alg="ES256")
    except Exception as exc:  # noqa: BLE001
        raise Fail(f"manifest.jws signature invalid (jwcrypto: {type(exc).__name__}: {exc})") from None
    return token.payload, certs


# --- 5: certificate chain --------------------------------------------------

def _bc(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _ku(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _subject(cert):
    return cert.subject.rfc4514_string()


def check_chain(station, station_ca, ca_path):
    try:
        with open(ca_path, "rb") as f:
            root = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError) as exc:
        raise Fail(f"root CA: cannot load {ca_path} ({exc})") from None
    now = datetime.datetime.now(datetime.timezone.utc)
    for label, cert in [("station cert x5c[0]", station), ("station CA x5c[1]", station_ca),
                        ("root CA", root)]:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Fail(f"{label} ({_subject(cert)}) not valid now: "
                       f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} .. "
                       f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}")
    for label, child, parent, plabel in [("station cert x5c[0]", station, station_ca, "x5c[1]"),
                                         ("station CA x5c[1]", station_ca, root, "root CA")]:
        try:
            child.verify_directly_issued_by(parent)
        except ValueError as exc:
            raise Fail(f"chain: {label} not issued by {plabel} "
                       f"({_subject(parent)}): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - InvalidSignature, TypeError
            raise Fail(f"chain: {label} signature by {plabel} "
                       f"({_subject(parent)}) does not verify ({type(exc).__name__})") from None
    # Issuer constraints: root issues 1 CA below it, station CA issues 0.
    for label, cert, below in [("station CA x5c[1]", station_ca, 0), ("root CA", root, 1)]:
        bc = _bc(cert)
        if bc is None or not bc.ca:
            raise Fail(f"chain: {label} lacks basicConstraints cA=TRUE")
        if bc.path_length is not None and bc.path_length < below:
            raise Fail(f"chain: {label} pathLenConstraint {bc.path_length} too small")
        ku = _ku(cert)
        if ku is not None and not ku.key_cert_sign:
            raise Fail(f"chain: {label} keyUsage lacks keyCertSign")
    bc = _bc(station)
    if bc is not None and bc.ca:
        raise Fail("chain: station cert x5c[0] is a CA certificate")
    ku = _ku(station)
    if ku is not None and not ku.digital_signature:
        raise Fail("chain: station cert x5c[0] keyUsage lacks digitalSignature")
    return root


# --- 6: manifest -----------------------------------------------------------

def check_manifest(payload, zf):
    m = json_object(payload, "manifest")
    if m.get("format") != "tamga-bundle":
        raise Fail(f"manifest: format={m.get('format')!r}, expected 'tamga-bundle'")
    v = m.get("version")
    if type(v) is not int or v != 1:
        raise Fail(f"manifest: version={v!r}, expected 1")
    for k in ("bundle_id", "station_id"):
        if not isinstance(m.get(k), str) or not m[k]:
            raise Fail(f"manifest: {k} missing or not a non-empty string")
    if "previous_bundle_sha256" not in m:
        raise Fail("manifest: previous_bundle_sha256 missing")
    prev = m["previous_bundle_sha256"]
    if prev is not None and not (isinstance(prev, str) and _HEX64.match(prev)):
        raise Fail("manifest: previous_bundle_sha256 not null or 64 lowercase hex")
    items = m.get("items")
    if not isinstance(items, list):
        raise Fail("manifest: items missing or not a list")
    names = set(zf.namelist())
    listed = set()
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise Fail(f"manifest: items[{i}] not an object")
        f, h = it.get("file"), it.get("sha256")
        if not isinstance(f, str) or not f:
            raise Fail(f"manifest: items[{i}].file missing")
        if f == "manifest.jws" or f in listed:
            raise Fail(f"manifest: items[{i}].file {f!r} repeated or reserved")
        if not isinstance(h, str) or not _HEX64.match(h):
            raise Fail(f"manifest: items[{i}].sha256 not 64 lowercase hex")
        if f not in names:
            raise Fail(f"manifest: item {f!r} not in the ZIP")
        listed.add(f)
        actual = hashlib.sha256(zf.read(f)).hexdigest()
        if actual != h:
            raise Fail(f"item {f!r}: SHA-256 {actual} != manifest {h}")
    extra = sorted(names - listed - {"manifest.jws"})
    if extra:
        raise Fail(f"ZIP: entries not listed in the manifest: {extra}")
    return m


# --- driver ----------------------------------------------------------------

def verify(bundle_path, key_path, ca_path, report):
    try:
        with open(bundle_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise Fail(f"bundle: {exc}") from None
    if data.endswith(b"\n"):
        data = data[:-1]
    try:
        compact = data.decode("ascii")
    except UnicodeDecodeError:
        raise Fail("bundle: not ASCII") from None
    parts, raw, epk_pub = check_jwe_structure(compact)
    key = load_central_key(key_path)
    plaintext = decrypt_jwe(compact, key, parts, raw, epk_pub)
    report["steps"].append(f"JWE ECDH-ES/A256GCM decrypted: {len(plaintext)} byte ZIP "
                           "(jwcrypto and hand-made Concat KDF agree)")
    zf = open_zip(plaintext)
    report["steps"].append(f"ZIP: {len(zf.infolist())} entries, all STORED, CRCs good")
    try:
        jws_text = zf.read("manifest.jws").decode("ascii").rstrip("\n")
    except UnicodeDecodeError:
        raise Fail("manifest.jws: not ASCII") from None
    payload, (station, station_ca) = check_manifest_jws(jws_text)
    report["steps"].append(f"manifest.jws ES256 signature valid, signer {_subject(station)}")
    root = check_chain(station, station_ca, ca_path)
    report["steps"].append(f"chain: {_subject(station)} <- {_subject(station_ca)} "
                           f"<- {_subject(root)} (valid now)")
    m = check_manifest(payload, zf)
    report["bundle_id"] = m["bundle_id"]
    report["station_id"] = m["station_id"]
    report["items"] = len(m["items"])
    report["steps"].append(f"manifest: {len(m['items'])} item hashes match")


def main():
    ap = argparse.ArgumentParser(description="Verify a Tamga capture bundle (JWE/JWS/X.509).")
    ap.add_argument("bundle", help="bundle in JWE compact serialization")
    ap.add_argument("--key", required=True, help="central system P-256 key, PKCS#8 PEM")
    ap.add_argument("--ca", required=True, help="root CA certificate, PEM")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if _IMPORT_ERROR is not None:
        print(f"verify_bundle: jwcrypto not importable ({_IMPORT_ERROR}); "
              "install with: python3 -m pip install --no-input jwcrypto", file=sys.stderr)
        return 3
    report = {"ok": False, "bundle_id": None, "station_id": None, "items": 0,
              "error": None, "steps": []}
    try:
        verify(args.bundle, args.key, args.ca, report)
        report["ok"] = True
    except Fail as exc:
        report["error"] = str(exc)
    if args.json:
        print(json.dumps({k: report[k] for k in
                          ("ok", "bundle_id", "station_id", "items", "error")}))
    else:
        for s in report["steps"]:
            print(f"  ok  {s}")
        if report["ok"]:
            print(f"VERIFIED bundle {report['bundle_id']} from station "
                  f"{report['station_id']}: {report['items']} items")
        else:
            print(f"FAILED: {report['error']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
