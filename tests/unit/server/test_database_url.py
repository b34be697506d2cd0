"""The ``database`` setting: which URLs name PostgreSQL, and passwords never shown."""

from __future__ import annotations

import pytest

from securechat.server.config import ConfigError, validate
from securechat.server.database_url import mask_password


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:///securechat",
        "postgres://chat@db.example:5433/securechat",
        "postgresql:///securechat?host=/run/postgresql",
        "postgresql://chat:secret@db.example/securechat?sslmode=require",
    ],
)
def test_postgresql_urls_in_libpq_form_are_accepted(url: str) -> None:
    assert validate("database", url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://db/securechat", "unknown scheme 'mysql'"),
        ("sqlite:///data/securechat.db", "SQLite is chosen with data_dir"),
        ("data/securechat.db", "is not a URL"),
        ("postgresql://db:port/securechat", "Port could not be cast"),
    ],
)
def test_other_urls_are_refused_saying_why(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        validate("database", url, where="--database")


def test_a_refused_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        validate("database", "mysql://chat:hunter2@db/securechat")
    assert "hunter2" not in str(caught.value) and "chat:***@" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://chat:secret@db:5432/x", "postgresql://chat:***@db:5432/x"),
        ("postgresql://:secret@/x?host=/tmp", "postgresql://:***@/x?host=/tmp"),
        (
            "postgres://chat@db/x?password=secret&sslmode=require",
            "postgres://chat@db/x?password=***&sslmode=require",
        ),
        ("postgresql:///x?host=/run/postgresql", "postgresql:///x?host=/run/postgresql"),
    ],
)
def test_the_password_is_masked_wherever_the_url_carries_it(url: str, shown: str) -> None:
    assert mask_password(url) == shown
