"""Password hashing work, bounded: two lanes with a fixed number of jobs each.

scrypt costs ~50 ms of CPU and 16 MiB per call (passwords.py), so whoever can make the server
hash can make it busy. Rules kept here:

- Every hash or verification goes through ``offload`` and one of two lanes, each run by the
  network layer on its own small thread pool (``Offload.lane``): ``login`` for checking
  passwords (NickServ IDENTIFY/DROP/GHOST/REGAIN, SASL PLAIN) and ``bulk`` for the rest
  (REGISTER, OPER). A REGISTER flood fills the bulk lane and never delays a login.
- Each lane admits at most ``hash_queue_login`` / ``hash_queue_bulk`` jobs in flight (running
  plus waiting for a thread). When a lane is full the request is refused at once with "server
  busy, try again" instead of waiting in an unbounded queue: the queue, and the time a job
  can wait in it, are bounded.
- The count is kept here, in the core, so that it is exact without asking the pool: a slot is
  taken when the action is emitted and given back when its continuation runs, whatever it was
  (a result or an exception).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from securechat.logs import event
from securechat.server.actions import Offload

if TYPE_CHECKING:
    from securechat.server.actions import Continuation, Outcome
    from securechat.server.core import ServerCore

log = logging.getLogger("securechat.server")

LOGIN = "login"
BULK = "bulk"
LANES = (LOGIN, BULK)
LOG_EVERY = 1000
BUSY_TEXT = "The server is busy; try again in a moment"


class HashingLanes:
    """How many hashing jobs each lane has in flight."""

    __slots__ = ("in_flight", "refused")

    def __init__(self) -> None:
        self.in_flight: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()


def capacity(core: ServerCore, lane: str) -> int:
    config = core.config
    return config.hash_queue_login if lane == LOGIN else config.hash_queue_bulk


def offload(
    core: ServerCore,
    lane: str,
    job: Callable[[], Any],
    then: Continuation,
    client: int | None = None,
) -> bool:
    """Queue ``job`` on ``lane`` and return True, or return False (nothing queued) when full.
    ``client``: the connection whose later lines wait for ``then`` (``Offload.client``)."""
    lanes = core.accounts.hashing
    if lanes.in_flight[lane] >= capacity(core, lane):
        lanes.refused[lane] += 1
        if lanes.refused[lane] % LOG_EVERY == 1:  # one line per burst, not one per request
            event(log, "hashing_busy", lane=lane, refused=lanes.refused[lane])
        return False
    lanes.in_flight[lane] += 1

    def finished(outcome: Outcome, now: float) -> None:
        lanes.in_flight[lane] -= 1
        then(outcome, now)

    core.perform(Offload(job, finished, lane, client))
    return True
