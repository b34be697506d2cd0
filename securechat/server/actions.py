"""What the sans-I/O core asks the network layer to do, and the client-mistake exception.

The leaf every handler needs: it imports no other server module, so commands, services and the
domain modules can use these types without importing ``ServerCore`` (DESIGN.md §2.2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from securechat.server.records import HistoryRecord
    from securechat.server.store import Store


@dataclass(slots=True, frozen=True)
class Send:
    targets: Sequence[int]
    data: bytes


@dataclass(slots=True, frozen=True)
class Close:
    conn: int
    reason: str


Outcome = Any  # a job's result, or the exception it raised
Continuation = Callable[[Outcome, float], None]


@dataclass(slots=True, frozen=True)
class StoreCall:
    """Run ``job`` on the store's thread; then ``then(result or exception, now)`` on the core.

    Later actions do not wait for it: use it for reads and account changes, whose
    replies come from the continuation.

    ``reader``: a history read for that client. It runs on the store's reader thread, beside
    the writer, and the client's later lines wait until ``then`` ran, so its replies keep the
    order of its commands and it has at most one history read in flight.
    """

    job: Callable[[Store], Any]
    then: Continuation | None = None
    reader: int | None = None
    # The client whose command this answers: its later lines wait until ``then`` ran (and
    # any store call or offload ``then`` started), so its replies keep its commands' order.
    client: int | None = None


@dataclass(slots=True, frozen=True)
class AppendHistory:
    """Make ``records`` durable. The actions after this one from the same line wait until
    the commit returned, so nothing is delivered that a crash could lose (DESIGN.md §6)."""

    records: Sequence[HistoryRecord]
    # Called with the exception when the commit failed (the actions after this one that came
    # from the same line are then not delivered), and with None after a commit succeeded
    # while ``history_health.failing``: the store came back.
    then: Continuation | None = None


@dataclass(slots=True, frozen=True)
class Offload:
    """Run a blocking, CPU-bound ``job`` (scrypt) off the event loop; then ``then``.
    ``lane`` names the thread pool (hashing.py: logins never wait behind REGISTER floods)."""

    job: Callable[[], Any]
    then: Continuation
    lane: str = "login"
    client: int | None = None  # as ``StoreCall.client``


@dataclass(slots=True, frozen=True)
class Reload:
    """Re-read the config file and the TLS certificate (SIGHUP or an operator's REHASH).
    The network layer does the reading and answers with ``ServerCore.reloaded``."""

    conn: int | None  # the operator who asked, if any


Action = Send | Close | StoreCall | AppendHistory | Offload | Reload


class IrcError(Exception):
    """A client mistake: the numeric and its parameters (after the client's nick) to reply."""

    def __init__(self, numeric: str, *params: str) -> None:
        super().__init__(numeric, *params)
        self.numeric = numeric
        self.params = params
