"""A replica's state as bytes and back: what a late-joining node loads instead of replaying the
whole stream (docs/CLUSTER.md, "Snapshots and trimming").

No pickle: a snapshot is in Redis, and Redis data must never become code. The codec walks the
core's object graph and writes JSON; objects are written only for the classes listed in
``_CLASSES`` (by module and name), and decoding builds only those, without running their
``__init__`` (frozen dataclasses, which are values, go through their constructor, so their
derived fields such as ``Ban.glob`` are compiled again). A value of any other type (a
callable, a future, a socket) is refused with ``Unencodable``: the writer then waits for a
quieter moment, and a type added to the state later cannot slip by unnoticed (the cluster
tests snapshot a rich network and compare).

Shared objects stay shared (a Session is in ``sessions``, the nick registry, every room it is
in...): each mutable object is written once in a flat table and referred to by its index,
so references, cycles and deep graphs (thousands of rooms) need no recursion.

What is not in a snapshot, because it is this node's and not the network's: the config (each
node's own; a reference to it is written as a marker), the command table, the MOTD, metrics,
the core's start time and msgid counter (the replica sets those per event), the cached
recipients of rooms (this node's connections), whether a session is remote, and when this
node pinged its own sessions. ``canonical`` is the same encoding as a string: two replicas
that went through the same events give the same one (the tests compare them).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import gc
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from securechat.server import (
    accounts,
    hashing,
    history,
    limits,
    monitor,
    presence_accounts,
    read_markers,
    records,
    room_registry,
    rooms,
    state,
    throttle,
    whowas,
)
from securechat.server.cluster.replica import Replica
from securechat.server.commands import multiline
from securechat.server.config import ServerConfig
from securechat.server.core import ServerCore

FORMAT = 1
MAX_BYTES = 512 * 1024 * 1024  # a decompressed snapshot larger than this is refused

# The core's attributes that are this node's own (module doc), or set for each event.
_LOCAL = frozenset(
    {
        "config",
        "commands",
        "motd",
        "started_at",
        "metrics",
        "persistent",
        "_actions",
        "_capture",
        "_exempt_accounts",
        "_msgid_prefix",
        "_msgid_counter",
    }
)

_CLASSES: dict[str, type] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (
        state.Session,
        state.NickRegistry,
        rooms.RoomManager,
        rooms.Room,
        rooms.Member,
        rooms.Ban,
        presence_accounts.AccountPresences,
        monitor.MonitorRegistry,
        whowas.WhowasLog,
        whowas.Entry,
        read_markers.ReadMarkers,
        room_registry.RoomRegistry,
        limits.AddressLimits,
        accounts.AccountState,
        hashing.HashingLanes,
        throttle.Backoff,
        throttle._Failures,
        throttle.Quota,
        throttle._Window,
        history.HistoryHealth,
        multiline.OpenBatch,
        records.RoomRecord,
        records.PresenceRecord,
        records.KLine,
        records.Account,
    )
}

# Fields of listed classes that are this node's own: written as the value given here (so the
# canonical form does not depend on which node wrote it), set again when loaded (``load``).
_NODE_FIELDS: dict[type, dict[str, Any]] = {
    # the network layer's pacing and pings of the node's own connections
    state.Session: {
        "remote": False,
        "ping_sent_at": None,
        "flood_tokens": 0.0,
        "flood_updated": 0.0,
    },
    rooms.Room: {"_targets": None},
    limits.AddressLimits: {"_networks": ()},
}


class Unencodable(TypeError):
    """The state holds a value a snapshot cannot carry (a continuation in flight...)."""


class SnapshotError(ValueError):
    """A snapshot that cannot be decoded: one line saying why."""


@dataclasses.dataclass(slots=True)
class Snapshot:
    """A replica at stream entry ``entry``: everything applied up to it, nothing after."""

    entry: str
    state: dict[str, Any]  # the encoded core and replica (see ``capture``)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_value(cls: type) -> bool:
    """Frozen dataclasses: immutable values, built through their constructor."""
    params = getattr(cls, "__dataclass_params__", None)
    return params is not None and params.frozen


def _fields_of_class(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    names: list[str] = []
    for klass in cls.__mro__:
        names += [n for n in getattr(klass, "__slots__", ()) if n not in names]
    return names


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """How one listed class is written (worked out once, not per object)."""

    name: str
    fields: tuple[str, ...]  # a value's init fields only: __init__ derives the others
    local: dict[str, Any]  # _NODE_FIELDS
    value: bool


def _plan(cls: type) -> _Plan:
    value = _is_value(cls)
    if value:
        fields = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    else:
        fields = tuple(_fields_of_class(cls))
    return _Plan(_name(cls), fields, _NODE_FIELDS.get(cls, {}), value)


_PLANS: dict[type, _Plan] = {cls: _plan(cls) for cls in _CLASSES.values()}
_KNOWN = {cls: frozenset(_fields_of_class(cls)) for cls in _CLASSES.values()}
_PLAIN = frozenset({str, int, bool, type(None)})
_MISSING = object()


class _Encoder:
    def __init__(self, config: ServerConfig | None) -> None:
        self.config = config
        self.index: dict[int, int] = {}  # id(obj) -> its row in the table
        self.table: list[Any] = []
        self.queue: collections.deque[Any] = collections.deque()
        self.keep: list[Any] = []  # the objects indexed (their ids stay theirs)
        self.refs: list[dict[str, int]] = []  # row -> its one {"r": row}, however often cited

    def ref(self, obj: Any) -> dict[str, int]:
        row = self.index.get(id(obj))
        if row is None:
            row = self.index[id(obj)] = len(self.table)
            self.table.append(None)
            self.keep.append(obj)
            self.queue.append(obj)
            self.refs.append({"r": row})
        return self.refs[row]

    def run(self) -> None:
        while self.queue:
            obj = self.queue.popleft()
            self.table[self.index[id(obj)]] = self.body(obj)

    def body(self, obj: Any) -> Any:
        """A mutable object's own row."""
        value = self.value
        if isinstance(obj, collections.Counter):
            return {"C": [[value(k), value(v)] for k, v in obj.items()]}
        if isinstance(obj, dict):
            return {"d": [[value(k), value(v)] for k, v in obj.items()]}
        if isinstance(obj, list):
            return {"l": [value(item) for item in obj]}
        if isinstance(obj, set):
            return {"s": self.members(obj)}
        if isinstance(obj, collections.deque):
            return {"q": [value(item) for item in obj], "m": obj.maxlen}
        plan = _PLANS[type(obj)]
        return {"o": plan.name, "f": self.object_fields(obj, plan)}

    def object_fields(self, obj: Any, plan: _Plan) -> dict[str, Any]:
        local, value, plain = plan.local, self.value, _PLAIN
        out = {}
        for field in plan.fields:
            if field in local:
                out[field] = value(local[field])
            else:
                current = getattr(obj, field, _MISSING)
                if type(current) in plain:  # most fields: value() inlined (the walk's hot loop)
                    out[field] = current
                elif current is not _MISSING:
                    out[field] = value(current)
        return out

    def members(self, items: Iterable[Any]) -> list[Any]:
        encoded = [self.value(item) for item in items]
        # canonical: one order whatever the set's history (its elements are values)
        if all(type(item) is str for item in encoded):
            return sorted(encoded)
        return sorted(encoded, key=lambda item: json.dumps(item, sort_keys=True))

    def value(self, obj: Any) -> Any:
        cls = type(obj)
        if cls in _PLAIN:
            return obj
        if cls is float:
            return {"F": repr(obj)} if obj != obj or obj in (_INF, -_INF) else obj
        if cls is tuple:
            return {"t": [self.value(item) for item in obj]}
        if cls is frozenset:
            return {"fs": self.members(obj)}
        if cls in (dict, list, set, collections.deque, collections.Counter):
            return self.ref(obj)
        if cls is ServerConfig:
            if obj is not self.config and self.config is not None:
                raise Unencodable("a config that is not the core's")
            return {"cfg": 1}
        plan = _PLANS.get(cls)
        if plan is None:
            raise Unencodable(f"a {cls.__module__}.{cls.__qualname__} in the state")
        if plan.value:
            return {"v": plan.name, "f": self.object_fields(obj, plan)}
        return self.ref(obj)


_INF = float("inf")


class _Decoder:
    def __init__(self, table: list[Any], config: ServerConfig) -> None:
        self.config = config
        self.rows = table
        self.objects: list[Any] = [self.shell(row) for row in table]

    @staticmethod
    def shell(row: Any) -> Any:
        if not isinstance(row, dict):
            raise SnapshotError("a table row is not an object")
        if "C" in row:
            return collections.Counter()
        if "d" in row:
            return {}
        if "l" in row:
            return []
        if "s" in row:
            return set()
        if "q" in row:
            maxlen = row.get("m")
            if maxlen is not None and not isinstance(maxlen, int):
                raise SnapshotError("a bad deque length")
            return collections.deque(maxlen=maxlen)
        cls = _class(row.get("o"))
        if _is_value(cls):
            raise SnapshotError(f"{row.get('o')} is a value, not a shared object")
        return object.__new__(cls)

    def fill(self) -> None:
        for obj, row in zip(self.objects, self.rows, strict=True):
            if isinstance(obj, dict):  # Counter included
                for key, value in _pairs(row.get("C", row.get("d"))):
                    obj[self.value(key)] = self.value(value)
            elif isinstance(obj, list):
                obj.extend(self.value(item) for item in _list(row["l"]))
            elif isinstance(obj, set):
                obj.update(self.value(item) for item in _list(row["s"]))
            elif isinstance(obj, collections.deque):
                obj.extend(self.value(item) for item in _list(row["q"]))
            else:
                for field, value in self.fields(type(obj), row.get("f")).items():
                    object.__setattr__(obj, field, value)

    def fields(self, cls: type, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise SnapshotError("an object without fields")
        unknown = data.keys() - _KNOWN[cls]
        if unknown:
            raise SnapshotError(f"{cls.__qualname__} has no field {sorted(unknown)[0]!r}")
        return {name: self.value(value) for name, value in data.items()}

    def value(self, data: Any) -> Any:
        if data is None or isinstance(data, bool | int | float | str):
            return data
        if not isinstance(data, dict):
            raise SnapshotError("not an encoded value")
        if "r" in data:
            row = data["r"]
            if not isinstance(row, int) or not 0 <= row < len(self.objects):
                raise SnapshotError("a reference out of the table")
            return self.objects[row]
        if "t" in data:
            return tuple(self.value(item) for item in _list(data["t"]))
        if "fs" in data:
            return frozenset(self.value(item) for item in _list(data["fs"]))
        if "F" in data:
            if data["F"] not in ("inf", "-inf", "nan"):
                raise SnapshotError("a bad float")
            return float(data["F"])
        if "cfg" in data:
            return self.config
        if "v" in data:
            cls = _class(data["v"])
            if not _is_value(cls):
                raise SnapshotError(f"{data['v']} is not a value")
            init = {f.name for f in dataclasses.fields(cls) if f.init}
            fields = self.fields(cls, data.get("f"))
            return cls(**{k: v for k, v in fields.items() if k in init})
        raise SnapshotError("an unknown tag")


def _class(name: Any) -> type:
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise SnapshotError(f"a type that snapshots do not carry: {str(name)[:80]}")
    return cls


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise SnapshotError("a list was expected")
    return data


def _pairs(data: Any) -> list[Any]:
    pairs = _list(data)
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
        raise SnapshotError("a mapping entry is not a pair")
    return pairs


# ---- the replica's state ---------------------------------------------------------------------


def capture(core: ServerCore, extra: dict[str, Any]) -> dict[str, Any]:
    """The core's replicated state and ``extra`` (the replica's and node's own: its clock,
    the batches applied per origin...), encoded. Unencodable when the state holds something a
    snapshot cannot carry (a held reply, a continuation): the caller tries again later."""
    encoder = _Encoder(core.config)
    with _collector_paused():
        fields = {
            name: encoder.value(value)
            for name, value in sorted(vars(core).items())
            if name not in _LOCAL
        }
        extras = {name: encoder.value(value) for name, value in sorted(extra.items())}
        encoder.run()
    return {"schema": schema(core), "core": fields, "extra": extras, "table": encoder.table}


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cycle collector off while the encoder walks: it allocates a few small containers
    per object of the state, which set off collections that each walk the whole, large, heap
    (half of the walk's time at 10,000 users; BENCHMARKS.md, "Snapshot pause"). What it
    builds holds no cycles, so nothing is left for the collector to find afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def canonical(core: ServerCore, extra: dict[str, Any]) -> str:
    """``capture`` as one string: equal for replicas in the same state (the tests' check)."""
    return json.dumps(capture(core, extra), sort_keys=True)


def restore(core: ServerCore, data: dict[str, Any], is_local: Callable[[int], bool]) -> Any:
    """Put a captured state into ``core`` (a fresh one, with this node's config); returns the
    decoded ``extra``. SnapshotError says what is wrong with a bad one."""
    try:
        return _restore(core, data, is_local)
    except SnapshotError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # well-formed JSON that does not fit the classes (a hand-made or damaged snapshot)
        raise SnapshotError(f"a malformed state ({type(exc).__name__}: {exc})") from None


def _restore(core: ServerCore, data: dict[str, Any], is_local: Callable[[int], bool]) -> Any:
    if not isinstance(data, dict) or not {"core", "extra", "table"} <= set(data):
        raise SnapshotError("not a snapshot")
    if data.get("schema") != schema(core):
        raise SnapshotError(
            "written by a version of securechat whose state differs from this one's "
            "(run one version in a cluster, or restart the whole cluster to start afresh)"
        )
    decoder = _Decoder(_list(data["table"]), core.config)
    decoder.fill()
    fields = data["core"]
    if not isinstance(fields, dict):
        raise SnapshotError("not a snapshot")
    expected = set(vars(core)) - _LOCAL
    if set(fields) != expected:
        differ = sorted(set(fields) ^ expected)[0]
        raise SnapshotError(f"the snapshot's core differs from this version's ({differ!r})")
    for name, value in fields.items():
        setattr(core, name, decoder.value(value))
    extra = data["extra"]
    if not isinstance(extra, dict):
        raise SnapshotError("not a snapshot")
    # this node's own view of the loaded state (module doc)
    config = core.config
    core.addresses.reconfigure(config)
    core.accounts.configure(config)
    for session in core.sessions.values():
        if session.conn >= 0:
            session.remote = not is_local(session.conn)
    return {name: decoder.value(value) for name, value in extra.items()}


def take(replica: Replica, applied: dict[str, int], entry: str) -> Snapshot | None:
    """The replica right after stream entry ``entry``; None when work is in flight (the caller
    tries at a later entry). Unencodable: the state holds a type not listed here (a bug to
    fix: the snapshots wait, and the stream grows, until it is gone)."""
    if not replica.quiescent():
        return None
    data = capture(replica.core, {"replica": replica.own_state(), "applied": applied})
    return Snapshot(entry, data)


def load(replica: Replica, snapshot: Snapshot) -> dict[str, int]:
    """Put ``snapshot`` into the replica (its core fresh); returns the batches applied per
    origin (the node's duplicate filter). SnapshotError says what is wrong."""
    extra = restore(replica.core, snapshot.state, replica.is_local)
    try:
        replica.load_own_state(extra["replica"])
        applied = {str(origin): int(number) for origin, number in extra["applied"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotError(f"a malformed replica state ({type(exc).__name__}: {exc})") from None
    return applied


# ---- bytes -----------------------------------------------------------------------------------


TABLE_CHUNK = 500  # table rows per json.dumps call in to_bytes


def to_bytes(snapshot: Snapshot) -> bytes:
    """The snapshot as compressed JSON. Run in a thread: the table (nearly all of it) is
    encoded ``TABLE_CHUNK`` rows per ``json.dumps`` call, because one call holds the GIL from
    start to end (the C encoder never lets it go), which would stop the event loop for the
    whole encoding; between calls the loop gets its turn. The text is the one ``json.dumps``
    of the whole document would give."""
    state = snapshot.state
    head = {name: value for name, value in state.items() if name != "table"}
    document = {"format": FORMAT, "entry": snapshot.entry, "state": {**head, "table": []}}
    text = _dumps(document)
    opening, closing = text[: -len("[]}}")], "]}}"
    table = state["table"]
    chunks = (_dumps(table[i : i + TABLE_CHUNK])[1:-1] for i in range(0, len(table), TABLE_CHUNK))
    joined = opening + "[" + ",".join(chunks) + closing
    return zlib.compress(joined.encode(), 1)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def schema(core: ServerCore) -> str:
    """The shape of the state this version writes: its classes and their fields. A snapshot
    of another shape (written by another version) is refused rather than half loaded."""
    return _schema_of(frozenset(vars(core)) - _LOCAL)


@functools.cache
def _schema_of(core_fields: frozenset[str]) -> str:
    # cached: a forked child (snapshot_child.py) must find it here, not call into OpenSSL
    shape = sorted(core_fields)
    for name, cls in sorted(_CLASSES.items()):
        shape.append(f"{name}({','.join(sorted(_fields_of_class(cls)))})")
    return hashlib.sha256("\n".join(shape).encode()).hexdigest()[:16]


def from_bytes(data: bytes, limit: int = MAX_BYTES) -> Snapshot:
    """SnapshotError (one line) for anything but a snapshot this version writes, or one
    larger than ``limit`` bytes decompressed (a bomb is not inflated whole)."""
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(data, limit)
        if inflater.unconsumed_tail:
            raise SnapshotError(f"larger than {limit} bytes decompressed")
        document = json.loads(text)
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"not a snapshot ({type(exc).__name__}: {exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError(f"not a snapshot of format {FORMAT}")
    entry = document.get("entry")
    if not isinstance(entry, str) or not is_entry_id(entry):
        raise SnapshotError("no stream entry id")
    state_ = document.get("state")
    if not isinstance(state_, dict):
        raise SnapshotError("no state")
    return Snapshot(entry, state_)


def is_entry_id(text: str) -> bool:
    ms, dash, seq = text.partition("-")
    return bool(dash) and ms.isdigit() and seq.isdigit()
