"""Our client's accounts and history against the real server (with a store) over TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from securechat import tls
from securechat.certs import DevCertResult, generate_dev_certs
from securechat.client.buffers import Buffer, Style
from securechat.client.net import Backoff, Client
from securechat.client.sasl import Credentials
from securechat.client.session import Session
from securechat.client.trust import Endpoint, KnownHosts, Trust
from securechat.server.config import ServerConfig
from tests.integration.client_support import TIMEOUT, Watcher, make_client
from tests.support import IrcClient, ServerThread

PASSWORD = "correct-horse"
MESSAGES = 60  # more than one page (50), so that /history has something to fetch


def with_password(client: Client) -> Client:
    client.session.credentials = Credentials(password=PASSWORD)
    return client


def lobby(client: Client) -> Buffer:
    buffer = client.session.buffer("#lobby")
    assert buffer is not None
    return buffer


def said(client: Client) -> list[str]:
    return [line.text for line in lobby(client).lines if line.style is Style.MESSAGE]


def settled(client: Client) -> bool:
    """Joined, and the history asked for on join has arrived."""
    room = lobby(client)
    return room.joined and not room.history.pending


def bob_says_a_lot(server: ServerThread, context: ssl.SSLContext) -> None:
    bob = IrcClient.connect(server.host, server.port, context).register("bob").join("#lobby")
    for number in range(MESSAGES):
        bob.send(f"PRIVMSG #lobby :msg {number}")
    bob.send("PING :done")
    bob.expect(r"PONG .*done")
    bob.close()


def test_register_then_reconnect_logs_in_with_sasl_and_history_is_not_repeated(
    make_server: Callable[..., ServerThread],
    ca_file: Path,
    client_context: ssl.SSLContext,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    first = make_server(data_dir=data, exempt=("127.0.0.0/8",))
    port = first.port

    async def scenario() -> None:
        client = with_password(make_client(port, tmp_path, ca=ca_file, rooms=("#lobby",)))
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        await watch.until(lambda: settled(client))
        # No account yet: SASL failed, and the client carried on without one.
        assert client.session.account is None
        client.submit(f"/register {PASSWORD}")
        await watch.until(lambda: client.session.account == "alice")
        await asyncio.to_thread(bob_says_a_lot, first, client_context)
        await watch.until(lambda: f"msg {MESSAGES - 1}" in said(client))

        await asyncio.to_thread(first.stop)
        await watch.until(lambda: not client.session.registered)
        await asyncio.to_thread(make_server, port=port, data_dir=data, exempt=("127.0.0.0/8",))
        await watch.until(lambda: client.session.registered and settled(client))
        assert client.session.account == "alice"  # logged in by SASL while registering
        assert said(client) == [f"msg {n}" for n in range(MESSAGES)]  # each exactly once
        assert not any(PASSWORD in line.text for b in client.session.ordered for line in b.lines)
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())


def test_a_new_session_logs_in_catches_up_and_pages_back(
    make_server: Callable[..., ServerThread],
    ca_file: Path,
    client_context: ssl.SSLContext,
    tmp_path: Path,
) -> None:
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    registrar = IrcClient.connect(server.host, server.port, client_context).register("alice")
    registrar.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    registrar.expect(r" 900 ")
    registrar.close()
    # Someone stays in #lobby: an unregistered room's history ends when it empties.
    keeper = IrcClient.connect(server.host, server.port, client_context).register("keeper")
    keeper.join("#lobby")
    bob_says_a_lot(server, client_context)

    async def scenario() -> None:
        client = with_password(make_client(server.port, tmp_path, ca=ca_file, rooms=("#lobby",)))
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        await watch.until(lambda: settled(client))
        assert client.session.account == "alice"
        history = [line for line in lobby(client).lines if line.style is Style.MESSAGE]
        assert [line.text for line in history] == [f"msg {n}" for n in range(10, MESSAGES)]
        assert all(line.history and line.msgid for line in history)
        assert lobby(client).unread == 0
        assert [line.time for line in history] == sorted(line.time for line in history)

        client.submit("/history")
        await watch.until(lambda: settled(client) and "msg 0" in said(client))
        assert said(client) == [f"msg {n}" for n in range(MESSAGES)]
        end = "No more history in #lobby."
        assert [line.text for line in lobby(client).lines].count(end) == 1
        client.submit("/history")
        assert [line.text for line in lobby(client).lines].count(end) == 1
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())
    keeper.close()


def test_a_wrong_configured_password_is_said_and_the_client_still_connects(
    make_server: Callable[..., ServerThread], ca_file: Path, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path)

    async def scenario() -> None:
        client = with_password(make_client(server.port, tmp_path, ca=ca_file))
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        await watch.until(lambda: client.session.registered)
        texts = [line.text for line in client.session.server.lines]
        assert any(t.startswith("Automatic login (SASL) failed") for t in texts)
        assert client.session.account is None
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())


# ---- EXTERNAL with a client certificate from the dev CA -------------------------------------


@pytest.fixture
def dev_certs(tmp_path: Path) -> DevCertResult:
    return generate_dev_certs(tmp_path / "certs", clients=["alice"])


@pytest.fixture
def external_server(dev_certs: DevCertResult, tmp_path: Path) -> Iterator[ServerThread]:
    config = ServerConfig(
        host="127.0.0.1", port=0, name="test.server", data_dir=tmp_path, client_ca=dev_certs.ca_cert
    )
    context = tls.server_context(dev_certs.server_cert, dev_certs.server_key, dev_certs.ca_cert)
    server = ServerThread(config, context).start()
    yield server
    server.stop()


def register_certificate(server: ServerThread, dev_certs: DevCertResult) -> None:
    (alice,) = dev_certs.clients
    context = tls.client_context(ca=dev_certs.ca_cert, cert=alice.cert, key=alice.key)
    first = IrcClient.connect(server.host, server.port, context).register("alice")
    first.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    first.expect(r" 900 ")
    first.send("PRIVMSG NickServ :CERT ADD")
    first.expect(r"NOTICE alice :Certificate \S+ added")
    first.close()


def test_a_client_certificate_logs_in_with_sasl_external(
    external_server: ServerThread, dev_certs: DevCertResult, tmp_path: Path
) -> None:
    register_certificate(external_server, dev_certs)
    (alice,) = dev_certs.clients
    trust = Trust(
        KnownHosts(tmp_path / "known_hosts"), ca=dev_certs.ca_cert, cert=alice.cert, key=alice.key
    )
    session = Session("alice", credentials=Credentials(certificate=True))
    endpoint = Endpoint("127.0.0.1", external_server.port)
    client = Client(session, endpoint, trust, backoff=Backoff(base=0.2, cap=1))

    async def scenario() -> None:
        watch = Watcher(client)
        runner = asyncio.create_task(client.run())
        await watch.until(lambda: session.registered)
        assert session.account == "alice"
        assert "Logging in with SASL EXTERNAL…" in [line.text for line in session.server.lines]
        await client.quit()
        await asyncio.wait_for(runner, TIMEOUT)

    asyncio.run(scenario())
