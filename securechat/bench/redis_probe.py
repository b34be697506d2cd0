"""Read a Redis server's own counters over its unix socket: its pid and per-command statistics.

The bench never needs a Redis client library for this: ``INFO <section>`` is one request whose
answer is one RESP bulk string of ``key:value`` lines. Redis counts, per command, the calls and
the microseconds spent executing them (``cmdstat_xadd:calls=10,usec=52,...``); the difference
between two readings says what a phase cost Redis, command by command, beside the CPU time the
kernel charged the process (which also counts networking, event loop and background threads).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

TIMEOUT_S = 5.0


class RedisProbeError(Exception):
    """Redis did not answer INFO as expected (not running, wrong socket, protocol error)."""


@dataclass(frozen=True)
class CommandStat:
    calls: int
    usec: int


def info(socket_path: str, section: str) -> dict[str, str]:
    """``INFO section`` as a dict of its ``key:value`` lines (comments and blanks skipped)."""
    request = b"*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section.encode())
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_S)
            sock.connect(socket_path)
            sock.sendall(request)
            text = _read_bulk(sock)
    except OSError as exc:
        raise RedisProbeError(f"redis at {socket_path}: {exc}") from exc
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and not line.startswith("#"):
            fields[key] = value
    return fields


def pid(socket_path: str) -> int:
    """The process id of the Redis server listening on ``socket_path``."""
    try:
        return int(info(socket_path, "server")["process_id"])
    except (KeyError, ValueError) as exc:
        raise RedisProbeError(f"redis at {socket_path}: no process_id in INFO server") from exc


def command_stats(socket_path: str) -> dict[str, CommandStat]:
    """Calls and microseconds per command since Redis started (or CONFIG RESETSTAT)."""
    stats: dict[str, CommandStat] = {}
    for key, value in info(socket_path, "commandstats").items():
        if not key.startswith("cmdstat_"):
            continue
        parts = dict(item.split("=", 1) for item in value.split(",") if "=" in item)
        stats[key.removeprefix("cmdstat_")] = CommandStat(int(parts["calls"]), int(parts["usec"]))
    return stats


def used_memory(socket_path: str) -> int:
    """Bytes Redis has allocated (``INFO memory`` used_memory): the stream's growth shows here."""
    try:
        return int(info(socket_path, "memory")["used_memory"])
    except (KeyError, ValueError) as exc:
        raise RedisProbeError(f"redis at {socket_path}: no used_memory in INFO memory") from exc


def command_delta(
    before: dict[str, CommandStat], after: dict[str, CommandStat]
) -> dict[str, CommandStat]:
    """What each command cost between two readings; commands not called in between are left out."""
    delta: dict[str, CommandStat] = {}
    for name, stat in after.items():
        old = before.get(name, CommandStat(0, 0))
        if stat.calls > old.calls:
            delta[name] = CommandStat(stat.calls - old.calls, stat.usec - old.usec)
    return delta


def _read_bulk(sock: socket.socket) -> str:
    """One RESP bulk string reply (``$<len>\\r\\n<bytes>\\r\\n``); an error reply raises."""
    data = b""
    while b"\r\n" not in data:
        data += _recv(sock)
    head, _, body = data.partition(b"\r\n")
    if not head.startswith(b"$"):
        raise RedisProbeError(f"unexpected reply to INFO: {head[:80]!r}")
    size = int(head[1:])
    while len(body) < size:
        body += _recv(sock)
    return body[:size].decode("utf-8", "replace")


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise RedisProbeError("redis closed the connection mid-reply")
    return chunk
