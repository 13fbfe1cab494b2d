"""The pure parts of two-factor sign-in: RFC 6238 codes within the drift window and only for a later step than the
last one used, recovery codes' format, entropy and normalised hashing, and the otpauth URI."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pyotp

from dockyard.auth.second_factor import (
    PERIOD,
    matching_step,
    new_recovery_codes,
    new_totp_secret,
    otpauth_uri,
    recovery_hash,
)

NOW = 1_800_000_015.0  # 15 seconds into a step
STEP = int(NOW // PERIOD)


def test_rfc_6238_vector() -> None:
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); its last 6 digits are the 6-digit code.
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert matching_step(secret, "287082", None, now=59) == 1


def test_codes_match_within_one_step_either_side() -> None:
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        assert matching_step(secret, totp.at((STEP + offset) * PERIOD), None, now=NOW) == STEP + offset
    assert matching_step(secret, totp.at((STEP + 2) * PERIOD), None, now=NOW) is None
    assert matching_step(secret, totp.at((STEP - 2) * PERIOD), None, now=NOW) is None


def test_a_used_or_older_step_is_a_replay() -> None:
    secret = new_totp_secret()
    code = pyotp.TOTP(secret).at(STEP * PERIOD)
    assert matching_step(secret, code, STEP - 1, now=NOW) == STEP
    assert matching_step(secret, code, STEP, now=NOW) is None
    assert matching_step(secret, code, STEP + 1, now=NOW) is None


def test_malformed_codes_never_match() -> None:
    secret = new_totp_secret()
    code = pyotp.TOTP(secret).at(STEP * PERIOD)
    for bad in ("", "12345", "1234567", "abcdef", f"{code}0", f"-{code[1:]}"):
        assert matching_step(secret, bad, None, now=NOW) is None
    assert matching_step(secret, f" {code[:3]} {code[3:]} ", None, now=NOW) == STEP  # spaces as apps show them


def test_recovery_codes() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set("".join(groups)) <= set("abcdefghijklmnopqrstuvwxyz234567")
    code = codes[0]
    assert recovery_hash(code) == recovery_hash(code.upper().replace("-", " "))
    assert recovery_hash(code) != recovery_hash(codes[1])
    assert code not in recovery_hash(code)


def test_otpauth_uri() -> None:
    secret = new_totp_secret()
    assert len(secret) == 32  # 160 bits
    uri = urlparse(otpauth_uri(secret, "alice", "Dockyard"))
    assert uri.scheme == "otpauth"
    assert uri.netloc == "totp"
    query = parse_qs(uri.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Dockyard"]
