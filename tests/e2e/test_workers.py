"""`securechat serve --workers N` as an operator runs it: a parent process, N workers on one
port, a real redis-server for cluster mode (workers.py, supervisor.py)."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
from pathlib import Path

from tests.e2e.test_serve import STARTUP_TIMEOUT, dev_certs, run_serve, securechat, trusting
from tests.support import IrcClient

__all__ = ["dev_certs"]  # a fixture, used by name

ROOT = Path(__file__).resolve().parents[2]


def test_workers_without_a_cluster_is_one_line_and_exit_2() -> None:
    result = run_serve("--port", "0", "--workers", "2")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "securechat serve: error: --workers needs --cluster URL: "
        "only cluster mode makes the workers one network"
    )


def test_too_many_workers_is_one_line_and_exit_2() -> None:
    result = run_serve("--port", "0", "--workers", "65")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "securechat serve: error: --workers must be auto or a number from 0 to 64, got 65"
    )


# ---- with cluster mode: a real redis-server ----------------------------------------------

# redis_url: a fresh database of the session's redis-server (tests/conftest.py, tests/redis.py)


class Workers:
    """`securechat serve --workers N` in a subprocess; ``port`` once every worker listens."""

    def __init__(self, certs: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            securechat(
                "serve",
                *("--host", "127.0.0.1", "--port", "0", "--data-dir", "none"),
                *("--cert", str(certs / "server.pem"), "--key", str(certs / "server.key")),
                *args,
            ),
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.log: list[str] = []
        line = self.wait_for("listening on")
        match = re.search(r"listening on \S+:(\d+) \((\d+) workers\)", line)
        assert match, line
        self.port = int(match.group(1))

    def wait_for(self, needle: str) -> str:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # blocks until the line or EOF; the test timeout bounds it
            self.log.append(line)
            if needle in line:
                return line
        raise AssertionError(f"exited with {self.proc.wait()} before {needle!r}: {self.log}")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=STARTUP_TIMEOUT)
        return self.proc.returncode, "".join(self.log) + err


def node_of(client: IrcClient, nick: str) -> str:
    """The node a client is on: WHOIS 312 names it."""
    client.send(f"WHOIS {nick}")
    return client.expect(r" 312 ").params[2]


def spread_clients(workers: Workers, context: ssl.SSLContext, nodes: int) -> dict[str, IrcClient]:
    """One registered client per node: connect until the kernel has put one on each
    (1 in 2**39 that 40 connections all land on one of two)."""
    by_node: dict[str, IrcClient] = {}
    for n in range(40):
        nick = f"user{n}"
        client = IrcClient.connect("127.0.0.1", workers.port, context).register(nick)
        node = node_of(client, nick)
        if node in by_node:
            client.close()
        else:
            by_node[node] = client
        if len(by_node) == nodes:
            break
    return by_node


def test_two_workers_share_one_port_make_one_network_reload_and_stop_on_sigterm(
    dev_certs: Path, redis_url: str
) -> None:
    workers = Workers(dev_certs, "--cluster", redis_url, "--workers", "2", "--node-name", "e2e")
    try:
        assert len(workers.worker_pids()) == 2
        by_node = spread_clients(workers, trusting(dev_certs / "ca.pem"), nodes=2)
        assert sorted(by_node) == ["e2e-1", "e2e-2"]
        alice, bob = by_node["e2e-1"], by_node["e2e-2"]
        alice.join("#both")
        bob.join("#both")
        alice.send("PRIVMSG #both :across workers")
        assert bob.expect(r"PRIVMSG #both").params[1] == "across workers"
        workers.proc.send_signal(signal.SIGHUP)
        workers.wait_for("event=reloaded")
        workers.wait_for("event=reloaded")  # from each worker
        code, log = workers.stop()
        assert code == 0 and "Traceback" not in log
        for client in (alice, bob):
            assert any(b"Server shutting down" in line for line in client.expect_closed())
    finally:
        if workers.proc.poll() is None:
            workers.proc.kill()


def test_each_workers_log_lines_name_its_node(dev_certs: Path, redis_url: str) -> None:
    """N workers share one stderr: each line says which node wrote it."""
    workers = Workers(dev_certs, "--cluster", redis_url, "--workers", "2", "--node-name", "e2e")
    try:
        starts = [line for line in workers.log if "event=start " in line]
        nodes = {re.search(r" node=(\S+) event=start ", line).group(1) for line in starts}  # type: ignore[union-attr]
        assert nodes == {"e2e-1", "e2e-2"}
        code, log = workers.stop()
        stops = [line for line in log.splitlines() if "event=stop " in line]
        assert code == 0 and len(stops) == 2 and all(" node=e2e-" in line for line in stops)
    finally:
        if workers.proc.poll() is None:
            workers.proc.kill()


def test_a_killed_worker_is_restarted_under_a_fresh_node_name(
    dev_certs: Path, redis_url: str
) -> None:
    workers = Workers(dev_certs, "--cluster", redis_url, "--workers", "2", "--node-name", "e2e")
    try:
        victim = workers.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        slot = re.search(r"slot=(\d)", workers.wait_for("event=worker_died")).group(1)  # type: ignore[union-attr]
        workers.wait_for("event=worker_ready")
        assert victim not in workers.worker_pids() and len(workers.worker_pids()) == 2
        other = "e2e-2" if slot == "1" else "e2e-1"
        by_node = spread_clients(workers, trusting(dev_certs / "ca.pem"), nodes=2)
        assert sorted(by_node) == sorted([other, f"e2e-{slot}r1"])
        code, log = workers.stop()
        assert code == 0 and "Traceback" not in log
    finally:
        if workers.proc.poll() is None:
            workers.proc.kill()


def test_an_unreachable_cluster_is_one_line_once_and_exit_non_zero(
    dev_certs: Path, tmp_path: Path
) -> None:
    result = run_serve(
        *("--port", "0", "--data-dir", "none", "--workers", "3"),
        *("--cluster", f"unix://{tmp_path}/no-redis.sock"),
        *("--cert", str(dev_certs / "server.pem"), "--key", str(dev_certs / "server.key")),
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert [line for line in errors if "no-redis.sock" in line] == errors[:1]
    assert len([line for line in errors if "no-redis.sock" in line]) == 1
    assert "Traceback" not in result.stderr
