"""Registered rooms and history over real TLS, across a server restart on the same data dir."""

from __future__ import annotations

import sqlite3
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from securechat.server.config import OperBlock
from securechat.server.main import DATABASE_FILE
from securechat.server.passwords import hash_password
from securechat.server.store import PUBLIC_EPOCH, Store, StoreWriter
from tests.support import IrcClient, ServerThread

PASSWORD = "correct-horse"
StartServer = Callable[..., ServerThread]
HISTORY_CAPS = ("batch", "server-time", "message-tags", "draft/chathistory")


def client(server: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register(nick, caps)


def restart(make_server: StartServer, server: ServerThread, data_dir: Path) -> ServerThread:
    server.stop()
    return make_server(data_dir=data_dir)


def latest_after_restart(
    make_server: StartServer, context: ssl.SSLContext, data_dir: Path, *lines: str
) -> IrcClient:
    """alice sends ``lines`` in a new #talk (stored before she leaves), the server restarts, and
    carol, creating #talk again, asks for its latest history: carol, past the batch start."""
    server = make_server(data_dir=data_dir)
    alice = client(server, context, "alice")
    alice.join("#talk")
    for line in lines:
        alice.send(line)
    alice.send("PING :stored")
    alice.expect(r"PONG \S+ :?stored")
    alice.close()

    server = restart(make_server, server, data_dir)
    carol = client(server, context, "carol", *HISTORY_CAPS)
    carol.join("#talk")
    carol.send("CHATHISTORY LATEST #talk * 10")
    carol.expect(r" BATCH \+\S+ chathistory :?#talk")
    return carol


def test_a_registered_room_keeps_topic_and_founder_across_a_restart(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path)
    alice = client(server, client_context, "alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    alice.join("#keep")
    alice.send("PRIVMSG ChanServ :REGISTER #keep")
    alice.expect(r"ChanServ!\S+ NOTICE alice :#keep is registered to alice")
    alice.send("TOPIC #keep :still here")
    alice.expect(r" TOPIC #keep ")
    alice.close()

    server = restart(make_server, server, tmp_path)
    alice = client(server, client_context, "alice")
    alice.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    alice.expect(r" 900 ")
    alice.send("JOIN #keep")
    assert alice.expect(r"ChanServ!\S+ MODE #keep ").params == ("#keep", "+o", "alice")
    assert alice.expect(r" 332 ").params[-1] == "still here"


def test_a_registered_rooms_history_is_replayed_on_join_after_a_restart(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path)
    alice = client(server, client_context, "alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    bob = client(server, client_context, "bob")
    alice.join("#talk")
    alice.send("PRIVMSG ChanServ :REGISTER #talk")
    alice.expect(r"ChanServ!\S+ NOTICE alice :#talk is registered to alice")
    bob.join("#talk")
    alice.send("PRIVMSG #talk :before the restart")
    bob.expect(r"PRIVMSG #talk :before the restart")
    alice.close()
    bob.close()

    server = restart(make_server, server, tmp_path)
    carol = client(server, client_context, "carol", "batch", "server-time")
    carol.send("JOIN #talk")
    carol.expect(r" BATCH \+\S+ chathistory :?#talk")
    replayed = carol.expect(r"PRIVMSG #talk")
    assert replayed.params[1] == "before the restart" and "time" in replayed.tags
    carol.expect(r" BATCH :?-")
    plain = client(server, client_context, "dave")
    plain.send("JOIN #talk")
    assert plain.expect(r" NOTICE #talk ").params[1].endswith("<alice> before the restart")


def test_a_public_rooms_history_outlives_the_room_and_a_restart(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """An unregistered public room is gone after a restart; whoever creates it again reads
    what was said in it (anyone could have joined and read it then)."""
    said = "PRIVMSG #talk :before the restart"
    carol = latest_after_restart(make_server, client_context, tmp_path, said)
    assert carol.expect(r" BATCH :?-|PRIVMSG #talk").params[-1] == "before the restart"


def test_an_unregistered_keyed_rooms_history_ends_with_the_room(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """Said while the room was +k: after a restart, whoever creates it again reads nothing."""
    said = ("MODE #talk +k s3cret", "PRIVMSG #talk :for key holders")
    carol = latest_after_restart(make_server, client_context, tmp_path, *said)
    assert carol.expect(r" BATCH :?-|PRIVMSG #talk").command == "BATCH"


def test_chathistory_pages_a_private_conversation(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path)
    alice = client(server, client_context, "alice", *HISTORY_CAPS)
    bob = client(server, client_context, "bob", *HISTORY_CAPS)
    for user in (alice, bob):
        user.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        user.expect(r" 900 ")
    for number in range(3):
        alice.send(f"PRIVMSG bob :message {number}")
        bob.expect(rf"PRIVMSG bob :message {number}")
    bob.send("CHATHISTORY LATEST alice * 2")
    bob.expect(r" BATCH \+\S+ chathistory :?alice")
    assert bob.expect(r"PRIVMSG bob").params[1] == "message 1"
    newest = bob.expect(r"PRIVMSG bob")
    assert newest.params[1] == "message 2"
    bob.expect(r" BATCH :?-")
    bob.send(f"CHATHISTORY BEFORE alice msgid={newest.tags['msgid']} 10")
    bob.expect(r" BATCH \+")
    assert bob.expect(r"PRIVMSG bob").params[1] == "message 0"


# ---- security review H2: +i/+k history and re-created rooms ------------------------------------


def test_a_keyed_invite_only_rooms_history_does_not_leak_to_whoever_recreates_it(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    alice = client(server, client_context, "alice")
    bob = client(server, client_context, "bob")
    alice.join("#secret")
    alice.send("MODE #secret +k s3cretkey")
    alice.send("MODE #secret +i")
    alice.send("INVITE bob #secret")
    bob.expect(r" INVITE bob :?#secret")
    bob.send("JOIN #secret s3cretkey")
    alice.expect(r":bob!\S+ JOIN :?#secret")
    for number in range(3):
        alice.send(f"PRIVMSG #secret :secret-room-msg-{number}")
        bob.expect(rf"PRIVMSG #secret :secret-room-msg-{number}")
    alice.send("PART #secret")
    bob.send("PART #secret")
    bob.expect(r":bob!\S+ PART :?#secret")

    mallory = client(server, client_context, "mallory", *HISTORY_CAPS)
    mallory.join("#secret")
    mallory.send("CHATHISTORY LATEST #secret * 50")
    mallory.expect(r" BATCH \+\S+ chathistory :?#secret")
    assert mallory.expect(r" BATCH :?-|PRIVMSG #secret").command == "BATCH"
    plain = client(server, client_context, "plain")
    plain.send("JOIN #secret")
    plain.send("PING :joined")  # the join replay, if any, comes before this PONG
    plain.expect(r" PONG \S+ :?joined")
    assert not [m for m in plain.seen if m.command == "NOTICE" and "secret-room" in m.params[-1]]


# ---- security review H3: a history reader cannot stall anyone else ---------------------------

HUGE_ROOM = "#huge"
HUGE_ROWS = 200_000
PROMPT = 3.0  # a bystander's generous "was answered" bound; an unbounded stall breaks it


def fill_huge_room(server: ServerThread, database: Path) -> None:
    """HUGE_ROWS public messages of HUGE_ROOM, written straight to the file (WAL lets a
    second connection write; the server's reader sees the commit)."""
    epoch = PUBLIC_EPOCH
    base_ms = 1_700_000_000_000
    rows = (
        (f"huge{n}", "#huge", "#huge", "flood!u@h", base_ms + n, f"message {n}", epoch)
        for n in range(HUGE_ROWS)
    )
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO history (msgid, target, display_target, sender, time_ms, command, text,"
            " epoch) VALUES (?, ?, ?, ?, ?, 'PRIVMSG', ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def hammer(attacker: IrcClient, stop: threading.Event, rounds: list[int]) -> None:
    """CHATHISTORY TARGETS and LATEST over the huge room, pipelined, until told to stop."""
    targets = (
        "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z"
        " timestamp=2100-01-01T00:00:00.000Z 100"
    )
    while not stop.is_set():
        attacker.send(f"{targets}\r\nCHATHISTORY LATEST {HUGE_ROOM} * 100\r\n" * 10)
        for _ in range(20):
            attacker.expect(r" BATCH :?-", timeout=30)
        rounds.append(1)


def test_a_client_hammering_chathistory_delays_nobody_else(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    attacker = client(server, client_context, "attacker", *HISTORY_CAPS).join(HUGE_ROOM)
    fill_huge_room(server, tmp_path / DATABASE_FILE)
    watcher = client(server, client_context, "watcher").join("#canary")
    poster = client(server, client_context, "poster").join("#canary")
    stop, rounds = threading.Event(), list[int]()
    attack = threading.Thread(target=hammer, args=(attacker, stop, rounds))
    attack.start()
    try:
        for number in range(20):
            watcher.send(f"PING :canary-{number}")
            watcher.expect(rf" PONG \S+ :?canary-{number}", timeout=PROMPT)
            poster.send(f"PRIVMSG #canary :tick {number}")
            watcher.expect(rf"PRIVMSG #canary :tick {number}", timeout=PROMPT)
    finally:
        stop.set()
        attack.join(60)
    assert rounds, "the attacker's requests were never answered"


def test_a_clients_replies_keep_the_order_of_its_commands(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """CHATHISTORY then PING in one write: the whole batch comes before the PONG."""
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    reader = client(server, client_context, "reader", *HISTORY_CAPS).join(HUGE_ROOM)
    fill_huge_room(server, tmp_path / DATABASE_FILE)
    reader.send(f"CHATHISTORY LATEST {HUGE_ROOM} * 100\r\nPING :after-history")
    reader.expect(r" PONG \S+ :?after-history")
    commands = [m.command for m in reader.seen[-103:]]
    assert commands == ["BATCH"] + ["PRIVMSG"] * 100 + ["BATCH", "PONG"]
    # Several reads pipelined: one at a time, each batch whole, in the order asked.
    reader.send(f"CHATHISTORY LATEST {HUGE_ROOM} * 5\r\n" * 3 + "PING :after-three")
    reader.expect(r" PONG \S+ :?after-three")
    commands = [m.command for m in reader.seen[-22:]]
    assert commands == (["BATCH"] + ["PRIVMSG"] * 5 + ["BATCH"]) * 3 + ["PONG"]


# ---- security review M5: disk full ------------------------------------------------------------


def limit_pages(writer: StoreWriter, extra: int | None) -> None:
    """Cap the database at its current size plus ``extra`` pages (None: no cap). SQLite then
    fails writes with SQLITE_FULL, exactly as on a full disk."""

    def cap(store: Store) -> None:
        conn = store._conn  # the writer's own connection: the cap is per connection
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + extra if extra is not None else 2**30}")

    writer.submit(cap).result(10)


@pytest.mark.logs_error  # an operator event logged at ERROR
def test_when_history_cannot_be_written_messages_are_refused_and_opers_told(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    writer = StoreWriter.open(tmp_path / DATABASE_FILE)
    try:
        server = make_server(
            data_dir=tmp_path,
            exempt=("127.0.0.0/8",),
            opers={"root": OperBlock(hash_password(PASSWORD))},
            server_options={"writer": writer},
        )
        root = client(server, client_context, "root")
        root.send(f"OPER root {PASSWORD}")
        root.expect(r" 381 ")
        alice = client(server, client_context, "alice").join("#full")
        bob = client(server, client_context, "bob").join("#full")
        limit_pages(writer, extra=0)

        refused = None
        for number in range(500):
            text = f"message {number} " + "x" * 300
            alice.send(f"PRIVMSG #full :{text}")
            alice.send(f"PING :sent-{number}")
            reply = alice.expect(rf"FAIL PRIVMSG|PONG \S+ :?sent-{number}")
            if reply.command == "FAIL":
                refused = text
                break
            bob.expect(rf"PRIVMSG #full :message {number} ")  # stored, so delivered
        assert refused is not None, "the database never filled up"
        assert reply.params[:3] == ("PRIVMSG", "TEMPORARILY_UNAVAILABLE", "#full")
        root.expect(r"NOTICE root :\*\*\* History cannot be stored")
        bob.send("PING :bystander")
        bob.expect(r" PONG \S+ :?bystander", timeout=PROMPT)
        assert not [m for m in bob.seen if m.params[-1:] == (refused,)], "delivered, not stored"
        core = server.server.core
        assert server.in_loop(lambda: core.metrics.history_write_failures) >= 1

        limit_pages(writer, extra=None)  # space is back
        alice.send("PRIVMSG #full :after the disk was freed")
        bob.expect(r"PRIVMSG #full :after the disk was freed")
        root.expect(r"NOTICE root :\*\*\* History is stored again")
    finally:
        server.stop()
        writer.close()


def test_shutdown_does_not_wait_for_a_running_history_read(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """SIGTERM (here: shutdown) interrupts a read in progress instead of waiting it out."""
    server = make_server(data_dir=tmp_path, history_read_timeout_seconds=3600)
    writer = server.server.writer
    assert writer is not None
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    )
    started = threading.Event()

    def forever(store: Store) -> object:
        started.set()
        return store._conn.execute(endless).fetchone()

    running = writer.read(forever)
    queued = writer.read(lambda store: store.latest("#room", 5))
    assert started.wait(10)
    server.stop()
    assert isinstance(running.exception(10), sqlite3.OperationalError)
    assert queued.cancelled()


def test_only_the_recipients_of_an_uncommitted_message_wait_for_its_commit(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """While a room message waits for its commit (the writer held busy here), a client outside
    that room gets its PONG at once; a member gets the message first, then its PONG."""
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    writer = server.server.writer
    assert writer is not None
    alice = client(server, client_context, "alice").join("#busy")
    member = client(server, client_context, "member").join("#busy")
    outsider = client(server, client_context, "outsider")
    gate = threading.Event()
    busy = writer.submit(lambda store: gate.wait(30))
    try:
        alice.send("PRIVMSG #busy :waits for its commit")
        member.send("PING :member")
        outsider.send("PING :outsider")
        outsider.expect(r" PONG \S+ :?outsider", timeout=PROMPT)
        assert not busy.done(), "the commit was not held up: the test proves nothing"
    finally:
        gate.set()
    assert member.expect(r"PRIVMSG #busy|PONG").command == "PRIVMSG"
    member.expect(r" PONG \S+ :?member")
