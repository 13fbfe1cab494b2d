"""Cosign-compatible signing keys: generating, encrypting, loading and identifying them.

Owns the on-disk formats that ``cosign generate-key-pair`` writes and that cosign, skopeo and podman
(``--sign-by-sigstore-private-key``) read:

- the private key: a PEM block ``ENCRYPTED SIGSTORE PRIVATE KEY`` (older cosign wrote, and older containers/image
  read only, ``ENCRYPTED COSIGN PRIVATE KEY``; both load here) whose body is the JSON envelope of the
  ``encrypted`` package (theupdateframework/go-tuf, now secure-systems-lab/go-securesystemslib) around the key's
  PKCS#8 DER::

      {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<32 bytes>"},
       "cipher":{"name":"nacl/secretbox","nonce":"<24 bytes>"},"ciphertext":"<secretbox(PKCS#8)>"}

  with standard, padded base64 (Go's ``[]byte`` in JSON) and the 32-byte secretbox key
  ``scrypt(password, salt, N, r, p)``;
- the public key: a PKIX ``PUBLIC KEY`` PEM.

The scrypt parameters are read from the envelope but only the three sets that package writes are accepted
(``N`` 2^15, 2^16 or 2^17 with ``r=8, p=1``): a tampered file must not make loading it cost unbounded memory.

Pure code, no I/O. Errors are :class:`InvalidKey` (a ``ValueError``); :class:`WrongPassword` is its subclass for
a password that does not open the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from dockyard.core.jsonparse import loads_limited

PRIVATE_KEY_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_PRIVATE_KEY_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
PRIVATE_KEY_PEM_TYPES = (PRIVATE_KEY_PEM_TYPE, LEGACY_PRIVATE_KEY_PEM_TYPE)
PUBLIC_KEY_PEM_TYPE = "PUBLIC KEY"

KDF_NAME = "scrypt"
CIPHER_NAME = "nacl/secretbox"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 65536, 8, 1  # go-securesystemslib's "Standard", what cosign writes
# Legacy (go-tuf, older cosign), Standard and OWASP: the parameter sets the encrypted package reads.
ACCEPTED_SCRYPT_PARAMS = frozenset({(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)})
SALT_SIZE = 32
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24
BOX_KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE  # 32
MIN_RSA_BITS = 2048
MAX_PEM_SIZE = 65_536
ACCEPTED = "(accepted: ECDSA P-256 or P-384, Ed25519, RSA of 2048 bits or more)"

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_CURVES: dict[str, str] = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}


class InvalidKey(ValueError):
    """The key data is not a key in an accepted format (or of an accepted type and size)."""


class WrongPassword(InvalidKey):
    """The password does not decrypt the private key (or the encrypted key was altered)."""


# -- PEM ----------------------------------------------------------------------------------------------------------


def _pem(block_type: str, body: bytes) -> bytes:
    """A PEM block exactly as Go's ``encoding/pem`` writes it: base64 in lines of 64 characters."""
    text = base64.b64encode(body).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join([f"-----BEGIN {block_type}-----", *lines, f"-----END {block_type}-----", ""]).encode("ascii")


def _pem_block(pem: bytes) -> tuple[str, bytes]:
    """The type and the decoded body of the first PEM block in ``pem``."""
    if len(pem) > MAX_PEM_SIZE:
        raise InvalidKey("the key is too large")
    try:
        text = pem.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidKey("not a PEM key: the data is not ASCII text") from None
    start = text.find("-----BEGIN ")
    if start < 0:
        raise InvalidKey("not a PEM key: no '-----BEGIN' line")
    header_end = text.find("-----", start + 11)
    if header_end < 0:
        raise InvalidKey("not a PEM key: malformed BEGIN line")
    block_type = text[start + 11 : header_end]
    end_marker = f"-----END {block_type}-----"
    end = text.find(end_marker, header_end)
    if end < 0:
        raise InvalidKey(f"not a PEM key: no {end_marker!r} line")
    lines = [line.strip() for line in text[header_end + 5 : end].splitlines()]
    if any(":" in line for line in lines):
        raise InvalidKey("PEM headers (encrypted legacy PEM) are not supported")
    try:
        body = base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("not a PEM key: the body is not base64") from None
    return block_type, body


# -- the encrypted envelope ---------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt_key(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=BOX_KEY_SIZE, n=n, r=r, p=p).derive(password)


def encrypt(plaintext: bytes, password: bytes) -> bytes:
    """The JSON envelope of ``plaintext`` sealed under ``password`` (scrypt + NaCl secretbox), byte for byte as
    Go's ``json.Marshal`` writes the encrypted package's struct: fields in declaration order, no spaces."""
    salt, nonce = secrets.token_bytes(SALT_SIZE), secrets.token_bytes(NONCE_SIZE)
    key = _scrypt_key(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    ciphertext = nacl.secret.SecretBox(key).encrypt(plaintext, nonce).ciphertext
    envelope = {
        "kdf": {"name": KDF_NAME, "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}, "salt": _b64(salt)},
        "cipher": {"name": CIPHER_NAME, "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    }
    return json.dumps(envelope, separators=(",", ":")).encode("ascii")


def _field(doc: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(doc, dict) or name not in doc:
            raise InvalidKey(f"the encrypted key has no {'.'.join(path)!r}")
        doc = doc[name]
    return doc


def _bytes_field(doc: Any, *path: str) -> bytes:
    value = _field(doc, *path)
    if not isinstance(value, str):
        raise InvalidKey(f"the encrypted key's {'.'.join(path)!r} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey(f"the encrypted key's {'.'.join(path)!r} is not valid base64") from None


def decrypt(envelope: bytes, password: bytes) -> bytes:
    """Open a JSON envelope written by :func:`encrypt` (or by cosign); raises :class:`WrongPassword` when the
    password does not open it and :class:`InvalidKey` when it is malformed."""
    try:
        doc = loads_limited(envelope)
    except (ValueError, RecursionError):  # JSONDecodeError (nesting too deep too), UnicodeDecodeError
        raise InvalidKey("the encrypted key is not JSON") from None
    if _field(doc, "kdf", "name") != KDF_NAME:
        raise InvalidKey(f"unsupported key derivation {_field(doc, 'kdf', 'name')!r} (expected {KDF_NAME!r})")
    if _field(doc, "cipher", "name") != CIPHER_NAME:
        raise InvalidKey(f"unsupported cipher {_field(doc, 'cipher', 'name')!r} (expected {CIPHER_NAME!r})")
    params = tuple(_field(doc, "kdf", "params", name) for name in ("N", "r", "p"))
    if not all(type(v) is int for v in params) or params not in ACCEPTED_SCRYPT_PARAMS:
        raise InvalidKey(f"unsupported scrypt parameters N, r, p = {params}")
    salt = _bytes_field(doc, "kdf", "salt")
    nonce = _bytes_field(doc, "cipher", "nonce")
    ciphertext = _bytes_field(doc, "ciphertext")
    if len(nonce) != NONCE_SIZE:
        raise InvalidKey(f"the nonce must be {NONCE_SIZE} bytes")
    n, r, p = params
    key = _scrypt_key(password, salt, n, r, p)
    try:
        return nacl.secret.SecretBox(key).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPassword("wrong password for the private key (or the key file is corrupt)") from None


# -- keys ---------------------------------------------------------------------------------------------------------


def public_key_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def encrypt_private_key(private_key: PrivateKey, password: bytes) -> bytes:
    """``private_key`` as cosign writes it: PKCS#8 DER, sealed, in an ``ENCRYPTED SIGSTORE PRIVATE KEY`` block."""
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _pem(PRIVATE_KEY_PEM_TYPE, encrypt(der, password))


def generate_key_pair(password: bytes) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key pair as ``cosign generate-key-pair`` writes it: (private PEM, public PEM)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    return encrypt_private_key(private_key, password), public_key_pem(private_key.public_key())


def load_private_key(pem: bytes, password: bytes) -> PrivateKey:
    """Decrypt a cosign private key (either PEM type); :class:`WrongPassword` if ``password`` does not open it."""
    block_type, body = _pem_block(pem)
    if block_type not in PRIVATE_KEY_PEM_TYPES:
        raise InvalidKey(f"unsupported PEM type {block_type!r} (expected {PRIVATE_KEY_PEM_TYPE!r})")
    der = decrypt(body, password)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKey("the decrypted private key is not PKCS#8 DER") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise InvalidKey(f"unsupported key type {type(key).__name__} {ACCEPTED}")
    _check_type(key.public_key())
    return key


def _check_type(key: object) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise InvalidKey(f"unsupported elliptic curve {key.curve.name} {ACCEPTED}")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidKey(f"RSA keys must have at least {MIN_RSA_BITS} bits (this one has {key.key_size})")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise InvalidKey(f"unsupported key type {type(key).__name__} {ACCEPTED}")


def load_public_key(pem: bytes) -> PublicKey:
    """A PKIX ``PUBLIC KEY`` PEM of an accepted type: ECDSA P-256/P-384, Ed25519 or RSA of 2048 bits or more."""
    block_type, body = _pem_block(pem)
    if block_type != PUBLIC_KEY_PEM_TYPE:
        raise InvalidKey(f"unsupported PEM type {block_type!r} (expected {PUBLIC_KEY_PEM_TYPE!r})")
    try:
        key = serialization.load_der_public_key(body)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKey("the PEM block is not a valid public key") from None
    return _check_type(key)


def algorithm_of(key: PublicKey) -> str:
    """A short name of the key's algorithm: ``ecdsa-p256``, ``ecdsa-p384``, ``ed25519`` or ``rsa-<bits>``."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _CURVES.get(key.curve.name, f"ecdsa-{key.curve.name}")
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    return "ed25519"


def key_id(public_key: PublicKey) -> str:
    """The key's identifier: the SHA-256 (hex) of its DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign(private_key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data`` as cosign does: ECDSA with SHA-256 (ASN.1 DER signature), RSA PKCS#1 v1.5 with SHA-256,
    or pure Ed25519."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return private_key.sign(data)
