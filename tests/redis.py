"""A real redis-server for the cluster tests: one per session, reached only through a unix
socket in a temp dir (``--port 0``: no TCP port), no persistence; a fresh logical database per
test, so tests never see each other's streams. ``restart`` stops and starts it on the same
socket, empty (as a Redis without persistence comes back)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

DATABASES = 4096
START_TIMEOUT = 10.0


def unavailable() -> str | None:
    """Why the cluster tests cannot run here, or None."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return "the redis package is not installed (the cluster extra)"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (scripts/test installs Debian's redis-server)"
    return None


class RedisServer:
    def __init__(self, password: str | None = None) -> None:
        self.password = password  # requirepass: clients must AUTH with it
        self.root = Path(tempfile.mkdtemp(prefix="scredis-"))  # short: socket paths are limited
        self.socket = self.root / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self._databases = itertools.count(1)

    def start(self) -> None:
        command = [
            "redis-server",
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--databases", str(DATABASES),
            "--dir", str(self.root),
            *(("--requirepass", self.password) if self.password else ()),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import redis

        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(unix_socket_path=str(self.socket), password=self.password)
        while True:
            try:
                client.ping()
                client.close()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # polling for readiness, not waiting for time to pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: Redis holds its connections and answers nothing (a cut-off network)."""
        assert self.process is not None
        self.process.send_signal(19)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(18)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        if self.process is not None:
            self.resume()
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: int | None = None, password: str | None = None) -> str:
        """A unix:// URL of a database no other test used (or of ``database``), with
        ``password`` (default: the server's)."""
        number = next(self._databases) % DATABASES if database is None else database
        password = self.password if password is None else password
        auth = f":{password}@" if password else ""
        return f"unix://{auth}{self.socket}?db={number}"
