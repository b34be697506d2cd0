"""Operations around the running server: reading new settings for a reload (SIGHUP, REHASH),
the once-a-second care of shared resources, and the gauges of the metrics page. Kept out of
server.py, which owns the message path."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from securechat.logs import event
from securechat.server.config import ConfigError, ServerConfig
from securechat.server.metrics import render
from securechat.server.net.blocking import call_in_daemon_thread
from securechat.server.net.connection import _unsent_bytes
from securechat.server.net.sendq import trim_memory
from securechat.server.settings_scope import changed_replicated
from securechat.tls import TlsSetupError

if TYPE_CHECKING:
    from securechat.server.net.server import ChatServer

log = logging.getLogger("securechat.server")


async def read_settings(
    reload_settings: Callable[[], tuple[ServerConfig, ssl.SSLContext]] | None,
    current: ServerConfig,
    clustered: bool = False,
) -> tuple[ServerConfig, ssl.SSLContext | None, str | None]:
    """The new config and TLS context, read on a thread bounded by ``reload_timeout`` (a file
    on a stuck mount must not hold the event loop); on failure the current config, no context
    and one line saying why. ``clustered``: a change to a replicated setting is a failure."""
    if reload_settings is None:
        return current, None, "this server was started without a config to reload"
    try:
        config, context = await call_in_daemon_thread(
            reload_settings, current.reload_timeout, "securechat-reload"
        )
    except (ConfigError, TlsSetupError) as exc:
        return current, None, str(exc)
    except TimeoutError:
        return (
            current,
            None,
            (
                f"reading the settings took more than {current.reload_timeout:g} s "
                "(a file on a stuck mount?)"
            ),
        )
    except Exception:
        log.exception("bug while reloading the settings")
        return current, None, "internal error, see the server log"
    refusal = replicated_change(current, config) if clustered else None
    if refusal is not None:
        return current, None, refusal
    return config, context, None


def render_metrics(server: ChatServer) -> str:
    """The Prometheus page: the core's counters and the shell's gauges."""
    core = server.core
    registered = sum(1 for s in core.sessions.values() if s.registered)
    gauges = {
        "connections": (float(len(server.connections)), "open client connections"),
        "registered_users": (float(registered), "clients that completed registration"),
        "rooms": (float(len(core.rooms)), "rooms that exist now"),
        "event_loop_lag_seconds": (server.loop_lag, "how late the last 1 s timer fired"),
        "handshakes_in_progress": (float(server.gate.handshakes), "TLS handshakes under way"),
        "sendq_queued_bytes": (float(server.sendq.total), "unsent bytes over all clients"),
    }
    return render(core.metrics.snapshot(), gauges)


def tend_resources(server: ChatServer, now: float) -> None:
    """Once a second: re-measure queued output, give memory back after a burst, forget
    refilled accept buckets, write the summaries of suppressed log lines."""
    server.sendq.refresh(_unsent_bytes)
    if server._trim.due(server.sendq.total, now) and trim_memory():
        server.core.metrics.memory_trims += 1
        event(log, "memory_trimmed", queued=server.sendq.total)
    server.gate.prune(now)
    server._log_limiter.flush()


def replicated_change(current: ServerConfig, new: ServerConfig) -> str | None:
    """Why a cluster node refuses a reload that changes a replicated setting, or None: its
    replica alone would decide otherwise and diverge from the others' (docs/CLUSTER.md)."""
    changed = changed_replicated(current, new)
    if not changed:
        return None
    return (
        f"{', '.join(changed)} must be the same on every node of the cluster; "
        "to change them restart the whole cluster (docs/CLUSTER.md)"
    )
