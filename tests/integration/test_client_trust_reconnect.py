"""A certificate that changes while the full-screen client reconnects: warn, keep the window."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import trustme

from securechat.client.trust import Endpoint
from securechat.client.tui import ChatApp
from tests.integration.client_support import make_client
from tests.integration.test_client_trust import fingerprint_of
from tests.integration.tui_support import SIZE, log_text, type_line, watch


def test_a_changed_pin_while_reconnecting_stops_reconnecting_and_keeps_the_window(
    tls_ca: trustme.CA, tmp_path: Path
) -> None:
    """The app used to exit and lose its scrollback."""
    old_cert, new_cert = tls_ca.issue_cert("127.0.0.1"), tls_ca.issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old_cert.configure_cert(context)

    async def drop_and_change(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)  # the client's registration: it is connected
        new_cert.configure_cert(context)  # the next handshake presents another certificate
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(drop_and_change, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        client = make_client(port, tmp_path)
        client.trust.known_hosts.set(Endpoint("127.0.0.1", port), fingerprint_of(old_cert))
        app = ChatApp(client)
        async with server, app.run_test(size=SIZE) as pilot:
            until = watch(client)
            await until(lambda: client.gave_up is not None)
            await pilot.pause()
            assert app.is_running
            warning = [line.text for line in client.session.shown.lines]
            assert any("HAS CHANGED" in text for text in warning)
            shown = log_text(app)
            assert "Not reconnecting. /quit to leave." in shown
            assert "Connected to 127.0.0.1" in shown  # the scrollback is still there
            await type_line(pilot, "/quit")
            await pilot.pause()
            assert not app.is_running  # /quit still ends it
        assert client.trust.known_hosts.get(Endpoint("127.0.0.1", port)) == fingerprint_of(old_cert)

    asyncio.run(scenario())
