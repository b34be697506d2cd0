"""Snapshots and trimming (docs/CLUSTER.md "Snapshots and trimming"): the leader stores the
network's state and trims the stream; a late node loads it and reads only the rest."""

from __future__ import annotations

import gc
import json
import logging
import re
import ssl
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from securechat.server.cluster import codec, snapshot
from securechat.server.cluster.replica import Replica
from securechat.server.config import OperBlock
from securechat.server.core import ServerCore
from securechat.server.passwords import hash_password
from tests.cluster.support import StartNode, client
from tests.cluster.test_failures import refused
from tests.conftest import test_config as config_of
from tests.support import IrcClient, ServerThread, sync

WAIT = 15.0  # for the lease loops (each second) to say how far they applied, and a trim
OPERS = {"root": OperBlock(hash_password("oper-password"))}


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def first_entry(r: Any) -> str:
    entries = r.xrange("securechat:stream", count=1)
    return entries[0][0].decode() if entries else ""


def newer(a: str, b: str) -> bool:
    """Is stream id ``a`` after ``b``?"""
    return tuple(map(int, a.split("-"))) > tuple(map(int, b.split("-")))


def wait_for(condition: Any, what: str) -> None:
    """Poll ``condition()`` (Redis, or a replica) until it holds: what we wait for, not a time."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def dump(node: ServerThread) -> tuple[str, str]:
    """The node's last applied entry and the canonical form of its replica at that entry."""

    def take() -> tuple[str, str]:
        cluster = node.server.cluster
        assert cluster is not None
        extra = {"replica": cluster.replica.own_state(), "applied": cluster._applied}
        return cluster._last, snapshot.canonical(node.server.core, extra)

    return node.in_loop(take)


def same_replicas(one: ServerThread, other: ServerThread) -> tuple[str, str]:
    """Both replicas' dumps at one stream entry (the leader's ticks move them on, so take
    them until both were taken at the same entry)."""
    deadline = time.monotonic() + WAIT
    while True:
        (at_one, first), (at_other, second) = dump(one), dump(other)
        if at_one == at_other:
            return first, second
        assert time.monotonic() < deadline, "the replicas never stood at one entry"


def answers(conn: IrcClient, *queries: str) -> list[str]:
    """What ``conn``'s node answers to ``queries``, without the server prefix, the asker's
    nick and the idle time (WHOIS 317 counts seconds of the node's clock)."""
    for query in queries:
        conn.send(query)
    conn.send("PING :answered")
    lines = []
    while True:
        raw = conn.read_line()
        assert raw is not None
        text = raw.decode()
        if " PONG " in text and "answered" in text:
            return lines
        words = text.split(" ")
        if words[1] == "317":
            continue
        lines.append(" ".join(words[1:]).replace(conn.nick, "<asker>"))


def rich_network(a: ServerThread, b: ServerThread, context: ssl.SSLContext) -> list[IrcClient]:
    """Nicks, a room with every mode, bans, invites, voice, away, monitors, WHOWAS, an
    operator, a multiline batch left open. Returns the clients (connected while kept)."""
    alice = client(a, context, "alice", "away-notify", "multi-prefix")
    bob = client(b, context, "bob", "message-tags", "server-time")
    carol = client(b, context, "carol", "draft/multiline", "batch", "message-tags")
    alice.join("#full")
    bob.join("#full")
    alice.send("MODE #full +imnstkl sesame 10")
    alice.send("MODE #full +b *!*@evil.example")
    alice.send("MODE #full +b troll!*@*")
    alice.send("MODE #full +v bob")
    alice.send("TOPIC #full :the full room")
    alice.send("INVITE carol #full")
    carol.expect(r"INVITE carol :?#full")
    alice.send("OPER root oper-password")
    alice.expect(r" 381 ")
    bob.send("AWAY :out for lunch")
    bob.send("NICK bobby")
    carol.send("MONITOR + alice,dave,bobby")
    carol.join("#open")
    carol.send("BATCH +m1 draft/multiline #open")
    carol.send("@batch=m1 PRIVMSG #open :first line of a batch left open")
    quitter = client(a, context, "quitter")
    quitter.send("QUIT :gone for WHOWAS")
    quitter.expect_closed()
    for conn in (alice, bob, carol):
        sync(conn, "rich")
    return [alice, bob, carol]


def test_a_late_node_after_a_trim_has_the_same_network_as_one_that_replayed_it_all(
    make_node: StartNode, client_context: ssl.SSLContext, redis_url: str
) -> None:
    a = make_node(opers=OPERS, cluster_snapshot_events=30)
    b = make_node(opers=OPERS, cluster_snapshot_events=30)
    r = redis_client(url=redis_url)
    start = first_entry(r)
    clients = rich_network(a, b, client_context)
    end = r.xrevrange("securechat:stream", count=1)[0][0].decode()
    pinger = client(a, client_context, "pinger")
    for number in range(40):  # events enough for a snapshot after the whole scenario
        pinger.send(f"PING :{number}")
    sync(pinger, "pinged")
    wait_for(lambda: newer(first_entry(r), end), "the stream trimmed past the scenario")
    assert r.hexists("securechat:snapshot", "data") and not r.xrange(start, start)

    c = make_node(opers=OPERS, cluster_snapshot_events=30)  # cannot replay: the start is gone
    first, second = same_replicas(a, c)
    assert first == second  # every field of the replicated state, the open batch included
    on_a = client(a, client_context, "viewa")
    on_c = client(c, client_context, "viewc")
    queries = [
        "OPER root oper-password",
        "NAMES #full",
        "MODE #full",
        "TOPIC #full",
        "MODE #full +b",
        "WHOIS bobby",
        "WHOWAS quitter",
        "NAMES #open",
        "LIST",
    ]
    seen_on_a = answers(on_a, *queries)
    assert answers(on_c, *queries) == seen_on_a
    text = "\n".join(seen_on_a)
    for expected in ("*!*@evil.example", "out for lunch", "the full room", "+bobby", "quitter"):
        assert expected in text
    assert "+iklmnst" in text or "+imnstkl" in text or "klmnst" in text, text
    clients[0].send("MODE #full -b troll!*@*")  # the network goes on, the same everywhere
    sync(clients[0], "after")
    first, second = same_replicas(a, c)
    assert first == second
    r.close()


def test_the_stream_stays_bounded_under_thousands_of_events(
    make_node: StartNode, client_context: ssl.SSLContext, redis_url: str
) -> None:
    every = 100
    a = make_node(cluster_snapshot_events=every)
    b = make_node(cluster_snapshot_events=every)
    sender = client(a, client_context, "sender").join("#flood")
    listener = client(b, client_context, "listener").join("#flood")
    total = 3000
    for number in range(total):
        sender.send(f"PRIVMSG #flood :message {number}")
    listener.expect(rf"PRIVMSG #flood :message {total - 1}$", timeout=60)
    r = redis_client(url=redis_url)

    def events_kept() -> int:
        return sum(len(json.loads(fields[b"e"])) for _, fields in r.xrange("securechat:stream"))

    # after the last snapshot's trim: fewer than two snapshots' worth of events stay (the
    # ones since the last snapshot, and a lease period's worth a node may lag behind)
    wait_for(lambda: events_kept() < 2 * every, "the stream trimmed to its last snapshot")
    memory = r.memory_usage("securechat:stream")
    assert memory is not None and memory < 200 * 2 * every  # bytes: ~100-200 per event
    r.close()


def talk(talker: IrcClient, room: str, lines: int) -> None:
    """``lines`` messages into ``room``, all of them applied once the PONG is back."""
    talker.join(room)
    for number in range(lines):
        talker.send(f"PRIVMSG {room} :line {number}")
    talker.send("PING :applied")
    talker.expect(r"PONG .*applied")


def logged(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


def test_each_stored_snapshot_is_logged_with_the_pause_it_cost_the_loop(
    make_node: StartNode, client_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securechat.server")
    node = make_node(cluster_snapshot_events=10)
    talk(client(node, client_context, "talker"), "#log", 30)

    def stored() -> list[str]:
        return logged(caplog, "event=cluster_snapshot ")

    wait_for(lambda: bool(stored()), "a snapshot stored")
    pattern = r" bytes=\d+ trimmed=\d+ loop_pause_ms=\d+(\.\d+)? forked=yes$"  # Linux: fork
    assert re.search(pattern, stored()[0]), stored()[0]


def test_a_state_the_forked_child_cannot_encode_is_said_once_and_the_node_goes_on(
    make_node: StartNode, client_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securechat.server")
    node = make_node(cluster_snapshot_events=5)

    async def plant() -> None:
        """On the node's loop: a type no snapshot may carry, where no command looks."""
        node.server.core.planted = lambda: None  # type: ignore[attr-defined]

    node.call(plant())
    talk(client(node, client_context, "talker"), "#bug", 40)

    def said() -> list[str]:
        return logged(caplog, "event=cluster_snapshot_waits ")

    wait_for(lambda: bool(said()), "the refusal said")
    assert len(said()) == 1 and "function" in said()[0]
    assert not logged(caplog, "event=cluster_snapshot ")


def test_a_corrupt_snapshot_is_refused_in_one_line(
    make_node: StartNode, cert_files: tuple[Path, Path], redis_url: str
) -> None:
    make_node()  # a live node: the stream (and its snapshot) is not a dead cluster's
    r = redis_client(url=redis_url)
    r.hset("securechat:snapshot", mapping={"entry": "1-0", "data": b"\x00not a snapshot"})
    flags = ("--cluster", redis_url, "--data-dir", "none", "--node-name", "late")
    line = refused(cert_files, *flags)
    assert "snapshot" in line and "cannot be loaded" in line
    shape = snapshot.schema(fresh_core())
    table = [{"o": "os.system", "f": {}}]
    state = {"schema": shape, "core": {}, "extra": {}, "table": table}
    hostile = {"format": 1, "entry": "1-0", "state": state}
    r.hset("securechat:snapshot", "data", zlib.compress(json.dumps(hostile).encode()))
    line = refused(cert_files, *flags)
    assert "a type that snapshots do not carry: os.system" in line
    r.close()


def fresh_core() -> ServerCore:
    return ServerCore(config_of(cluster="redis://unused", data_dir=None), now=1000.0)


def test_a_snapshot_waits_while_a_continuation_is_in_flight() -> None:
    core = fresh_core()
    replica = Replica(core, "a/1", 1)
    assert snapshot.take(replica, {}, "1-0") is not None
    core.accounts.held.append((1.0, 0, 5, lambda now: None))  # a held reply: code
    assert snapshot.take(replica, {}, "1-0") is None
    core.accounts.held.clear()
    core.room_activity["#r"] = 1
    core.whowas.entries.append(lambda: None)  # type: ignore[arg-type]  # a type not listed
    with pytest.raises(snapshot.Unencodable, match="function"):
        snapshot.take(replica, {}, "1-0")


def test_decoding_builds_only_the_listed_types() -> None:
    replica = Replica(fresh_core(), "a/1", 1)
    for row in ({"o": "builtins.object"}, {"o": "subprocess.Popen"}, {"x": 1}):
        data = {"schema": snapshot.schema(replica.core), "core": {}, "extra": {}, "table": [row]}
        with pytest.raises(snapshot.SnapshotError):
            snapshot.load(replica, snapshot.Snapshot("1-0", data))
    with pytest.raises(snapshot.SnapshotError, match="larger than"):
        snapshot.from_bytes(zlib.compress(b" " * 10_001), limit=10_000)


def test_a_snapshot_round_trip_gives_the_same_replica_and_it_goes_on_the_same() -> None:
    """Without Redis: the same events into two replicas, one of them cut at a snapshot."""

    def events(conn: int, *lines: str) -> list[list[Any]]:
        return [[codec.LINE, 1001.0, conn, line] for line in lines]

    first = [
        [codec.HELLO, 1000.0, 1, "a"],
        [codec.CONNECT, 1000.0, 1 << 32 | 1, "10.0.0.1", None],
        [codec.CONNECT, 1000.0, 1 << 32 | 2, "10.0.0.2", "ab" * 32],
        *events(1 << 32 | 1, "NICK ann", "USER ann 0 * :Ann", "JOIN #r", "MODE #r +lk 5 key"),
        *events(1 << 32 | 1, "MODE #r +b x!*@*", "TOPIC #r :t", "INVITE ben #r", "AWAY :x"),
        *events(1 << 32 | 2, "CAP LS 302", "NICK ben", "USER ben 0 * :Ben", "CAP END"),
        *events(1 << 32 | 2, "MONITOR + ann", "JOIN #r key", "NICK benny"),
    ]
    then = events(1 << 32 | 2, "PART #r", "JOIN #other") + events(1 << 32 | 1, "QUIT :bye")
    whole = Replica(fresh_core(), "b/3", 3)
    for index, event in enumerate(first + then):
        whole.apply(f"{2000 + index}-0", 0, "a/1", event)
    cut = Replica(fresh_core(), "a/1", 1)
    for index, event in enumerate(first):
        cut.apply(f"{2000 + index}-0", 0, "a/1", event)
    taken = snapshot.take(cut, {"a/1": len(first)}, f"{2000 + len(first) - 1}-0")
    assert taken is not None
    joined = Replica(fresh_core(), "c/5", 5)
    applied = snapshot.load(joined, snapshot.from_bytes(snapshot.to_bytes(taken)))
    assert applied == {"a/1": len(first)}
    assert all(session.remote for session in joined.core.sessions.values())
    for index, event in enumerate(then, start=len(first)):
        joined.apply(f"{2000 + index}-0", 0, "a/1", event)
    extra = {"replica": whole.own_state()}
    assert snapshot.canonical(joined.core, extra) == snapshot.canonical(whole.core, extra)
    assert joined.own_state() == whole.own_state()
    assert "benny" in snapshot.canonical(joined.core, extra)


def test_bytes_of_a_table_encoded_in_chunks_are_those_of_one_json_dumps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """to_bytes encodes the table a few rows per call (so the loop gets the GIL between
    them); the document is the same, and loads back."""
    replica = Replica(fresh_core(), "a/1", 1)
    for index, line in enumerate(["NICK ann", "USER ann 0 * :Ann", "JOIN #r,#s,#t"]):
        replica.apply(f"{1000 + index}-0", 0, "a/1", [codec.LINE, 1000.0, 1, line])
    taken = snapshot.take(replica, {"a/1": 3}, "1002-0")
    assert taken is not None and len(taken.state["table"]) > 7
    monkeypatch.setattr(snapshot, "TABLE_CHUNK", 3)
    document = {"format": snapshot.FORMAT, "entry": "1002-0", "state": taken.state}
    text = zlib.decompress(snapshot.to_bytes(taken)).decode()
    assert text == json.dumps(document, separators=(",", ":"))
    assert snapshot.from_bytes(snapshot.to_bytes(taken)).state == taken.state


@pytest.mark.parametrize("enabled", [True, False])
def test_taking_a_snapshot_leaves_the_cycle_collector_as_it_found_it(enabled: bool) -> None:
    replica = Replica(fresh_core(), "a/1", 1)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert snapshot.take(replica, {}, "1-0") is not None
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_a_snapshot_of_another_versions_state_is_refused() -> None:
    replica = Replica(fresh_core(), "a/1", 1)
    data = {"schema": "0" * 16, "core": {}, "extra": {}, "table": []}
    with pytest.raises(snapshot.SnapshotError, match="version of securechat"):
        snapshot.load(replica, snapshot.Snapshot("1-0", data))


def test_a_late_node_after_a_trim_has_the_accounts_registered_rooms_and_history(
    make_node: StartNode, client_context: ssl.SSLContext, redis_url: str, pg_url: str
) -> None:
    from tests.cluster.test_accounts_history import HISTORY_CAPS, PASSWORD
    from tests.support import history

    a = make_node(database=pg_url, cluster_snapshot_events=20)
    caps = (*HISTORY_CAPS, "echo-message")
    alice = client(a, client_context, "alice", *caps).join("#reg")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")  # scrypt and a store call in flight
    alice.expect(r" 900 ")
    alice.send("PRIVMSG ChanServ :REGISTER #reg")
    alice.expect(r"NOTICE alice :.*#reg")
    alice.send("TOPIC #reg :kept by ChanServ")
    for number in range(5):  # history appends: held until committed
        alice.send(f"PRIVMSG #reg :stored {number}")
        alice.expect(rf"PRIVMSG #reg :stored {number}")
    sync(alice, "scenario")
    r = redis_client(url=redis_url)
    end = r.xrevrange("securechat:stream", count=1)[0][0].decode()
    for number in range(30):
        alice.send(f"PING :{number}")
    sync(alice, "pinged")
    wait_for(lambda: newer(first_entry(r), end), "the stream trimmed past the scenario")

    c = make_node(database=pg_url, cluster_snapshot_events=20)
    first, second = same_replicas(a, c)
    assert first == second
    on_c = client(c, client_context, "onc", *caps)
    on_c.send("WHOIS alice")
    assert on_c.expect(r" 330 onc alice ").params[2] == "alice"
    on_c.join("#reg")
    assert [text for _, text in history(on_c, "#reg")] == [f"stored {n}" for n in range(5)]
    on_c.send("PRIVMSG ChanServ :INFO #reg")
    on_c.expect(r"NOTICE onc :.*alice")  # the founder, from the replicated registry
    r.close()
