"""Line mode for scripts and bots: commands from stdin, ``[HH:MM] #room <nick> text`` on stdout.

Rules:
- Input lines are the same as in the full-screen client (``/join #ops``, plain
  text to the current room). They wait until the server has registered us, so
  ``echo "/join #ops\\ndeploy done" | securechat connect --plain`` works.
- Every line added to any buffer is printed, prefixed by the buffer's name, and
  flushed at once so a reader on a pipe sees it immediately.
- End of input sends QUIT; the exit status is 0 once the server confirms it
  (by closing the link), 1 when it could not.
- stdin is read in a daemon thread: a blocking read must never keep the process
  alive after the conversation is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from typing import TextIO

from securechat.client.buffers import Buffer, Line, Style, printable
from securechat.client.decor import Decor, Decorator
from securechat.client.net import Client

TICK_SECONDS = 1.0
_PREFIXES = {Style.EVENT: "-!-", Style.INFO: "-!-", Style.ERROR: "-!-"}


def format_line(buffer: Buffer, line: Line, decor: Decor | None = None) -> str:
    """``[14:02] #ops <alice> deploy done`` (the time in the local zone).

    A replayed line says so: ``[09:15] #ops [history] <bob> morning``. A reply shows
    what it answers, ``<bob> [↪ alice: deploy done] great``; an edit ends in
    ``(edited)``; the lines of a multiline message follow the first, indented
    under its text, so one message stays one block.
    """
    stamp = line.time.astimezone().strftime("%H:%M")
    marker = "[history] " if line.history else ""
    head = f"[{stamp}] {printable(buffer.name)} {marker}"
    first, *rest = _body(line, decor).split("\n")
    indent = " " * (len(head) + len(_who(line)))
    return "\n".join([head + first, *(indent + more for more in rest)])


def _who(line: Line) -> str:
    """The part before the text: ``<alice> `` (continuation lines are indented past it)."""
    if line.style is Style.MESSAGE:
        return f"<{line.nick}> "
    if line.style is Style.ACTION:
        return f"* {line.nick} "
    if line.style is Style.NOTICE:
        return f"-{line.nick}- "
    return f"{_PREFIXES[line.style]} "


def _body(line: Line, decor: Decor | None = None) -> str:
    text = line.text
    if decor is not None and decor.quote:
        text = f"[↪ {decor.quote}] {text}"
    if decor is not None and decor.edited:
        text += " (edited)"
    return _who(line) + text


def _read_lines(stream: TextIO, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Lines of ``stream`` on a queue, then None at end of input."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        for text in stream:
            loop.call_soon_threadsafe(queue.put_nowait, text.rstrip("\r\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    return queue


async def _when_registered(client: Client, runner: asyncio.Task[None]) -> bool:
    """Wait for registration; False when the client stopped instead."""
    waiter = asyncio.ensure_future(client.registered.wait())
    await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    return client.registered.is_set()


async def _feed(
    client: Client, queue: asyncio.Queue[str | None], runner: asyncio.Task[None]
) -> None:
    while (text := await queue.get()) is not None:
        if not text.strip():
            continue
        if not await _when_registered(client, runner):
            return
        client.submit(text)
        if client.session.quitting:
            break
    await client.quit()


async def _tick(client: Client) -> None:
    """Once a second, as the full-screen client does: MARKREADs held back by their interval."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        client.tick()


async def run(client: Client, stdin: TextIO, stdout: TextIO) -> int:
    """Chat line by line until end of input; the exit status."""

    def flush() -> None:
        for buffer, line in client.session.drain():
            decor = Decorator(buffer, client.session.nick).decor(line)
            stdout.write(format_line(buffer, line, decor) + "\n")
        stdout.flush()

    client.on_change = flush
    loop = asyncio.get_running_loop()
    runner = asyncio.create_task(client.run())
    feeder = asyncio.create_task(_feed(client, _read_lines(stdin, loop), runner))
    ticker = asyncio.create_task(_tick(client))
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(client.quit()))
    try:
        await runner
    finally:
        feeder.cancel()
        ticker.cancel()
        flush()
    return 0 if client.session.quitting and client.session.closed_by_server else 1
