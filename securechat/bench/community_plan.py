"""The community scenario's plan: who is in which room, and what each person does when.

Pure and deterministic (a seeded ``random.Random``), so every worker process derives the same
rooms and each client's own schedule without being told, and tests can check the shapes.

- Room sizes follow a Zipf law: the room of rank ``k`` has about ``C / k**s`` members, with ``C``
  chosen so the memberships add up to ``clients * rooms_per_client``; a few rooms of hundreds,
  most of a handful. Sizes are clamped to ``[2, max_room]``.
- Members are drawn at random per room; a client the draw left out joins one random room, so
  everyone is somewhere.
- Each client says a line every ``say_min_s .. say_max_s`` seconds (uniform), into one of the
  rooms it is in at that moment, and at Poisson rates (per client per hour) changes nick,
  toggles away, parts a room (rejoining it ``rejoin_min_s .. rejoin_max_s`` later) and
  reconnects. Defaults are a busy but ordinary chat network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

SAY: Final = "say"
NICK: Final = "nick"
AWAY: Final = "away"
PART: Final = "part"
JOIN: Final = "join"
RECONNECT: Final = "reconnect"
HOUR_S: Final = 3600.0
MIN_ROOM: Final = 2  # a room of one has nobody to deliver to
SEQ_BITS: Final = 20  # a message id is (client << SEQ_BITS) | seq: a million lines per client


@dataclass(frozen=True)
class CommunityPlan:
    clients: int = 5000
    rooms: int = 500
    rooms_per_client: float = 3.0  # mean memberships per client
    zipf: float = 1.0  # exponent s of the room-size law
    max_room: int = 400
    duration_s: float = 60.0
    say_min_s: float = 10.0
    say_max_s: float = 60.0
    nick_per_h: float = 1.0
    away_per_h: float = 2.0
    part_per_h: float = 2.0
    reconnect_per_h: float = 1.0
    rejoin_min_s: float = 5.0
    rejoin_max_s: float = 60.0
    # A message sent within grace_s of a membership change may or may not reach that member
    # (the server orders the two, the bench cannot see how): such pairs are counted apart.
    grace_s: float = 1.0
    quiet_s: float = 3.0  # after the schedule: stop waiting once nothing arrived for this long
    seed: int = 1
    # TLS handshakes in flight at set-up, over all workers: ngircd's small listen backlog resets
    # connections beyond a few dozen at once (as in the connections scenario).
    max_pending: int = 64
    tag: str = "aa"

    def __post_init__(self) -> None:
        if self.clients < MIN_ROOM or self.rooms < 1 or self.duration_s <= 0:
            raise ValueError("community needs clients >= 2, rooms >= 1 and a positive duration")
        if self.rooms_per_client <= 0 or self.zipf < 0 or self.max_room < MIN_ROOM:
            raise ValueError("community needs rooms-per-client > 0, zipf >= 0, max-room >= 2")
        if not 0 < self.say_min_s <= self.say_max_s:
            raise ValueError("community needs 0 < say-min <= say-max")
        rates = (self.nick_per_h, self.away_per_h, self.part_per_h, self.reconnect_per_h)
        if min(rates) < 0 or not 0 <= self.rejoin_min_s <= self.rejoin_max_s:
            raise ValueError("community needs rates >= 0 and 0 <= rejoin-min <= rejoin-max")
        if self.max_pending < 1:
            raise ValueError("community needs max-pending >= 1")
        if self.grace_s < 0 or self.quiet_s <= self.grace_s:
            raise ValueError("community needs 0 <= grace < quiet")

    def room_name(self, room: int) -> bytes:
        return b"#c%d" % room


@dataclass(frozen=True)
class Event:
    """One thing a client does, ``at_s`` seconds after the start; ``room`` for part and join,
    ``pick`` in [0, 1) chooses among the rooms it is in when it speaks."""

    at_s: float
    kind: str
    room: int = -1
    pick: float = 0.0


def zipf_sizes(rooms: int, memberships: float, exponent: float, cap: int) -> list[int]:
    """Sizes of rooms ranked 1..rooms, about proportional to 1/rank**exponent, adding up to
    about ``memberships``, each within [MIN_ROOM, cap]; non-increasing."""
    weights = [1.0 / rank**exponent for rank in range(1, rooms + 1)]
    scale = memberships / sum(weights)
    return [max(MIN_ROOM, min(cap, round(scale * weight))) for weight in weights]


def room_members(plan: CommunityPlan) -> list[list[int]]:
    """Members of each room (client numbers, ascending); every client is in at least one."""
    rng = random.Random(plan.seed)
    cap = min(plan.max_room, plan.clients)
    sizes = zipf_sizes(plan.rooms, plan.clients * plan.rooms_per_client, plan.zipf, cap)
    members = [sorted(rng.sample(range(plan.clients), size)) for size in sizes]
    placed = {client for room in members for client in room}
    for client in range(plan.clients):
        if client not in placed:
            members[rng.randrange(plan.rooms)].append(client)
    return [sorted(room) for room in members]


def rooms_of(members: list[list[int]], clients: int) -> list[list[int]]:
    """The inverse of ``room_members``: the rooms each client starts in."""
    result: list[list[int]] = [[] for _ in range(clients)]
    for room, people in enumerate(members):
        for client in people:
            result[client].append(room)
    return result


def schedule(plan: CommunityPlan, client: int, rooms: list[int]) -> list[Event]:
    """Client ``client``'s events in time order, all within the run's duration."""
    rng = random.Random(f"{plan.seed}:{client}")
    events = _says(plan, rng)
    events += _poisson(plan, rng, NICK, plan.nick_per_h)
    events += _poisson(plan, rng, AWAY, plan.away_per_h)
    events += _poisson(plan, rng, RECONNECT, plan.reconnect_per_h)
    for part in _poisson(plan, rng, PART, plan.part_per_h):
        if not rooms:
            break
        room = rng.choice(rooms)
        events.append(Event(part.at_s, PART, room))
        back = part.at_s + rng.uniform(plan.rejoin_min_s, plan.rejoin_max_s)
        if back < plan.duration_s:
            events.append(Event(back, JOIN, room))
    events.sort(key=lambda event: event.at_s)
    return events


def _says(plan: CommunityPlan, rng: random.Random) -> list[Event]:
    """A line every say_min..say_max seconds; the first after a uniform part of one interval,
    so that the clients' lines are spread evenly from the start."""
    events: list[Event] = []
    at = rng.uniform(0.0, rng.uniform(plan.say_min_s, plan.say_max_s))
    while at < plan.duration_s:
        events.append(Event(at, SAY, pick=rng.random()))
        at += rng.uniform(plan.say_min_s, plan.say_max_s)
    return events


def _poisson(plan: CommunityPlan, rng: random.Random, kind: str, per_hour: float) -> list[Event]:
    events: list[Event] = []
    if per_hour <= 0:
        return events
    at = rng.expovariate(per_hour / HOUR_S)
    while at < plan.duration_s:
        events.append(Event(at, kind))
        at += rng.expovariate(per_hour / HOUR_S)
    return events


def message_id(client: int, seq: int) -> int:
    return (client << SEQ_BITS) | seq


def sender_of(message: int) -> int:
    return message >> SEQ_BITS
