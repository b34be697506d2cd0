"""Smoke runs of the load generator against our real server (in-process, TLS on 127.0.0.1:0).

Tiny numbers: these check that every scenario completes and accounts for every line, never how
fast anything was (a benchmark is not a test).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from securechat.bench.community import CommunityDriver
from securechat.bench.community_plan import CommunityPlan
from securechat.bench.connections import ConnectionsDriver, ConnectionsPlan
from securechat.bench.coordinator import Driver, Run
from securechat.bench.fanout import FanoutDriver
from securechat.bench.fanout_plan import FanoutPlan
from securechat.bench.handshake import HandshakeDriver, HandshakePlan
from securechat.bench.stuck import StuckPlan, run_stuck
from securechat.bench.target import Target
from securechat.cli import main as cli_main
from tests.support import ServerThread

pytestmark = pytest.mark.timeout(120)


def run_bench(driver: Driver, server: ServerThread, ca_file: Path) -> dict[str, Any]:
    target = Target(server.host, server.port, str(ca_file), insecure=False)
    # The server runs in a thread of this process, so this process is the one to sample.
    return Run(
        driver, target, procs=2, server_pid=os.getpid(), timeout_s=60.0, show_progress=False
    ).execute()


def test_fanout_delivers_every_message_once_in_order(server: ServerThread, ca_file: Path) -> None:
    plan = FanoutPlan(clients=4, rooms=1, senders=2, messages=10, quiet_s=5.0)
    report = run_bench(FanoutDriver(plan), server, ca_file)
    assert report["deliveries_expected"] == 2 * 10 * 3
    assert report["deliveries_received"] == report["deliveries_expected"]
    assert (report["loss"], report["duplicates"], report["reordered"], report["gaps"]) == (
        0,
        0,
        0,
        0,
    )
    assert report["disconnects"] == 0 and report["invalid"] == 0 and not report["timed_out"]
    assert report["order_mismatches"] == 0 and report["order_checked_rooms"] == 1
    assert report["connections_held"] == 4
    latency = report["latency_ms"]
    assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert report["server"]["measured"] and report["server"]["cpu_s"] >= 0


def test_fanout_pipelined_at_a_fixed_rate_over_two_rooms(
    server: ServerThread, ca_file: Path
) -> None:
    plan = FanoutPlan(
        clients=6, rooms=2, senders=2, messages=16, rate=200.0, pipeline=4, quiet_s=5.0
    )
    report = run_bench(FanoutDriver(plan), server, ca_file)
    assert report["deliveries_expected"] == 2 * 16 * 2  # one sender per room, 3 members each
    assert report["loss"] == 0 and report["duplicates"] == 0 and report["reordered"] == 0


def test_fanout_paced_by_a_delivery_window_delivers_everything(
    server: ServerThread, ca_file: Path
) -> None:
    """With --window-by delivery the senders wait on their room-mates' shared counters; a run
    that never published them would stall into window timeouts instead of completing cleanly."""
    plan = FanoutPlan(
        clients=5, rooms=1, senders=2, messages=40, window=4, window_by="delivery", quiet_s=5.0
    )
    report = run_bench(FanoutDriver(plan), server, ca_file)
    assert report["deliveries_received"] == report["deliveries_expected"] == 2 * 40 * 4
    assert report["loss"] == 0 and report["duplicates"] == 0 and report["reordered"] == 0
    assert report["window_timeouts"] == 0
    assert report["params"]["window_by"] == "delivery"


def test_community_accounts_for_every_line_through_joins_parts_nicks_and_reconnects(
    server: ServerThread, ca_file: Path
) -> None:
    """A tiny community with every kind of churn made frequent: nothing lost, duplicated or
    delivered to a non-member, and every kind of event actually happened."""
    plan = CommunityPlan(
        clients=12,
        rooms=4,
        max_room=8,
        duration_s=4.0,
        say_min_s=0.2,
        say_max_s=0.6,
        nick_per_h=3600,
        away_per_h=3600,
        part_per_h=3600,
        reconnect_per_h=1800,
        rejoin_min_s=0.2,
        rejoin_max_s=1.0,
        grace_s=0.5,
        quiet_s=2.0,
        tag="cm",
    )
    report = run_bench(CommunityDriver(plan), server, ca_file)
    assert report["lines_sent"] > 0 and report["deliveries_expected"] > 0
    assert report["loss"] == 0 and report["duplicates"] == 0 and report["unexpected"] == 0
    assert report["in_flight_delivered"] <= report["in_flight"]
    assert report["disconnects"] == 0 and report["failed"] == 0 and not report["timed_out"]
    for kind in ("say", "nick", "away", "part", "reconnect"):
        assert report["events"].get(kind, 0) > 0, kind
    assert report["connections_held"] == 12
    assert report["server"]["measured"] and report["server"]["cpu_percent"] >= 0


def test_handshake_registers_and_quits(server: ServerThread, ca_file: Path) -> None:
    report = run_bench(HandshakeDriver(HandshakePlan(workers=1, duration_s=1.0)), server, ca_file)
    assert report["registrations"] >= 1
    assert report["failed"] == 0 and not report["timed_out"]
    assert report["server"]["cpu_ms_per_registration"] >= 0


def test_connections_are_held_until_stopped(server: ServerThread, ca_file: Path) -> None:
    plan = ConnectionsPlan(clients=5, ramp=100.0, hold_s=0.5)
    report = run_bench(ConnectionsDriver(plan), server, ca_file)
    assert report["registered"] == 5 and report["connections_held"] == 5
    assert report["failed"] == 0 and report["disconnects"] == 0
    assert report["server"]["rss_per_connection_bytes"] is not None


def test_cli_prints_one_json_line(
    server: ServerThread, ca_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "bench",
        "fanout",
        "--port",
        str(server.port),
        "--ca",
        str(ca_file),
        "--clients",
        "3",
        "--senders",
        "1",
        "--messages",
        "5",
        "--procs",
        "1",
        "--json",
    ]
    assert cli_main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["deliveries_received"] == report["deliveries_expected"] == 10


def test_cli_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", "handshake", "--host", "192.0.2.1", "--insecure"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_stuck_readers_are_dropped_by_the_server_and_memory_is_sampled_in_every_phase(
    make_server: Any, ca_file: Path
) -> None:
    server = make_server(
        sendq_bytes=16 * 1024, socket_send_buffer_bytes=4096, exempt=("127.0.0.0/8",)
    )
    target = Target(server.host, server.port, str(ca_file), insecure=False)
    plan = StuckPlan(readers=3, senders=1, duration=2.0, settle=0.0, tag="zz")
    report = asyncio.run(run_stuck(plan, target, os.getpid()))
    assert report["readers_dropped"] == 3 and report["lines_sent"] > 0
    for phase in ("baseline", "before", "peak", "end", "after"):
        assert report[phase]["rss_mib"] > 0
