"""The cluster bench end to end on a tiny load: a real redis-server and two real `securechat serve
--cluster` nodes (securechat.bench.local_cluster), clients and senders spread over both, CPU
summed over the nodes and Redis. Checks that every message arrives once and in one order at
every member, never how fast (a benchmark is not a test).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat.bench.coordinator import Run
from securechat.bench.fanout import FanoutDriver
from securechat.bench.fanout_plan import FanoutPlan
from securechat.bench.local_cluster import LocalCluster, find_redis_server
from securechat.bench.server_processes import ServerProcesses
from securechat.bench.target import Target

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        find_redis_server() is None,
        reason="redis-server is not installed (Debian: apt-get install redis-server)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("redis") is None,
        reason="the redis package is not installed (pip install -e '.[cluster]')",
    ),
]


def _serve_has_cluster() -> bool:
    usage = subprocess.run(
        [sys.executable, "-m", "securechat", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return "--cluster" in usage


@pytest.fixture
def cluster(tmp_path: Path, cert_files: tuple[Path, Path]) -> Iterator[LocalCluster]:
    if not _serve_has_cluster():
        pytest.skip("this tree's `securechat serve` has no --cluster option (cluster mode)")
    cert, key = cert_files
    with LocalCluster(2, tmp_path / "cluster", cert, key, ["--exempt", "127.0.0.0/8"]) as running:
        yield running


def test_fanout_over_two_nodes_reports_no_loss_and_one_order(
    cluster: LocalCluster, ca_file: Path
) -> None:
    plan = FanoutPlan(
        clients=8, rooms=2, senders=4, messages=20, window=8, window_by="delivery", nodes=2
    )
    first, second = cluster.ports
    target = Target("127.0.0.1", first, str(ca_file), insecure=False, node_ports=(second,))
    servers = ServerProcesses(cluster.node_pids, cluster.redis_socket)
    report = Run(
        FanoutDriver(plan), target, procs=2, server_pid=None, timeout_s=60.0,
        show_progress=False, servers=servers,
    ).execute()  # fmt: skip
    # 2 senders per room of 4 members: each message reaches 3 members.
    assert report["deliveries_expected"] == 4 * 20 * 3
    assert report["loss"] == 0 and report["duplicates"] == 0 and report["reordered"] == 0
    assert report["order_mismatches"] == 0 and report["order_checked_rooms"] == 2
    assert report["connections_held"] == 8 and not report["timed_out"]
    assert set(report["server"]["cpu_s_by_process"]) == {"node0", "node1", "redis"}
    assert report["cluster"]["redis_cpu_us_per_message"] >= 0
    assert report["cluster"]["redis_commands"], "Redis counted no command during the run"
