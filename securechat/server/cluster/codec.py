"""Events and store outcomes as bytes, both ways, with an explicit list of the types that may
cross the network: JSON, with a tag for each non-JSON value. Nothing is unpickled, and a type
not listed here cannot be decoded (a peer cannot make us build arbitrary objects).

An event is a JSON array ``[kind, now, ...]`` (kinds below); one stream entry carries a batch:
every event one node produced in one event-loop iteration (one XADD, one decode).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from securechat.server import records
from securechat.server.accounts import LoginOutcome

# Event kinds (the first element of each event)
CONNECT = "c"  # [c, now, conn, host, certfp]
LINE = "l"  # [l, now, conn, line (latin-1: any bytes, the core checks UTF-8)]
DISCONNECT = "d"  # [d, now, conn, reason]: the connection is gone
CLOSE = "x"  # [x, now, conn, reason]: the server closes it (timeouts, floods)
OUTCOME = "o"  # [o, now, token, encoded outcome]: the origin's store/worker result
COMMITTED = "a"  # [a, now, token, error text or None]: a history append's commit
TICK = "t"  # [t, now]: the network-wide timers (one node sends them)
HELLO = "h"  # [h, now, node number, name]: a node joined
NODE_LOST = "n"  # [n, now, node number, reason]: its sessions go, with that QUIT reason
RESTORE = "r"  # [r, now, rooms, presences]: the registered rooms and always-on users at start

# Values that may be outcomes: the store's records, the login outcome, and these errors.
_RECORDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        records.Account,
        records.RoomRecord,
        records.HistoryRecord,
        records.Redaction,
        records.Reaction,
        records.KLine,
        records.PresenceRecord,
        records.StoredPresences,
        LoginOutcome,
    )
}
_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        records.StoreError,
        records.AccountExists,
        records.RoomExists,
        records.UnknownAccount,
        records.CertfpInUse,
        ValueError,
        TimeoutError,
    )
}


def encode_batch(events: list[list[Any]]) -> bytes:
    return json.dumps(events, separators=(",", ":"), ensure_ascii=False).encode()


def decode_batch(data: bytes) -> list[list[Any]]:
    events = json.loads(data)
    if not isinstance(events, list):
        raise ValueError("a batch is a JSON array")
    return events


def line_text(raw: bytes) -> str:
    return raw.decode("latin-1")  # lossless for any bytes; JSON carries it as text


def line_bytes(text: str) -> bytes:
    return text.encode("latin-1")


def encode_value(value: Any) -> Any:
    """A JSON-able form of an outcome (see module doc)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [encode_value(item) for item in value]
    if isinstance(value, tuple):
        return {"t": [encode_value(item) for item in value]}
    if isinstance(value, dict):
        return {"d": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode()}
    if isinstance(value, BaseException):
        return _encode_error(value)
    name = type(value).__name__
    if _RECORDS.get(name) is type(value) and dataclasses.is_dataclass(value):
        fields = {f.name: encode_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"r": name, "f": fields}
    raise TypeError(f"cannot send a {name} between nodes")


def _encode_error(error: BaseException) -> dict[str, Any]:
    name = type(error).__name__
    if _ERRORS.get(name) is type(error):
        return {"e": name, "m": str(error)}
    # Anything else (a bug in a job) reaches the continuation as a store failure.
    return {"e": "StoreError", "m": f"{name}: {error}"}


def decode_value(data: Any) -> Any:
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode_value(item) for item in data]
    if not isinstance(data, dict):
        raise ValueError("not an encoded value")
    if "t" in data:
        return tuple(decode_value(item) for item in data["t"])
    if "d" in data:
        return {decode_value(k): decode_value(v) for k, v in data["d"]}
    if "b" in data:
        return base64.b64decode(data["b"])
    if "e" in data:
        return _ERRORS[data["e"]](data["m"])  # KeyError: not a type we send
    cls = _RECORDS[data["r"]]
    return cls(**{name: decode_value(value) for name, value in data["f"].items()})
