"""SIGKILL in the middle of a burst loses nothing any client saw (DESIGN.md §2.5, §6).

A sender streams numbered messages to a room, staying at most ``IN_FLIGHT`` messages ahead
of a receiver that records every msgid it is delivered. Once the receiver has seen
``SEEN_BEFORE_KILL`` messages the server process is killed with SIGKILL, the sender still
sending. After a restart on the same data directory, CHATHISTORY must return every message
the receiver saw: the server delivers a message only after its history commit returned.
"""

from __future__ import annotations

import signal
import ssl
import threading
from pathlib import Path

from securechat.certs import DevCertResult, generate_dev_certs
from tests.e2e.test_serve import ServeProcess
from tests.support import IrcClient

ROOM = "#burst"
SEEN_BEFORE_KILL = 500
IN_FLIGHT = 400
CHUNK = 50
WAIT = 30.0


class Burst:
    """What the receiver saw, shared with the sender that paces itself on it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.progress = threading.Condition()
        self.stop = threading.Event()

    def record(self, msgid: str) -> None:
        with self.progress:
            self.seen.append(msgid)
            self.progress.notify_all()

    def finish(self) -> None:
        with self.progress:
            self.stop.set()
            self.progress.notify_all()

    def wait_for(self, count: int) -> bool:
        with self.progress:
            return self.progress.wait_for(
                lambda: len(self.seen) >= count or self.stop.is_set(), WAIT
            )


def start_server(certs: DevCertResult, data_dir: Path, config: Path) -> ServeProcess:
    return ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)),
        *("--cert", str(certs.server_cert), "--key", str(certs.server_key)),
        *("--config", str(config)),
    )


def send_burst(sender: IrcClient, burst: Burst) -> None:
    """Numbered messages in chunks, never more than IN_FLIGHT ahead of the receiver."""
    sent = 0
    while not burst.stop.is_set() and burst.wait_for(sent - IN_FLIGHT):
        lines = "".join(f"PRIVMSG {ROOM} :message {sent + i}\r\n" for i in range(CHUNK))
        try:
            sender.sock.sendall(lines.encode())
        except OSError:
            return
        sent += CHUNK


def receive_burst(receiver: IrcClient, burst: Burst) -> None:
    """Record each delivered message's msgid until the connection dies."""
    while True:
        try:
            line = receiver.read_line(timeout=WAIT)
        except (TimeoutError, OSError):
            return
        if line is None:
            return
        if b" PRIVMSG " in line and line.startswith(b"@"):
            tags = line[1:].split(b" ", 1)[0].decode().split(";")
            burst.record(dict(tag.split("=", 1) for tag in tags)["msgid"])


def oldest_stored_msgids(client: IrcClient, count: int) -> list[str]:
    """The first ``count`` messages of the room, by BETWEEN from the epoch onwards."""
    start, end = "timestamp=1970-01-01T00:00:00.000Z", "timestamp=2999-01-01T00:00:00.000Z"
    client.send(f"CHATHISTORY BETWEEN {ROOM} {start} {end} {count}")
    client.expect(r" BATCH :?\+")
    stored = []
    while (message := client.expect(r" (PRIVMSG|BATCH) ")).command == "PRIVMSG":
        stored.append(message.tags["msgid"])
    return stored


def test_every_message_a_client_saw_survives_sigkill(tmp_path: Path) -> None:
    certs = generate_dev_certs(tmp_path / "certs")
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    data_dir, config = tmp_path / "data", tmp_path / "server.toml"
    config.write_text('chathistory_limit = 100000\nexempt = ["127.0.0.0/8"]\n')
    server = start_server(certs, data_dir, config)
    receiver = IrcClient.connect("127.0.0.1", server.port, context)
    receiver.register("receiver", ("message-tags",)).join(ROOM)
    # A registered room: its history outlives the room (an unregistered room's ends with it).
    receiver.send("PRIVMSG NickServ :REGISTER correct-horse")
    receiver.expect(r" 900 ")
    receiver.send(f"PRIVMSG ChanServ :REGISTER {ROOM}")
    receiver.expect(rf"{ROOM} is registered to receiver")
    sender = IrcClient.connect("127.0.0.1", server.port, context).register("sender").join(ROOM)
    burst = Burst()
    threads = [
        threading.Thread(target=receive_burst, args=(receiver, burst)),
        threading.Thread(target=send_burst, args=(sender, burst)),
    ]
    for thread in threads:
        thread.start()

    assert burst.wait_for(SEEN_BEFORE_KILL), "the burst never reached the receiver"
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(WAIT)
    threads[0].join(WAIT)
    burst.finish()
    threads[1].join(WAIT)
    sender.close()
    receiver.close()

    again = start_server(certs, data_dir, config)
    try:
        checker = IrcClient.connect("127.0.0.1", again.port, context)
        checker.register("checker", ("batch", "message-tags", "draft/chathistory")).join(ROOM)
        stored = oldest_stored_msgids(checker, len(burst.seen))
        checker.close()
    finally:
        again.stop()
    assert len(burst.seen) >= SEEN_BEFORE_KILL
    assert stored == burst.seen, "a message the receiver saw is missing from history"
