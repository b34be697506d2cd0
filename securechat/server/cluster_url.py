"""The ``cluster`` setting (``--cluster URL``): which URLs name a Redis, and how to show one to
an operator without its password. Pure string work: the redis driver is imported only by
cluster mode itself (securechat/server/cluster/), never by a default server."""

from __future__ import annotations

from urllib.parse import urlsplit

from securechat.server.database_url import mask_password

SCHEMES = ("redis", "rediss", "unix")


class BadClusterUrl(ValueError):
    """One line saying what is wrong with the URL (its password already masked)."""


def check_cluster_url(url: str) -> str:
    """``url`` if it names a Redis (TCP, TLS or a unix socket), else BadClusterUrl."""
    scheme, sep, _ = url.partition("://")
    shown = mask_password(url)
    if not sep:
        raise BadClusterUrl(
            f"{shown!r} is not a URL; give redis://[:password@]host[:port][/db], "
            "rediss://… (TLS) or unix:///path/to/redis.sock"
        )
    if scheme.lower() not in SCHEMES:
        raise BadClusterUrl(
            f"{shown}: unknown scheme {scheme!r} (use redis://, rediss:// or unix://)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise BadClusterUrl(f"{shown}: {exc}") from None
    if scheme.lower() == "unix" and not parts.path:
        raise BadClusterUrl(f"{shown}: a unix:// URL needs the socket's path")
    if scheme.lower() != "unix" and not parts.hostname:
        raise BadClusterUrl(f"{shown}: no host")
    return url


class ClusterError(Exception):
    """Cluster mode cannot start: one line for the operator (cluster/bus.py raises it)."""
