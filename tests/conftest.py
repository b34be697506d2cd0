"""Shared fixtures: trustme certificates and a real TLS server on 127.0.0.1:0."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from securechat import tls
from securechat.server.config import ServerConfig
from securechat.server.store import Store
from securechat.server.store.pg import PgStore
from tests import pg
from tests import redis as redis_support
from tests.pg import PgCluster
from tests.redis import RedisServer
from tests.support import IrcClient, ServerThread


@pytest.fixture(autouse=True)
def no_unexpected_error_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """An ERROR from securechat is a bug (the core's boundaries log them): fail the test,
    unless it declares with ``@pytest.mark.logs_error`` that it provokes one on purpose."""
    yield
    if request.node.get_closest_marker("logs_error") is not None:
        return
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    errors = [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR and r.name.startswith("securechat")
    ]
    if errors:
        pytest.fail("unexpected ERROR log: " + "; ".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(tls_ca: trustme.CA) -> trustme.LeafCert:
    return tls_ca.issue_cert("localhost", "127.0.0.1", "::1")


@pytest.fixture
def ca_file(tls_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def cert_files(server_cert: trustme.LeafCert, tmp_path: Path) -> tuple[Path, Path]:
    """(certificate chain PEM, key PEM) of the test server, written to files."""
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return cert, key


@pytest.fixture
def server_context(cert_files: tuple[Path, Path]) -> ssl.SSLContext:
    """The server's real TLS context, built by securechat.tls from trustme files."""
    return tls.server_context(*cert_files)


@pytest.fixture
def client_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


def test_config(**changes: object) -> ServerConfig:
    """Loopback, an ephemeral port, and no database unless a test asks for ``data_dir``.
    Every test client comes from 127.0.0.1, so per-address connection limits are lifted
    unless a test sets them (at accept too); flood control stays on as in production."""
    relaxed = {
        "connect_burst": 100_000,
        "max_connections_per_address": 100_000,
        "accept_burst": 100_000,
        "max_sockets_per_address": 100_000,
        "max_handshakes_per_address": 100_000,
    }
    return ServerConfig(
        host="127.0.0.1", port=0, name="test.server", data_dir=None, **relaxed
    ).replace(**changes)


@pytest.fixture
def make_server(
    server_context: ssl.SSLContext,
) -> Iterator[Callable[..., ServerThread]]:
    """Start a server with config changes, e.g. ``make_server(sendq_bytes=4096)``."""
    started: list[ServerThread] = []

    def start(
        motd: list[str] | None = None, server_options: dict[str, Any] | None = None, **changes: Any
    ) -> ServerThread:
        config = test_config(**changes)
        server = ServerThread(config, server_context, motd, **(server_options or {})).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., ServerThread]) -> ServerThread:
    """The default server, with loopback exempt from flood pacing: most tests send faster
    than a person types. Flood control is tested with ``make_server`` and its own settings."""
    return make_server(exempt=("127.0.0.0/8",))


@pytest.fixture
def connect(
    server: ServerThread, client_context: ssl.SSLContext
) -> Iterator[Callable[..., IrcClient]]:
    """Open TLS clients to ``server``; ``connect("alice")`` also registers the nick."""
    clients: list[IrcClient] = []

    def open_client(nick: str | None = None, caps: tuple[str, ...] = ()) -> IrcClient:
        client = IrcClient.connect(server.host, server.port, client_context)
        clients.append(client)
        return client.register(nick, caps) if nick else client

    yield open_client
    for client in clients:
        client.close()


# --- PostgreSQL (tests/pg.py) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One real PostgreSQL for the session (a few seconds to start); skipped, with the
    reason, only where it cannot run at all."""
    reason = pg.unavailable()
    if reason is not None:
        pytest.skip(reason)
    bin_dir = pg.find_bin_dir()
    assert bin_dir is not None
    cluster = PgCluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a fresh, empty database of the session's PostgreSQL."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new, empty store of each backend: the same behaviour tests run on both."""
    if request.param == "sqlite":
        with Store.open(tmp_path / "data" / "securechat.db") as opened:
            yield opened
        return
    url = request.getfixturevalue("pg_url")
    with PgStore.connect(url) as pg_store:
        yield pg_store


# --- Redis (tests/redis.py) --------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session; skipped, with the reason, where it cannot run."""
    reason = redis_support.unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of a logical database of the session's Redis that no other test used."""
    return redis_server.url()
