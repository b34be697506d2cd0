from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from securechat.bench.community_plan import (
    JOIN,
    PART,
    SAY,
    CommunityPlan,
    message_id,
    room_members,
    rooms_of,
    schedule,
    sender_of,
    zipf_sizes,
)


def test_zipf_sizes_fall_as_one_over_rank_and_add_up_to_the_memberships() -> None:
    sizes = zipf_sizes(rooms=100, memberships=5000, exponent=1.0, cap=10_000)
    assert sizes == sorted(sizes, reverse=True)
    assert abs(sizes[0] / sizes[9] - 10) < 0.1  # rank 1 vs rank 10: ten times larger
    assert abs(sum(sizes) - 5000) <= 100  # rounding only


def test_zipf_sizes_are_clamped_between_two_and_the_cap() -> None:
    sizes = zipf_sizes(rooms=500, memberships=3_000, exponent=1.0, cap=100)
    assert max(sizes) == 100 and min(sizes) == 2
    assert sizes.count(100) >= 2  # the head is cut, not the tail


def test_default_community_has_a_few_big_rooms_and_mostly_small_ones() -> None:
    members = room_members(CommunityPlan())
    sizes = sorted((len(room) for room in members), reverse=True)
    assert len(sizes) == 500
    assert sum(size >= 100 for size in sizes) < 30
    assert sizes[len(sizes) // 2] <= 15


def test_every_client_is_in_a_room_and_never_twice_in_the_same_one() -> None:
    plan = CommunityPlan(clients=300, rooms=40)
    members = room_members(plan)
    for room in members:
        assert len(room) == len(set(room)) >= 2
    per_client = rooms_of(members, plan.clients)
    assert all(per_client)
    assert sum(map(len, per_client)) == sum(map(len, members))


def test_rooms_and_schedules_are_the_same_in_every_process() -> None:
    plan = CommunityPlan(clients=300, rooms=40, seed=7)
    assert room_members(plan) == room_members(CommunityPlan(clients=300, rooms=40, seed=7))
    assert schedule(plan, 5, [1, 2]) == schedule(plan, 5, [1, 2])
    assert schedule(plan, 5, [1, 2]) != schedule(plan, 6, [1, 2])


def test_lines_come_every_say_min_to_say_max_seconds_within_the_duration() -> None:
    plan = CommunityPlan(duration_s=600, say_min_s=10, say_max_s=60)
    for client in range(50):
        says = [e.at_s for e in schedule(plan, client, [0]) if e.kind == SAY]
        assert all(0 <= at < 600 for at in says)
        gaps = [b - a for a, b in pairwise(says)]
        assert all(10 <= gap <= 60 for gap in gaps)
        assert all(0 <= e.pick < 1 for e in schedule(plan, client, [0]) if e.kind == SAY)


def test_poisson_events_average_their_hourly_rate() -> None:
    plan = CommunityPlan(duration_s=3600, nick_per_h=4, away_per_h=0, part_per_h=0)
    nicks = sum(e.kind == "nick" for client in range(500) for e in schedule(plan, client, [0]))
    assert 1600 <= nicks <= 2400  # 500 clients x 4 per hour, well within sampling noise


def test_a_part_is_of_one_of_the_clients_rooms_and_its_rejoin_comes_later() -> None:
    plan = CommunityPlan(duration_s=3600, part_per_h=10, rejoin_min_s=5, rejoin_max_s=30)
    events = schedule(plan, 3, [4, 9])
    parts = [e for e in events if e.kind == PART]
    joins = [e for e in events if e.kind == JOIN]
    assert parts and all(e.room in (4, 9) for e in parts)
    assert Counter(e.room for e in joins) <= Counter(e.room for e in parts)
    assert [e.at_s for e in events] == sorted(e.at_s for e in events)


def test_message_ids_carry_their_sender() -> None:
    assert sender_of(message_id(4321, 77)) == 4321
    assert message_id(1, 0) != message_id(0, 1)


@pytest.mark.parametrize(
    "changes",
    [
        {"clients": 1},
        {"say_min_s": 5, "say_max_s": 1},
        {"grace_s": 3, "quiet_s": 3},
        {"max_pending": 0},
        {"max_room": 1},
    ],
)
def test_impossible_plans_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="community needs"):
        CommunityPlan(**changes)  # type: ignore[arg-type]
