"""The fan-out scenario: clients in rooms, senders stamping each message, receivers checking.

Each message is ``PRIVMSG #benchR :b <sender> <seq> <t_ns>`` with ``t_ns`` from the system-wide
monotonic clock, so a receiver in any worker process computes its latency directly. Senders
start only after every client in every worker has seen its own JOIN echo: the server has then
processed every JOIN, so each room is full before the first message.

Each receiver also keeps the order in which messages arrived (sender and sequence, packed in one
integer). Its digest, and each room's reference sequence (``FanoutPlan.reference_of``), go back
to the coordinator, which checks that every member of a room saw one and the same order: with
several senders in a room on several cluster nodes, that is what the cluster must guarantee.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.sharedctypes import RawArray
from typing import Any

from securechat.bench.fanout_plan import FanoutPlan, ledger_layout, sender_slots
from securechat.bench.ircconn import Fields, IrcConnection, connect, monotonic_ns, quit_all
from securechat.bench.nicks import nick
from securechat.bench.report import (
    Measurement,
    all_errors,
    cluster_figures,
    merged_latencies,
    server_figures,
)
from securechat.bench.sequence import Receiver, Tally
from securechat.bench.stats import latency_summary_ms, per_second
from securechat.bench.target import Target
from securechat.bench.worker import (
    Channel,
    Share,
    WorkerFn,
    cancel,
    connection_losses,
    report_progress,
)

SETUP_CONCURRENCY = 64  # TLS handshakes in flight per worker while clients join
PINGS_IN_FLIGHT = 2  # window checkpoints a sender may run ahead of the server
# A sender held by the delivery window looks at its room-mates' counters this often: polling a
# shared array costs a wake-up per interval, a notification would cost a pipe write per delivery.
WINDOW_POLL_S = 0.0005

# A message's place in an arrival order: sender and sequence in one int64 (seq < 2**32).
ORDER_SHIFT = 32

# One int64 per (sender, room-mate): how many of that sender's messages the room-mate has got.
# Shared memory that every worker process maps (handed over when the worker is spawned).
Ledger = ctypes.Array[ctypes.c_longlong]


@dataclass(frozen=True)
class FanoutWork:
    """What a worker process is given: the plan, and the delivery ledger when windowed by it."""

    plan: FanoutPlan
    ledger: Ledger | None = None
    layout: dict[tuple[int, int], int] = field(default_factory=dict)

    @classmethod
    def for_plan(cls, plan: FanoutPlan) -> FanoutWork:
        if plan.window_by != "delivery":
            return cls(plan)
        layout = ledger_layout(plan)
        return cls(plan, RawArray(ctypes.c_longlong, max(1, len(layout))), layout)


@dataclass
class Counters:
    """What one worker's receivers and senders did; read by progress and the final result."""

    arrivals: int = 0
    unique: int = 0
    malformed: int = 0
    sent: int = 0
    window_timeouts: int = 0
    last_arrival_ns: int = 0
    latencies: array[int] = field(default_factory=lambda: array("q"))


class Inbox:
    """The payload sink of one client: parse ``<sender> <seq> <t_ns>``, track, time, and keep
    the arrival order (``sender << ORDER_SHIFT | seq`` per message)."""

    __slots__ = ("counters", "order", "receiver")

    def __init__(self, receiver: Receiver, counters: Counters) -> None:
        self.receiver = receiver
        self.counters = counters
        self.order: array[int] = array("q")

    def payloads(self, conn: IrcConnection, found: list[Fields], arrival_ns: int) -> None:
        counters = self.counters
        counters.arrivals += len(found)
        counters.last_arrival_ns = arrival_ns
        record, latencies, order = self.receiver.record, counters.latencies, self.order.append
        for fields in found:  # runs per delivery: no generator, no helper call
            try:
                sender, seq, sent_ns = int(fields[0]), int(fields[1]), int(fields[2])
            except (ValueError, IndexError):
                counters.malformed += 1
                continue
            order(sender << ORDER_SHIFT | seq)
            if record(sender, seq):
                counters.unique += 1
                latencies.append(arrival_ns - sent_ns)


class LedgerInbox(Inbox):
    """An Inbox that also publishes, per sender, how many messages arrived in order so far."""

    __slots__ = ("ledger", "slots")

    def __init__(
        self, receiver: Receiver, counters: Counters, ledger: Ledger, slots: dict[int, int]
    ) -> None:
        super().__init__(receiver, counters)
        self.ledger = ledger
        self.slots = slots  # sender -> ledger index for this receiver

    def payloads(self, conn: IrcConnection, found: list[Fields], arrival_ns: int) -> None:
        super().payloads(conn, found, arrival_ns)
        ledger, slots, streams = self.ledger, self.slots, self.receiver.streams
        for sender in {fields[0] for fields in found}:
            try:
                number = int(sender)
                ledger[slots[number]] = streams[number].next_seq
            except (ValueError, KeyError):
                continue  # counted as malformed or unexpected by the Inbox already


# -- worker side ---------------------------------------------------------------------------


async def run_worker(work: FanoutWork, target: Target, share: Share, channel: Channel) -> None:
    plan = work.plan
    counters = Counters()
    conns: dict[int, IrcConnection] = {}
    try:
        setup_s = await _join_all(work, target, share, counters, conns)
        channel.send("ready", {"connected": len(conns), "setup_s": setup_s})
        await channel.expect("go")
        go_ns = monotonic_ns()
        senders = [
            asyncio.create_task(_send(work, conns[c], c, counters))
            for c in conns
            if plan.is_sender(c)
        ]
        progress = asyncio.create_task(
            report_progress(channel, lambda: _snapshot(counters, senders, conns))
        )
        await channel.expect("stop")
        await cancel(progress)
        for task in senders:
            await cancel(task)
        channel.send("result", _result(plan, go_ns, counters, conns))
    finally:
        await quit_all(list(conns.values()), timeout=2.0)


async def _join_all(
    work: FanoutWork,
    target: Target,
    share: Share,
    counters: Counters,
    conns: dict[int, IrcConnection],
) -> float:
    """Connect, register and join this worker's clients; seconds it took."""
    plan = work.plan
    context = target.ssl_context()
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)
    started = monotonic_ns()

    async def join_one(client: int) -> None:
        receiver = Receiver.expecting(plan.expected_senders(client), plan.messages)
        async with limit:
            conn = await connect(
                target.node(plan.node_of(client)),
                nick("f", plan.tag, client),
                context,
                _inbox(work, client, receiver, counters),
            )
            conns[client] = conn
            conn.join(plan.room_name(plan.room_of(client)))
            await asyncio.wait_for(asyncio.shield(conn.joined), target.connect_timeout)

    async with asyncio.TaskGroup() as group:
        for client in share.items(plan.clients):
            group.create_task(join_one(client))
    return (monotonic_ns() - started) / 1e9


def _inbox(work: FanoutWork, client: int, receiver: Receiver, counters: Counters) -> Inbox:
    if work.ledger is None:
        return Inbox(receiver, counters)
    slots = {sender: work.layout[sender, client] for sender in receiver.streams}
    return LedgerInbox(receiver, counters, work.ledger, slots)


async def _send(work: FanoutWork, conn: IrcConnection, sender: int, counters: Counters) -> None:
    plan = work.plan
    prefix = b"PRIVMSG %s :b %d " % (plan.room_name(plan.room_of(sender)), sender)
    if plan.rate is None and work.ledger is not None:
        slots = sender_slots(work.layout, sender)
        await _send_delivery_windowed(plan, conn, prefix, counters, work.ledger, slots)
    elif plan.rate is None:
        await _send_flat_out(plan, conn, prefix, counters)
    else:
        await _send_paced(plan, conn, prefix, sender, counters)


def _batch(prefix: bytes, first: int, count: int) -> bytes:
    stamp = monotonic_ns()
    return b"".join(b"%s%d %d\r\n" % (prefix, seq, stamp) for seq in range(first, first + count))


async def _send_flat_out(
    plan: FanoutPlan, conn: IrcConnection, prefix: bytes, counters: Counters
) -> None:
    """As fast as the server takes it. A PING every ``window`` messages, riding in the same
    write, bounds how far a sender runs ahead of what the server has processed: without it,
    "max rate" would measure how large the server lets its input buffers grow."""
    checkpoints: deque[asyncio.Future[None]] = deque()
    seq = 0
    since_ping = 0
    while seq < plan.messages:
        count = min(plan.pipeline, plan.messages - seq)
        data = _batch(prefix, seq, count)
        seq += count
        since_ping += count
        counters.sent += count
        if plan.window and (since_ping >= plan.window or seq == plan.messages):
            checkpoints.append(conn.ping(b"w%d" % seq, after=data))
            since_ping = 0
        else:
            conn.send(data)
        while len(checkpoints) > PINGS_IN_FLIGHT:
            await _checkpoint(plan, checkpoints.popleft(), counters)
        await conn.drain()
        await asyncio.sleep(0)  # let receivers in this process read between writes


async def _send_delivery_windowed(
    plan: FanoutPlan,
    conn: IrcConnection,
    prefix: bytes,
    counters: Counters,
    ledger: Ledger,
    slots: range,
) -> None:
    """As fast as the server takes it, but never more than ``window`` messages ahead of the
    slowest room-mate: what a receiver has got, not merely what the server has read, paces the
    sender, so no queue anywhere grows past ``window`` lines per sender."""
    loop = asyncio.get_running_loop()
    seq = 0
    floor = 0  # a window timeout lets the sender past a room-mate that stopped reading
    while seq < plan.messages:
        count = min(plan.pipeline, plan.messages - seq)
        waited_since = loop.time()
        while seq + count - max(floor, _slowest(ledger, slots, seq)) > plan.window:
            if loop.time() - waited_since >= plan.quiet_s:
                counters.window_timeouts += 1
                floor = seq
                break
            await asyncio.sleep(WINDOW_POLL_S)
        conn.send(_batch(prefix, seq, count))
        seq += count
        counters.sent += count
        await conn.drain()
        await asyncio.sleep(0)  # let receivers in this process read between writes


def _slowest(ledger: Ledger, slots: range, sent: int) -> int:
    """How many messages the slowest room-mate has got (all of them when alone in the room)."""
    return min(ledger[slots.start : slots.stop]) if slots else sent


async def _checkpoint(plan: FanoutPlan, pong: asyncio.Future[None], counters: Counters) -> None:
    try:
        await asyncio.wait_for(pong, plan.quiet_s)
    except TimeoutError:
        counters.window_timeouts += 1  # keep going: a lost PONG must not stall the run


async def _send_paced(
    plan: FanoutPlan, conn: IrcConnection, prefix: bytes, sender: int, counters: Counters
) -> None:
    """A fixed rate per sender; senders are staggered so their writes do not coincide."""
    assert plan.rate is not None
    loop = asyncio.get_running_loop()
    interval = plan.pipeline / plan.rate
    start = loop.time() + interval * (sender / plan.senders)
    seq = 0
    batch_number = 0
    while seq < plan.messages:
        delay = start + batch_number * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        count = min(plan.pipeline, plan.messages - seq)
        conn.send(_batch(prefix, seq, count))
        seq += count
        counters.sent += count
        batch_number += 1
        await conn.drain()


def _snapshot(
    counters: Counters, senders: list[asyncio.Task[None]], conns: dict[int, IrcConnection]
) -> dict[str, Any]:
    return {
        "unique": counters.unique,
        "sent": counters.sent,
        "senders_done": all(task.done() for task in senders),
        "disconnects": sum(conn.lost_unexpectedly for conn in conns.values()),
    }


def _result(
    plan: FanoutPlan, go_ns: int, counters: Counters, conns: dict[int, IrcConnection]
) -> dict[str, Any]:
    tally = Tally()
    for conn in conns.values():
        tally.merge(_inbox_of(conn).receiver.tally())
    lost, errors = connection_losses(conns.values())
    return {
        "tally": asdict(tally),
        "order_digests": {c: order_digest(_inbox_of(conn).order) for c, conn in conns.items()},
        "order_references": {
            client: _inbox_of(conns[client]).order.tobytes()
            for room in range(plan.rooms)
            if (client := plan.reference_of(room)) is not None and client in conns
        },
        "arrivals": counters.arrivals,
        "malformed": counters.malformed,
        "sent": counters.sent,
        "window_timeouts": counters.window_timeouts,
        "go_ns": go_ns,
        "last_arrival_ns": counters.last_arrival_ns,
        "latencies": counters.latencies.tobytes(),
        "connected": len(conns),
        "disconnects": lost,
        "errors": errors,
    }


def _inbox_of(conn: IrcConnection) -> Inbox:
    inbox = conn.on_payload
    assert isinstance(inbox, Inbox)
    return inbox


def order_digest(order: array[int]) -> bytes:
    return hashlib.blake2b(order.tobytes(), digest_size=16).digest()


def order_check(plan: FanoutPlan, results: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many receivers saw their room in another order than its reference receiver (less
    their own messages), and how many rooms could be checked (those with a member that sends
    nothing). Loss or duplicates also make a receiver differ: they are counted apart as well."""
    references: dict[int, array[int]] = {}
    for result in results:
        for client, data in result["order_references"].items():
            references[plan.room_of(client)] = array("q", data)
    expected: dict[tuple[int, int], bytes] = {}  # (room, receiver if a sender else -1) -> digest
    mismatches = 0
    for result in results:
        for client, digest in result["order_digests"].items():
            room = plan.room_of(client)
            reference = references.get(room)
            if reference is None:
                continue
            key = (room, client if plan.is_sender(client) else -1)
            if key not in expected:
                expected[key] = order_digest(_without_sender(reference, key[1]))
            mismatches += digest != expected[key]
    return {"order_mismatches": mismatches, "order_checked_rooms": len(references)}


def _without_sender(order: array[int], sender: int) -> array[int]:
    if sender < 0:
        return order
    return array("q", (item for item in order if item >> ORDER_SHIFT != sender))


# -- coordinator side ----------------------------------------------------------------------


class FanoutDriver:
    name = "fanout"
    hold_s = 0.0

    def __init__(self, plan: FanoutPlan) -> None:
        self.worker: WorkerFn = run_worker  # an instance attribute: a class one would bind
        self.fanout = plan
        self.plan = FanoutWork.for_plan(plan)  # what the coordinator hands each worker
        self.expected = plan.expected_deliveries()

    def is_complete(self, progress: Sequence[dict[str, Any]], quiet_for_s: float) -> bool:
        if sum(p["unique"] for p in progress) >= self.expected:
            return True
        senders_done = all(p["senders_done"] for p in progress)
        return senders_done and quiet_for_s >= self.fanout.quiet_s

    def progress_text(self, progress: Sequence[dict[str, Any]]) -> str:
        unique = sum(p["unique"] for p in progress)
        sent = sum(p["sent"] for p in progress)
        share = 100.0 * unique / self.expected
        total = self.fanout.senders * self.fanout.messages
        return f"sent {sent}/{total}, deliveries {unique}/{self.expected} ({share:.0f}%)"

    def report(
        self,
        ready: Sequence[dict[str, Any]],
        results: Sequence[dict[str, Any]],
        measured: Measurement,
    ) -> dict[str, Any]:
        tally = Tally()
        for result in results:
            tally.merge(Tally(**result["tally"]))
        go_ns = min(r["go_ns"] for r in results)
        last_ns = max(r["last_arrival_ns"] for r in results)
        duration_s = max(0.0, (last_ns - go_ns) / 1e9)
        held = sum(r["connected"] - r["disconnects"] for r in results)
        setup_s = max(r["setup_s"] for r in ready)
        sent = sum(r["sent"] for r in results)
        cluster = cluster_figures(measured, sent, tally.unique)
        return {
            "scenario": self.name,
            "params": asdict(self.fanout),
            "deliveries_expected": self.expected,
            "deliveries_received": tally.unique,
            "loss": self.expected - tally.unique,
            "duplicates": tally.duplicates,
            "reordered": tally.reordered,
            "gaps": tally.gaps,
            **order_check(self.fanout, results),
            "invalid": tally.invalid + sum(r["malformed"] for r in results),
            "messages_sent": sent,
            "disconnects": sum(r["disconnects"] for r in results),
            "errors": all_errors(results),
            "window_timeouts": sum(r["window_timeouts"] for r in results),
            "duration_s": round(duration_s, 3),
            "deliveries_per_s": per_second(tally.unique, duration_s),
            "latency_ms": latency_summary_ms(merged_latencies(results)),
            "registrations_per_s": per_second(sum(r["connected"] for r in ready), setup_s),
            "connections_held": held,
            "server": server_figures(measured, {"1k_deliveries": tally.unique / 1000}, held),
            **({"cluster": cluster} if cluster else {}),
        }
