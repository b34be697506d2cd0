"""`securechat bench`: command-line options, scenario set-up, and printing the report.

    securechat bench fanout --clients 50 --rooms 1 --senders 5 --messages 2000 --server-pid PID
    securechat bench --scenario connections --clients 10000 --ramp 1000 --hold 5
    securechat bench handshake --workers 8 --duration 10 --json
    securechat bench stuck-readers --clients 300 --senders 5 --duration 20 --server-pid PID
    securechat bench community --clients 5000 --rooms 500 --duration 60 --server-pid PID
    securechat bench fanout --clients 500 --rooms 10 --senders 10 --messages 500 \
        --port P0 --node-port P1 --server-pid PID0 --server-pid PID1 --redis-socket SOCK

The scenario is a positional word or ``--scenario``; options of the other scenarios are ignored.
Load goes only to loopback addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from securechat.bench.community import CommunityDriver
from securechat.bench.community_plan import CommunityPlan
from securechat.bench.connections import ConnectionsDriver, ConnectionsPlan
from securechat.bench.coordinator import BenchError, Driver, Run
from securechat.bench.fanout import FanoutDriver
from securechat.bench.fanout_plan import WINDOW_KINDS, FanoutPlan
from securechat.bench.handshake import HandshakeDriver, HandshakePlan
from securechat.bench.nicks import run_tag
from securechat.bench.redis_probe import RedisProbeError
from securechat.bench.report import render_text, to_json_line
from securechat.bench.server_processes import ServerProcesses
from securechat.bench.stuck import StuckPlan, render_stuck, run_stuck
from securechat.bench.target import Target, is_loopback

SCENARIOS = ("fanout", "connections", "handshake", "stuck-readers", "community")
DEFAULT_CA = Path("certs/ca.pem")
# Per-scenario defaults for the options the scenarios share (--clients).
DEFAULT_CLIENTS = {"fanout": 50, "connections": 1000, "stuck-readers": 200, "community": 5000}
DEFAULT_ROOMS = {"community": 500}  # every other scenario: 1
DEFAULT_DURATION = {"community": 60.0}  # every other scenario: 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.add_argument(
        "scenario_word",
        nargs="?",
        choices=SCENARIOS,
        metavar="SCENARIO",
        help="fanout | connections | handshake | stuck-readers | community (or use --scenario)",
    )
    parser.add_argument("--scenario", choices=SCENARIOS, help="same as the positional SCENARIO")
    _add_target_arguments(parser.add_argument_group("target"))
    _add_run_arguments(parser.add_argument_group("run"))
    _add_fanout_arguments(parser.add_argument_group("fanout"))
    _add_connections_arguments(parser.add_argument_group("connections"))
    _add_handshake_arguments(parser.add_argument_group("handshake"))
    _add_community_arguments(parser.add_argument_group("community"))


def _add_target_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    group.add_argument("--port", type=int, default=6697, help="TLS port (default 6697)")
    group.add_argument(
        "--ca", metavar="FILE", help=f"CA to verify the server (default {DEFAULT_CA} if it exists)"
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server certificate (loopback dev certs only)",
    )
    group.add_argument(
        "--node-port",
        type=int,
        action="append",
        default=[],
        metavar="PORT",
        help="fanout against a cluster: another node's TLS port (repeatable); clients and "
        "senders are spread evenly over --port and these",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="per connection: TLS handshake plus registration (default 10)",
    )


def _add_run_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        metavar="PID",
        help="server process to sample (CPU from /proc/PID/stat, RSS from status); repeat it "
        "for every node of a cluster: the figures are sums over all of them",
    )
    group.add_argument(
        "--redis-socket",
        metavar="PATH",
        help="a cluster's Redis (unix socket): its CPU is added to the servers' and reported "
        "apart, with its per-command counters (INFO commandstats)",
    )
    group.add_argument(
        "--procs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        metavar="N",
        help="load generator worker processes (default: one per CPU this process may use; "
        "more processes on one core only add context switches)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="bound on the whole run (default 300)",
    )
    group.add_argument("--json", action="store_true", help="print only the final JSON line")
    group.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _add_fanout_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--clients",
        type=int,
        metavar="N",
        help="clients (fanout default 50, connections default 1000)",
    )
    group.add_argument(
        "--rooms", type=int, metavar="R", help="rooms (fanout default 1, community default 500)"
    )
    group.add_argument("--senders", type=int, default=5, metavar="S", help="senders (default 5)")
    group.add_argument(
        "--messages", type=int, default=2000, metavar="M", help="messages per sender (default 2000)"
    )
    group.add_argument(
        "--rate",
        type=float,
        metavar="PER_S",
        help="messages per second per sender (default: as fast as the server takes)",
    )
    group.add_argument(
        "--pipeline",
        type=int,
        default=1,
        metavar="K",
        help="lines per write, i.e. per TLS record (default 1)",
    )
    group.add_argument(
        "--window",
        type=int,
        default=64,
        metavar="W",
        help="full speed: with --window-by ping, a PING checkpoint every W messages per "
        "sender, at most 2 unanswered (default 64; 0 = no checkpoints); with --window-by "
        "delivery, at most W messages undelivered to any room-mate",
    )
    group.add_argument(
        "--window-by",
        choices=WINDOW_KINDS,
        default="ping",
        help="what paces a full-speed sender: PING checkpoints (the server read them) or "
        "deliveries (every room-mate got them) (default ping)",
    )
    group.add_argument(
        "--quiet-timeout",
        type=float,
        default=3.0,
        metavar="S",
        help="stop waiting after S seconds without a delivery (default 3)",
    )


def _add_connections_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--ramp",
        type=float,
        default=500.0,
        metavar="PER_S",
        help="new connections per second (default 500)",
    )
    group.add_argument(
        "--hold",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to hold all connections before sampling (default 5)",
    )
    group.add_argument(
        "--max-pending",
        type=int,
        default=64,
        metavar="N",
        help="TLS handshakes in flight at once (default 64)",
    )


def _add_handshake_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--workers",
        type=int,
        default=8,
        metavar="K",
        help="concurrent connect/register/QUIT loops (default 8)",
    )
    group.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="seconds to run (default 10; community 60)",
    )
    group.add_argument(
        "--settle",
        type=float,
        default=5.0,
        metavar="S",
        help="stuck-readers: seconds after everyone left before the last sample (default 5)",
    )


def _add_community_arguments(group: argparse._ArgumentGroup) -> None:
    defaults = CommunityPlan()
    options: list[tuple[str, type, float, str]] = [
        ("--rooms-per-client", float, defaults.rooms_per_client, "mean rooms each client is in"),
        ("--zipf", float, defaults.zipf, "exponent of the Zipf law of room sizes"),
        ("--max-room", int, defaults.max_room, "largest room"),
        ("--say-min", float, defaults.say_min_s, "shortest pause between a client's lines, s"),
        ("--say-max", float, defaults.say_max_s, "longest pause between a client's lines, s"),
        ("--nick-per-h", float, defaults.nick_per_h, "nick changes per client per hour"),
        ("--away-per-h", float, defaults.away_per_h, "away toggles per client per hour"),
        ("--part-per-h", float, defaults.part_per_h, "parts (and rejoins) per client per hour"),
        ("--reconnect-per-h", float, defaults.reconnect_per_h, "reconnects per client per hour"),
        ("--grace", float, defaults.grace_s, "a line sent this close to a join/part is in flight"),
        ("--seed", int, defaults.seed, "seed of rooms and schedules"),
    ]
    for flag, kind, default, text in options:
        group.add_argument(flag, type=kind, default=default, help=f"{text} (default {default:g})")


def run(args: argparse.Namespace) -> int:
    try:
        scenario = _scenario(args)
        target = _target(args)
        if target.node_ports and scenario != "fanout":
            raise ValueError("--node-port (a cluster's other nodes) works with fanout only")
        if scenario == "stuck-readers":
            return _run_stuck(args, target)
        driver = _driver(scenario, args)
        if args.procs < 1:
            raise ValueError("--procs must be at least 1")
        servers = _servers(args)
    except (ValueError, RedisProbeError) as exc:
        print(f"securechat bench: {exc}", file=sys.stderr)
        return 2
    try:
        report = Run(
            driver,
            target,
            args.procs,
            None,
            args.timeout,
            show_progress=not (args.quiet or args.json),
            servers=servers,
        ).execute()
    except BenchError as exc:
        print(f"securechat bench: {exc}", file=sys.stderr)
        return 1
    report["target"] = f"{target.host}:{target.port}"
    if not args.json:
        print(render_text(report))
    print(to_json_line(report), flush=True)
    return 0 if _clean(report) else 1


def _run_stuck(args: argparse.Namespace, target: Target) -> int:
    """One process (the readers only hold sockets); bounded by --timeout."""
    clients = args.clients if args.clients is not None else DEFAULT_CLIENTS["stuck-readers"]
    duration = args.duration if args.duration is not None else 10.0
    plan = StuckPlan(clients, args.senders, duration, args.settle, run_tag())
    try:
        report = asyncio.run(
            asyncio.wait_for(run_stuck(plan, target, _one_pid(args)), args.timeout)
        )
    except (TimeoutError, ConnectionError, OSError) as exc:
        print(f"securechat bench: stuck-readers failed: {exc!r}", file=sys.stderr)
        return 1
    report["target"] = f"{target.host}:{target.port}"
    if not args.json:
        print(render_stuck(report))
    print(to_json_line(report), flush=True)
    return 0


def _servers(args: argparse.Namespace) -> ServerProcesses | None:
    """The processes to sample (None: none given); a Redis socket is asked for its pid now."""
    if not args.server_pid and args.redis_socket is None:
        return None
    return ServerProcesses(args.server_pid, args.redis_socket)


def _one_pid(args: argparse.Namespace) -> int | None:
    if len(args.server_pid) > 1 or args.redis_socket is not None:
        raise ValueError("stuck-readers samples one server process: give one --server-pid")
    return args.server_pid[0] if args.server_pid else None


def _scenario(args: argparse.Namespace) -> str:
    word, option = args.scenario_word, args.scenario
    if word and option and word != option:
        raise ValueError(f"two scenarios given: {word} and {option}")
    chosen: str | None = word or option
    if chosen is None:
        raise ValueError("choose a scenario: " + ", ".join(SCENARIOS))
    return chosen


def _target(args: argparse.Namespace) -> Target:
    if not is_loopback(args.host):
        raise ValueError(
            f"--host {args.host} is not a loopback address; the bench loads loopback only"
        )
    ca = args.ca
    if not args.insecure and ca is None:
        if not DEFAULT_CA.exists():
            raise ValueError(
                f"no CA to verify the server: pass --ca FILE or --insecure ({DEFAULT_CA} not found)"
            )
        ca = str(DEFAULT_CA)
    if ca is not None and not os.path.exists(ca):
        raise ValueError(f"--ca {ca}: no such file")
    if args.port in args.node_port or len(set(args.node_port)) < len(args.node_port):
        raise ValueError("--port and every --node-port must be distinct")
    return Target(
        args.host, args.port, ca, args.insecure, args.connect_timeout, tuple(args.node_port)
    )


def _driver(scenario: str, args: argparse.Namespace) -> Driver:
    tag = run_tag()
    clients = args.clients if args.clients is not None else DEFAULT_CLIENTS.get(scenario, 0)
    rooms = args.rooms if args.rooms is not None else DEFAULT_ROOMS.get(scenario, 1)
    duration = args.duration if args.duration is not None else DEFAULT_DURATION.get(scenario, 10.0)
    if scenario == "community":
        return CommunityDriver(_community_plan(args, clients, rooms, duration, tag))
    if scenario == "fanout":
        plan = FanoutPlan(
            clients,
            rooms,
            args.senders,
            args.messages,
            args.rate,
            args.pipeline,
            args.window,
            args.quiet_timeout,
            tag,
            args.window_by,
            nodes=1 + len(args.node_port),
        )
        return FanoutDriver(plan)
    if scenario == "connections":
        return ConnectionsDriver(
            ConnectionsPlan(clients, args.ramp, args.hold, args.max_pending, tag)
        )
    return HandshakeDriver(HandshakePlan(args.workers, duration, tag))


def _community_plan(
    args: argparse.Namespace, clients: int, rooms: int, duration: float, tag: str
) -> CommunityPlan:
    return CommunityPlan(
        clients=clients,
        rooms=rooms,
        rooms_per_client=args.rooms_per_client,
        zipf=args.zipf,
        max_room=args.max_room,
        duration_s=duration,
        say_min_s=args.say_min,
        say_max_s=args.say_max,
        nick_per_h=args.nick_per_h,
        away_per_h=args.away_per_h,
        part_per_h=args.part_per_h,
        reconnect_per_h=args.reconnect_per_h,
        grace_s=args.grace,
        quiet_s=args.quiet_timeout,
        seed=args.seed,
        max_pending=args.max_pending,
        tag=tag,
    )


def _clean(report: dict[str, Any]) -> bool:
    """Exit status 0 only for a run with nothing lost, duplicated, dropped or timed out."""
    bad_keys = (
        "loss",
        "duplicates",
        "reordered",
        "order_mismatches",
        "disconnects",
        "failed",
        "unexpected",
    )
    if report.get("timed_out") or report.get("server_exited"):
        return False
    return not any(report.get(key) for key in bad_keys)
