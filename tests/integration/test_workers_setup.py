"""What the `serve --workers` parent prepares before it starts anyone: the reserved port and
each worker's command line (workers.py). The workers themselves: tests/e2e/test_workers.py."""

from __future__ import annotations

import argparse
import errno
import socket

import pytest

from securechat.cli import build_parser
from securechat.server.cluster.node import default_node_name
from securechat.server.config import ConfigError
from securechat.server.main import config_from_args
from securechat.server.workers import WorkerArgv, passed_on, reserve_port, run_workers


def serve_args(*argv: str) -> argparse.Namespace:
    parser, _ = build_parser(["serve", *argv])
    return parser.parse_args(["serve", *argv])


def test_the_reserved_port_is_shared_by_listeners_and_refused_to_anyone_else() -> None:
    with reserve_port("127.0.0.1", 0) as port:
        assert port != 0
        worker = socket.socket()
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(("127.0.0.1", port))  # as a worker's --reuse-port listener does
        worker.listen()
        other = socket.socket()  # a program without SO_REUSEPORT cannot take the port
        with pytest.raises(OSError) as refused:
            other.bind(("127.0.0.1", port))
        assert refused.value.errno == errno.EADDRINUSE
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        worker.settimeout(5)
        accepted, _ = worker.accept()  # the reservation, never listening, takes no connection
        for sock in (accepted, client, worker, other):
            sock.close()


def test_a_port_taken_by_another_program_is_one_line() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
        with (
            pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: "),
            reserve_port("127.0.0.1", port),
        ):
            pass


def test_each_worker_gets_the_parents_flags_and_its_own_name_port_and_metrics_port() -> None:
    args = serve_args(
        *("--port", "0", "--exempt", "127.0.0.0/8", "--exempt", "::1/128", "--workers", "0"),
        *("--metrics-port", "9100", "--name=-odd-name", "--allow-insecure-key-permissions"),
    )
    config = config_from_args(args)
    command = WorkerArgv(args, config, port=40001, web_port=None)
    first, restarted = command(1, 0), command(2, 3)
    assert first[first.index("--node-name") + 1] == default_node_name(40001) + "-1"
    assert restarted[restarted.index("--node-name") + 1] == default_node_name(40001) + "-2r3"
    for argv, metrics in ((first, "9100"), (restarted, "9101")):
        assert argv[argv.index("--metrics-port") + 1] == metrics
        assert argv[argv.index("--port") + 1] == "40001"
        assert argv[argv.index("--web-port") + 1] == "off"
        assert argv[argv.index("--workers") + 1] == "0"  # never a supervisor of its own
        assert "--reuse-port" in argv
        assert {"--exempt=127.0.0.0/8", "--exempt=::1/128", "--name=-odd-name"} <= set(argv)
        assert "--allow-insecure-key-permissions" in argv
        assert argv.count("--port") == 1 and argv.count("--workers") == 1


def test_a_worker_runs_with_the_parents_settings_but_its_own_port_name_and_no_workers() -> None:
    args = serve_args(
        *("--cluster", "unix:///run/redis.sock", "--data-dir", "none", "--workers", "2"),
        *("--port", "0", "--exempt", "10.0.0.0/8", "--name=-odd", "--node-name", "east"),
    )
    parent = config_from_args(args)
    argv = WorkerArgv(args, parent, port=40001, web_port=40002)(2, 1)
    assert argv[1:4] == ["-m", "securechat", "serve"]
    worker = config_from_args(serve_args(*argv[4:]))
    assert worker == parent.replace(
        workers=0, port=40001, web_port=40002, reuse_port=True, node_name="east-2r1"
    )


def test_every_serve_flag_is_spelled_after_its_setting() -> None:
    """passed_on rebuilds flags from setting names: a flag spelled otherwise would be lost."""
    parser = argparse.ArgumentParser()
    serve_parser = parser.add_subparsers().add_parser("serve")
    build_parser(["serve"])[1].add_arguments(serve_parser)  # type: ignore[union-attr]
    for action in serve_parser._actions:
        if action.dest != "help":
            assert "--" + action.dest.replace("_", "-") in action.option_strings


def test_flags_not_given_are_not_passed_on() -> None:
    assert passed_on(serve_args("--workers", "2")) == []


def test_workers_without_a_cluster_are_refused() -> None:
    with pytest.raises(ConfigError, match="--workers needs --cluster URL"):
        config_from_args(serve_args("--workers", "2"))


def test_workers_on_a_platform_without_so_reuseport_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """We cannot run on such a platform here: its one difference, the missing constant."""
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    args = serve_args("--port", "0")
    with pytest.raises(ConfigError, match="needs SO_REUSEPORT"):
        run_workers(args, config_from_args(args).replace(workers=2))
