"""The community scenario: many people in many rooms, typing now and then, coming and going.

Every client connects and joins its rooms (see community_plan for who is where and when), then
for ``duration_s`` follows its own schedule: says a line into one of its rooms, changes nick,
toggles away, parts a room and comes back, reconnects. A line is ``PRIVMSG #cR :b <client>
<seq> <t_ns>``, so any receiver knows who sent it and when; each client records what arrived,
and its stays in rooms (from its own JOIN/PART echoes), and community_ledger decides afterwards
what each member should have got. Machinery (worker processes, connections, the fast payload
path, progress, server sampling) is the fan-out scenario's.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from securechat.bench.community_ledger import (
    NEVER,
    Accounting,
    Sent,
    Stay,
    account_member,
    room_logs,
)
from securechat.bench.community_plan import (
    AWAY,
    JOIN,
    NICK,
    PART,
    RECONNECT,
    SAY,
    CommunityPlan,
    Event,
    message_id,
    room_members,
    rooms_of,
    schedule,
    zipf_sizes,
)
from securechat.bench.ircconn import Fields, IrcConnection, connect, monotonic_ns, quit_all
from securechat.bench.nicks import nick
from securechat.bench.report import Measurement, all_errors, merged_latencies, server_figures
from securechat.bench.stats import latency_summary_ms, per_second
from securechat.bench.target import Target
from securechat.bench.worker import (
    Channel,
    Share,
    WorkerFn,
    cancel,
    connection_losses,
    describe,
    report_progress,
)

NICK_LETTERS = (b"c", b"d")  # a nick change or a reconnect flips the letter: never a collision


@dataclass
class Counters:
    """What one worker's clients did; read by progress and the final result."""

    arrivals: int = 0
    malformed: int = 0
    sent: int = 0
    events: Counter[str] = field(default_factory=Counter)
    latencies: array[int] = field(default_factory=lambda: array("q"))
    sent_log: list[tuple[int, int, int]] = field(default_factory=list)  # message, room, t_ns
    errors: set[str] = field(default_factory=set)


class Member:
    """One person: its current connection, the rooms it is in, and what it received."""

    def __init__(self, index: int, plan: CommunityPlan) -> None:
        self.index = index
        self.plan = plan
        self.letter = 0
        self.conn: IrcConnection | None = None
        self.open: dict[int, list[int]] = {}  # room -> [join_sent, joined, 0]
        self.leaving: dict[int, list[int]] = {}  # room -> [join_sent, joined, leave_sent]
        self.stays: list[Stay] = []
        self.got: array[int] = array("q")
        self.seq = 0
        self.away = False
        self.pending = 0
        self.all_joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def nick(self) -> str:
        return nick(NICK_LETTERS[self.letter].decode(), self.plan.tag, self.index)

    # -- own echoes (the server handled our JOIN or PART) ----------------------------------

    def echo(self, command: bytes, channel: bytes, now: int) -> None:
        room = _room_number(channel)
        if room is None:
            return
        if command == b"JOIN":
            stay = self.open.get(room)
            if stay is not None and stay[1] == NEVER:
                stay[1] = now
                self.pending -= 1
                if self.pending == 0 and not self.all_joined.done():
                    self.all_joined.set_result(None)
        else:
            left = self.leaving.pop(room, None)
            if left is not None:
                self.stays.append(Stay(room, left[0], left[1], left[2], now))

    # -- actions ---------------------------------------------------------------------------

    def join(self, room: int) -> None:
        if self.conn is None or room in self.open:
            return
        self.pending += 1
        self.open[room] = [monotonic_ns(), NEVER, 0]
        self.conn.join(self.plan.room_name(room))

    def part(self, room: int) -> bool:
        stay = self.open.pop(room, None)
        if self.conn is None or stay is None:
            return False
        if stay[1] == NEVER:
            self.pending -= 1
        stay[2] = monotonic_ns()
        self.leaving[room] = stay
        self.conn.send(b"PART %s\r\n" % self.plan.room_name(room))
        return True

    def say(self, pick: float, counters: Counters) -> bool:
        rooms = sorted(room for room, stay in self.open.items() if stay[1] != NEVER)
        if self.conn is None or not rooms:
            return False
        room = rooms[int(pick * len(rooms))]
        seq, self.seq = self.seq, self.seq + 1
        sent_ns = monotonic_ns()
        self.conn.send(
            b"PRIVMSG %s :b %d %d %d\r\n" % (self.plan.room_name(room), self.index, seq, sent_ns)
        )
        counters.sent_log.append((message_id(self.index, seq), room, sent_ns))
        counters.sent += 1
        return True

    def change_nick(self) -> bool:
        if self.conn is None:
            return False
        self.letter ^= 1
        self.conn.send(b"NICK %s\r\n" % self.nick.encode())
        self.conn.nick = self.nick.encode()  # later echoes of ours carry the new nick
        return True

    def toggle_away(self) -> bool:
        if self.conn is None:
            return False
        self.away = not self.away
        self.conn.send(b"AWAY :lunch\r\n" if self.away else b"AWAY\r\n")
        return True

    def close_stays(self, leave_sent_ns: int, left_ns: int) -> list[int]:
        """End every stay (the connection is going or counting stops); the rooms it was in."""
        rooms = list(self.open)
        for room, stay in self.open.items():
            self.stays.append(Stay(room, stay[0], stay[1], leave_sent_ns, left_ns))
        for room, stay in self.leaving.items():
            self.stays.append(Stay(room, stay[0], stay[1], stay[2], left_ns))
        self.open.clear()
        self.leaving.clear()
        self.pending = 0
        return rooms


class Inbox:
    """The payload sink of one member: ``<client> <seq> <t_ns>`` -> message id and latency."""

    __slots__ = ("counters", "member")

    def __init__(self, member: Member, counters: Counters) -> None:
        self.member = member
        self.counters = counters

    def payloads(self, conn: IrcConnection, found: list[Fields], arrival_ns: int) -> None:
        counters = self.counters
        counters.arrivals += len(found)
        got, latencies = self.member.got, counters.latencies
        for fields in found:  # runs per delivery: no helper call
            try:
                sender, seq, sent_ns = int(fields[0]), int(fields[1]), int(fields[2])
            except (ValueError, IndexError):
                counters.malformed += 1
                continue
            got.append(message_id(sender, seq))
            latencies.append(arrival_ns - sent_ns)


class CommunityConnection(IrcConnection):
    """An IrcConnection that also tells its member about its own JOIN and PART echoes."""

    __slots__ = ()

    def _command(self, source: bytes, command: bytes, params: list[bytes]) -> None:
        if (command == b"JOIN" or command == b"PART") and params:
            sink = self.on_payload
            if isinstance(sink, Inbox) and source.split(b"!", 1)[0] == self.nick:
                sink.member.echo(command, params[0].removeprefix(b":"), monotonic_ns())
        super()._command(source, command, params)


def _room_number(channel: bytes) -> int | None:
    if not channel.lower().startswith(b"#c"):
        return None
    try:
        return int(channel[2:])
    except ValueError:
        return None


# -- worker side ---------------------------------------------------------------------------


async def run_worker(plan: CommunityPlan, target: Target, share: Share, channel: Channel) -> None:
    starting = rooms_of(room_members(plan), plan.clients)
    counters = Counters()
    context = target.ssl_context()
    people = {index: Member(index, plan) for index in share.items(plan.clients)}
    try:
        limit = max(1, plan.max_pending // share.count)
        setup_s = await _connect_all(target, context, people, starting, counters, limit)
        channel.send("ready", {"connected": len(people), "setup_s": setup_s})
        await channel.expect("go")
        go = asyncio.get_running_loop().time()
        cpu_at_go = time.process_time()
        lives = [
            asyncio.create_task(
                _live(member, schedule(plan, index, starting[index]), go, target, context, counters)
            )
            for index, member in people.items()
        ]
        progress = asyncio.create_task(
            report_progress(channel, lambda: _snapshot(counters, lives, people))
        )
        await channel.expect("stop")
        await cancel(progress)
        for task in lives:
            await cancel(task)
        end_ns = monotonic_ns()
        load_cpu_s = time.process_time() - cpu_at_go
        for member in people.values():
            member.close_stays(end_ns, end_ns)
        channel.send("result", {**_result(counters, people), "load_cpu_s": load_cpu_s})
    finally:
        await quit_all([m.conn for m in people.values() if m.conn is not None], timeout=2.0)


async def _connect_all(
    target: Target,
    context: ssl.SSLContext,
    people: dict[int, Member],
    starting: list[list[int]],
    counters: Counters,
    in_flight: int,
) -> float:
    """Connect every member of this worker and join its rooms (``in_flight`` at a time);
    seconds it took."""
    limit = asyncio.Semaphore(in_flight)
    started = monotonic_ns()

    async def one(member: Member) -> None:
        # A client that cannot connect or join in time is counted (``setup_failed``) and sits
        # the run out or stays with the rooms it got: one slow handshake must not void a run.
        async with limit:
            try:
                await _connect(member, target, context, counters)
                for room in starting[member.index]:
                    member.join(room)
                await asyncio.wait_for(asyncio.shield(member.all_joined), target.connect_timeout)
            except (OSError, ConnectionError, TimeoutError) as exc:
                counters.events["setup_failed"] += 1
                counters.errors.add(f"set-up: {describe(exc)}")

    async with asyncio.TaskGroup() as group:
        for member in people.values():
            group.create_task(one(member))
    return (monotonic_ns() - started) / 1e9


async def _connect(
    member: Member, target: Target, context: ssl.SSLContext, counters: Counters
) -> None:
    member.conn = await connect(
        target, member.nick, context, Inbox(member, counters), CommunityConnection
    )


async def _live(
    member: Member,
    events: list[Event],
    go: float,
    target: Target,
    context: ssl.SSLContext,
    counters: Counters,
) -> None:
    loop = asyncio.get_running_loop()
    for event in events:
        delay = go + event.at_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if event.kind == RECONNECT:
            await _reconnect(member, target, context, counters)
            continue
        done = _act(member, event, counters)
        counters.events[event.kind if done else f"{event.kind}_skipped"] += 1


def _act(member: Member, event: Event, counters: Counters) -> bool:
    if event.kind == SAY:
        return member.say(event.pick, counters)
    if event.kind == NICK:
        return member.change_nick()
    if event.kind == AWAY:
        return member.toggle_away()
    if event.kind == PART:
        return member.part(event.room)
    if event.kind == JOIN and member.conn is not None and event.room not in member.open:
        member.join(event.room)
        return True
    return False


async def _reconnect(
    member: Member, target: Target, context: ssl.SSLContext, counters: Counters
) -> None:
    """QUIT, wait for the server to close (so every line before the QUIT has arrived), then
    connect under the other nick letter and rejoin the rooms it was in."""
    old = member.conn
    if old is None:
        counters.events["reconnect_skipped"] += 1
        return
    quit_ns = monotonic_ns()
    old.quit()
    try:
        await asyncio.wait_for(asyncio.shield(old.closed), target.connect_timeout)
    except TimeoutError:
        old.abort()
    rooms = member.close_stays(quit_ns, monotonic_ns())
    member.conn = None
    member.letter ^= 1
    try:
        await _connect(member, target, context, counters)
    except (OSError, ConnectionError, TimeoutError) as exc:
        counters.events["reconnect_failed"] += 1
        counters.errors.add(f"reconnect: {describe(exc)}")
        return
    for room in rooms:
        member.join(room)
    counters.events[RECONNECT] += 1


def _snapshot(
    counters: Counters, lives: list[asyncio.Task[None]], people: dict[int, Member]
) -> dict[str, Any]:
    return {
        "arrivals": counters.arrivals,
        "sent": counters.sent,
        "done": all(task.done() for task in lives),
        "disconnects": sum(m.conn.lost_unexpectedly for m in people.values() if m.conn is not None),
    }


def _result(counters: Counters, people: dict[int, Member]) -> dict[str, Any]:
    conns = [m.conn for m in people.values() if m.conn is not None]
    lost, errors = connection_losses(conns, counters.errors)
    failed = [task_error for task_error in counters.events if task_error.endswith("_failed")]
    return {
        "sent_log": counters.sent_log,
        "stays": {i: [astuple_stay(s) for s in m.stays] for i, m in people.items()},
        "got": {i: m.got.tobytes() for i, m in people.items()},
        "latencies": counters.latencies.tobytes(),
        "arrivals": counters.arrivals,
        "malformed": counters.malformed,
        "events": dict(counters.events),
        "connected": len(conns) - lost,
        "disconnects": lost,
        "failed": sum(counters.events[name] for name in failed),
        "errors": errors,
    }


def astuple_stay(stay: Stay) -> tuple[int, int, int, int, int]:
    return (stay.room, stay.join_sent_ns, stay.joined_ns, stay.leave_sent_ns, stay.left_ns)


# -- coordinator side ----------------------------------------------------------------------


class CommunityDriver:
    name = "community"
    hold_s = 0.0

    def __init__(self, plan: CommunityPlan) -> None:
        self.worker: WorkerFn = run_worker  # an instance attribute: a class one would bind
        self.plan = plan

    def is_complete(self, progress: Sequence[dict[str, Any]], quiet_for_s: float) -> bool:
        return all(p["done"] for p in progress) and quiet_for_s >= self.plan.quiet_s

    def progress_text(self, progress: Sequence[dict[str, Any]]) -> str:
        sent = sum(p["sent"] for p in progress)
        arrivals = sum(p["arrivals"] for p in progress)
        return f"lines {sent}, deliveries {arrivals}"

    def report(
        self,
        ready: Sequence[dict[str, Any]],
        results: Sequence[dict[str, Any]],
        measured: Measurement,
    ) -> dict[str, Any]:
        accounting = _account(self.plan, results)
        events: Counter[str] = Counter()
        for result in results:
            events.update(result["events"])
        received = accounting.delivered + accounting.in_flight_delivered
        held = sum(r["connected"] for r in results)
        server = server_figures(measured, {"1k_deliveries": received / 1000}, held)
        if server.get("cpu_utilization") is not None:
            server["cpu_percent"] = round(100 * server["cpu_utilization"], 1)
        load_cpu_s = sum(r["load_cpu_s"] for r in results)
        sizes = zipf_sizes(
            self.plan.rooms,
            self.plan.clients * self.plan.rooms_per_client,
            self.plan.zipf,
            min(self.plan.max_room, self.plan.clients),
        )
        lines = sum(len(r["sent_log"]) for r in results)
        return {
            "scenario": self.name,
            "params": asdict(self.plan),
            "room_sizes": {"largest": sizes[:5], "median": sizes[len(sizes) // 2]},
            "lines_sent": lines,
            "lines_per_s": per_second(lines, measured.elapsed_s),
            "deliveries_expected": accounting.expected,
            "deliveries_received": received,
            "deliveries_per_s": per_second(received, measured.elapsed_s),
            "loss": accounting.lost,
            "duplicates": accounting.duplicates,
            "unexpected": accounting.unexpected + accounting.unknown,
            "in_flight": accounting.in_flight,
            "in_flight_delivered": accounting.in_flight_delivered,
            "invalid": sum(r["malformed"] for r in results),
            "events": dict(sorted(events.items())),
            "disconnects": sum(r["disconnects"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "errors": all_errors(results),
            "duration_s": round(measured.elapsed_s, 3),
            "latency_ms": latency_summary_ms(merged_latencies(results)),
            # The generator's own CPU over the phase (all workers): near 100% per core it uses,
            # latency measures the generator's queue as much as the server.
            "load_cpu_percent": round(100 * load_cpu_s / measured.elapsed_s, 1)
            if measured.elapsed_s
            else None,
            "registrations_per_s": per_second(
                sum(r["connected"] for r in ready), max(r["setup_s"] for r in ready)
            ),
            "connections_held": held,
            "server": server,
        }


def _account(plan: CommunityPlan, results: Sequence[dict[str, Any]]) -> Accounting:
    """Every member's stays against every line said, over all workers."""
    sent = [Sent(*line) for result in results for line in result["sent_log"]]
    logs = room_logs(sent)
    known = frozenset(line.message for line in sent)
    grace_ns = int(plan.grace_s * 1e9)
    total = Accounting()
    for result in results:
        for member, stays in result["stays"].items():
            got: array[int] = array("q")
            got.frombytes(result["got"][member])
            total.merge(
                account_member(member, [Stay(*s) for s in stays], got, logs, known, grace_ns)
            )
    return total
