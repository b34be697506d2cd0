"""The load generator's line handling (securechat.bench.ircconn): fan-out payloads are found
the same way whether a chunk holds only payload lines (one regex scan) or other lines too."""

from __future__ import annotations

import asyncio

from securechat.bench.ircconn import Fields, IrcConnection

RELAYED = b":f1!~f1@127.0.0.1 PRIVMSG #r0 :b %d %d %d\r\n"


class Sink:
    def __init__(self) -> None:
        self.found: list[Fields] = []
        self.calls = 0

    def payloads(self, conn: IrcConnection, found: list[Fields], arrival_ns: int) -> None:
        self.found.extend(found)
        self.calls += 1


def feed(*chunks: bytes) -> tuple[Sink, IrcConnection]:
    async def run() -> tuple[Sink, IrcConnection]:
        sink = Sink()
        conn = IrcConnection("me", sink)
        for chunk in chunks:
            conn.data_received(chunk)
        return sink, conn

    return asyncio.run(run())


def test_a_chunk_of_payload_lines_is_handed_over_in_one_call() -> None:
    sink, _ = feed(b"".join(RELAYED % (1, seq, 1000 + seq) for seq in range(5)))
    assert sink.calls == 1
    assert sink.found == [(b"1", b"%d" % seq, b"%d" % (1000 + seq)) for seq in range(5)]


def test_payloads_mixed_with_other_lines_are_all_found_and_the_rest_handled() -> None:
    chunk = RELAYED % (1, 0, 5) + b":srv PING :tok\r\n" + RELAYED % (1, 1, 6)
    sink, conn = feed(chunk)
    assert sink.found == [(b"1", b"0", b"5"), (b"1", b"1", b"6")]
    assert conn.transport is None  # the PING was answered into no transport: nothing broke


def test_a_line_split_across_chunks_is_joined_before_parsing() -> None:
    line = RELAYED % (2, 7, 99)
    sink, _ = feed(line[:10], line[10:25], line[25:] + RELAYED % (2, 8, 100))
    assert sink.found == [(b"2", b"7", b"99"), (b"2", b"8", b"100")]


def test_a_payload_with_too_few_fields_reaches_the_sink_as_malformed() -> None:
    sink, _ = feed(b":f1!~f1@h PRIVMSG #r0 :b 1 2\r\n")
    assert sink.found == [(b"1", b"2")]
