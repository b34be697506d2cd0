"""Reload (SIGHUP, REHASH) reads its files off the event loop, and refuses bad ones.

Review L5: a FIFO as the certificate path blocked the event loop on SIGHUP for good (no
PONG, SIGTERM ignored). Review L4: an exposed key or an expired certificate was taken on
reload. Each test reloads through ``securechat.server.main.load_settings`` (what SIGHUP
runs) from a real config file, while a bystander's PING must still be answered.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from securechat.protocol import numerics as n
from securechat.server.config import OperBlock
from securechat.server.main import add_arguments, load_settings
from securechat.server.passwords import hash_password
from tests.support import IrcClient, ServerThread

MakeServer = Callable[..., ServerThread]
TIMEOUT = 10.0


def config_file(directory: Path, cert: Path, key: Path, **extra: str) -> Path:
    path = directory / "server.toml"
    lines = [
        f'cert = "{cert}"',
        f'key = "{key}"',
        'host = "127.0.0.1"',
        "port = 0",
        'data_dir = "none"',
        'name = "test.server"',
        *(f"{name} = {value}" for name, value in extra.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def reload_from(config: Path) -> Callable[[], tuple[object, ssl.SSLContext]]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return functools.partial(load_settings, parser.parse_args(["--config", str(config)]))


def start(make_server: MakeServer, config: Path, **changes: object) -> ServerThread:
    return make_server(server_options={"reload_settings": reload_from(config)}, **changes)


def bystander_of(server: ServerThread, context: ssl.SSLContext) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register("bystander")


@contextlib.contextmanager
def stuck_reload() -> Iterator[Callable[[], tuple[object, ssl.SSLContext]]]:
    """A reload_settings that never returns while the block runs: it stands in for a read on a
    mount that never answers. Released on the way out, so its thread ends with the test."""
    stuck = threading.Event()

    def hang() -> tuple[object, ssl.SSLContext]:
        stuck.wait()
        raise AssertionError("released only after the test")

    try:
        yield hang
    finally:
        stuck.set()


def reload_and_wait(
    server: ServerThread, bystander: IrcClient, caplog: pytest.LogCaptureFixture, outcome: str
) -> str:
    """Send the server SIGHUP's callback; the bystander is answered while the reload runs;
    returns the reload's log line once it appears."""
    server.loop.call_soon_threadsafe(server.server.reload)
    bystander.send("PING :during-reload")
    bystander.expect("during-reload")
    deadline = time.monotonic() + TIMEOUT
    while True:
        lines = [r.getMessage() for r in caplog.records if f"event={outcome}" in r.getMessage()]
        if lines:
            return lines[0]
        assert time.monotonic() < deadline, f"no {outcome} logged"
        time.sleep(0.02)  # a polling interval


def still_serves_the_old_certificate(server: ServerThread, client_context: ssl.SSLContext) -> None:
    fresh = IrcClient.connect(server.host, server.port, client_context).register("fresh")
    fresh.close()


@pytest.mark.timeout(60)
@pytest.mark.logs_error  # an operator event logged at ERROR
def test_a_fifo_as_certificate_fails_the_reload_and_the_loop_keeps_answering(
    make_server: MakeServer,
    cert_files: tuple[Path, Path],
    client_context: ssl.SSLContext,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    server = start(make_server, config_file(tmp_path, fifo, cert_files[1]))
    bystander = bystander_of(server, client_context)
    with caplog.at_level(logging.INFO, logger="securechat"):
        line = reload_and_wait(server, bystander, caplog, "reload_failed")
    assert "fifo.pem is a named pipe (FIFO), not a regular file" in line
    still_serves_the_old_certificate(server, client_context)


@pytest.mark.timeout(60)
@pytest.mark.logs_error  # an operator event logged at ERROR
def test_rehash_with_a_fifo_as_certificate_tells_the_operator_and_others_are_answered(
    make_server: MakeServer,
    cert_files: tuple[Path, Path],
    client_context: ssl.SSLContext,
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    opers = {"admin": OperBlock(hash_password("oper-s3cret"))}
    server = start(make_server, config_file(tmp_path, fifo, cert_files[1]), opers=opers)
    bystander = bystander_of(server, client_context)
    oper = IrcClient.connect(server.host, server.port, client_context).register("admin")
    oper.send("OPER admin oper-s3cret")
    oper.expect(n.RPL_YOUREOPER)
    oper.send("REHASH")
    bystander.send("PING :during-rehash")
    bystander.expect("during-rehash")
    notice = oper.expect("Reload failed")
    assert "fifo.pem is a named pipe (FIFO)" in notice.params[-1]


@pytest.mark.timeout(60)
@pytest.mark.logs_error  # an operator event logged at ERROR
def test_a_reload_stuck_reading_fails_after_reload_timeout_and_the_server_still_stops(
    make_server: MakeServer, client_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    with stuck_reload() as hang:
        server = make_server(server_options={"reload_settings": hang}, reload_timeout=0.5)
        bystander = bystander_of(server, client_context)
        with caplog.at_level(logging.INFO, logger="securechat"):
            line = reload_and_wait(server, bystander, caplog, "reload_failed")
        assert "reading the settings took more than 0.5 s" in line
        server.stop()  # the stuck thread does not hold up shutdown
        assert server.loop.is_closed()


@pytest.mark.timeout(60)
@pytest.mark.logs_error  # an operator event logged at ERROR
def test_a_second_reload_while_one_runs_is_refused_not_stacked(
    make_server: MakeServer, client_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    with stuck_reload() as hang:
        server = make_server(server_options={"reload_settings": hang}, reload_timeout=30.0)
        bystander = bystander_of(server, client_context)
        server.loop.call_soon_threadsafe(server.server.reload)
        with caplog.at_level(logging.INFO, logger="securechat"):
            line = reload_and_wait(server, bystander, caplog, "reload_failed")
        assert "a reload is already running" in line


@pytest.mark.logs_error  # an operator event logged at ERROR
def test_a_world_readable_key_fails_the_reload(
    make_server: MakeServer,
    cert_files: tuple[Path, Path],
    client_context: ssl.SSLContext,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cert, key = cert_files
    server = start(make_server, config_file(tmp_path, cert, key))
    bystander = bystander_of(server, client_context)
    key.chmod(0o644)
    with caplog.at_level(logging.INFO, logger="securechat"):
        line = reload_and_wait(server, bystander, caplog, "reload_failed")
    assert "server.key is readable or writable by every user (mode 0644)" in line


def test_an_allowed_world_readable_key_reloads_with_a_warning(
    make_server: MakeServer,
    cert_files: tuple[Path, Path],
    client_context: ssl.SSLContext,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cert, key = cert_files
    config = config_file(tmp_path, cert, key, allow_insecure_key_permissions="true")
    server = start(make_server, config)
    bystander = bystander_of(server, client_context)
    key.chmod(0o644)
    with caplog.at_level(logging.INFO, logger="securechat"):
        reload_and_wait(server, bystander, caplog, "reloaded")
    assert any("event=insecure_key_permissions" in r.getMessage() for r in caplog.records)


@pytest.mark.logs_error  # an operator event logged at ERROR
def test_an_expired_certificate_fails_the_reload_and_the_old_one_is_kept(
    make_server: MakeServer,
    client_context: ssl.SSLContext,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ca = trustme.CA()
    past = datetime.now(UTC) - timedelta(days=3)
    leaf = ca.issue_cert("localhost", not_before=past - timedelta(days=90), not_after=past)
    cert, key = tmp_path / "expired.pem", tmp_path / "expired.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    server = start(make_server, config_file(tmp_path, cert, key))
    bystander = bystander_of(server, client_context)
    with caplog.at_level(logging.INFO, logger="securechat"):
        line = reload_and_wait(server, bystander, caplog, "reload_failed")
    assert "expired.pem expired on" in line
    still_serves_the_old_certificate(server, client_context)
