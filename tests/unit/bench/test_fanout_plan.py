from __future__ import annotations

import pytest

from securechat.bench.fanout_plan import FanoutPlan


def test_one_room_expects_each_message_by_every_other_member() -> None:
    plan = FanoutPlan(clients=50, rooms=1, senders=5, messages=2000)
    assert plan.expected_deliveries() == 5 * 2000 * 49
    assert plan.expected_senders(0) == [1, 2, 3, 4]
    assert plan.expected_senders(10) == [0, 1, 2, 3, 4]


def test_rooms_are_filled_round_robin_and_senders_spread_over_them() -> None:
    plan = FanoutPlan(clients=500, rooms=10, senders=10, messages=500)
    assert [plan.members(room) for room in range(10)] == [50] * 10
    assert plan.senders_in(3) == [3]
    assert plan.expected_senders(13) == [3] and plan.expected_senders(3) == []
    assert plan.expected_deliveries() == 10 * 500 * 49


def test_uneven_rooms_count_their_own_members() -> None:
    plan = FanoutPlan(clients=7, rooms=2, senders=3, messages=1)
    assert (plan.members(0), plan.members(1)) == (4, 3)
    assert (plan.senders_in(0), plan.senders_in(1)) == ([0, 2], [1])
    # room 0: two senders x 3 other members; room 1: one sender x 2 other members
    assert plan.expected_deliveries() == 2 * 3 + 1 * 2
    assert plan.expected_deliveries() == sum(len(plan.expected_senders(c)) for c in range(7))


@pytest.mark.parametrize(
    "changes",
    [{"clients": 1}, {"rooms": 3}, {"senders": 5}, {"pipeline": 0}, {"rate": 0.0}, {"window": -1}],
)
def test_impossible_plans_are_refused(changes: dict[str, object]) -> None:
    params: dict[str, object] = {"clients": 4, "rooms": 2, "senders": 2, "messages": 1}
    with pytest.raises(ValueError):
        FanoutPlan(**{**params, **changes})  # type: ignore[arg-type]
