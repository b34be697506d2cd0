"""Lines typed into the plain (piped) client reach the room once each, whole, in order."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import ssl
from pathlib import Path

import trustme

from securechat.client import plain
from securechat.client.net import Backoff
from tests.integration.client_support import TIMEOUT, Watcher, make_client
from tests.integration.test_client_trust import listening
from tests.support import IrcClient, ServerThread

WORDS = "héllo wörld 𝄞 naïve café " * 250  # about 6,000 characters, many of them multi-byte


def said(bob: IrcClient, count: int) -> list[str]:
    return [bob.expect(r"PRIVMSG #a :").params[-1] for _ in range(count)]


def said_until(bob: IrcClient, last: str) -> list[str]:
    texts: list[str] = []
    while not texts or texts[-1] != last:
        texts.append(bob.expect(r"PRIVMSG #a :").params[-1])
    return texts


def test_piped_lines_and_a_long_multibyte_line_arrive_whole_once_each_in_order(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """A 5,000-character line used to arrive as one 480-character message, the rest dropped."""
    read_end, write_end = os.pipe()
    stdin = os.fdopen(read_end, encoding="utf-8")
    feed = os.fdopen(write_end, "w", encoding="utf-8")
    stdout = io.StringIO()

    async def scenario() -> int:
        client = make_client(server.port, tmp_path, ca=ca_file)
        run = asyncio.create_task(plain.run(client, stdin, stdout))
        await asyncio.sleep(0)  # one turn of the loop: plain.run installs its output hook
        printer = client.on_change
        watch = Watcher(client)
        woken = client.on_change
        client.on_change = lambda: (printer(), woken())  # type: ignore[func-returns-value]
        feed.write("/join #a\n")
        feed.flush()
        await watch.until(lambda: (r := client.session.buffer("#a")) is not None and r.joined)
        room = client.session.buffer("#a")
        assert room is not None
        bob = await asyncio.to_thread(
            lambda: (
                IrcClient.connect(server.host, server.port, client_context)
                .register("bob")
                .join("#a")
            )
        )
        await watch.until(lambda: "bob" in room.members)
        feed.write(f"first\n{WORDS.strip()}\nsecond\nthird\n")
        feed.close()
        texts = await asyncio.to_thread(said_until, bob, "third")
        bob.close()
        code = await asyncio.wait_for(run, TIMEOUT)
        assert texts[0] == "first" and texts[-2:] == ["second", "third"]
        pieces = texts[1:-2]
        assert len(pieces) > 10
        assert " ".join(pieces) == WORDS.strip()
        return code

    assert asyncio.run(scenario()) == 0
    stdin.close()


def test_reconnect_connects_again_at_once_skipping_the_backoff(
    server: ServerThread, ca_file: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        client = make_client(server.port, tmp_path, ca=ca_file, rooms=("#a",))
        client.backoff = Backoff(base=600, cap=600)  # a backoff this test could never wait out
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        room = client.session.buffer("#a")
        assert room is not None
        await watch.until(lambda: room.joined)
        client.submit("/reconnect")
        await watch.until(lambda: not room.joined)
        await watch.until(lambda: room.joined)
        connected = [line.text for line in client.session.server.lines if "Connected" in line.text]
        assert len(connected) == 2
        assert any(
            "Reconnecting to" in line.text and "in 0.0s" in line.text
            for line in client.session.server.lines
        )
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())


def test_an_overlong_line_from_the_server_is_reported_not_dropped_silently(
    tls_ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    overlong = b":srv NOTICE * :" + b"x" * 20000 + b"\r\n"

    async def scenario() -> None:
        async with listening(tls_ca.issue_cert("127.0.0.1"), greeting=overlong) as listener:
            client = make_client(listener.port, tmp_path, ca=ca_file)
            watch = Watcher(client)
            runner = asyncio.create_task(client.run())
            said = "A line from the server was too long and was dropped."
            await watch.until(
                lambda: any(line.text == said for line in client.session.server.lines)
            )
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    asyncio.run(scenario())
