"""Listening sockets, peer addresses, descriptor and thread budgets, the certificate's expiry."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from securechat.logs import event
from securechat.server.config import ServerConfig
from securechat.tls import TlsSetupError, cert_der_from_pem_file, fingerprint_sha256, not_after

log = logging.getLogger("securechat.server")


def warn_if_certificate_expires(config: ServerConfig) -> None:
    """Log a warning while the certificate expires within cert_expiry_warning_days."""
    try:
        expires = not_after(cert_der_from_pem_file(config.cert))
    except (TlsSetupError, ValueError, OSError):
        return  # the file was readable at start; a broken replacement is reported by reload
    days_left = (expires - datetime.now(UTC)).total_seconds() / 86400
    if days_left < config.cert_expiry_warning_days:
        event(
            log,
            "cert_expiring",
            level=logging.WARNING,
            cert=config.cert,
            days_left=int(days_left),
            not_after=expires.isoformat(),
        )


def descriptor_budget(reserve: int) -> int:
    """Client sockets this process may hold: its descriptor limit less ``reserve`` (for
    listeners, the database, logs, metrics, and for accepting while shedding), but at least
    half of the limit, so that a tiny limit still serves someone."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(soft // 2, soft - reserve, 1)


def client_certfp(transport: asyncio.BaseTransport | None) -> str | None:
    """SHA-256 of the client's TLS certificate (for SASL EXTERNAL), or None without one.

    Python's ssl hands over only certificates it verified against ``client_ca``: with no
    CA configured the server does not even ask for one.
    """
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(True) if ssl_object is not None else None  # DER form
    return fingerprint_sha256(der) if der else None


def hash_pools(config: ServerConfig) -> dict[str, ThreadPoolExecutor]:
    """One small thread pool per hashing lane: logins never queue behind REGISTER floods."""
    sizes = {"login": config.hash_workers_login, "bulk": config.hash_workers_bulk}
    return {
        lane: ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"hash-{lane}")
        for lane, size in sizes.items()
    }


def open_listeners(host: str, port: int, reuse_port: bool = False) -> list[socket.socket]:
    """One non-blocking listening socket per address ``host`` resolves to (IPv4 and IPv6).
    ``reuse_port``: other processes may listen on the same port (``--workers``' children)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    listeners: list[socket.socket] = []
    for family, _, _, _, address in dict.fromkeys((i[0], 0, 0, "", i[4]) for i in infos):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(
            address if not listeners else (address[0], listeners[0].getsockname()[1], *address[2:])
        )
        sock.listen(1024)
        sock.setblocking(False)
        listeners.append(sock)
    return listeners


def peer_host(sock: socket.socket) -> str:
    try:
        return host_of(sock.getpeername())
    except OSError:
        return "unknown"


def host_of(address: Any) -> str:
    """The host part of a TCP peer address, IPv4 or IPv6."""
    return str(address[0])


def format_address(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def keep_listening_addresses(old: ServerConfig, new: ServerConfig) -> ServerConfig:
    """``new`` with ``old``'s host and ports: the listeners are opened once, at start."""
    if (new.host, new.port, new.web_port) == (old.host, old.port, old.web_port):
        return new
    event(
        log, "reload_ignored", level=logging.WARNING, reason="host and ports change only on restart"
    )
    return new.replace(host=old.host, port=old.port, web_port=old.web_port)
