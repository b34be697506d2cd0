"""`securechat serve` as a user runs it: generated certificates, a subprocess, real clients."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from tests.support import IrcClient

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0


def securechat(*args: str) -> list[str]:
    if args[:1] == ("serve",):  # never the fixed default web port 8443 in a test: a free one
        args = ("serve", "--web-port", "0", *args[1:])
    return [sys.executable, "-m", "securechat", *args]


@pytest.fixture(scope="module")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [str(ROOT / "scripts" / "gen-dev-certs"), "--out", str(out), "--force"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


class ServeProcess:
    def __init__(self, *args: str, open_files: int | None = None) -> None:
        """``open_files`` caps the server's descriptors (soft and hard) to provoke EMFILE."""

        def limit_open_files() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen(
            securechat("serve", *args),
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            preexec_fn=limit_open_files,
        )
        self.port = self._wait_for_port()

    def wait_for_log(self, needle: str) -> str:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # blocks until the line or EOF; the test timeout bounds it
            if needle in line:
                return line
        raise AssertionError(f"server exited with {self.proc.wait()} before logging {needle!r}")

    def _wait_for_port(self) -> int:
        assert self.proc.stderr is not None
        self.startup_log: list[str] = []  # what the server logged before it listened
        for line in self.proc.stderr:  # blocks until the line or EOF; the test timeout bounds it
            self.startup_log.append(line)
            match = re.search(r"listening on \S+:(\d+)", line)
            if match:
                return int(match.group(1))
        raise AssertionError(f"server exited with {self.proc.wait()} before listening")

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=STARTUP_TIMEOUT)
        return self.proc.returncode, err


@pytest.fixture
def serve(dev_certs: Path, tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "data")),
        *("--cert", str(dev_certs / "server.pem"), "--key", str(dev_certs / "server.key")),
    )
    yield server
    if server.proc.poll() is None:
        server.stop()


def trusting(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    return context


def test_generated_certificates_serve_a_chat(serve: ServeProcess, dev_certs: Path) -> None:
    context = trusting(dev_certs / "ca.pem")
    alice = IrcClient.connect("127.0.0.1", serve.port, context).register("alice")
    bob = IrcClient.connect("127.0.0.1", serve.port, context).register("bob")
    alice.join("#e2e")
    bob.join("#e2e")
    alice.send("PRIVMSG #e2e :hello from a real process")
    assert bob.expect(r"PRIVMSG #e2e").params[1] == "hello from a real process"


def test_near_its_descriptor_limit_the_server_sheds_silent_handshakes_and_serves_a_newcomer(
    dev_certs: Path,
) -> None:
    """80 silent sockets from ten addresses against a 64-descriptor process: the newest
    handshakes are shed to keep descriptors free, and a client from elsewhere is served."""
    server = ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", "none", "--log-level", "info"),
        *("--cert", str(dev_certs / "server.pem"), "--key", str(dev_certs / "server.key")),
        open_files=64,
    )
    silent: list[socket.socket] = []
    try:
        for n in range(80):  # more than it has descriptors for; 8 per address, under its caps
            sock = socket.socket()
            sock.bind((f"127.0.1.{n % 10 + 1}", 0))
            sock.settimeout(10)
            sock.connect(("127.0.0.1", server.port))
            silent.append(sock)
        assert "reason=descriptors" in server.wait_for_log("event=shed")
        alice = IrcClient.connect(
            "127.0.0.1", server.port, trusting(dev_certs / "ca.pem"), source="127.0.0.2"
        )
        alice.register("alice")
        alice.send("QUIT")
        alice.expect_closed()
    finally:
        for sock in silent:
            sock.close()
        code, err = server.stop()
    assert code == 0
    assert "Traceback" not in err


def test_sigterm_tells_clients_and_exits_zero(serve: ServeProcess, dev_certs: Path) -> None:
    alice = IrcClient.connect("127.0.0.1", serve.port, trusting(dev_certs / "ca.pem"))
    alice.register("alice")
    code, err = serve.stop()
    assert code == 0
    assert any(b"Server shutting down" in line for line in alice.expect_closed())
    assert "event=stop" in err and "Traceback" not in err


def test_sigterm_right_after_the_listening_line_stops_cleanly(serve: ServeProcess) -> None:
    """A supervisor may stop us the moment we say we listen: a clean exit 0, not a kill."""
    code, err = serve.stop()
    assert code == 0 and "event=stop" in err


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `securechat serve` to completion in an empty directory (its default data dir)."""
    with tempfile.TemporaryDirectory() as workdir:
        return subprocess.run(
            securechat("serve", *args),
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            cwd=workdir,
            env={**os.environ},
        )


def test_missing_certificate_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_serve(
        "--port", "0", "--cert", str(tmp_path / "nope.pem"), "--key", str(tmp_path / "nope.key")
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "nope.pem" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_port_is_one_line_and_exit_2() -> None:
    result = run_serve("--port", "99999")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "securechat serve: error: --port must be a port number from 0 to 65535, got 99999"
    )


def test_bad_config_value_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('ping_interval = "soon"\n')
    result = run_serve("--config", str(config))
    assert result.returncode == 2 and "ping_interval" in result.stderr
    assert str(config) in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_is_one_line_and_exit_2(serve: ServeProcess, dev_certs: Path) -> None:
    result = run_serve(
        "--host",
        "127.0.0.1",
        "--port",
        str(serve.port),
        "--cert",
        str(dev_certs / "server.pem"),
        "--key",
        str(dev_certs / "server.key"),
    )
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr


def test_sighup_reloads_a_renewed_certificate_without_dropping_clients(
    dev_certs: Path, tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    shutil.copytree(dev_certs, certs)
    server = ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", "none"),
        *("--cert", str(certs / "server.pem"), "--key", str(certs / "server.key")),
    )
    try:
        context = trusting(certs / "ca.pem")
        alice = IrcClient.connect("127.0.0.1", server.port, context).register("alice")
        before = alice.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
        subprocess.run(
            [str(ROOT / "scripts" / "gen-dev-certs"), "--out", str(certs), "--force"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.proc.send_signal(signal.SIGHUP)
        assert server.proc.stderr is not None
        for line in server.proc.stderr:  # bounded by the test timeout
            if "event=reloaded" in line:
                break
        bob = IrcClient.connect("127.0.0.1", server.port, context).register("bob")
        assert bob.sock.getpeercert(binary_form=True) != before  # type: ignore[union-attr]
        bob.send("PRIVMSG alice :renewed")
        alice.expect("renewed")
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err


# --------------------------------------------------------------------------- key and certificate
# Review L4 (exposed key, expired certificate) and L5 (a FIFO blocked SIGHUP and SIGTERM).


def copied_certs(dev_certs: Path, tmp_path: Path) -> Path:
    certs = tmp_path / "certs"
    shutil.copytree(dev_certs, certs)
    return certs


def serve_args(certs: Path, *extra: str) -> tuple[str, ...]:
    return (
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", "none"),
        *("--cert", str(certs / "server.pem"), "--key", str(certs / "server.key")),
        *extra,
    )


def test_generated_keys_pass_the_permission_check(dev_certs: Path) -> None:
    assert (dev_certs / "server.key").stat().st_mode & 0o777 == 0o600  # as gen-dev-certs writes


def test_a_world_readable_key_is_one_line_and_exit_2(dev_certs: Path, tmp_path: Path) -> None:
    certs = copied_certs(dev_certs, tmp_path)
    (certs / "server.key").chmod(0o644)
    result = run_serve(*serve_args(certs))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "server.key is readable or writable by every user (mode 0644)" in result.stderr
    assert "chmod 600" in result.stderr and "allow_insecure_key_permissions" in result.stderr


def test_an_allowed_world_readable_key_serves_with_a_warning(
    dev_certs: Path, tmp_path: Path
) -> None:
    certs = copied_certs(dev_certs, tmp_path)
    (certs / "server.key").chmod(0o644)
    server = ServeProcess(*serve_args(certs, "--allow-insecure-key-permissions"))
    try:
        client = IrcClient.connect("127.0.0.1", server.port, trusting(certs / "ca.pem"))
        client.register("alice")
    finally:
        code, _ = server.stop()
    assert code == 0
    [warning] = [line for line in server.startup_log if "insecure_key_permissions" in line]
    assert "warning event=insecure_key_permissions" in warning and "mode 0644" in warning


def test_an_expired_certificate_is_one_line_and_exit_2(tmp_path: Path) -> None:
    ca = trustme.CA()
    past = datetime.now(UTC) - timedelta(days=1)
    leaf = ca.issue_cert("localhost", not_before=past - timedelta(days=30), not_after=past)
    cert, key = tmp_path / "old.pem", tmp_path / "old.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    result = run_serve("--port", "0", "--cert", str(cert), "--key", str(key))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "old.pem expired on" in result.stderr and "Traceback" not in result.stderr


def test_a_fifo_as_certificate_is_one_line_and_exit_2_at_start(
    dev_certs: Path, tmp_path: Path
) -> None:
    certs = copied_certs(dev_certs, tmp_path)
    (certs / "server.pem").unlink()
    os.mkfifo(certs / "server.pem")
    result = run_serve(*serve_args(certs))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "server.pem is a named pipe (FIFO), not a regular file" in result.stderr


def test_sighup_with_a_fifo_as_certificate_fails_the_reload_and_sigterm_still_stops(
    dev_certs: Path, tmp_path: Path
) -> None:
    certs = copied_certs(dev_certs, tmp_path)
    server = ServeProcess(*serve_args(certs))
    try:
        bystander = IrcClient.connect("127.0.0.1", server.port, trusting(certs / "ca.pem"))
        bystander.register("bystander")
        (certs / "server.pem").unlink()
        os.mkfifo(certs / "server.pem")
        server.proc.send_signal(signal.SIGHUP)
        line = server.wait_for_log("event=reload_failed")
        assert "server.pem is a named pipe (FIFO)" in line
        bystander.send("PING :still-here")
        bystander.expect("still-here")
    finally:
        code, err = server.stop()  # communicate() has a timeout: a hung server fails here
    assert code == 0 and "Traceback" not in err


def test_sighup_with_an_expired_certificate_keeps_the_old_one(
    dev_certs: Path, tmp_path: Path
) -> None:
    certs = copied_certs(dev_certs, tmp_path)
    server = ServeProcess(*serve_args(certs))
    try:
        context = trusting(certs / "ca.pem")
        before = IrcClient.connect("127.0.0.1", server.port, context).register("before")
        past = datetime.now(UTC) - timedelta(days=1)
        expired = trustme.CA().issue_cert(
            "localhost", not_before=past - timedelta(days=9), not_after=past
        )
        expired.cert_chain_pems[0].write_to_path(str(certs / "server.pem"))
        expired.private_key_pem.write_to_path(str(certs / "server.key"))
        server.proc.send_signal(signal.SIGHUP)
        assert "server.pem expired on" in server.wait_for_log("event=reload_failed")
        after = IrcClient.connect("127.0.0.1", server.port, context).register("after")
        after.send("PRIVMSG before :old certificate kept")
        before.expect("old certificate kept")
    finally:
        code, _ = server.stop()
    assert code == 0
