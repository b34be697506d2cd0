"""The coordinator's order check: every member of a room must see its reference's sequence, less
its own messages; any other order (or a lost or doubled message) is a mismatch."""

from __future__ import annotations

from array import array
from typing import Any

from securechat.bench.fanout import ORDER_SHIFT, order_check, order_digest
from securechat.bench.fanout_plan import FanoutPlan

# One room, senders 0 and 1, members 0, 1, 2, 3; member 2 is the reference.
PLAN = FanoutPlan(clients=4, rooms=1, senders=2, messages=2)
ROOM_ORDER = [(0, 0), (1, 0), (1, 1), (0, 1)]


def packed(pairs: list[tuple[int, int]]) -> array[int]:
    return array("q", (sender << ORDER_SHIFT | seq for sender, seq in pairs))


def seen_by(member: int) -> list[tuple[int, int]]:
    return [(sender, seq) for sender, seq in ROOM_ORDER if sender != member]


def results(orders: dict[int, list[tuple[int, int]]]) -> list[dict[str, Any]]:
    """Two workers' results: clients 0 and 2 in one, 1 and 3 in the other."""
    return [
        {
            "order_digests": {c: order_digest(packed(orders[c])) for c in orders if c % 2 == w},
            "order_references": {2: packed(orders[2]).tobytes()} if w == 0 else {},
        }
        for w in (0, 1)
    ]


def test_one_order_everywhere_passes() -> None:
    orders = {member: seen_by(member) for member in range(4)}
    assert order_check(PLAN, results(orders)) == {"order_mismatches": 0, "order_checked_rooms": 1}


def test_a_member_that_saw_two_senders_interleaved_differently_is_a_mismatch() -> None:
    orders = {member: seen_by(member) for member in range(4)}
    orders[3] = [(0, 0), (0, 1), (1, 0), (1, 1)]  # each sender in order, the room not
    assert order_check(PLAN, results(orders))["order_mismatches"] == 1


def test_a_sender_that_missed_a_message_is_a_mismatch() -> None:
    orders = {member: seen_by(member) for member in range(4)}
    orders[0] = [(1, 0)]
    assert order_check(PLAN, results(orders))["order_mismatches"] == 1
