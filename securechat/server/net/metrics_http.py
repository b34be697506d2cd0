"""The opt-in metrics endpoint: ``GET /metrics`` over plain HTTP on 127.0.0.1 only.

Loopback only by design: the numbers reveal who is busy, and a scraper on the
same machine (or an SSH tunnel, or a reverse proxy with TLS) is the safe way to
reach them. Requests are bounded in size and time; anything but
``GET /metrics`` gets 404 or 405.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

LOOPBACK = "127.0.0.1"
MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT = 5.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def start_metrics_server(port: int, render: Callable[[], str]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            status, body = respond(request, render)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, body = "400 Bad Request", "bad request\n"
        except ConnectionError:
            writer.close()
            return
        payload = body.encode()
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, LOOPBACK, port, limit=MAX_REQUEST_BYTES)


def respond(request: bytes, render: Callable[[], str]) -> tuple[str, str]:
    method, _, rest = request.decode("latin-1").partition(" ")
    path = rest.partition(" ")[0]
    if method != "GET":
        return "405 Method Not Allowed", "only GET\n"
    if path.partition("?")[0] != "/metrics":
        return "404 Not Found", "try /metrics\n"
    return "200 OK", render()
