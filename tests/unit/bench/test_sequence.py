from __future__ import annotations

from securechat.bench.sequence import Receiver, Stream, Tally


def feed(stream: Stream, seqs: list[int]) -> list[bool]:
    return [stream.record(seq) for seq in seqs]


def test_in_order_delivery_is_clean() -> None:
    stream = Stream(expected=4)
    assert feed(stream, [0, 1, 2, 3]) == [True] * 4
    assert (stream.unique, stream.lost, stream.duplicates, stream.reordered, stream.gaps) == (
        4,
        0,
        0,
        0,
        0,
    )


def test_a_skipped_sequence_is_a_gap_and_lost_until_it_arrives() -> None:
    stream = Stream(expected=5)
    feed(stream, [0, 1, 4])
    assert stream.gaps == 1
    assert stream.lost == 2
    assert stream.record(2)
    assert (stream.lost, stream.reordered) == (1, 1)


def test_a_repeated_sequence_is_a_duplicate_not_a_delivery() -> None:
    stream = Stream(expected=3)
    assert feed(stream, [0, 1, 1, 0, 2]) == [True, True, False, False, True]
    assert (stream.unique, stream.duplicates, stream.lost) == (3, 2, 0)


def test_a_late_arrival_seen_twice_counts_once_then_as_duplicate() -> None:
    stream = Stream(expected=3)
    feed(stream, [0, 2, 1, 1])
    assert (stream.unique, stream.reordered, stream.duplicates) == (3, 1, 1)


def test_missing_tail_is_lost() -> None:
    stream = Stream(expected=10)
    feed(stream, [0, 1, 2])
    assert stream.lost == 7 and stream.gaps == 0


def test_out_of_range_sequences_are_invalid() -> None:
    stream = Stream(expected=2)
    assert feed(stream, [-1, 2, 0]) == [False, False, True]
    assert (stream.invalid, stream.unique) == (2, 1)


def test_receiver_counts_unknown_senders_and_tallies_streams() -> None:
    receiver = Receiver.expecting([1, 2], messages=2)
    receiver.record(1, 0)
    receiver.record(1, 1)
    receiver.record(2, 1)
    receiver.record(9, 0)
    tally = receiver.tally()
    assert (tally.expected, tally.unique, tally.lost, tally.gaps, tally.invalid) == (4, 3, 1, 1, 1)


def test_tallies_merge() -> None:
    total = Tally(expected=4, unique=4)
    total.merge(Tally(expected=6, unique=5, duplicates=1, reordered=2, gaps=1))
    assert (total.expected, total.unique, total.lost, total.duplicates, total.reordered) == (
        10,
        9,
        1,
        1,
        2,
    )
