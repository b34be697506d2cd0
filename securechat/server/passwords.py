"""Password hashing for accounts: scrypt with a per-account salt.

Rules:

- A stored hash is one self-describing string,
  ``scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>``, so the cost parameters can be raised
  later: old hashes keep verifying with the parameters they were made with. (Upgrading a
  hash on login is not built: it would take a ``Store`` method and a bulk-lane job.)
- Passwords are NFC-normalized before hashing (as RFC 8265 "OpaqueString" does), so the same
  password typed on two systems that compose accents differently still matches.
- ``verify_password`` compares in constant time and never raises: a malformed stored value is
  simply "no match".
- Hashing is deliberately slow (about 50 ms and 16 MiB of memory with the default parameters).
  Callers on an event loop MUST run ``hash_password`` and ``verify_password`` off it — the
  server does so through the bounded hashing lanes of hashing.py — and not on the store's
  writer thread either, where it would hold up history commits.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass

from securechat.protocol.services import MIN_PASSWORD_LENGTH

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32

_SCHEME = "scrypt"
# Bounds on parameters read back from storage, so that a damaged or hostile stored value can
# neither make verification allocate gigabytes nor make hashlib raise.
_MAX_N = 2**20
_MAX_R_OR_P = 16
_MAX_HASH_BYTES = 64


@dataclass(frozen=True, slots=True)
class _Params:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_password(password: str) -> str:
    """Hash a new password with a fresh random salt. Raises ValueError if it is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return "$".join(
        (_SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest))
    )


def verify_password(password: str, encoded: str | None) -> bool:
    """True when ``password`` matches the stored hash ``encoded``.

    Pass ``None`` for an account that does not exist: a dummy hash is computed anyway, so the
    reply takes as long as for a real account and timing does not reveal which names exist.
    """
    params = _parse(encoded) if encoded is not None else None
    if params is None:
        _burn_equivalent_time(password)
        return False
    try:
        digest = _scrypt(password, params.salt, params.n, params.r, params.p, len(params.digest))
    except (ValueError, OverflowError, MemoryError):
        return False
    return hmac.compare_digest(digest, params.digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_maxmem(n, r, p))


def _maxmem(n: int, r: int, p: int) -> int:
    # OpenSSL needs 128*r*(n+2) bytes for V plus 128*r*p for B; its default cap is 32 MiB, too
    # small once n is raised, so ask for what the parameters need plus some slack.
    return 128 * r * (n + 2) + 128 * r * p + 1024 * 1024


def _parse(encoded: str) -> _Params | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    if not _sane(n, r, p, salt, digest):
        return None
    return _Params(n, r, p, salt, digest)


def _sane(n: int, r: int, p: int, salt: bytes, digest: bytes) -> bool:
    n_is_power_of_two = 1 < n <= _MAX_N and n & (n - 1) == 0
    return (
        n_is_power_of_two
        and 1 <= r <= _MAX_R_OR_P
        and 1 <= p <= _MAX_R_OR_P
        and len(salt) >= 8
        and 16 <= len(digest) <= _MAX_HASH_BYTES
    )


def _burn_equivalent_time(password: str) -> None:
    # A password with lone surrogates cannot be encoded: it matches nothing, nothing to hide.
    with contextlib.suppress(ValueError):
        _scrypt(password, b"\0" * SALT_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
