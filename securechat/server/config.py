"""Server settings: one frozen dataclass, filled from defaults, a TOML file and the command line.

Every bound the server enforces is a named setting here (DESIGN.md §2.3). A bad
value raises ``ConfigError`` with one line naming the key and what it expected;
the CLI prints that line and exits 2.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from securechat.regular_files import FileRefused, read_regular_file
from securechat.server.cluster_url import BadClusterUrl, check_cluster_url
from securechat.server.database_url import BadDatabaseUrl, check_database_url


class ConfigError(Exception):
    """A configuration problem, already phrased for an operator."""


LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class OperBlock:
    """A server operator: ``OPER name password`` from a host matching one of ``hosts``."""

    password_hash: str  # from `securechat hash-password`; never a plain password
    hosts: tuple[str, ...] = ("*@*",)  # user@host masks


LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    # network and identity
    host: str = "127.0.0.1"
    port: int = 6697
    cert: Path = Path("certs/server.pem")
    key: Path = Path("certs/server.key")
    name: str = "securechat.local"
    network: str = "securechat"
    motd: Path | None = None
    password: str | None = None  # server password (PASS); None means none required
    log_level: str = "info"
    log_format: str = "text"
    log_messages: bool = False  # message content stays out of logs unless enabled
    # persistence (accounts, registered rooms, history); data_dir None: nothing is stored
    data_dir: Path | None = Path("data")
    # PostgreSQL instead (postgresql://…, database_url.py): the same data, shared by every
    # server process pointed at it; data_dir is then not used
    database: str | None = None
    # cluster mode (docs/CLUSTER.md): the Redis whose stream every node replicates, by URL
    # (redis://, rediss://, unix://); None: this process is the whole network
    cluster: str | None = None
    # this node's name in the cluster (WHOIS 312); None: derived from host name and port
    node_name: str | None = None
    # cluster mode: the leader snapshots the network's state every this many events and trims
    # the stream to the snapshot (docs/CLUSTER.md, "Snapshots and trimming"); 0: never
    cluster_snapshot_events: int = 100000
    # share the listening port with other processes (SO_REUSEPORT): --workers' children
    reuse_port: bool = False
    store_sync: str = "normal"  # "full" also survives power loss (one fsync per group commit)
    history_on_join: int = 50  # room messages replayed to a joining client; 0: none
    history_on_join_notices: int = 10  # at most this many as NOTICEs (clients without batch)
    history_max_age_days: float = 0  # 0: keep forever
    history_max_per_target: int = 0  # 0: no count limit
    history_prune_batch_rows: int = 5000  # rows one retention transaction deletes at most
    chathistory_limit: int = 100  # most messages one CHATHISTORY request returns (ISUPPORT)
    chathistory_max_private_targets: int = 1000  # conversations one TARGETS request looks at
    max_read_markers: int = 1000  # draft/read-marker targets kept per account (oldest go)
    max_reactions_per_message: int = 30  # +draft/react kept per message (more: FAIL)
    max_reaction_bytes: int = 64  # bytes of one +draft/react / +draft/unreact value
    multiline_max_bytes: int = 4096  # draft/multiline: bytes of one combined message...
    multiline_max_lines: int = 24  # ...and lines in it (both advertised in the cap's value)
    redact_window_seconds: float = 0  # how long senders may REDACT their messages; 0: always
    redact_reason_length: int = 390  # a REDACT reason is cut to this many characters
    history_read_timeout_seconds: float = 2.0  # a history read (queue wait included) fails after
    history_failure_report_seconds: float = 60.0  # at most one log line / oper notice per period
    store_check_at_start: bool = True  # PRAGMA quick_check before serving (reads the whole file)
    # accounts
    client_ca: Path | None = None  # CA whose client certificates SASL EXTERNAL accepts
    nick_grace_seconds: float = 30.0  # to log in before a registered nick becomes GuestNNNNN
    login_free_failures: int = 3  # wrong passwords per (account, address) before a delay
    login_max_delay_seconds: float = 300.0  # cap of that doubling delay (logins and OPER)
    login_address_free_failures: int = 10  # wrong passwords per address, any account
    login_account_free_failures: int = 20  # per account, any address; then failures wait...
    login_account_max_hold_seconds: float = 20.0  # ...up to this long (a right one never does)
    login_failure_memory_seconds: float = 3600.0  # quiet time after which failures are forgotten
    oper_free_failures: int = 3  # wrong OPER attempts per address before a doubling delay
    nick_grace_memory_seconds: float = 600.0  # a (connection, nick) deadline is kept this long
    register_window_seconds: float = 60.0  # REGISTER attempts are counted per this window...
    register_per_connection: int = 3  # ...per connection
    register_per_address: int = 30  # ...per address (a classroom shares one NAT address)
    accounts_per_address: int = 50  # accounts one address may create per...
    accounts_per_address_window_seconds: float = 86400.0  # ...this window (kept in memory)
    throttle_max_entries: int = 10000  # each throttle table's bound (oldest entries go first)
    hash_workers_login: int = 2  # threads checking passwords (IDENTIFY, SASL)
    hash_workers_bulk: int = 1  # threads hashing for REGISTER and OPER
    hash_queue_login: int = 64  # password checks in flight before "server busy"
    hash_queue_bulk: int = 8  # REGISTER/OPER hashes in flight before "server busy"
    # several connections per account, always-on users (presence_accounts.py)
    multiclient: bool = True  # a login to an account that is on attaches to its user
    max_connections_per_account: int = 8  # connections logged into one account at once
    always_on_default: bool = False  # for accounts that never said NickServ SET ALWAYS-ON
    always_on_max_rooms: int = 50  # rooms an always-on user may be in
    always_on_expire_days: float = 30.0  # an always-on user with no client quits after; 0: never
    offline_messages_per_account: int = 100  # private messages kept for an offline account; 0: off
    # liveness (seconds)
    handshake_timeout: float = 10.0
    registration_timeout: float = 30.0
    ping_interval: float = 90.0
    ping_timeout: float = 60.0
    # bounds
    sendq_bytes: int = 1024 * 1024
    max_targets: int = 4
    monitor_limit: int = 100  # nicks one client may MONITOR (ISUPPORT MONITOR=N); more earn 734
    whowas_entries: int = 1000  # nicks left (quit, rename) that WHOWAS remembers; 0: none
    whowas_seconds: float = 3600.0  # how long WHOWAS remembers each
    max_rooms_per_user: int = 100
    max_names_per_reply: int = 0  # 0: list every member
    topic_length: int = 390
    away_length: int = 390
    kick_length: int = 390
    max_bans_per_room: int = 100  # +b entries per room (ISUPPORT MAXLIST=b:N); more earn 478
    max_mask_length: int = 128  # characters in a ban or K-line mask; longer earns 696 / a notice
    max_mask_wildcards: int = 16  # "*" and "?" in such a mask (matching cost grows with them)
    # abuse resistance (flood: a token bucket per client, lines beyond it are delayed)
    flood_burst: int = 16  # lines a client may send at once (a pasted paragraph)
    flood_rate: float = 4.0  # lines per second after the burst
    flood_max_backlog: int = 64  # delayed lines held before "Excess flood" closes the client
    max_connections: int = 10000
    max_connections_per_address: int = 64  # a classroom behind one NAT address fits
    connect_burst: int = 32  # new connections one address may open at once...
    connect_rate: float = 4.0  # ...and per second after that
    exempt: tuple[str, ...] = field(default_factory=tuple)  # CIDRs free of flood/address limits
    # before any TLS work, per address group (an IPv4 address or an IPv6 /address_ipv6_prefix):
    # over these a socket is closed at accept (limits.AcceptGate)
    max_sockets_per_address: int = 80  # open sockets, handshaking or connected
    max_handshakes_per_address: int = 16  # TLS handshakes in progress
    accept_burst: int = 64  # sockets one address may open at once...
    accept_rate: float = 8.0  # ...and per second after that
    address_ipv6_prefix: int = 64  # IPv6 addresses in one such prefix count as one address
    fd_reserve: int = 64  # descriptors kept free: near the limit, new handshakes are shed
    # memory
    socket_send_buffer_bytes: int = 256 * 1024  # SO_SNDBUF per client socket; 0: kernel's
    sendq_total_bytes: int = 256 * 1024 * 1024  # queued output over all clients
    # while output keeps coming, flushes this far apart (net/pacing.py); 0: every line at once
    flush_pause_ms: float = 4.0
    # operator log: the first log_burst of a repetitive event per log_interval_seconds
    log_burst: int = 20
    log_interval_seconds: float = 60.0
    exempt_accounts: tuple[str, ...] = field(default_factory=tuple)  # accounts free of flood limits
    # operators: name -> OperBlock; K-lines from the config (more are added with KLINE)
    opers: dict[str, OperBlock] = field(default_factory=dict)
    klines: tuple[str, ...] = field(default_factory=tuple)
    # operations
    metrics_port: int | None = None  # Prometheus text on 127.0.0.1:PORT when set
    cert_expiry_warning_days: int = 30
    reload_timeout: float = 10.0  # seconds a reload may spend reading its files (SIGHUP)
    # TLS: key-exchange groups offered (no ffdhe: review H1); a key others may read is refused
    tls_groups: tuple[str, ...] = ("X25519", "P-256", "P-384")
    allow_insecure_key_permissions: bool = False
    shutdown_notice: str = ""  # sent as a NOTICE to every client before the shutdown ERROR
    activity_log_seconds: float = 60.0  # how often per-room message counts are logged
    # browsers (securechat.web): HTTPS + IRC over WebSocket on web_port; None: off.
    # `securechat serve` defaults to 8443 (SERVE_DEFAULTS in main.py); the library to off.
    web_port: int | None = None
    web_allowed_origins: tuple[str, ...] = field(default_factory=tuple)  # empty: our own origin
    web_proxies: tuple[str, ...] = field(default_factory=tuple)  # CIDRs trusted for X-Forwarded-For
    web_max_request_bytes: int = 8192  # HTTP request head; larger: 431
    web_max_frame_bytes: int = 16384  # one WebSocket message (tags included); larger: close 1009
    web_request_timeout: float = 10.0  # seconds for an HTTP request head, and idle keep-alive
    web_ping_interval: float = 60.0  # WebSocket ping; no pong by the next one: closed
    # processes: 0 serves in this one; N (or "auto": one per CPU) starts N cluster nodes on
    # one port under a supervisor (workers.py); needs cluster mode and SO_REUSEPORT
    workers: int = 0

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)


_POSITIVE_FLOATS = {
    "register_window_seconds",
    "accounts_per_address_window_seconds",
    "history_read_timeout_seconds",
    "history_failure_report_seconds",
    "flood_rate",
    "connect_rate",
    "accept_rate",
    "log_interval_seconds",
    "activity_log_seconds",
    "handshake_timeout",
    "registration_timeout",
    "ping_interval",
    "ping_timeout",
    "whowas_seconds",
    "reload_timeout",
    "web_request_timeout",
    "web_ping_interval",
}
_POSITIVE_INTS = {
    "max_connections_per_account",
    "always_on_max_rooms",
    "flood_burst",
    "flood_max_backlog",
    "max_connections",
    "max_connections_per_address",
    "connect_burst",
    "max_sockets_per_address",
    "max_handshakes_per_address",
    "accept_burst",
    "sendq_total_bytes",
    "log_burst",
    "sendq_bytes",
    "max_targets",
    "monitor_limit",
    "max_rooms_per_user",
    "topic_length",
    "away_length",
    "kick_length",
    "max_bans_per_room",
    "max_mask_length",
    "max_mask_wildcards",
    "chathistory_limit",
    "chathistory_max_private_targets",
    "max_read_markers",
    "max_reactions_per_message",
    "max_reaction_bytes",
    "redact_reason_length",
    "multiline_max_bytes",
    "multiline_max_lines",
    "history_prune_batch_rows",
    "login_free_failures",
    "login_address_free_failures",
    "login_account_free_failures",
    "oper_free_failures",
    "register_per_connection",
    "register_per_address",
    "accounts_per_address",
    "throttle_max_entries",
    "hash_workers_login",
    "hash_workers_bulk",
    "hash_queue_login",
    "hash_queue_bulk",
    "web_max_request_bytes",
    "web_max_frame_bytes",
}
_NON_NEGATIVE_INTS = {
    "cluster_snapshot_events",
    "offline_messages_per_account",
    "max_names_per_reply",
    "whowas_entries",
    "cert_expiry_warning_days",
    "history_on_join",
    "history_on_join_notices",
    "history_max_per_target",
    "fd_reserve",
    "socket_send_buffer_bytes",
}
_NON_NEGATIVE_FLOATS = {
    "always_on_expire_days",
    "redact_window_seconds",
    "history_max_age_days",
    "nick_grace_seconds",
    "login_max_delay_seconds",
    "login_account_max_hold_seconds",
    "login_failure_memory_seconds",
    "nick_grace_memory_seconds",
}
_PATHS = {"cert", "key"}
_OPTIONAL_PATHS = {"motd", "client_ca"}
_STRINGS = {"host", "name", "network"}
_OPTIONAL_STRINGS = {"password", "node_name"}
_CHOICES = {"log_level": LOG_LEVELS, "log_format": LOG_FORMATS, "store_sync": ("normal", "full")}
_BOOLS = {
    "log_messages",
    "allow_insecure_key_permissions",
    "store_check_at_start",
    "multiclient",
    "always_on_default",
    "reuse_port",
}
_STRING_LISTS = {"exempt_accounts", "klines", "tls_groups", "web_allowed_origins"}


def known_keys() -> list[str]:
    return [f.name for f in fields(ServerConfig)]


def load_config(path: Path) -> dict[str, Any]:
    """Read a TOML file into validated settings (not yet applied)."""
    try:
        text = read_regular_file(path).data.decode("utf-8")
        raw = tomllib.loads(text)
    except FileRefused as exc:
        raise ConfigError(f"config file {path} {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return {key: validate(key, value, where=f"{path}: {key}") for key, value in raw.items()}


# Settings whose validated value may be None on purpose ("data_dir = none": keep nothing),
# so a layer's None overrides instead of being skipped as "not given".
_NULLABLE = frozenset({"data_dir", "web_port"})


def build_config(*layers: dict[str, Any]) -> ServerConfig:
    """Defaults, then each layer in order (later wins); None values are skipped, except
    for the ``_NULLABLE`` settings, where None is a choice."""
    settings: dict[str, Any] = {}
    for layer in layers:
        settings.update({k: v for k, v in layer.items() if v is not None or k in _NULLABLE})
    config = ServerConfig(**settings)
    check_relations(config)
    return config


def check_relations(config: ServerConfig) -> None:
    if config.cluster is not None and config.database is None and config.data_dir is not None:
        raise ConfigError(
            "cluster mode cannot keep accounts and history in SQLite (data_dir): every node "
            "must share them; give --database postgresql://… or --data-dir none"
        )
    if config.ping_timeout >= config.ping_interval * 10:
        raise ConfigError("ping_timeout must be shorter than ten ping intervals")
    if config.workers:
        check_workers(config)


def check_workers(config: ServerConfig) -> None:
    """What `--workers` needs (workers.py; the platform's SO_REUSEPORT is checked there):
    cluster mode to make the workers one network, and a metrics port for each."""
    if config.cluster is None:
        raise ConfigError(
            "--workers needs --cluster URL: only cluster mode makes the workers one network"
        )
    if config.metrics_port and config.metrics_port + config.workers - 1 > 65535:
        raise ConfigError(f"--metrics-port {config.metrics_port} leaves no port for each worker")


def validate(key: str, value: Any, where: str | None = None) -> Any:
    """Check and convert one setting; ``where`` names it in errors (file and key, or flag)."""
    where = where or key
    if key not in known_keys():
        raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(known_keys())})")
    if key == "port":
        return _port(where, value)
    if key in _POSITIVE_FLOATS:
        return _positive_number(where, value)
    if key in _NON_NEGATIVE_FLOATS:
        return _non_negative_number(where, value)
    if key == "data_dir":
        text = _string(where, value)
        return None if text.lower() == "none" else Path(text)
    if key == "cluster":
        try:
            return check_cluster_url(_string(where, value))
        except BadClusterUrl as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if key == "database":
        try:
            return check_database_url(_string(where, value))
        except BadDatabaseUrl as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if key in _POSITIVE_INTS or key in _NON_NEGATIVE_INTS:
        return _int_at_least(where, value, 0 if key in _NON_NEGATIVE_INTS else 1)
    if key in _PATHS or key in _OPTIONAL_PATHS:
        return Path(_string(where, value))
    if key in _STRINGS or key in _OPTIONAL_STRINGS:
        return _string(where, value)
    if key in _CHOICES:
        return _choice(where, value, _CHOICES[key])
    if key in _BOOLS:
        return _bool(where, value)
    if key in _STRING_LISTS:
        return _string_list(where, value)
    if key in ("exempt", "web_proxies"):
        return _networks(where, value)
    if key == "web_port":
        return None if str(value).lower() == "off" else _port(where, value)
    if key == "flush_pause_ms":
        pause = _non_negative_number(where, value)
        if pause > MAX_FLUSH_PAUSE_MS:
            raise ConfigError(
                f"{where} must be from 0 to {MAX_FLUSH_PAUSE_MS:g} milliseconds (it adds up to"
                f" that much latency to every line of a busy room), got {value!r}"
            )
        return pause
    if key == "address_ipv6_prefix":
        prefix = _int_at_least(where, value, 1)
        if prefix > 128:
            raise ConfigError(f"{where} must be an IPv6 prefix length from 1 to 128, got {value!r}")
        return prefix
    if key == "metrics_port":
        return _port(where, value)
    if key == "opers":
        return _opers(where, value)
    if key == "workers":
        return _workers(where, value)
    if key == "shutdown_notice":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: no validator")  # a new field without one is our bug


def _port(where: str, value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ConfigError(f"{where} must be a port number from 0 to 65535, got {value!r}")
    return value


MAX_FLUSH_PAUSE_MS = 50.0  # beyond this the wait would be felt, and it saves little more

MAX_WORKERS = 64  # beyond this, one machine's cores are not what limits a node


def _workers(where: str, value: Any) -> int:
    if isinstance(value, str) and value.lower() == "auto":
        return min(os.cpu_count() or 1, MAX_WORKERS)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_WORKERS:
        raise ConfigError(
            f"{where} must be auto or a number from 0 to {MAX_WORKERS}, got {value!r}"
        )
    return value


def _positive_number(where: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not number > 0:
        raise ConfigError(f"{where} must be greater than 0, got {value!r}")
    return number


def _non_negative_number(where: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if isinstance(value, bool) or number < 0:
        raise ConfigError(f"{where} must be 0 or more, got {value!r}")
    return number


def _int_at_least(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where} must be a whole number of at least {minimum}, got {value!r}")
    return value


def _string(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ConfigError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
    return value.lower()


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _networks(where: str, value: Any) -> tuple[str, ...]:
    """CIDRs such as 127.0.0.0/8 or ::1/128, normalized."""
    networks = []
    for text in _string_list(where, value):
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ConfigError(f"{where}: {text!r} is not an address or CIDR network") from None
    return tuple(networks)


def _opers(where: str, value: Any) -> dict[str, OperBlock]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of [opers.NAME] blocks")
    opers = {}
    for name, block in value.items():
        here = f"{where}.{name}"
        if not isinstance(block, dict) or set(block) - {"password_hash", "hosts"}:
            raise ConfigError(f"{here} takes password_hash and hosts only")
        password_hash = _string(f"{here}.password_hash", block.get("password_hash"))
        if not password_hash.startswith("scrypt$"):
            raise ConfigError(
                f"{here}.password_hash must come from `securechat hash-password`, "
                "not a plain password"
            )
        hosts = _string_list(f"{here}.hosts", block.get("hosts", ["*@*"]))
        opers[name] = OperBlock(password_hash, hosts)
    return opers


def _string_list(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return tuple(value)
