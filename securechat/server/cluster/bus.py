"""Redis I/O: the one stream every node appends to and reads, and the keys of liveness.

Keys (all under ``securechat:``):
- ``stream``: the events (docs/CLUSTER.md), one entry per batch: ``o`` its origin
  (``name/number``), ``n`` the origin's count of batches, ``e`` the encoded batch;
- ``nodes``: hash name -> number of the nodes that joined and were not swept yet;
- ``lease:<name>``: a node's lease (SET PX, renewed every second);
- ``leader``: the node that sends the network's timer ticks and sweeps lapsed nodes;
- ``restored``: set once the registered rooms went into the stream (the first node does it);
- ``snapshot``: hash ``entry`` (a stream id) and ``data``: the network's state up to that
  entry (snapshot.py); the stream is trimmed to it, never past what a live node applied;
- ``applied``: hash name -> the last stream entry that node applied (sent with its lease);
- ``settings``: hash setting -> hash of its value, of the replicated settings
  (settings_scope.py): set by the first node of a fresh stream, compared by every other.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from securechat.server.cluster import resp
from securechat.server.cluster_url import ClusterError
from securechat.server.database_url import mask_password

PREFIX = "securechat:"
STREAM = PREFIX + "stream"
NODES = PREFIX + "nodes"
LEADER = PREFIX + "leader"
RESTORED = PREFIX + "restored"
SNAPSHOT = PREFIX + "snapshot"
APPLIED = PREFIX + "applied"
SETTINGS = PREFIX + "settings"
CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 3.0  # a Redis that stopped answering is an error, not a hang (leases)
READ_BLOCK_MS = 1000  # under SOCKET_TIMEOUT


# A fresh start: when no node but ARGV[1] holds a lease, the stream and what describes it are
# from a cluster that is gone (stopped, or killed): start over. Atomic (a script), so of two
# nodes starting at once the second always sees the first's lease (each claims before it asks).
_FRESH = """
for _, key in ipairs(redis.call('KEYS', KEYS[1] .. '*')) do
  if key ~= KEYS[1] .. ARGV[1] then return 0 end
end
redis.call('DEL', unpack(KEYS, 2))
return 1
"""

# The cluster's replicated settings: stored by the first node to ask (ARGV: name, hash, ...),
# returned to every later one (an empty reply: ours are now the cluster's). Atomic, so of two
# first nodes starting at once one stores and the other compares.
_SETTINGS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV))
return {}
"""

# Trim the stream to the snapshot's entry (ARGV[2], ARGV[3]: a new snapshot to store first),
# but never past the entry a live node (one holding its lease) last said it applied: a node
# that lags, or joins (it says "0-0" before it reads the snapshot), still finds its next one.
_TRIM = """
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'entry', ARGV[2], 'data', ARGV[3]) end
local low = redis.call('HGET', KEYS[2], 'entry')
if not low then return 0 end
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local lms, lseq = parts(low)
local applied = redis.call('HGETALL', KEYS[3])
for i = 1, #applied, 2 do
  if redis.call('EXISTS', ARGV[1] .. applied[i]) == 1 then
    local ms, seq = parts(applied[i + 1])
    if ms and (ms < lms or (ms == lms and seq < lseq)) then
      low, lms, lseq = applied[i + 1], ms, seq
    end
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', low)
"""


class ClusterUnavailable(ClusterError):
    """One line for the operator: the URL (password masked) and why."""


class BusError(Exception):
    """Redis did not answer, or refused: one line (redis-py's errors stay in this module)."""


P = ParamSpec("P")
T = TypeVar("T")


def _guarded(
    method: Callable[Concatenate[Bus, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Bus, P], Coroutine[Any, Any, T]]:
    async def guarded(bus: Bus, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(bus, *args, **kwargs)
        except bus.errors as exc:
            raise BusError(reason(exc)) from None

    return guarded


def lease_key(name: str) -> str:
    return f"{PREFIX}lease:{name}"


class Bus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = mask_password(url)
        self.redis: Any = None
        self.errors: tuple[type[BaseException], ...] = (OSError,)
        # The stream's XADD and XREAD on their own connections (resp.py: redis-py costs ~7x
        # the CPU per command); None for rediss://, which stays on redis-py.
        self.writer: resp.RawConnection | None = None
        self.reader: resp.RawConnection | None = None
        self._stream = STREAM.encode()

    async def open(self) -> None:
        """Connect and check that the server answers; ClusterUnavailable says why not."""
        # Imported here, not at the top: cluster mode's own dependency (the cluster extra);
        # a default server never loads it (DESIGN.md: the default stays small).
        import redis.asyncio as aioredis
        from redis.exceptions import AuthenticationError, RedisError, ResponseError

        self.errors = (RedisError, OSError)
        try:
            self.redis = aioredis.Redis.from_url(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
                health_check_interval=30,
            )
            await self.redis.ping()
            if resp.supports(self.url):
                self.writer = resp.RawConnection(self.url, SOCKET_TIMEOUT)
                self.reader = resp.RawConnection(self.url, SOCKET_TIMEOUT)
        except AuthenticationError:
            raise ClusterUnavailable(f"{self.shown}: wrong password for Redis") from None
        except ResponseError as exc:
            raise ClusterUnavailable(f"{self.shown}: Redis refused: {exc}") from None
        except (RedisError, OSError, ValueError) as exc:
            raise ClusterUnavailable(f"{self.shown}: cannot reach Redis ({reason(exc)})") from None

    @property
    def r(self) -> Any:
        assert self.redis is not None, "open() first"
        return self.redis

    async def close(self) -> None:
        for raw in (self.writer, self.reader):
            if raw is not None:
                raw.close()
        if self.redis is not None:
            await self.redis.aclose()

    @_guarded
    async def append(self, origin: str, batch: bytes, number: int) -> str:
        if self.writer is None:
            entry = await self.r.xadd(STREAM, {"o": origin, "n": number, "e": batch})
        else:
            command = resp.pack(
                b"XADD", self._stream, b"*", b"o", origin.encode(), b"n", b"%d" % number,
                b"e", batch,
            )  # fmt: skip
            entry = await self.writer.call(command)
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    @_guarded
    async def read(
        self, after: str, block_ms: int | None = None
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Entries after ``after``; ``block_ms`` None: what is there now, without waiting."""
        if self.reader is None:
            reply: Any = await self.r.xread({STREAM: after}, count=1000, block=block_ms)
            if not reply:
                return []
            return [(entry.decode(), fields) for entry, fields in reply[0][1]]
        if block_ms is None:
            command = resp.pack(
                b"XREAD", b"COUNT", b"1000", b"STREAMS", self._stream, after.encode()
            )
        else:
            command = resp.pack(
                b"XREAD", b"COUNT", b"1000", b"BLOCK", b"%d" % block_ms,
                b"STREAMS", self._stream, after.encode(),
            )  # fmt: skip
        reply = await self.reader.call(command, (block_ms or 0) / 1000)
        if not reply:
            return []
        return [(entry.decode(), _pairs(fields)) for entry, fields in reply[0][1]]

    @_guarded
    async def claim_name(self, name: str, number: int, lease_ms: int) -> bool:
        """Take ``name``'s lease; False when a live node holds it."""
        return bool(await self.r.set(lease_key(name), number, nx=True, px=lease_ms))

    @_guarded
    async def renew(self, name: str, number: int, lease_ms: int) -> None:
        await self.r.set(lease_key(name), number, px=lease_ms)

    @_guarded
    async def remember(self, name: str, number: int) -> None:
        """Put back what an empty Redis (restarted without persistence) forgot about us: our
        registration and the restored flag. Every second, with the lease, one round trip."""
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(NODES, name, number)
            pipe.set(RESTORED, 1)
            await pipe.execute()

    @_guarded
    async def register(self, name: str, number: int) -> int | None:
        """Record ``name``'s number; returns the number a previous process of that name had
        (not swept yet), whose sessions must go."""
        previous = await self.r.hget(NODES, name)
        await self.r.hset(NODES, name, number)
        return None if previous is None or int(previous) == number else int(previous)

    @_guarded
    async def leave(self, name: str, number: int) -> None:
        await self.r.hdel(NODES, name)
        await self.r.delete(lease_key(name))

    @_guarded
    async def lead(self, origin: str, ms: int) -> bool:
        """Take or keep the leader's key; True while this node is the leader."""
        r = self.r
        if await r.set(LEADER, origin, nx=True, px=ms):
            return True
        holder = await r.get(LEADER)
        if holder is not None and _text(holder) == origin:
            await r.pexpire(LEADER, ms)
            return True
        return False

    @_guarded
    async def lapsed(self) -> list[tuple[str, int]]:
        """Nodes registered whose lease is gone (SIGKILL, cut off): to be swept."""
        r = self.r
        nodes = await r.hgetall(NODES)
        gone = []
        for name, number in nodes.items():
            if not await r.exists(lease_key(_text(name))):
                gone.append((_text(name), int(number)))
        return gone

    @_guarded
    async def forget(self, name: str, number: int) -> bool:
        """Remove a swept node, unless a new process of that name registered meanwhile."""
        current = await self.r.hget(NODES, name)
        if current is None or int(current) != number:
            return False
        await self.r.hdel(NODES, name)
        return True

    @_guarded
    async def start_fresh(self, name: str) -> bool:
        """Clear a stream no live node uses (module doc of _FRESH); True when it did."""
        keys = (lease_key(""), STREAM, RESTORED, NODES, LEADER, SNAPSHOT, APPLIED, SETTINGS)
        return bool(await self.r.eval(_FRESH, len(keys), *keys, name))

    @_guarded
    async def settings(self, hashes: dict[str, str]) -> dict[str, str]:
        """The cluster's replicated settings (``_SETTINGS``): ``hashes`` when there were none."""
        flat = [item for pair in sorted(hashes.items()) for item in pair]
        stored = await self.r.eval(_SETTINGS, 1, SETTINGS, *flat)
        if not stored:
            return dict(hashes)
        return {_text(key): _text(value) for key, value in _pairs(stored).items()}

    @_guarded
    async def first_start(self) -> bool:
        """True for exactly one node of a fresh cluster: it restores the registered rooms."""
        return bool(await self.r.set(RESTORED, 1, nx=True))

    # ---- snapshots (snapshot.py, docs/CLUSTER.md "Snapshots and trimming") -----------------

    @_guarded
    async def applied(self, name: str, entry: str) -> None:
        """Say which entry this node applied last (``0-0``: hold the whole stream)."""
        await self.r.hset(APPLIED, name, entry)

    @_guarded
    async def snapshot(self) -> bytes | None:
        """The stored snapshot's bytes, or None."""
        data = await self.r.hget(SNAPSHOT, "data")
        return None if data is None else bytes(data)

    @_guarded
    async def trim(self, entry: str = "", data: bytes = b"") -> int:
        """Store a snapshot covering ``entry`` (when given), then trim (``_TRIM``); returns
        how many entries went."""
        keys = (STREAM, SNAPSHOT, APPLIED)
        return int(await self.r.eval(_TRIM, len(keys), *keys, lease_key(""), entry, data))


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """XREAD's field list [k1, v1, k2, v2, ...] as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
