from __future__ import annotations

from securechat.bench.community_ledger import (
    NEVER,
    Accounting,
    Sent,
    Stay,
    account_member,
    room_logs,
)
from securechat.bench.community_plan import message_id

S = 1_000_000_000  # one second in ns
GRACE = S


def lines(*spec: tuple[int, int, int, float]) -> list[Sent]:
    """(sender, seq, room, seconds) -> Sent records."""
    return [Sent(message_id(sender, seq), room, int(at * S)) for sender, seq, room, at in spec]


def account(member: int, stays: list[Stay], got: list[int], sent: list[Sent]) -> Accounting:
    known = frozenset(line.message for line in sent)
    return account_member(member, stays, got, room_logs(sent), known, GRACE)


def stay(room: int, join_sent: float, joined: float, leave_sent: float, left: float) -> Stay:
    at = [int(t * S) if t != NEVER else NEVER for t in (join_sent, joined, leave_sent, left)]
    return Stay(room, *at)


SENT = lines((1, 0, 7, 10), (1, 1, 7, 20), (2, 0, 7, 30), (2, 1, 8, 30))


def test_every_line_of_the_stay_delivered_once_is_no_loss() -> None:
    got = [message_id(1, 0), message_id(1, 1), message_id(2, 0)]
    result = account(5, [stay(7, 0, 1, 100, 101)], got, SENT)
    assert (result.expected, result.delivered, result.lost) == (3, 3, 0)
    assert (result.duplicates, result.unexpected, result.in_flight) == (0, 0, 0)


def test_a_missing_line_is_lost_and_a_second_copy_is_a_duplicate() -> None:
    got = [message_id(1, 0), message_id(1, 0), message_id(2, 0)]
    result = account(5, [stay(7, 0, 1, 100, 101)], got, SENT)
    assert (result.lost, result.duplicates) == (1, 1)


def test_own_lines_are_never_expected() -> None:
    result = account(1, [stay(7, 0, 1, 100, 101)], [message_id(2, 0)], SENT)
    assert (result.expected, result.delivered, result.in_flight) == (1, 1, 0)


def test_lines_near_a_join_or_a_part_are_in_flight_either_way() -> None:
    # joined at 20.5 (echo), left: PART sent at 30.5, echo at 31
    member_stay = stay(7, 19.5, 20.5, 30.5, 31)
    without = account(5, [member_stay], [], SENT)
    assert (without.expected, without.in_flight, without.lost) == (0, 2, 0)
    with_both = account(5, [member_stay], [message_id(1, 1), message_id(2, 0)], SENT)
    assert (with_both.in_flight_delivered, with_both.unexpected) == (2, 0)


def test_a_line_to_a_room_the_member_was_not_in_is_unexpected() -> None:
    result = account(5, [stay(7, 0, 1, 100, 101)], [message_id(2, 1)], SENT)
    assert result.unexpected == 1 and result.lost == 3


def test_a_line_nobody_sent_is_unknown() -> None:
    result = account(5, [stay(7, 0, 1, 100, 101)], [message_id(9, 9)], SENT)
    assert result.unknown == 1


def test_a_join_never_echoed_expects_nothing_but_may_receive() -> None:
    result = account(5, [stay(7, 0, NEVER, 100, 101)], [message_id(1, 0)], SENT)
    assert (result.expected, result.in_flight, result.in_flight_delivered) == (0, 3, 1)


def test_two_stays_in_one_room_expect_the_lines_of_each() -> None:
    stays = [stay(7, 0, 1, 12, 12.5), stay(7, 25, 26, 100, 101)]
    got = [message_id(1, 0), message_id(2, 0)]
    result = account(5, stays, got, SENT)
    assert (result.expected, result.delivered, result.lost) == (2, 2, 0)
    assert result.in_flight == 0  # line (1, 1) at 20 s: between the stays, not near either


def test_accountings_add_up() -> None:
    total = Accounting()
    total.merge(Accounting(expected=3, delivered=2, duplicates=1))
    total.merge(Accounting(expected=1, delivered=1, unexpected=4))
    assert (total.expected, total.lost, total.duplicates, total.unexpected) == (4, 1, 1, 4)
