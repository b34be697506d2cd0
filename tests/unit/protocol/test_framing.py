"""Splitting a byte stream into bounded lines."""

from securechat.protocol.framing import MAX_LINE_BYTES, TOO_LONG, LineBuffer


def test_splits_on_lf_and_strips_cr() -> None:
    assert LineBuffer().feed(b"A\r\nB\nC") == [b"A", b"B"]


def test_keeps_a_partial_line_until_its_end_arrives() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"PRIV") == []
    assert buffer.feed(b"MSG a b\r\n") == [b"PRIVMSG a b"]


def test_many_lines_in_one_chunk_are_all_returned() -> None:
    data = b"".join(b"PRIVMSG #a :%d\r\n" % i for i in range(32))
    assert len(LineBuffer().feed(data)) == 32


def test_empty_lines_are_ignored() -> None:
    assert LineBuffer().feed(b"\r\n\n  \r\nPING x\r\n") == [b"PING x"]


def test_body_over_512_bytes_is_reported_too_long() -> None:
    assert LineBuffer().feed(b"PRIVMSG #a :" + b"x" * 600 + b"\r\n") == [TOO_LONG]


def test_body_of_exactly_512_bytes_passes() -> None:
    line = b"PRIVMSG #a :" + b"x" * (510 - 12)
    assert LineBuffer().feed(line + b"\r\n") == [line]


def test_tags_may_add_up_to_8191_bytes() -> None:
    line = b"@+a=" + b"x" * 8000 + b" PRIVMSG #a :hi"
    assert LineBuffer().feed(line + b"\r\n") == [line]


def test_tags_over_8191_bytes_are_too_long() -> None:
    line = b"@+a=" + b"x" * 8200 + b" PRIVMSG #a :hi"
    assert LineBuffer().feed(line + b"\r\n") == [TOO_LONG]


def test_endless_line_is_discarded_as_it_arrives_and_reported_once() -> None:
    buffer = LineBuffer()
    for _ in range(10):
        assert buffer.feed(b"x" * MAX_LINE_BYTES) == []
        assert len(buffer._partial) <= MAX_LINE_BYTES
    assert buffer.feed(b"tail\r\nPING ok\r\n") == [TOO_LONG, b"PING ok"]


def test_overlong_blank_line_is_too_long_whether_whole_or_chunked() -> None:
    line = b" " * (MAX_LINE_BYTES + 10)
    whole = LineBuffer().feed(line + b"\r\nPING ok\r\n")
    chunked = LineBuffer()
    parts = chunked.feed(line[:5000]) + chunked.feed(line[5000:] + b"\r\nPING ok\r\n")
    assert whole == parts == [TOO_LONG, b"PING ok"]


def test_overlong_run_of_carriage_returns_is_too_long_whether_whole_or_chunked() -> None:
    line = b"\r" * (MAX_LINE_BYTES + 10)
    whole = LineBuffer().feed(line + b"\r\nPING ok\r\n")
    chunked = LineBuffer()
    parts = chunked.feed(line[:5000]) + chunked.feed(line[5000:] + b"\r\nPING ok\r\n")
    assert whole == parts == [TOO_LONG, b"PING ok"]
