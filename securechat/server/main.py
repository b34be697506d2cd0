"""`securechat serve`: settings from defaults, a TOML file and flags; then run until a signal.

Operator errors (bad config value, missing certificate, port in use) print
one line ``securechat serve: error: ...`` and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import logging
import resource
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from securechat.logs import event, setup_logging
from securechat.regular_files import FileRefused, read_regular_file
from securechat.server.cluster.node import ClusterNode, node_name
from securechat.server.cluster_url import ClusterError
from securechat.server.config import ConfigError, ServerConfig, build_config, load_config, validate
from securechat.server.net import ChatServer
from securechat.server.net.sockets import web_url
from securechat.server.store import StoreError, StoreWriter, Synchronous
from securechat.server.store.pg import open_postgres
from securechat.server.workers import run_workers
from securechat.tls import TlsSetupError, server_context
from securechat.web.listener import start_web

log = logging.getLogger("securechat.server")

# Flags that map one-to-one onto ServerConfig keys (flag name with '-' for '_').
FLAG_KEYS = (
    "host",
    "port",
    "cert",
    "key",
    "name",
    "motd",
    "data_dir",
    "database",
    "cluster",
    "node_name",
    "client_ca",
    "log_level",
    "log_format",
    "exempt",
    "metrics_port",
    "web_port",
    "allow_insecure_key_permissions",
    "workers",
    "reuse_port",
)
# What `securechat serve` changes from ServerConfig's (library and test) defaults.
SERVE_DEFAULTS: dict[str, Any] = {"web_port": 8443}
DATABASE_FILE = "securechat.db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServerConfig()
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML settings file (see securechat.example.toml); flags override it",
    )
    parser.add_argument(
        "--host",
        help=f"address to listen on (default {defaults.host}; "
        "'::' or '0.0.0.0' for every interface)",
    )
    parser.add_argument("--port", help=f"TLS port (default {defaults.port}; 0 picks a free one)")
    parser.add_argument("--cert", help=f"certificate chain PEM (default {defaults.cert})")
    parser.add_argument("--key", help=f"private key PEM (default {defaults.key})")
    parser.add_argument("--name", help=f"server name shown to clients (default {defaults.name})")
    parser.add_argument("--motd", help="message-of-the-day text file (default: none, 422)")
    parser.add_argument(
        "--data-dir",
        help="directory for the SQLite database (default "
        f"{defaults.data_dir}/); 'none' keeps nothing across restarts",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="keep accounts, rooms, K-lines and history in PostgreSQL instead of SQLite: "
        "postgresql://[user[:password]@][host][:port]/database (or postgresql:///db?host=/socket"
        "/dir); several servers may share one database; data_dir is then not used",
    )
    parser.add_argument(
        "--cluster",
        metavar="URL",
        help="join the cluster whose shared state is the Redis at URL: redis://[:password@]"
        "host[:port][/db], rediss://… or unix:///path/redis.sock (docs/CLUSTER.md); needs "
        "--database postgresql://… or --data-dir none",
    )
    parser.add_argument(
        "--node-name",
        help="this node's name in the cluster, unique, shown in WHOIS "
        "(default: host name and port)",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        default=None,
        help="share the listening port with other server processes (SO_REUSEPORT)",
    )
    parser.add_argument(
        "--init-database",
        action="store_true",
        help="allow starting on an existing empty (0-byte) database file, as a new database "
        "(without it such a file is refused: it usually means the data was lost)",
    )
    parser.add_argument(
        "--client-ca",
        help="CA certificate PEM whose client certificates may log in with SASL EXTERNAL "
        "(default: none, no client certificates are requested)",
    )
    parser.add_argument("--log-level", help="debug, info, warning or error (default info)")
    parser.add_argument("--log-format", help="text (key=value) or json (default text)")
    parser.add_argument(
        "--exempt",
        action="append",
        metavar="CIDR",
        help="exempt these addresses from flood control and per-address limits "
        "(repeatable; e.g. 127.0.0.0/8 for benchmarks); replaces the config's list",
    )
    parser.add_argument(
        "--allow-insecure-key-permissions",
        action="store_true",
        default=None,
        help="serve with a private key other users may read (logged as a warning); "
        "without it such a key is refused",
    )
    parser.add_argument(
        "--web-port",
        help=f"HTTPS port for browsers: the web app and IRC over WebSocket at /webirc "
        f"(default {SERVE_DEFAULTS['web_port']}; 0 picks a free one; 'off' disables it)",
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        help="with --cluster: run N server processes (cluster nodes) sharing this port, "
        "restarted if one dies; 'auto' is one per CPU (default 0: serve in this process)",
    )
    parser.add_argument(
        "--metrics-port",
        help="serve Prometheus metrics on 127.0.0.1:PORT (default: off; 0 picks a port)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        # a cluster node's lines name it; the supervisor of --workers writes as itself
        node = node_name(config) if config.cluster is not None and not config.workers else None
        setup_logging(config.log_level, config.log_format, node)  # before TLS: it may warn
        context = tls_context(config)
        motd = read_motd(config.motd)
        if config.workers:  # this process only supervises; each worker checks the rest
            return run_workers(args, config)
    except (ConfigError, TlsSetupError) as exc:
        return fail(str(exc))
    raise_open_files_limit(config)
    if config.cluster is not None and importlib.util.find_spec("redis") is None:
        return fail("cluster mode needs the redis package: pip install 'securechat[cluster]'")
    try:
        writer = open_store(config, init=args.init_database)
    except StoreError as exc:
        return fail(str(exc))
    try:
        reload = functools.partial(load_settings, args)
        return run_event_loop(serve(config, context, motd, writer, reload))
    except ClusterError as exc:
        return fail(f"cluster {exc}")
    except OSError as exc:
        return fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror}")
    finally:
        if writer is not None:
            writer.close()


def open_store(config: ServerConfig, init: bool = False) -> StoreWriter | None:
    if config.database is not None:
        return open_postgres(
            config.database,
            check=config.store_check_at_start,
            read_timeout=config.history_read_timeout_seconds,
        )
    if config.data_dir is None:
        return None
    sync: Synchronous = "FULL" if config.store_sync == "full" else "NORMAL"
    return StoreWriter.open(
        config.data_dir / DATABASE_FILE,
        synchronous=sync,
        init=init,
        check=config.store_check_at_start,
        read_timeout=config.history_read_timeout_seconds,
    )


def load_settings(args: argparse.Namespace) -> tuple[ServerConfig, ssl.SSLContext]:
    """The config (defaults, file, flags) and the TLS context it names; at start and reload."""
    config = config_from_args(args)
    return config, tls_context(config)


def tls_context(config: ServerConfig) -> ssl.SSLContext:
    return server_context(
        config.cert,
        config.key,
        client_ca=config.client_ca,
        groups=config.tls_groups,
        allow_insecure_key_permissions=config.allow_insecure_key_permissions,
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    file_settings = load_config(args.config) if args.config else {}
    flags: dict[str, Any] = {}
    for key in FLAG_KEYS:
        value = getattr(args, key)
        if value is not None:
            flags[key] = validate(key, value, where=f"--{key.replace('_', '-')}")
    return build_config(SERVE_DEFAULTS, file_settings, flags)


def read_motd(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        data = read_regular_file(path).data
    except FileRefused as exc:
        raise ConfigError(f"motd file {path} {exc}") from None
    return data.decode("utf-8", errors="replace").splitlines()


# Descriptors besides client sockets: listeners, the database and its WAL, logs, metrics.
SPARE_FILES = 64


def raise_open_files_limit(config: ServerConfig) -> int:
    """Let one process hold as many clients as the hard limit allows, without `ulimit -n`;
    warn when even that is below what ``max_connections`` asks for. Returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = soft if hard == resource.RLIM_INFINITY else hard
    if soft != limit:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    event(log, "open_files_limit", limit=limit)
    wanted = config.max_connections + SPARE_FILES
    if limit < wanted:
        event(
            log,
            "open_files_limit_low",
            level=logging.WARNING,
            limit=limit,
            wanted=wanted,
            hint=f"raise the hard limit (ulimit -Hn {wanted}) or lower max_connections",
        )
    return limit


def run_event_loop(main: Any) -> int:
    try:
        import uvloop
    except ImportError:  # uvloop is optional: plain asyncio works, a little slower
        result: int = asyncio.run(main)
        return result
    result = uvloop.run(main)
    return result


async def serve(
    config: ServerConfig,
    context: ssl.SSLContext,
    motd: list[str] | None,
    writer: StoreWriter | None,
    reload: Callable[[], tuple[ServerConfig, ssl.SSLContext]] | None = None,
) -> int:
    server = ChatServer(
        config,
        context,
        motd,
        writer=writer,
        reload_settings=reload,
        start_web=start_web,
        start_cluster=ClusterNode,
    )
    await server.start()
    try:
        return await _serve_until_stopped(server, config)
    finally:  # whatever went wrong after start (even stderr gone), clients are told, and
        if not server.closed:  # a cluster node leaves the cluster
            await server.shutdown("Server shutting down")


async def _serve_until_stopped(server: ChatServer, config: ServerConfig) -> int:
    # Handlers before the "listening" line: whoever starts us and waits for it (a supervisor,
    # a test) may send SIGTERM at once, and must get a clean stop, not a killed process.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload)
    print(f"securechat: listening on {config.host}:{server.port}", file=sys.stderr, flush=True)
    if server.web is not None:
        print(f"securechat: browsers: {web_url(config.host, server.web.port)}", file=sys.stderr)
    stopped, closed = (
        asyncio.ensure_future(stop.wait()),
        asyncio.ensure_future(server.wait_closed()),
    )
    await asyncio.wait((stopped, closed), return_when=asyncio.FIRST_COMPLETED)
    if server.closed:  # it stopped itself: a cluster node cut off from the cluster
        stopped.cancel()
        return 1
    closed.cancel()
    return 0


def fail(message: str) -> int:
    print(f"securechat serve: error: {message}", file=sys.stderr)
    return 2
