"""Accounts over real TLS: NickServ, SASL PLAIN and EXTERNAL, throttling, nick protection."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from securechat import tls
from securechat.certs import DevCertResult, generate_dev_certs
from securechat.protocol import numerics as n
from securechat.server.config import ServerConfig
from tests.support import DEFAULT_TIMEOUT, IrcClient, ServerThread

PASSWORD = "correct-horse"
Connect = Callable[..., IrcClient]


@pytest.fixture
def server(make_server: Callable[..., ServerThread], tmp_path: Path) -> ServerThread:
    """The `connect` fixture's server, with a database and a short nick grace period."""
    return make_server(data_dir=tmp_path, nick_grace_seconds=1)


def sasl_plain(client: IrcClient, nick: str, account: str, password: str) -> IrcClient:
    """Register with SASL PLAIN during CAP negotiation; the 90x reply is left unread."""
    client.send("CAP LS 302")
    client.send("CAP REQ :sasl")
    client.expect(r" CAP \S+ ACK ")
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    client.send("AUTHENTICATE PLAIN")
    client.expect(r"^AUTHENTICATE \+")
    payload = base64.b64encode(f"\0{account}\0{password}".encode()).decode()
    client.send(f"AUTHENTICATE {payload}")
    return client


def register_account(connect: Connect, nick: str) -> None:
    client = connect(nick)
    client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    client.expect(r" 900 ")
    client.send("QUIT")
    client.expect_closed()


def test_register_then_log_back_in_with_sasl_plain(connect: Connect) -> None:
    register_account(connect, "alice")
    alice = sasl_plain(connect(), "alice", "alice", PASSWORD)
    assert alice.expect(r" 900 ").params[2] == "alice"
    alice.expect(r" 903 ")
    alice.send("CAP END")
    alice.expect(r" 001 ")


def test_a_wrong_password_is_rejected_and_then_rate_limited(connect: Connect) -> None:
    register_account(connect, "alice")
    mallory = connect("mallory")
    for _ in range(3):
        mallory.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
        mallory.expect(r"NOTICE mallory :Invalid account name or password")
    mallory.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    mallory.expect(r"NOTICE mallory :Too many failed attempts; try again in 2 seconds")


def test_sasl_with_a_wrong_password_gets_904(connect: Connect) -> None:
    register_account(connect, "alice")
    client = sasl_plain(connect(), "alice", "alice", "not-the-password")
    client.expect(r" 904 ")


def test_a_registered_nick_is_renamed_after_the_grace_period(connect: Connect) -> None:
    register_account(connect, "alice")
    squatter = connect("alice")
    squatter.expect(r"NickServ!\S+ NOTICE alice :alice is a registered nickname")
    assert squatter.expect(r" NICK ").params == ("Guest00001",)


def test_lines_behind_a_retaken_registered_nick_never_go_out_under_it(connect: Connect) -> None:
    """Adversarial re-check: after the grace ran out, `NICK alice` and a PRIVMSG in one write
    used to reach the room as alice before the store lookup renamed the squatter."""
    register_account(connect, "alice")
    bystander = connect("bob").join("#room")
    squatter = connect("alice")
    squatter.join("#room")
    assert squatter.expect(r" NICK ").params == ("Guest00001",)
    squatter.send("NICK alice\r\nPRIVMSG #room :it is me, alice\r\nPRIVMSG #room :marker")
    squatter.expect(r" 433 \S+ alice ")
    said = bystander.expect(r"PRIVMSG #room :marker")
    assert said.source.startswith("Guest00001!")
    assert not [
        m for m in bystander.seen if m.command == "PRIVMSG" and m.source.startswith("alice!")
    ]


def test_whois_shows_the_account(connect: Connect) -> None:
    alice = connect("alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    bob = connect("bob")
    bob.send("WHOIS alice")
    assert bob.expect(r" 330 ").params[1:3] == ("alice", "alice")


# ---- EXTERNAL with a certificate from the dev CA ----------------------------------------------


@pytest.fixture
def dev_certs(tmp_path: Path) -> DevCertResult:
    return generate_dev_certs(tmp_path / "certs", clients=["alice"])


@pytest.fixture
def external_server(dev_certs: DevCertResult, tmp_path: Path) -> Iterator[ServerThread]:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        name="test.server",
        data_dir=tmp_path,
        client_ca=dev_certs.ca_cert,
    )
    context = tls.server_context(dev_certs.server_cert, dev_certs.server_key, dev_certs.ca_cert)
    server = ServerThread(config, context).start()
    yield server
    server.stop()


def client_with_certificate(dev_certs: DevCertResult) -> ssl.SSLContext:
    (alice,) = dev_certs.clients
    return tls.client_context(ca=dev_certs.ca_cert, cert=alice.cert, key=alice.key)


def test_sasl_external_logs_in_with_a_registered_client_certificate(
    external_server: ServerThread, dev_certs: DevCertResult
) -> None:
    context = client_with_certificate(dev_certs)
    first = IrcClient.connect(external_server.host, external_server.port, context)
    first.register("alice")
    first.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    first.expect(r" 900 ")
    first.send("PRIVMSG NickServ :CERT ADD")
    first.expect(rf"NOTICE alice :Certificate {dev_certs.clients[0].fingerprint_sha256} added")
    first.close()

    again = IrcClient.connect(external_server.host, external_server.port, context)
    again.send("CAP LS 302")
    assert "sasl=PLAIN,EXTERNAL" in again.expect(r" CAP \* LS ").params[-1].split()
    again.send("CAP REQ :sasl")
    again.send("NICK alice")
    again.send("USER alice 0 * :alice")
    again.send("AUTHENTICATE EXTERNAL")
    again.expect(r"^AUTHENTICATE \+")
    again.send("AUTHENTICATE +")
    assert again.expect(r" 900 ").params[2] == "alice"
    again.expect(r" 903 ")
    again.close()


def test_sasl_external_without_a_client_certificate_fails(
    external_server: ServerThread, dev_certs: DevCertResult
) -> None:
    context = tls.client_context(ca=dev_certs.ca_cert)
    client = IrcClient.connect(external_server.host, external_server.port, context)
    client.send("CAP REQ :sasl")
    client.send("AUTHENTICATE EXTERNAL")
    client.expect(r"^AUTHENTICATE \+")
    client.send("AUTHENTICATE +")
    client.expect(r" 904 .*no client certificate")
    client.close()


# ---- attackers cost only themselves: review H4, M1 (each with a bystander) ------------------


def connect_from(server: ServerThread, context: ssl.SSLContext, source: str) -> IrcClient:
    """A TLS client whose connection comes from ``source`` (another loopback address)."""
    raw = socket.socket(socket.AF_INET)
    raw.settimeout(DEFAULT_TIMEOUT)
    raw.bind((source, 0))
    raw.connect((server.host, server.port))
    return IrcClient(context.wrap_socket(raw, server_hostname="localhost"))


def assert_answered(bystander: IrcClient, token: str) -> None:
    """The bystander's PING is answered (within the generous default timeout)."""
    bystander.send(f"PING {token}")
    bystander.expect(rf" PONG \S+ :?{token}")


@pytest.fixture
def slow_grace(make_server: Callable[..., ServerThread], tmp_path: Path) -> ServerThread:
    """A server with a database and the default 30 s grace: squatters keep the nick a while."""
    return make_server(data_dir=tmp_path)


def test_a_sasl_owner_who_gets_433_regains_the_nick(
    slow_grace: ServerThread, client_context: ssl.SSLContext
) -> None:
    def open_client(source: str = "127.0.0.1") -> IrcClient:
        return connect_from(slow_grace, client_context, source)

    bystander = open_client().register("bystander")
    first = open_client().register("alice")
    first.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    first.expect(r" 900 ")
    first.send("QUIT")
    first.expect_closed()
    squatter = open_client("127.0.0.2").register("alice")
    squatter.expect(r"NOTICE alice :alice is a registered nickname")

    owner = sasl_plain(open_client(), "alice", "alice", PASSWORD)
    assert any(m.command == n.ERR_NICKNAMEINUSE and m.params[1] == "alice" for m in owner.seen)
    owner.expect(r" 900 ")
    owner.expect(r"NOTICE \S+ :alice is your registered nick; take it back with .*REGAIN alice")
    owner.expect(r" 903 ")
    owner.send("NICK alice_")
    owner.send("CAP END")
    owner.expect(r" 001 alice_ ")
    owner.send("PRIVMSG NickServ :REGAIN alice")
    owner.expect(r":alice_!\S+ NICK :?alice$")
    squatter.expect(r":alice!\S+ NICK :?Guest\d{5}$")
    assert_answered(bystander, "regain")
    for client in (bystander, squatter, owner):
        client.close()


def test_strangers_wrong_passwords_never_lock_the_owner_out(
    server: ServerThread, client_context: ssl.SSLContext
) -> None:
    register_account(
        lambda nick: connect_from(server, client_context, "127.0.0.1").register(nick), "alice"
    )
    bystander = connect_from(server, client_context, "127.0.0.1").register("bystander")
    stranger = connect_from(server, client_context, "127.0.0.3").register("mallory")
    for _ in range(3):
        stranger.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
        stranger.expect(r"NOTICE mallory :Invalid account name or password")
    stranger.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    stranger.expect(r"NOTICE mallory :Too many failed attempts; try again in \d+ seconds")
    assert_answered(bystander, "during")

    nickserv = connect_from(server, client_context, "127.0.0.1").register("alice_")
    nickserv.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert nickserv.expect(r" 900 ").params[2] == "alice"
    owner = sasl_plain(
        connect_from(server, client_context, "127.0.0.1"), "owner", "alice", PASSWORD
    )
    assert owner.expect(r" 900 ").params[2] == "alice"
    owner.expect(r" 903 ")
    for client in (bystander, stranger, nickserv, owner):
        client.close()


def test_register_floods_on_taken_names_leave_logins_and_pings_alone(
    server: ServerThread, client_context: ssl.SSLContext
) -> None:
    """Review M2: REGISTER on taken names is answered from a lookup (test_accounts counts that
    no hash runs); meanwhile the owner logs in and a bystander is answered."""
    names = ("alice", "bob", "carol")
    for name in names:
        register_account(
            lambda nick: connect_from(server, client_context, "127.0.0.1").register(nick), name
        )
    bystander = connect_from(server, client_context, "127.0.0.1").register("bystander")
    attackers = []
    for index, name in enumerate(names):
        attacker = connect_from(server, client_context, f"127.0.1.{index + 1}").register(name)
        for _ in range(3):
            attacker.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        attackers.append(attacker)
    owner = connect_from(server, client_context, "127.0.0.1").register("owner")
    owner.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert owner.expect(r" 900 ").params[2] == "alice"
    assert_answered(bystander, "flood")
    for attacker, name in zip(attackers, names, strict=True):
        attacker.expect(rf"NOTICE {name} :{name} is already registered")
    for client in (bystander, owner, *attackers):
        client.close()
