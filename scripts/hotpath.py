"""The server's Python cost per message and per delivery, in-process and repeatable.

    .venv/bin/python scripts/hotpath.py [--members 50] [--messages 2000] [--senders 5]
                                        [--history] [--burst 1]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python scripts/hotpath.py --messages 2000   # instructions (run twice: see below)

Drives the real ``ChatServer`` (net/server.py) and ``ServerCore`` on the running event loop:
``--members`` connections, each a real ``Connection`` over a real ``TlsTransport`` on a
socketpair, register and join ``#bench``; then ``--senders`` of them take turns saying one
line each, ``--messages`` in all, and every line is flushed in its own loop iteration (the
fixed-rate regime of BENCHMARKS.md: one record per recipient per line). The transports' SSL
object takes every byte without sealing or sending it, so only what Python does around
``SSL_write`` is measured: framing, parse, dispatch, the recipient walk, build, the action
loop, the flush, and one loop iteration per line.

Wall and CPU time on this shared machine swing with the neighbours; callgrind's instruction
count does not. Run it under callgrind with two ``--messages`` values and divide the
difference by the difference in messages: that is the cost of one line and its deliveries,
without start-up (BENCHMARKS.md, "Fourth round").

``--history`` opens a real SQLite store (a temporary file, the default ``synchronous=NORMAL``)
and hands it to the server, as ``serve`` does by default: every line is committed by the
writer thread before it is delivered. The driver waits for each line's delivery (a write to
the last member's transport) before the next, so every commit holds one message; ``--burst
K`` sends K lines before waiting, so commits group as under load. The CPU printed is split
by thread (the loop, the store writer); under callgrind add ``--separate-threads=yes`` for
the same split in instructions (BENCHMARKS.md, "Fifth round").
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path

from securechat.server.config import ServerConfig
from securechat.server.net.connection import Connection
from securechat.server.net.pacing import FlushPacer
from securechat.server.net.server import ChatServer
from securechat.server.net.tls_transport import TlsTransport
from securechat.server.store import StoreWriter


class TakesEverything:
    """An SSL connection whose ``write`` takes all bytes at once: no seal, no system call."""

    def write(self, data: bytes) -> int:
        return len(data)

    def read(self, size: int, buffer: object) -> int:
        raise ssl.SSLWantReadError

    def getpeercert(self, binary_form: bool) -> None:
        return None  # no client certificate


class Watches(TakesEverything):
    """The last member's SSL connection (never a sender): it counts the lines that reached
    it and wakes the driver once ``expect`` have."""

    def __init__(self) -> None:
        self.seen = 0
        self.expect = 0
        self.arrived: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> int:
        self.seen += data.count(b" PRIVMSG #bench ")
        if self.seen >= self.expect and self.arrived is not None:
            self.arrived.set_result(None)
            self.arrived = None
        return len(data)


def thread_cpu(thread: threading.Thread | None) -> float:
    if thread is None or thread.ident is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


async def drive(
    members: int, senders: int, messages: int, writer: StoreWriter | None, burst: int
) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    config = ServerConfig(data_dir=None, exempt=("127.0.0.0/8",))
    server = ChatServer(config, ssl.create_default_context(), writer=writer)
    # A pacer that never waits: every line is its own flush, whatever the machine's speed
    # (under callgrind time runs ~50x slower, which the real pacer would read as busy).
    server._pacer = FlushPacer(pause=0.0)
    keep = []
    connections = []
    watch = Watches()
    for index in range(members):
        ours, theirs = socket.socketpair()
        keep.append((ours, theirs))
        connection = Connection(server, index + 1, "127.0.0.1")
        ssl_object = watch if index == members - 1 else TakesEverything()
        transport = TlsTransport(loop, ours, ssl_object, connection, 5.0)  # type: ignore[arg-type]
        connection.connection_made(transport)
        connection.data_received(b"NICK u%d\r\nUSER u 0 * :u\r\nJOIN #bench\r\n" % index)
        connections.append(connection)
    # Registration and the joins (with history, each join's replay reads the store first).
    while (room := server.core.rooms.get("#bench")) is None or len(room.members) < members:
        await asyncio.sleep(0.01)
    while server._waiting_on:
        await asyncio.sleep(0.01)
    writer_thread = writer._thread if writer is not None else None
    lines = [b"PRIVMSG #bench :b %d %d 1234567890123\r\n" % (s, 0) for s in range(senders)]
    loop_started, writer_started = time.thread_time(), thread_cpu(writer_thread)
    for number in range(0, messages, burst):
        sent = range(number, min(number + burst, messages))
        watch.expect = watch.seen + len(sent)
        watch.arrived = arrived = loop.create_future()
        for each in sent:
            connections[each % senders].data_received(lines[each % senders])
        await arrived  # delivered (with history: after its commit), flushed in a later iteration
    loop_spent = time.thread_time() - loop_started
    writer_spent = thread_cpu(writer_thread) - writer_started
    assert server.core.metrics.deliveries >= messages * (members - 1)
    for ours, theirs in keep:
        ours.close()
        theirs.close()
    return loop_spent, writer_spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--history", action="store_true", help="commit each line to SQLite")
    parser.add_argument("--burst", type=int, default=1, help="lines sent before waiting")
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    with tempfile.TemporaryDirectory() as data:
        writer = StoreWriter.open(Path(data) / "chat.db") if args.history else None
        try:
            coroutine = drive(args.members, args.senders, args.messages, writer, args.burst)
            loop_spent, writer_spent = runner(coroutine)
        finally:
            if writer is not None:
                writer.close()
        stats = writer.stats if writer is not None else None
    per_message = (loop_spent + writer_spent) / args.messages * 1e6
    per_delivery = per_message / (args.members - 1)
    print(f"{per_message:.1f} us CPU per line, {per_delivery * 1000:.0f} ns per delivery")
    if stats is not None:
        print(
            f"  loop thread {loop_spent / args.messages * 1e6:.1f} us, writer thread "
            f"{writer_spent / args.messages * 1e6:.1f} us per line; "
            f"{stats.appends / max(stats.commits, 1):.2f} lines per commit"
        )


if __name__ == "__main__":
    main()
