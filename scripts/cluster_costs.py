"""CPU per event of each piece of cluster mode, alone, in-process, against a real redis-server.

    .venv/bin/python scripts/cluster_costs.py [--events 20000] [--batch 20] [--members 50]

What a node does with one client line in cluster mode, piece by piece (docs/CLUSTER.md), each
timed with this process's CPU clock over ``--events`` PRIVMSG events to one room of
``--members`` members, half of them on another node:

- encode: the line as a LINE event, ``--batch`` events per stream entry (codec.encode_batch);
- XADD: one entry per batch through the node's Bus.append (a raw RESP connection on hiredis,
  cluster/resp.py), client side, and Redis's side (its /proc CPU time and INFO commandstats);
- XREAD: reading the entries back, 1,000 per call (Bus.read), client side and Redis's side,
  per reading node: every node reads every entry;
- decode: codec.decode_batch;
- apply: Replica.apply of each event (the core's parse, dispatch, build and recipient walk;
  this node's members only, the sends not written);
- and, for comparison, the single-process core's receive_line of the same lines to an
  all-local room (what the default server does before its writes), and an XREAD of one entry
  through redis.asyncio (what the Bus used before cluster/resp.py) against the 30-line RESP
  sketch below (BENCHMARKS.md, Cluster, "cheap wins").

The writes to clients are not here: they are the same work with or without a cluster, per
local recipient (scripts/hotpath.py and BENCHMARKS.md measure them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from pathlib import Path
from typing import Any

from securechat.bench import procstat, redis_probe
from securechat.bench.local_cluster import LocalCluster
from securechat.server.cluster import codec
from securechat.server.cluster.bus import STREAM, Bus
from securechat.server.cluster.replica import Replica
from securechat.server.config import ServerConfig
from securechat.server.core import NODE_SHIFT, ServerCore

HERE, THERE = 3, 5  # node numbers: this node's and another's


def conn_id(index: int, members: int) -> int:
    """Members alternate between this node and the other one (as the bench spreads them)."""
    return (HERE if index % 2 == 0 else THERE) << NODE_SHIFT | index


def join_events(members: int, now: float) -> list[list[Any]]:
    events: list[list[Any]] = []
    for index in range(members):
        conn = conn_id(index, members)
        events.append([codec.CONNECT, now, conn, "127.0.0.1", None])
        for line in (b"NICK u%d" % index, b"USER u 0 * :u", b"JOIN #bench"):
            events.append([codec.LINE, now, conn, codec.line_text(line)])
    return events


def line_events(count: int, members: int, now: float) -> list[list[Any]]:
    senders = [conn_id(index, members) for index in range(5)]
    return [
        [codec.LINE, now, senders[n % 5], f"PRIVMSG #bench :b {n % 5} {n} 1234567890123"]
        for n in range(count)
    ]


def batches(events: list[list[Any]], size: int) -> list[list[list[Any]]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


def cpu_us_per(spent_s: float, count: int) -> float:
    return spent_s * 1e6 / count


def measure_apply(members: int, events: list[list[Any]]) -> tuple[float, int]:
    config = ServerConfig(data_dir=None, exempt=("127.0.0.0/8",))
    core = ServerCore(config, 1.0)
    replica = Replica(core, "here/3", HERE)
    for index, event in enumerate(join_events(members, 1.0)):
        replica.apply("1-0", index, "here/3", event)
    sends = 0
    started = time.process_time()
    for index, event in enumerate(events):
        actions, _ = replica.apply(f"2-{index}", 0, "here/3", event)
        sends += len(actions)
    return time.process_time() - started, sends


def measure_single(members: int, events: list[list[Any]]) -> float:
    config = ServerConfig(data_dir=None, exempt=("127.0.0.0/8",))
    core = ServerCore(config, 1.0)
    for index in range(members):
        core.connect(index, "127.0.0.1", 1.0, None)
        for line in (b"NICK u%d" % index, b"USER u 0 * :u", b"JOIN #bench"):
            core.receive_line(index, line, 1.0)
    lines = [(event[2] & 0xFFFFFFFF, codec.line_bytes(event[3])) for event in events]
    started = time.process_time()
    for conn, raw in lines:
        core.receive_line(conn, raw, 1.0)
    return time.process_time() - started


async def measure_redis(socket_path: str, encoded: list[bytes], events: int) -> dict[str, float]:
    bus = Bus(f"unix://{socket_path}")
    await bus.open()
    redis_pid = redis_probe.pid(socket_path)
    figures: dict[str, float] = {}
    try:
        before_stats = redis_probe.command_stats(socket_path)
        redis_before = procstat.sample(redis_pid).cpu_s
        started = time.process_time()
        for number, data in enumerate(encoded, 1):
            await bus.append("here/3", data, number)
        figures["xadd_client"] = time.process_time() - started
        figures["xadd_redis"] = procstat.sample(redis_pid).cpu_s - redis_before
        middle_stats = redis_probe.command_stats(socket_path)
        redis_before = procstat.sample(redis_pid).cpu_s
        started = time.process_time()
        last, got, entries = "0", 0, 0
        while True:
            chunk = await bus.read(last, None)
            if not chunk:
                break
            for entry, fields in chunk:
                last = entry
                entries += 1
                got += len(fields[b"e"])
        figures["xread_client"] = time.process_time() - started
        figures["xread_redis"] = procstat.sample(redis_pid).cpu_s - redis_before
        after_stats = redis_probe.command_stats(socket_path)
        started = time.process_time()
        ids, last = [], "0"
        for _ in range(min(entries, 5000)):  # one entry per call: the unbatched regime
            reply = await bus.r.xread({STREAM: last}, count=1)
            last = reply[0][1][0][0]
            ids.append(last)
        figures["xread_one_client_per_call"] = (time.process_time() - started) / len(ids)
        xadd = redis_probe.command_delta(before_stats, middle_stats)["xadd"]
        xread = redis_probe.command_delta(middle_stats, after_stats)["xread"]
        figures["xadd_usec_counted"] = xadd.usec
        figures["xread_usec_counted"] = xread.usec
        figures["entries"] = entries
        figures["memory"] = redis_probe.used_memory(socket_path)
    finally:
        await bus.close()
    return figures


class RawResp(asyncio.Protocol):
    """Just enough RESP for XADD and XREAD: commands packed by hand, replies parsed by hiredis."""

    def __init__(self) -> None:
        import hiredis

        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.waiting.popleft().set_result(reply)

    def call(self, *args: bytes) -> asyncio.Future[Any]:
        assert self.transport is not None
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(b"".join(parts))
        return future


async def measure_raw(socket_path: str, encoded: list[bytes]) -> tuple[float, float]:
    """Client CPU of XADD per entry, and of XREAD one entry per call, over RawResp."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_unix_connection(RawResp, socket_path)
    try:
        started = time.process_time()
        ids = []
        for data in encoded:
            ids.append(await protocol.call(b"XADD", b"raw", b"*", b"o", b"here/3", b"e", data))
        xadd_s = time.process_time() - started
        started = time.process_time()
        last = b"0"
        for entry in ids:
            await protocol.call(b"XREAD", b"COUNT", b"1", b"STREAMS", b"raw", last)
            last = entry
        return xadd_s, time.process_time() - started
    finally:
        transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=20, help="events per stream entry")
    parser.add_argument("--members", type=int, default=50)
    args = parser.parse_args()
    events = line_events(args.events, args.members, 2.0)

    started = time.process_time()
    encoded = [codec.encode_batch(batch) for batch in batches(events, args.batch)]
    encode_s = time.process_time() - started
    started = time.process_time()
    for data in encoded:
        codec.decode_batch(data)
    decode_s = time.process_time() - started

    with tempfile.TemporaryDirectory(prefix="sccost-") as tmp:
        cluster = LocalCluster(0, Path(tmp), Path("-"), Path("-"))
        cluster.start()
        try:
            memory_before = redis_probe.used_memory(cluster.redis_socket)
            redis = asyncio.run(measure_redis(cluster.redis_socket, encoded, args.events))
            raw_xadd_s, raw_xread_s = asyncio.run(measure_raw(cluster.redis_socket, encoded))
        finally:
            cluster.stop()
    apply_s, sends = measure_apply(args.members, events)
    single_s = measure_single(args.members, events)

    n = args.events
    bytes_per_event = sum(map(len, encoded)) / n
    print(
        f"{n} PRIVMSG events, {args.batch} per stream entry, room of {args.members} "
        f"(half on this node); {bytes_per_event:.0f} bytes per event encoded"
    )
    rows = [
        ("encode (codec.encode_batch)", encode_s),
        ("XADD, node side (Bus.append: raw RESP, hiredis)", redis["xadd_client"]),
        ("XADD, Redis process CPU", redis["xadd_redis"]),
        ("XADD, Redis's own count (commandstats usec)", redis["xadd_usec_counted"] / 1e6),
        ("XREAD, node side, per reading node", redis["xread_client"]),
        ("XREAD, Redis process CPU, per reading node", redis["xread_redis"]),
        ("XREAD, Redis's own count, per reading node", redis["xread_usec_counted"] / 1e6),
        ("decode (codec.decode_batch)", decode_s),
        ("apply (Replica.apply: core, local members only)", apply_s),
        ("single process: core.receive_line (all local)", single_s),
    ]
    for label, spent in rows:
        print(f"  {cpu_us_per(spent, n):7.2f} us/event  {label}")
    entries = len(encoded)
    print(f"  {cpu_us_per(redis['xadd_client'], entries):7.2f} us/call   XADD, Bus.append")
    one = redis["xread_one_client_per_call"] * 1e6
    print(f"  {one:7.2f} us/call   XREAD of one entry, redis.asyncio")
    print(f"  {cpu_us_per(raw_xadd_s, entries):7.2f} us/call   XADD, raw RESP on hiredis")
    print(f"  {cpu_us_per(raw_xread_s, entries):7.2f} us/call   XREAD of one entry, raw RESP")
    grown = (redis["memory"] - memory_before) / n
    print(f"  {grown:7.0f} bytes/event of Redis memory (the stream, untrimmed)")
    print(f"  {sends / n:7.2f} send actions per applied event")


if __name__ == "__main__":
    main()
