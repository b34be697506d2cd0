"""The ``database`` setting (``--database URL``): which URLs name a PostgreSQL database, and
how to show one to an operator without its password. Pure string work, no driver imported:
the store's pg.py connects (and only then imports psycopg).

Accepted: ``postgresql://`` and ``postgres://`` URLs in libpq's form
(https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING), unix sockets
included (``postgresql:///securechat?host=/run/postgresql``). A SQLite path or ``sqlite://``
URL is refused with a pointer to ``data_dir``, which is how SQLite is chosen: one setting per
backend, so a config never names two stores at once."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

SCHEMES = ("postgresql", "postgres")
MASK = "***"


class BadDatabaseUrl(ValueError):
    """One line saying what is wrong with the URL (its password already masked)."""


def check_database_url(url: str) -> str:
    """``url`` if it names a PostgreSQL database, else BadDatabaseUrl saying why."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise BadDatabaseUrl(
            f"{mask_password(url)!r} is not a URL; give postgresql://[user[:password]@]"
            "[host][:port]/database (for SQLite, set data_dir instead)"
        )
    if scheme.lower() == "sqlite":
        raise BadDatabaseUrl(
            f"{mask_password(url)}: SQLite is chosen with data_dir (--data-dir), not database"
        )
    if scheme.lower() not in SCHEMES:
        raise BadDatabaseUrl(
            f"{mask_password(url)}: unknown scheme {scheme!r} (use postgresql:// or postgres://)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise BadDatabaseUrl(f"{mask_password(url)}: {exc}") from None
    return url


def mask_password(url: str) -> str:
    """``url`` with the password (in the user part or a ``password=`` parameter) as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(//[^/:@]*:)[^@/]*@", rf"\g<1>{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else netloc
    query = parts.query
    if "password" in query.lower():
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = [(k, MASK if k.lower() == "password" else v) for k, v in pairs]
        query = urlencode(masked, safe="/*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    # Not urlunsplit: it would drop the "//" of an empty host (postgresql:///db).
    return (
        f"{parts.scheme}://{netloc}{parts.path}"
        + (f"?{query}" if query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )
