"""`securechat serve --cluster URL --workers N`: N cluster nodes on this machine, one port.

The parent validates the settings once (a bad value is one line, not N), reserves the ports,
then supervises N children (supervisor.py), each `securechat serve` with the parent's own
arguments plus ``--reuse-port --port P --node-name BASE-i --workers 0``:

- Why a cluster: each worker is a full server with its own nicks and rooms; only cluster
  mode makes N of them one network. Without ``--cluster`` the flag is refused.
- Why SO_REUSEPORT: the kernel spreads new connections over every socket listening on the
  port, so the workers need no accept lock and no hand-off (Linux, the BSDs; elsewhere the
  flag is refused).
- Ports: the parent binds (never listens on) an SO_REUSEPORT socket on the IRC port, and on
  the web port when browsers are on. Port 0 is thus resolved once, and every worker, and a
  restarted one, binds the same port; no other program can take it while a worker restarts.
  A non-listening socket gets no connections. ``--metrics-port P`` gives worker i P+i-1.
- Node names: worker i is BASE-i; its k-th restart is BASE-irk. A dead worker's lease in Redis
  stays live until it expires, so its successor must not claim the same name.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from securechat.server.cluster.node import default_node_name
from securechat.server.config import ConfigError, ServerConfig
from securechat.server.net.sockets import format_address, web_url
from securechat.server.supervisor import RestartPolicy, Supervisor

READY_PREFIX = "securechat: listening on "
BROWSERS_PREFIX = "securechat: browsers: "
ERROR_PREFIX = "securechat serve: error: "  # main.fail: a worker's one-line reason to stop
# Flags the parent sets per worker instead of passing its own on; `command` is the subcommand.
OVERRIDDEN = frozenset(
    {"command", "workers", "node_name", "port", "web_port", "metrics_port", "reuse_port"}
)


def run_workers(args: argparse.Namespace, config: ServerConfig) -> int:
    """Reserve the ports, run the workers until a signal; the exit status. ``config`` has
    passed ``check_workers`` (config.py)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("--workers needs SO_REUSEPORT (Linux, BSD); this platform lacks it")
    with reserve_port(config.host, config.port) as port:
        web = config.web_port
        with reserve_port(config.host, web) if web is not None else _none() as web_port:
            argv = WorkerArgv(args, config, port, web_port)
            return asyncio.run(supervise(config, argv, port, web_port))


class WorkerArgv:
    """The command line of each worker: the parent's flags with the per-worker ones replaced."""

    def __init__(
        self, args: argparse.Namespace, config: ServerConfig, port: int, web_port: int | None
    ) -> None:
        self.config = config
        self.base_name = config.node_name or default_node_name(port)
        self.common = [*passed_on(args), "--reuse-port", "--workers", "0", "--port", str(port)]
        self.common += ["--web-port", "off" if web_port is None else str(web_port)]

    def __call__(self, slot: int, restart: int) -> list[str]:
        name = f"{self.base_name}-{slot}" + (f"r{restart}" if restart else "")
        argv = [sys.executable, "-m", "securechat", "serve", *self.common, "--node-name", name]
        metrics = self.config.metrics_port
        if metrics is not None:
            argv += ["--metrics-port", str(metrics + slot - 1 if metrics else 0)]
        return argv


def passed_on(args: argparse.Namespace) -> list[str]:
    """The parent's own flags as a command line. Every `serve` flag is spelled
    ``--dest-with-dashes`` (a test checks it); store_true flags are bare."""
    argv: list[str] = []
    for dest, value in sorted(vars(args).items()):
        if dest in OVERRIDDEN or value is None or value is False:
            continue
        flag = "--" + dest.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [f"{flag}={item}" for item in value]
        else:
            argv.append(f"{flag}={value}")  # "=": a value starting with "-" stays a value
    return argv


async def supervise(config: ServerConfig, argv: WorkerArgv, port: int, web: int | None) -> int:
    def listening() -> None:
        address = format_address((config.host, port))
        print(f"{READY_PREFIX}{address} ({config.workers} workers)", file=sys.stderr)
        if web is not None:
            print(f"{BROWSERS_PREFIX}{web_url(config.host, web)}", file=sys.stderr, flush=True)

    supervisor = Supervisor(
        config.workers,
        argv,
        READY_PREFIX,
        RestartPolicy(),
        on_ready=listening,
        hidden_prefixes=(BROWSERS_PREFIX,),
        once_prefixes=(ERROR_PREFIX,),
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, supervisor.forward, signum)
    return await supervisor.run()


@contextmanager
def reserve_port(host: str, port: int) -> Iterator[int]:
    """Bind (not listen) SO_REUSEPORT sockets on every address of ``host``, as the workers'
    listeners will; yield the port (the kernel's choice for 0)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, _, _, _, address in dict.fromkeys((i[0], 0, 0, "", i[4]) for i in infos):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if len(sockets) > 1:  # the first address decided the port; the others follow it
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:  # in use by a program without SO_REUSEPORT, or another user
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        yield sockets[0].getsockname()[1]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def _none() -> Iterator[None]:
    yield None
