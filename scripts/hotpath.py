"""The server's Python cost per message and per delivery, in-process and repeatable.

    .venv/bin/python scripts/hotpath.py [--members 50] [--messages 2000] [--senders 5]
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
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import time

from securechat.server.config import ServerConfig
from securechat.server.net.connection import Connection
from securechat.server.net.pacing import FlushPacer
from securechat.server.net.server import ChatServer
from securechat.server.net.tls_transport import TlsTransport


class TakesEverything:
    """An SSL connection whose ``write`` takes all bytes at once: no seal, no system call."""

    def write(self, data: bytes) -> int:
        return len(data)

    def read(self, size: int, buffer: object) -> int:
        raise ssl.SSLWantReadError

    def getpeercert(self, binary_form: bool) -> None:
        return None  # no client certificate


async def drive(members: int, senders: int, messages: int) -> float:
    loop = asyncio.get_running_loop()
    config = ServerConfig(data_dir=None, exempt=("127.0.0.0/8",))
    server = ChatServer(config, ssl.create_default_context())
    # A pacer that never waits: every line is its own flush, whatever the machine's speed
    # (under callgrind time runs ~50x slower, which the real pacer would read as busy).
    server._pacer = FlushPacer(pause=0.0)
    keep = []
    connections = []
    for index in range(members):
        ours, theirs = socket.socketpair()
        keep.append((ours, theirs))
        connection = Connection(server, index + 1, "127.0.0.1")
        transport = TlsTransport(loop, ours, TakesEverything(), connection, 5.0)  # type: ignore[arg-type]
        connection.connection_made(transport)
        connection.data_received(b"NICK u%d\r\nUSER u 0 * :u\r\nJOIN #bench\r\n" % index)
        connections.append(connection)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    lines = [b"PRIVMSG #bench :b %d %d 1234567890123\r\n" % (s, 0) for s in range(senders)]
    started = time.process_time()
    for number in range(messages):
        connections[number % senders].data_received(lines[number % senders])
        await asyncio.sleep(0)  # the flush runs in the next loop iteration, as in the server
    spent = time.process_time() - started
    assert server.core.metrics.deliveries >= messages * (members - 1)
    for ours, theirs in keep:
        ours.close()
        theirs.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    spent = runner(drive(args.members, args.senders, args.messages))
    per_message = spent / args.messages * 1e6
    per_delivery = per_message / (args.members - 1)
    print(f"{per_message:.1f} us CPU per line, {per_delivery * 1000:.0f} ns per delivery")


if __name__ == "__main__":
    main()
