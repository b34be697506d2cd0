from __future__ import annotations

from collections import Counter

import pytest

from securechat.bench.fanout_plan import FanoutPlan, ledger_layout, sender_slots


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


def test_delivery_ledger_has_one_contiguous_counter_per_sender_and_room_mate() -> None:
    plan = FanoutPlan(clients=7, rooms=2, senders=3, messages=1, window_by="delivery")
    layout = ledger_layout(plan)
    # room 0 = {0, 2, 4, 6} with senders 0 and 2; room 1 = {1, 3, 5} with sender 1
    assert len(layout) == 3 + 2 + 3 == len(set(layout.values()))
    assert all(sender != receiver for sender, receiver in layout)
    for sender, mates in ((0, [2, 4, 6]), (1, [3, 5]), (2, [0, 4, 6])):
        slots = sender_slots(layout, sender)
        assert sorted(layout[sender, mate] for mate in mates) == list(slots)


def test_a_delivery_window_narrower_than_a_write_is_refused() -> None:
    with pytest.raises(ValueError, match="window >= pipeline"):
        FanoutPlan(
            clients=4, rooms=1, senders=1, messages=1, pipeline=8, window=4, window_by="delivery"
        )
    with pytest.raises(ValueError, match="window-by"):
        FanoutPlan(clients=4, rooms=1, senders=1, messages=1, window_by="bytes")


def test_cluster_nodes_alternate_within_every_room_and_over_the_senders() -> None:
    plan = FanoutPlan(clients=500, rooms=10, senders=10, messages=1, nodes=2)
    per_room_node = Counter((plan.room_of(c), plan.node_of(c)) for c in range(plan.clients))
    assert set(per_room_node.values()) == {25}  # every room: 25 members on each node
    assert Counter(plan.node_of(s) for s in range(plan.senders)) == {0: 5, 1: 5}
    one_room = FanoutPlan(clients=50, rooms=1, senders=5, messages=1, nodes=2)
    assert [one_room.node_of(s) for s in range(5)] == [0, 1, 0, 1, 0]


def test_order_reference_is_the_first_member_that_sends_nothing() -> None:
    plan = FanoutPlan(clients=6, rooms=2, senders=3, messages=1)
    assert (plan.reference_of(0), plan.reference_of(1)) == (4, 3)  # rooms {0,2,4} and {1,3,5}
    every_member_sends = FanoutPlan(clients=4, rooms=2, senders=4, messages=1)
    assert every_member_sends.reference_of(0) is None
