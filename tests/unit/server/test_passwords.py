from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.server.passwords import (
    MIN_PASSWORD_LENGTH,
    SCRYPT_N,
    hash_password,
    verify_password,
)

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PASSWORD)


def _encode(n: int, r: int, p: int, salt: bytes, password: str) -> str:
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return "$".join(
        (
            "scrypt",
            str(n),
            str(r),
            str(p),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        )
    )


def test_hash_is_self_describing_with_current_parameters(stored: str) -> None:
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", SCRYPT_N, 8, 1)
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32


def test_each_hash_gets_its_own_salt(stored: str) -> None:
    again = hash_password(PASSWORD)
    assert again.split("$")[4] != stored.split("$")[4]
    assert verify_password(PASSWORD, again)


def test_right_password_verifies(stored: str) -> None:
    assert verify_password(PASSWORD, stored)


def test_wrong_password_does_not_verify(stored: str) -> None:
    assert not verify_password(PASSWORD + "!", stored)
    assert not verify_password("", stored)


def test_short_password_is_refused() -> None:
    with pytest.raises(ValueError, match=str(MIN_PASSWORD_LENGTH)):
        hash_password("x" * (MIN_PASSWORD_LENGTH - 1))


def test_minimum_length_password_is_accepted() -> None:
    assert verify_password("x" * MIN_PASSWORD_LENGTH, hash_password("x" * MIN_PASSWORD_LENGTH))


def test_composed_and_decomposed_accents_are_the_same_password() -> None:
    composed = "caf\u00e9 au lait"
    decomposed = "cafe\u0301 au lait"
    assert verify_password(decomposed, hash_password(composed))


def test_missing_account_never_verifies() -> None:
    assert not verify_password(PASSWORD, None)


def test_hash_made_with_older_parameters_still_verifies() -> None:
    old = _encode(2**10, 8, 1, b"0123456789abcdef", PASSWORD)
    assert verify_password(PASSWORD, old)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext-password",
        "bcrypt$16384$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$not base64!$AAAA",
        "scrypt$abc$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "scrypt$1000$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        # a hostile cost (2**40) must be rejected, not attempted
        "scrypt$1099511627776$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$",
        "scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$MDEy$extra",
    ],
)
def test_malformed_stored_value_is_no_match(encoded: str) -> None:
    assert not verify_password(PASSWORD, encoded)


def test_unencodable_password_is_no_match(stored: str) -> None:
    assert not verify_password("lone \ud800 surrogate", stored)
    assert not verify_password("lone \ud800 surrogate", None)


@settings(max_examples=25, deadline=None)
@given(password=st.text(max_size=40), encoded=st.text(max_size=120))
def test_verify_never_raises(password: str, encoded: str) -> None:
    assert verify_password(password, encoded) in (True, False)
