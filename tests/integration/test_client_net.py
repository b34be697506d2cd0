"""The client's connection against the real server over TLS on loopback."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from securechat.client.buffers import Kind
from securechat.client.trust import ConnectError
from tests.integration.client_support import TIMEOUT, Watcher, make_client, texts
from tests.support import IrcClient, ServerThread


def peer(server: ServerThread, context: ssl.SSLContext, nick: str) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register(nick)


def test_client_registers_negotiates_caps_and_joins_its_rooms(
    server: ServerThread, ca_file: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        client = make_client(server.port, tmp_path, ca=ca_file, rooms=("lobby",))
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        room = client.session.buffer("#lobby")
        await watch.until(lambda: room is not None and room.joined)
        assert {"server-time", "echo-message", "message-tags"} <= client.session.caps
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())


def test_message_from_another_client_arrives_in_the_room_buffer(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    async def scenario() -> None:
        client = make_client(server.port, tmp_path, ca=ca_file, rooms=("#a",))
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        await watch.until(lambda: client.session.buffer("#a").joined)  # type: ignore[union-attr]
        bob = await asyncio.to_thread(peer, server, client_context, "bob")
        await asyncio.to_thread(bob.join, "#a")
        bob.send("PRIVMSG #a :hello alice")
        await watch.until(lambda: "<bob> hello alice" in texts(client, "#a"))
        assert "bob" in client.session.buffer("#a").members  # type: ignore[union-attr]
        bob.close()
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())


def test_typed_private_message_reaches_the_other_client_and_opens_a_buffer(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bob = await asyncio.to_thread(peer, server, client_context, "bob")
        client = make_client(server.port, tmp_path, ca=ca_file)
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        await watch.until(lambda: client.session.registered)
        client.submit("/msg bob are you there?")
        await asyncio.to_thread(bob.expect, r"PRIVMSG bob :are you there\?")
        private = client.session.buffer("bob")
        assert private is not None and private.kind is Kind.PRIVATE
        await watch.until(lambda: "<alice> are you there?" in texts(client, "bob"))
        bob.close()
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())


def test_taken_nick_falls_back_to_another(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    async def scenario() -> None:
        squatter = await asyncio.to_thread(peer, server, client_context, "alice")
        client = make_client(server.port, tmp_path, ca=ca_file)
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        await watch.until(lambda: client.session.registered)
        assert client.session.nick == "alice_"
        squatter.close()
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())


def test_quit_is_confirmed_by_the_server_and_ends_the_run(
    server: ServerThread, ca_file: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        client = make_client(server.port, tmp_path, ca=ca_file)
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        await watch.until(lambda: client.session.registered)
        await client.quit("see you")
        await asyncio.wait_for(runner, TIMEOUT)
        assert client.session.closed_by_server and not client.connected

    asyncio.run(scenario())


def test_server_restart_is_survived_with_reconnect_and_rejoin(
    make_server: Callable[..., ServerThread],
    ca_file: Path,
    client_context: ssl.SSLContext,
    tmp_path: Path,
) -> None:
    first = make_server()
    port = first.port

    async def scenario() -> None:
        client = make_client(port, tmp_path, ca=ca_file, rooms=("#a",))
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        room = client.session.buffer("#a")
        assert room is not None
        await watch.until(lambda: room.joined)
        # Shut the server down but leave its thread to the fixture, which stops it again.
        await asyncio.to_thread(first.call, first.server.shutdown(timeout=2.0))
        await watch.until(lambda: not room.joined)
        second = await asyncio.to_thread(make_server, port=port)
        await watch.until(lambda: room.joined and client.session.registered)
        bob = await asyncio.to_thread(peer, second, client_context, "bob")
        await asyncio.to_thread(bob.join, "#a")
        bob.send("PRIVMSG #a :welcome back")
        await watch.until(lambda: "<bob> welcome back" in texts(client, "#a"))
        bob.close()
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())


def test_first_connection_refused_is_one_clear_error(tmp_path: Path, ca_file: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port that is certainly closed: bound, not listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        client = make_client(port, tmp_path, ca=ca_file)
        with pytest.raises(
            ConnectError, match=r"cannot connect to 127.0.0.1:\d+: connection refused"
        ):
            asyncio.run(client.run())
