"""Cluster mode when parts fail: a node killed, Redis restarted, a node cut off from Redis,
and every way `securechat serve --cluster` can be refused at start (one line each)."""

from __future__ import annotations

import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.support import StartNode, client, node_settings
from tests.cluster.test_replication import replica_summary
from tests.e2e.test_serve import ROOT, ServeProcess, securechat
from tests.redis import RedisServer
from tests.support import IrcClient, sync

LOST_WITHIN = 10.0  # issue 15: a killed node's users quit everywhere within 10 s


def node_process(cert_files: tuple[Path, Path], *flags: str) -> ServeProcess:
    """A `securechat serve` node with make_node's replicated settings (support.node_settings)."""
    cert, key = cert_files
    settings = ("--config", str(node_settings(cert.parent)))
    return ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--cert", str(cert), "--key", str(key)),
        *settings,
        *flags,
    )


def test_a_killed_nodes_users_quit_everywhere_and_their_nicks_are_free(
    make_node: StartNode,
    client_context: ssl.SSLContext,
    cert_files: tuple[Path, Path],
    redis_url: str,
) -> None:
    a = make_node()
    watcher = client(a, client_context, "watcher").join("#room")
    doomed = node_process(
        cert_files, "--cluster", redis_url, "--data-dir", "none", "--node-name", "doomed"
    )
    try:
        victim = IrcClient.connect("127.0.0.1", doomed.port, client_context).register("victim")
        victim.join("#room")
        watcher.expect(r":victim!\S+ JOIN")
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait()
    finally:
        if doomed.proc.poll() is None:
            doomed.stop()
    quit_ = watcher.expect(r":victim!\S+ QUIT ", timeout=LOST_WITHIN)
    assert "doomed lost" in quit_.params[-1]
    watcher.send("NICK victim")  # the nick is free
    watcher.expect(r":watcher!\S+ NICK :?victim")
    watcher.send("NAMES #room")
    assert watcher.expect(r" 353 ").params[-1].lstrip("@") == "victim"  # the room stayed


def test_a_stopped_nodes_users_quit_at_once(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a, b = make_node(), make_node()
    watcher = client(a, client_context, "watcher").join("#room")
    leaving = client(b, client_context, "leaving").join("#room")
    watcher.expect(r":leaving!\S+ JOIN")
    b.stop()
    leaving.expect_closed()
    assert "Server shutting down (b)" in watcher.expect(r":leaving!\S+ QUIT ").params[-1]


def test_a_late_node_gets_the_networks_state(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a = make_node()
    early = client(a, client_context, "early", "away-notify").join("#old")
    early.send("TOPIC #old :set before c existed")
    early.send("AWAY :away")
    sync(early, "before")
    c = make_node()
    late = client(c, client_context, "late").join("#old")
    late.send("TOPIC #old")
    late.expect(r" 332 late #old :set before c existed")
    late.send("WHOIS early")
    late.expect(r" 301 late early :away")


def test_a_node_starting_after_the_whole_cluster_was_killed_starts_a_new_stream(
    make_node: StartNode,
    client_context: ssl.SSLContext,
    cert_files: tuple[Path, Path],
    redis_url: str,
) -> None:
    killed = node_process(
        cert_files, "--cluster", redis_url, "--data-dir", "none", "--node-name", "gone"
    )
    IrcClient.connect("127.0.0.1", killed.port, client_context).register("ghost")
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait()
    wait_until_lease_lapsed(redis_url, "gone")
    fresh = make_node()
    sessions, rooms, _ = replica_summary(fresh)  # type: ignore[misc]
    assert sessions == [] and rooms == []  # no ghost of the old cluster, not even for a second


def wait_until_lease_lapsed(url: str, name: str) -> None:
    """Poll Redis until ``name``'s lease expired (what the test waits for, not a time)."""
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + LOST_WITHIN
    while client.exists(f"securechat:lease:{name}"):
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(0.05)
    client.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test alone: it is restarted or paused."""
    from tests import redis as redis_support

    reason = redis_support.unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = RedisServer()
    server.start()
    yield server
    server.destroy()


def test_a_redis_restart_keeps_every_client_and_delivers_what_was_sent_meanwhile(
    make_node: StartNode, client_context: ssl.SSLContext, own_redis: RedisServer
) -> None:
    url = own_redis.url(1)
    a, b = make_node(cluster=url), make_node(cluster=url)
    alice = client(a, client_context, "alice").join("#room")
    bob = client(b, client_context, "bob").join("#room")
    alice.expect(r":bob!\S+ JOIN")
    own_redis.stop()
    alice.send("PRIVMSG #room :sent while Redis was down")
    own_redis.start()
    bob.expect(r":alice!\S+ PRIVMSG #room :sent while Redis was down")
    bob.send("PRIVMSG #room :and after")
    alice.expect(r":bob!\S+ PRIVMSG #room :and after")
    assert replica_summary(a) == replica_summary(b)  # nothing needed rebuilding


@pytest.mark.logs_error  # event=cluster_cut_off: an operator must see it
def test_a_node_cut_off_from_redis_longer_than_its_lease_closes_its_clients(
    make_node: StartNode, client_context: ssl.SSLContext, own_redis: RedisServer
) -> None:
    a = make_node(cluster=own_redis.url(2))
    alice = client(a, client_context, "alice")
    own_redis.pause()
    try:
        lines = alice.expect_closed(timeout=LOST_WITHIN)
    finally:
        own_redis.resume()
    assert any(b"Lost the cluster" in line for line in lines)


def refused(cert_files: tuple[Path, Path], *flags: str) -> str:
    """Start a node expecting a refusal: its one error line (no traceback)."""
    cert, key = cert_files
    settings = ("--config", str(node_settings(cert.parent)))
    result = subprocess.run(
        securechat(
            "serve", "--port", "0", "--cert", str(cert), "--key", str(key), *settings, *flags
        ),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_start_errors_are_one_line_each(
    make_node: StartNode, cert_files: tuple[Path, Path], redis_url: str, tmp_path: Path
) -> None:
    none = ("--data-dir", "none")
    line = refused(cert_files, "--cluster", "memcached://x", *none)
    assert "unknown scheme 'memcached'" in line
    line = refused(cert_files, "--cluster", "redis://:hunter2@127.0.0.1:1/0", *none)
    assert "cannot reach Redis" in line and "hunter2" not in line and "***" in line
    line = refused(cert_files, "--cluster", f"unix://{tmp_path}/absent.sock", *none)
    assert "cannot reach Redis" in line
    sqlite = ("--data-dir", str(tmp_path / "data"))
    line = refused(cert_files, "--cluster", redis_url, *sqlite)
    assert "SQLite" in line and "--database" in line
    make_node(cluster=redis_url, node_name="taken")
    line = refused(cert_files, "--cluster", redis_url, "--node-name", "taken", *none)
    assert "'taken' is in use" in line


def test_a_wrong_redis_password_is_one_line_without_the_password(
    cert_files: tuple[Path, Path],
) -> None:
    from tests import redis as redis_support

    reason = redis_support.unavailable()
    if reason is not None:
        pytest.skip(reason)
    guarded = RedisServer(password="right-pass")
    guarded.start()
    try:
        url = guarded.url(1, password="wrong-pass")
        line = refused(cert_files, "--cluster", url, "--data-dir", "none")
        assert "wrong password" in line and "wrong-pass" not in line and "***" in line
        assert guarded.socket.name in line  # the URL is named
    finally:
        guarded.destroy()
