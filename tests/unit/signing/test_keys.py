"""Cosign key pairs (dockyard.signing.keys): the encrypted private-key format byte for byte as cosign writes it,
the Go ``encrypted`` package's own test vectors, the accepted public key types, key IDs and signatures."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import nacl.secret
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from dockyard.signing.keys import (
    LEGACY_PRIVATE_KEY_PEM_TYPE,
    PRIVATE_KEY_PEM_TYPE,
    InvalidKey,
    PrivateKey,
    WrongPassword,
    algorithm_of,
    decrypt,
    encrypt_private_key,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
    public_key_pem,
    sign,
)

PASSWORD = b"correct horse battery staple"

# theupdateframework/go-tuf encrypted/encrypted_test.go: "reallyimportant" sealed under "supersecret" by the Go
# package: by Decrypt's test (Legacy parameters), and by Marshal (which seals the JSON string of the base64 of the
# plaintext) with each parameter set the package writes (Legacy: older cosign, Standard: cosign today, OWASP).
GO_PLAINTEXT, GO_PASSPHRASE = b"reallyimportant", b"supersecret"
GO_VECTORS = {
    "legacy": b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"WO3mVvyTwJ9vwT5/Tk5OW5WPIBUofMjcpEfrLnfY4uA="},"cipher":{"name":"nacl/secretbox","nonce":"tCy7HcTFr4uxv4Nrg/DWmncuZ148U1MX"},"ciphertext":"08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw="}',  # noqa: E501
    "standard": b'{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}',  # noqa: E501
    "owasp": b'{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}',  # noqa: E501
}
GO_DECRYPT_VECTOR = b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}'  # noqa: E501
GO_UNSUPPORTED_PARAMS = b'{"kdf":{"name":"scrypt","params":{"N":99,"r":99,"p":99},"salt":"cZFcQJdwPhPyhU1R4qkl0qVOIjZd4V/7LYYAavq166k="},"cipher":{"name":"nacl/secretbox","nonce":"7vhRS7j0hEPBWV05skAdgLj81AkGeE7U"},"ciphertext":"6WYU/YSXVbYzl/NzaeAzmjLyfFhOOjLc0d8/GFV0aBFdJvyCcXc="}'  # noqa: E501


@pytest.fixture(scope="module")
def pair() -> tuple[bytes, bytes]:
    return generate_key_pair(PASSWORD)


def pem_body(pem: bytes, block_type: str) -> bytes:
    text = pem.decode()
    match = re.fullmatch(rf"-----BEGIN {block_type}-----\n(.*)\n-----END {block_type}-----\n", text, re.S)
    assert match, text
    lines = match.group(1).split("\n")
    # Go's encoding/pem: lines of exactly 64 characters, the last one shorter or equal.
    assert all(len(line) == 64 for line in lines[:-1])
    assert 0 < len(lines[-1]) <= 64
    return base64.b64decode("".join(lines), validate=True)


def with_pem_type(pem: bytes, block_type: str) -> bytes:
    return pem.replace(PRIVATE_KEY_PEM_TYPE.encode(), block_type.encode())


def reencrypt(pem: bytes, mutate: object) -> bytes:
    """The private key PEM with its JSON envelope changed by ``mutate(doc)``."""
    doc = json.loads(pem_body(pem, PRIVATE_KEY_PEM_TYPE))
    assert callable(mutate)
    mutate(doc)
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    return f"-----BEGIN {PRIVATE_KEY_PEM_TYPE}-----\n{body}\n-----END {PRIVATE_KEY_PEM_TYPE}-----\n".encode()


# -- the format -----------------------------------------------------------------------------------------------------


def test_private_key_is_written_exactly_as_cosign_writes_it(pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = pair
    raw = pem_body(private_pem, PRIVATE_KEY_PEM_TYPE)
    # Go's json.Marshal of the encrypted package's struct: declaration order, no whitespace.
    assert re.fullmatch(
        rb'\{"kdf":\{"name":"scrypt","params":\{"N":65536,"r":8,"p":1\},"salt":"[A-Za-z0-9+/]{43}="\},'
        rb'"cipher":\{"name":"nacl/secretbox","nonce":"[A-Za-z0-9+/]{32}"\},"ciphertext":"[A-Za-z0-9+/=]+"\}',
        raw,
    ), raw
    doc = json.loads(raw)
    assert list(doc) == ["kdf", "cipher", "ciphertext"]
    assert list(doc["kdf"]) == ["name", "params", "salt"]
    assert list(doc["kdf"]["params"]) == ["N", "r", "p"]
    salt = base64.b64decode(doc["kdf"]["salt"], validate=True)
    nonce = base64.b64decode(doc["cipher"]["nonce"], validate=True)
    ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
    assert (len(salt), len(nonce)) == (32, 24)

    # Decrypt independently: scrypt(password, salt, N=65536, r=8, p=1) → 32-byte secretbox key → PKCS#8 DER.
    box_key = Scrypt(salt=salt, length=32, n=65536, r=8, p=1).derive(PASSWORD)
    der = nacl.secret.SecretBox(box_key).decrypt(ciphertext, nonce)
    assert len(ciphertext) == len(der) + 16  # Poly1305 tag
    private_key = serialization.load_der_private_key(der, password=None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert private_key.curve.name == "secp256r1"
    assert der == private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert public_key_pem(private_key.public_key()) == public_pem


def test_public_key_is_a_pkix_pem(pair: tuple[bytes, bytes]) -> None:
    _, public_pem = pair
    der = pem_body(public_pem, "PUBLIC KEY")
    key = serialization.load_der_public_key(der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"


def test_every_key_pair_is_new(pair: tuple[bytes, bytes]) -> None:
    again = generate_key_pair(PASSWORD)
    assert again[1] != pair[1]
    salts = {json.loads(pem_body(p, PRIVATE_KEY_PEM_TYPE))["kdf"]["salt"] for p in (again[0], pair[0])}
    assert len(salts) == 2


# -- loading --------------------------------------------------------------------------------------------------------


def test_round_trip(pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = pair
    private_key = load_private_key(private_pem, PASSWORD)
    public_key = load_public_key(public_pem)
    assert key_id(private_key.public_key()) == key_id(public_key)
    signature = sign(private_key, b"payload")
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signature, b"payload", ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("block_type", [PRIVATE_KEY_PEM_TYPE, LEGACY_PRIVATE_KEY_PEM_TYPE])
def test_both_private_key_pem_types_load(pair: tuple[bytes, bytes], block_type: str) -> None:
    private_pem, public_pem = pair
    key = load_private_key(with_pem_type(private_pem, block_type), PASSWORD)
    assert key_id(key.public_key()) == key_id(load_public_key(public_pem))


def test_other_pem_types_are_refused(pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = pair
    with pytest.raises(InvalidKey, match="unsupported PEM type 'ENCRYPTED PRIVATE KEY'"):
        load_private_key(with_pem_type(private_pem, "ENCRYPTED PRIVATE KEY"), PASSWORD)
    with pytest.raises(InvalidKey, match="unsupported PEM type 'PUBLIC KEY'"):
        load_private_key(public_pem, PASSWORD)


def test_wrong_password_fails_clearly(pair: tuple[bytes, bytes]) -> None:
    private_pem, _ = pair
    with pytest.raises(WrongPassword, match="wrong password"):
        load_private_key(private_pem, b"not the password")
    with pytest.raises(WrongPassword):
        load_private_key(private_pem, b"")
    assert issubclass(WrongPassword, InvalidKey)
    assert issubclass(InvalidKey, ValueError)


def test_empty_password_is_allowed() -> None:
    private_pem, public_pem = generate_key_pair(b"")
    key = load_private_key(private_pem, b"")
    assert key_id(key.public_key()) == key_id(load_public_key(public_pem))
    with pytest.raises(WrongPassword):
        load_private_key(private_pem, b" ")


def test_tampered_ciphertext_is_refused(pair: tuple[bytes, bytes]) -> None:
    def flip(doc: dict[str, str]) -> None:
        raw = bytearray(base64.b64decode(doc["ciphertext"]))
        raw[5] ^= 1
        doc["ciphertext"] = base64.b64encode(bytes(raw)).decode()

    with pytest.raises(WrongPassword):
        load_private_key(reencrypt(pair[0], flip), PASSWORD)


@pytest.mark.parametrize("name", sorted(GO_VECTORS))
def test_go_encrypted_package_vectors_decrypt(name: str) -> None:
    assert base64.b64decode(json.loads(decrypt(GO_VECTORS[name], GO_PASSPHRASE))) == GO_PLAINTEXT
    with pytest.raises(WrongPassword):
        decrypt(GO_VECTORS[name], b"supersecreT")


def test_go_encrypted_package_decrypt_vector() -> None:
    assert decrypt(GO_DECRYPT_VECTOR, GO_PASSPHRASE) == GO_PLAINTEXT


def test_unsupported_scrypt_parameters_are_refused_before_deriving() -> None:
    with pytest.raises(InvalidKey, match="unsupported scrypt parameters"):
        decrypt(GO_UNSUPPORTED_PARAMS, GO_PASSPHRASE)


def test_a_legacy_cosign_key_loads() -> None:
    """What older cosign wrote: ENCRYPTED COSIGN PRIVATE KEY with N=32768."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, nonce = bytes(range(32)), bytes(range(24))
    box = nacl.secret.SecretBox(Scrypt(salt=salt, length=32, n=32768, r=8, p=1).derive(PASSWORD))
    envelope = {
        "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(box.encrypt(der, nonce).ciphertext).decode(),
    }
    body = base64.encodebytes(json.dumps(envelope).encode()).decode()
    pem = f"-----BEGIN {LEGACY_PRIVATE_KEY_PEM_TYPE}-----\n{body}-----END {LEGACY_PRIVATE_KEY_PEM_TYPE}-----\n"
    loaded = load_private_key(pem.encode(), PASSWORD)
    assert key_id(loaded.public_key()) == key_id(private_key.public_key())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["kdf"].update(name="pbkdf2"), "unsupported key derivation 'pbkdf2'"),
        (lambda d: d["cipher"].update(name="aes-gcm"), "unsupported cipher 'aes-gcm'"),
        (lambda d: d["kdf"]["params"].update(N=1 << 30), "unsupported scrypt parameters"),
        (lambda d: d["kdf"]["params"].update(N="65536"), "unsupported scrypt parameters"),
        (lambda d: d["kdf"]["params"].update(N=True), "unsupported scrypt parameters"),
        (lambda d: d["cipher"].update(nonce=base64.b64encode(b"short").decode()), "nonce must be 24 bytes"),
        (lambda d: d["cipher"].update(nonce="!!not base64!!"), "'cipher.nonce' is not valid base64"),
        (lambda d: d.update(ciphertext=5), "'ciphertext' is not a base64 string"),
        (lambda d: d.pop("kdf"), "no 'kdf.name'"),
        (lambda d: d["kdf"].pop("salt"), "no 'kdf.salt'"),
    ],
)
def test_malformed_envelopes_are_refused(pair: tuple[bytes, bytes], mutate: object, message: str) -> None:
    with pytest.raises(InvalidKey, match=re.escape(message)):
        load_private_key(reencrypt(pair[0], mutate), PASSWORD)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key",
        b"\xff\xfe binary",
        b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n",
        b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n%%%%\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nW10=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n"
        b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\n" + b"A" * 70_000 + b"\n-----END PUBLIC KEY-----\n",
    ],
)
def test_garbage_is_refused_with_invalid_key(data: bytes) -> None:
    with pytest.raises(InvalidKey):
        load_private_key(data, PASSWORD)
    with pytest.raises(InvalidKey):
        load_public_key(data)


def test_an_encrypted_key_that_is_not_a_private_key_is_refused() -> None:
    def not_a_key(private_key: PrivateKey) -> bytes:
        pem = encrypt_private_key(private_key, PASSWORD)
        doc = json.loads(pem_body(pem, PRIVATE_KEY_PEM_TYPE))
        salt, nonce = (base64.b64decode(doc["kdf"]["salt"]), base64.b64decode(doc["cipher"]["nonce"]))
        box = nacl.secret.SecretBox(Scrypt(salt=salt, length=32, n=65536, r=8, p=1).derive(PASSWORD))
        doc["ciphertext"] = base64.b64encode(box.encrypt(b"not DER", nonce).ciphertext).decode()
        return reencrypt(pem, lambda d: d.update(ciphertext=doc["ciphertext"]))

    with pytest.raises(InvalidKey, match="not PKCS#8 DER"):
        load_private_key(not_a_key(ec.generate_private_key(ec.SECP256R1())), PASSWORD)


# -- public key types -----------------------------------------------------------------------------------------------


def _pub(key: object) -> bytes:
    public = key.public_key()  # type: ignore[attr-defined]
    pem: bytes = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem


@pytest.mark.parametrize(
    ("make", "algorithm"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ecdsa-p256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ecdsa-p384"),
        (ed25519.Ed25519PrivateKey.generate, "ed25519"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-2048"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072), "rsa-3072"),
    ],
    ids=["p256", "p384", "ed25519", "rsa2048", "rsa3072"],
)
def test_accepted_public_key_types(make: object, algorithm: str) -> None:
    assert callable(make)
    private_key = make()
    key = load_public_key(_pub(private_key))
    assert algorithm_of(key) == algorithm
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id(key) == hashlib.sha256(der).hexdigest()
    # A private key of each accepted type round-trips through the cosign format too.
    loaded = load_private_key(encrypt_private_key(private_key, PASSWORD), PASSWORD)
    assert key_id(loaded.public_key()) == key_id(key)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ec.generate_private_key(ec.SECP521R1()), "unsupported elliptic curve secp521r1"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "unsupported elliptic curve secp256k1"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "at least 2048 bits"),  # noqa: S505
        (ed448.Ed448PrivateKey.generate, "unsupported key type"),
        (lambda: dsa.generate_private_key(key_size=2048), "unsupported key type"),
    ],
    ids=["p521", "secp256k1", "rsa1024", "ed448", "dsa"],
)
def test_refused_public_key_types(make: object, message: str) -> None:
    assert callable(make)
    private_key = make()
    with pytest.raises(InvalidKey, match=message):
        load_public_key(_pub(private_key))
    # A private key of a refused type is refused the same way when loaded from the cosign format.
    with pytest.raises(InvalidKey, match=message):
        load_private_key(encrypt_private_key(private_key, PASSWORD), PASSWORD)


def test_a_public_key_pem_with_bad_der_is_refused() -> None:
    pem = b"-----BEGIN PUBLIC KEY-----\nAAECAwQ=\n-----END PUBLIC KEY-----\n"
    with pytest.raises(InvalidKey, match="not a valid public key"):
        load_public_key(pem)


def test_key_id_is_the_sha256_of_the_subject_public_key_info(pair: tuple[bytes, bytes]) -> None:
    _, public_pem = pair
    der = pem_body(public_pem, "PUBLIC KEY")
    assert key_id(load_public_key(public_pem)) == hashlib.sha256(der).hexdigest()
    # Surrounding text and CRLF line endings do not change the key.
    noisy = b"a comment\r\n" + public_pem.replace(b"\n", b"\r\n")
    assert key_id(load_public_key(noisy)) == key_id(load_public_key(public_pem))


# -- signing --------------------------------------------------------------------------------------------------------


def test_ecdsa_signatures_are_der_over_sha256(pair: tuple[bytes, bytes]) -> None:
    private_key = load_private_key(pair[0], PASSWORD)
    payload = b'{"critical":{}}'
    signature = sign(private_key, payload)
    r, s = decode_dss_signature(signature)  # ASN.1 DER SEQUENCE { r, s }, as Go's ecdsa.SignASN1
    assert r > 0
    assert s > 0
    public_key = load_public_key(pair[1])
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, payload + b" ", ec.ECDSA(hashes.SHA256()))


def test_rsa_and_ed25519_signatures() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_key.public_key().verify(sign(rsa_key, b"data"), b"data", padding.PKCS1v15(), hashes.SHA256())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_key.public_key().verify(sign(ed_key, b"data"), b"data")
