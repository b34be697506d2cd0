"""Which ServerConfig settings are the cluster's and which are each node's own.

In cluster mode every node runs a replica of the core and applies every event
(docs/CLUSTER.md): a setting that changes what the core decides must be the same on every
node, or the replicas silently diverge. Those are the *replicated* settings; a node checks
their fingerprint against the cluster's at start and a reload may not change them.

Every ServerConfig field is in exactly one of the two sets below
(tests/unit/server/test_settings_scope.py fails on a field in neither): when you add a
setting, decide. When unsure, it is replicated: a refused start is visible, a diverged
replica is not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from securechat.server.config import ServerConfig

# Each node's own: what it listens on, its files, its logs, its threads and buffers, and the
# network layer's limits before the core sees a connection (an overflow there is a close,
# which is published as an event like any other, so the replicas still agree).
NODE_LOCAL_SETTINGS = frozenset(
    {
        # listeners and processes (a node's own ports; the supervisor's children)
        "host",
        "port",
        "web_port",
        "metrics_port",
        "reuse_port",
        "workers",
        # TLS: files and the handshake are the node's (client_ca is not: see below)
        "cert",
        "key",
        "tls_groups",
        "allow_insecure_key_permissions",
        "cert_expiry_warning_days",
        # the MOTD is read by each node and sent to its own clients only (snapshot.py)
        "motd",
        # logs
        "log_level",
        "log_format",
        "log_messages",
        "log_burst",
        "log_interval_seconds",
        # where the store and the Redis are: the same ones, but the URL's form (host name,
        # password) may differ per node; data_dir must be none in cluster mode anyway
        "data_dir",
        "database",
        "cluster",
        "store_sync",
        "store_check_at_start",
        "history_read_timeout_seconds",  # the origin's read fails: that outcome is replicated
        # the node itself
        "node_name",
        "cluster_snapshot_events",  # how often this node snapshots while it leads
        "hash_workers_login",
        "hash_workers_bulk",
        "reload_timeout",
        "shutdown_notice",  # sent by a stopping node to its own clients
        # the network layer: before registration, and output buffers (a close is an event)
        "handshake_timeout",
        "sendq_bytes",
        "sendq_total_bytes",
        "socket_send_buffer_bytes",
        "flush_pause_ms",
        "max_sockets_per_address",
        "max_handshakes_per_address",
        "accept_burst",
        "accept_rate",
        "address_ipv6_prefix",
        "fd_reserve",
        # browsers: the HTTP/WebSocket front of this node
        "web_allowed_origins",
        "web_proxies",
        "web_max_request_bytes",
        "web_max_frame_bytes",
        "web_request_timeout",
        "web_ping_interval",
    }
)

# The cluster's: names, passwords, services and opers, history and its retention, accounts
# and their throttles, always-on users, limits, flood rules, timers the core runs.
REPLICATED_SETTINGS = frozenset(
    {
        "name",
        "network",
        "password",
        "history_on_join",
        "history_on_join_notices",
        "history_max_age_days",
        "history_max_per_target",
        "history_prune_batch_rows",
        "chathistory_limit",
        "chathistory_max_private_targets",
        "max_read_markers",
        "max_reactions_per_message",
        "max_reaction_bytes",
        "multiline_max_bytes",
        "multiline_max_lines",
        "redact_window_seconds",
        "redact_reason_length",
        "history_failure_report_seconds",
        "client_ca",  # only whether there is one: it decides if SASL EXTERNAL is offered
        "nick_grace_seconds",
        "login_free_failures",
        "login_max_delay_seconds",
        "login_address_free_failures",
        "login_account_free_failures",
        "login_account_max_hold_seconds",
        "login_failure_memory_seconds",
        "oper_free_failures",
        "nick_grace_memory_seconds",
        "register_window_seconds",
        "register_per_connection",
        "register_per_address",
        "accounts_per_address",
        "accounts_per_address_window_seconds",
        "throttle_max_entries",
        "hash_queue_login",
        "hash_queue_bulk",
        "multiclient",
        "max_connections_per_account",
        "always_on_default",
        "always_on_max_rooms",
        "always_on_expire_days",
        "offline_messages_per_account",
        "registration_timeout",
        "ping_interval",
        "ping_timeout",
        "max_targets",
        "monitor_limit",
        "whowas_entries",
        "whowas_seconds",
        "max_rooms_per_user",
        "max_names_per_reply",
        "topic_length",
        "away_length",
        "kick_length",
        "max_bans_per_room",
        "max_mask_length",
        "max_mask_wildcards",
        "flood_burst",
        "flood_rate",
        "flood_max_backlog",
        "max_connections",
        "max_connections_per_address",
        "connect_burst",
        "connect_rate",
        "exempt",
        "exempt_accounts",
        "opers",
        "klines",
        "activity_log_seconds",
    }
)

# Replicated by what the core sees of them, not their form: the CA's path is the node's own.
_AS_SEEN = {"client_ca": lambda value: value is not None}


def _canonical(value: Any) -> Any:
    """A JSON-able form that two nodes' equal settings share (a TOML int 4 and float 4.0 for
    a float setting, opers in another order)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return sorted([str(key), _canonical(item)] for key, item in value.items())
    if isinstance(value, tuple | list):
        return [_canonical(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"no canonical form for a setting of type {type(value).__name__}")


def settings_hashes(config: ServerConfig) -> dict[str, str]:
    """Replicated setting -> a hash of its value (what the cluster stores and compares:
    differences can be named without storing passwords or oper hashes in Redis)."""
    hashes = {}
    for name in sorted(REPLICATED_SETTINGS):
        value = getattr(config, name)
        if name in _AS_SEEN:
            value = _AS_SEEN[name](value)
        text = json.dumps(_canonical(value), sort_keys=True)
        hashes[name] = hashlib.sha256(text.encode()).hexdigest()[:32]
    return hashes


def differing(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """The settings whose hashes differ, sorted (one only one side has counts too: another
    version of the server)."""
    names = mine.keys() | theirs.keys()
    return sorted(name for name in names if mine.get(name) != theirs.get(name))


def changed_replicated(old: ServerConfig, new: ServerConfig) -> list[str]:
    """The replicated settings a reload from ``old`` to ``new`` would change."""
    return differing(settings_hashes(old), settings_hashes(new))
