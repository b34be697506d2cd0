"""The stuck-readers scenario: server memory while many clients stop reading a busy room.

Security review M4: 500 registered clients that stop reading, in a room others keep posting
to, took the server from 98 to 575 MiB, kept after they left, plus ~3 MiB of kernel send
buffer per socket. This scenario reproduces a bounded version and samples the server's RSS
(``/proc/PID/status``) and the host's TCP buffer memory (``/proc/net/sockstat``, pages):

- ``before``: every reader has joined ``#stuck`` and stopped reading (receive window 8 KiB);
- ``peak``: the highest sample while senders post ``--duration`` seconds of 400-byte lines;
- ``end``: when the senders stop; ``after``: ``--settle`` seconds after every client left.

Readers the server drops ("SendQ exceeded") are counted. One process, loopback only; the
count and the time are bounded by the options. Senders pace themselves with a PING every 32
lines (the server must have read them), so flood control decides their rate unless the
server exempts 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securechat.bench.ircconn import IrcConnection, connect
from securechat.bench.nicks import nick
from securechat.bench.procstat import sample
from securechat.bench.target import Target

ROOM = b"#stuck"
READER_RCVBUF = 8 * 1024  # the reader's kernel takes little: the server holds the backlog
SAMPLE_SECONDS = 0.25
LINES_PER_PING = 32
SETUP_CONCURRENCY = 32
DROP_WAIT = 5.0  # seconds for dropped readers to read their way to the close
MIB = 1024 * 1024


Setup = Callable[[Target, Any, str], Awaitable[IrcConnection]]


@dataclass(frozen=True)
class StuckPlan:
    readers: int
    senders: int
    duration: float
    settle: float
    tag: str


async def run_stuck(plan: StuckPlan, target: Target, server_pid: int | None) -> dict[str, Any]:
    sampler = Sampler(server_pid)
    report: dict[str, Any] = {"scenario": "stuck-readers", "readers": plan.readers}
    report["baseline"] = sampler.now()
    readers = await _connect_many(plan, target, "r", plan.readers, _stuck_reader)
    senders = await _connect_many(plan, target, "s", plan.senders, _joined)
    report["before"] = sampler.now()
    watch = asyncio.create_task(sampler.watch())
    deadline = time.monotonic() + plan.duration
    sent = await asyncio.gather(*(_send_until(s, deadline, i) for i, s in enumerate(senders)))
    report["end"] = sampler.now()
    watch.cancel()
    report["peak"] = sampler.peak
    report["lines_sent"] = sum(sent)
    report["readers_dropped"] = await _count_dropped(readers)
    for conn in (*readers, *senders):
        conn.abort()
    await asyncio.sleep(plan.settle)
    report["after"] = sampler.now()
    return report


async def _count_dropped(readers: list[IrcConnection]) -> int:
    """Read again, briefly: a reader the server dropped reaches its end (ERROR, close)."""
    for conn in readers:
        if conn.transport is not None and not conn.transport.is_closing():
            conn.transport.resume_reading()
    await asyncio.wait([asyncio.ensure_future(r.closed) for r in readers], timeout=DROP_WAIT)
    return sum(1 for r in readers if r.lost_unexpectedly)


async def _connect_many(
    plan: StuckPlan, target: Target, role: str, count: int, setup: Setup
) -> list[IrcConnection]:
    context = target.ssl_context()
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(index: int) -> IrcConnection:
        async with gate:
            return await setup(target, context, nick(role, plan.tag, index))

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _joined(target: Target, context: Any, name: str) -> IrcConnection:
    conn = await connect(target, name, context)
    conn.join(ROOM)
    await asyncio.wait_for(asyncio.shield(conn.joined), target.connect_timeout)
    return conn


async def _stuck_reader(target: Target, context: Any, name: str) -> IrcConnection:
    """A client that joins, then never reads again (a small window, reading paused)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6 if ":" in target.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, READER_RCVBUF)
    sock.setblocking(False)
    await loop.sock_connect(sock, (target.host, target.port))
    _, conn = await asyncio.wait_for(
        loop.create_connection(
            lambda: IrcConnection(name), sock=sock, ssl=context, server_hostname="localhost"
        ),
        target.connect_timeout,
    )
    conn.register()
    await asyncio.wait_for(asyncio.shield(conn.welcomed), target.connect_timeout)
    conn.join(ROOM)
    await asyncio.wait_for(asyncio.shield(conn.joined), target.connect_timeout)
    assert conn.transport is not None
    conn.transport.pause_reading()
    return conn


async def _send_until(conn: IrcConnection, deadline: float, index: int) -> int:
    text = b"x" * 400
    sent = 0
    while time.monotonic() < deadline and not conn.closed.done():
        batch = b"".join(
            b"PRIVMSG %s :%d %d %s\r\n" % (ROOM, index, sent + k, text)
            for k in range(LINES_PER_PING)
        )
        try:
            await asyncio.wait_for(conn.ping(b"%d-%d" % (index, sent), batch), 30.0)
        except (TimeoutError, ConnectionError):
            break
        sent += LINES_PER_PING
    return sent


class Sampler:
    """The server's RSS and the host's TCP buffer memory, now and at their peak."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak: dict[str, float] = {"rss_mib": 0.0, "tcp_mem_mib": 0.0}

    def now(self) -> dict[str, float]:
        figures = {"tcp_mem_mib": tcp_memory_mib()}
        if self.pid is not None:
            figures["rss_mib"] = sample(self.pid).rss_bytes / MIB
        for key, value in figures.items():
            self.peak[key] = max(self.peak.get(key, 0.0), value)
        return figures

    async def watch(self) -> None:
        while True:
            self.now()
            await asyncio.sleep(SAMPLE_SECONDS)


def tcp_memory_mib(path: Path = Path("/proc/net/sockstat")) -> float:
    """Kernel memory in TCP buffers, host-wide (the ``mem`` pages of the TCP line)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("TCP:"):
                words = line.split()
                pages = int(words[words.index("mem") + 1])
                return pages * 4096 / MIB
    except (OSError, ValueError):
        pass
    return 0.0


def render_stuck(report: dict[str, Any]) -> str:
    rows = [
        f"stuck-readers: {report['readers']} readers, {report['lines_sent']} lines sent, "
        f"{report['readers_dropped']} readers dropped by the server"
    ]
    for phase in ("baseline", "before", "peak", "end", "after"):
        figures = report[phase]
        rss = f"{figures['rss_mib']:.1f} MiB" if "rss_mib" in figures else "n/a"
        rows.append(
            f"  {phase:<8} server RSS {rss:>11}   host TCP buffers {figures['tcp_mem_mib']:.1f} MiB"
        )
    return "\n".join(rows)
