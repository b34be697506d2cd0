"""A cluster on this machine for a benchmark: a private ``redis-server`` and N ``securechat serve``
nodes on loopback, each its own process, started and stopped together.

Redis listens on a unix socket only (``--port 0``), in a temp directory, with persistence off
(no RDB snapshots, no AOF): the bench measures fan-out, not disk. Every wait is bounded, and a
start that fails says which part failed with the tail of its log.

As a program it is what ``scripts/bench`` runs for its cluster servers: it starts the cluster,
prints one JSON line (ports, node pids, Redis socket and pid), and stops everything on SIGTERM
or SIGINT:

    python -m securechat.bench.local_cluster --nodes 2 --cert C --key K --dir DIR [-- SERVE ARGS]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from securechat.bench import redis_probe

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
POLL_S = 0.05
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, with its terminating NUL


class ClusterStartError(Exception):
    """A part of the cluster did not start; the message names it and quotes its log."""


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LocalCluster:
    def __init__(
        self,
        nodes: int,
        workdir: Path,
        cert: Path,
        key: Path,
        serve_args: Sequence[str] = (),
        python: str = sys.executable,
    ) -> None:
        if nodes < 0:  # 0: Redis alone (scripts/cluster_costs.py)
            raise ValueError("a cluster cannot have fewer than zero nodes")
        self.nodes = nodes
        self.workdir = workdir
        self.cert = cert
        self.key = key
        self.serve_args = list(serve_args)
        self.python = python
        self.redis_socket = str(workdir / "redis.sock")
        if len(self.redis_socket.encode()) > MAX_SOCKET_PATH:
            raise ValueError(f"{self.redis_socket}: too long for a unix socket path")
        self.redis: subprocess.Popen[bytes] | None = None
        self.node_procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self._logs: list[IO[bytes]] = []

    # -- start ----------------------------------------------------------------------------

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_redis()
            for index in range(self.nodes):
                self._start_node(index)
        except BaseException:
            self.stop()
            raise

    def _start_redis(self) -> None:
        binary = find_redis_server()
        if binary is None:
            raise ClusterStartError("redis-server not found (Debian: apt-get install redis-server)")
        command = [
            binary,
            "--port", "0",
            "--unixsocket", self.redis_socket,
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        self.redis = self._spawn(command, "redis.log")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_alive(self.redis, "redis-server", "redis.log")
            try:
                redis_probe.info(self.redis_socket, "server")
                return
            except redis_probe.RedisProbeError:
                if time.monotonic() >= deadline:
                    raise ClusterStartError(
                        f"redis-server did not answer on {self.redis_socket} in time"
                    ) from None
                time.sleep(POLL_S)

    def _start_node(self, index: int) -> None:
        port = free_port()
        name = f"n{index}"
        command = [
            # -P: the securechat that python finds (PYTHONPATH, or the installed one), never
            # one in the current directory that `-m` would put first
            self.python, "-P", "-m", "securechat", "serve",
            "--host", "127.0.0.1", "--port", str(port),
            "--cert", str(self.cert), "--key", str(self.key),
            "--log-level", "warning", "--data-dir", "none",
            "--cluster", f"unix://{self.redis_socket}", "--node-name", name,
            # no browsers' listener: nodes on one host would all want its default port
            "--web-port", "off",
            *self.serve_args,
        ]  # fmt: skip
        log = f"{name}.log"
        proc = self._spawn(command, log)
        self.node_procs.append(proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_alive(proc, f"node {name}", log)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise ClusterStartError(
                        f"node {name} did not listen on port {port} in time; log: {self._tail(log)}"
                    ) from None
                time.sleep(POLL_S)
        self.ports.append(port)

    def _spawn(self, command: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / log_name).open("ab")
        self._logs.append(log)
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def _check_alive(self, proc: subprocess.Popen[bytes], what: str, log: str) -> None:
        if proc.poll() is not None:
            raise ClusterStartError(
                f"{what} exited with status {proc.returncode}; log: {self._tail(log)}"
            )

    def _tail(self, log_name: str, lines: int = 3) -> str:
        try:
            text = (self.workdir / log_name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty)"

    # -- what a bench needs -----------------------------------------------------------------

    @property
    def node_pids(self) -> list[int]:
        return [proc.pid for proc in self.node_procs]

    @property
    def redis_pid(self) -> int | None:
        return None if self.redis is None else self.redis.pid

    def describe(self) -> dict[str, Any]:
        return {
            "ports": self.ports,
            "node_pids": self.node_pids,
            "redis_socket": self.redis_socket,
            "redis_pid": self.redis_pid,
        }

    # -- stop -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Nodes first (they may still write to Redis as they go), then Redis; bounded."""
        for proc in self.node_procs:
            _terminate(proc)
        if self.redis is not None:
            _terminate(self.redis)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m securechat.bench.local_cluster",
        description="Start redis-server and N securechat nodes for a benchmark; print one JSON "
        "line once they are up; stop them all on SIGTERM or SIGINT.",
    )
    parser.add_argument("--nodes", type=int, default=2, help="securechat nodes (default 2)")
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="server key (PEM)")
    parser.add_argument("--dir", type=Path, required=True, help="work directory (logs, socket)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python that runs the nodes (`-m securechat serve`; default this one)",
    )
    parser.add_argument("serve_args", nargs="*", help="more `securechat serve` options, after --")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    cluster = LocalCluster(
        args.nodes, args.dir, args.cert, args.key, args.serve_args, python=args.python
    )
    try:
        cluster.start()
    except (ClusterStartError, OSError, ValueError) as exc:
        print(f"local_cluster: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(cluster.describe()), flush=True)
        stopping.wait()
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
