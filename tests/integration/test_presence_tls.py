"""Several devices of one account, always-on users and offline private messages, over real
TLS (server/presence_accounts.py, server/offline_messages.py): two devices of alice and a
third user, bob."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.server.presence_accounts import AUTO_AWAY
from tests.support import IrcClient, ServerThread

PASSWORD = "correct-horse"
DEVICE_CAPS = ("sasl", "echo-message", "server-time", "message-tags")

Start = Callable[..., ServerThread]


@pytest.fixture(params=["sqlite", "postgresql"])
def start(request: pytest.FixtureRequest, make_server: Start, tmp_path: Path) -> Start:
    """A server with a database, SQLite in tmp_path then PostgreSQL (tests/pg.py): the same
    one for every server a test starts."""
    where: dict[str, object] = {"data_dir": tmp_path}
    if request.param == "postgresql":
        where = {"database": request.getfixturevalue("pg_url")}

    def started(**changes: object) -> ServerThread:
        return make_server(**where, exempt=("127.0.0.0/8",), **changes)

    return started


class Clients:
    def __init__(self, server: ServerThread, context: ssl.SSLContext) -> None:
        self.server, self.context = server, context
        self.opened: list[IrcClient] = []

    def open(self) -> IrcClient:
        client = IrcClient.connect(self.server.host, self.server.port, self.context)
        self.opened.append(client)
        return client

    def plain(self, nick: str, caps: tuple[str, ...] = ()) -> IrcClient:
        return self.open().register(nick, caps)

    def registered(self, nick: str) -> IrcClient:
        """``nick`` connected and registered as an account of its own name."""
        client = self.plain(nick)
        client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        client.expect(r" 900 ")
        return client

    def device(
        self, account: str, nick: str | None = None, caps: tuple[str, ...] = DEVICE_CAPS
    ) -> IrcClient:
        """A connection logging into ``account`` with SASL PLAIN during registration, asking
        for ``nick`` (default: the account's; if it is taken, ``<nick>_``)."""
        client = self.open()
        wanted = nick or account
        client.start_sasl_plain(wanted, account, PASSWORD, tuple(c for c in caps if c != "sasl"))
        if any(m.command == n.ERR_NICKNAMEINUSE for m in client.seen):
            client.send(f"NICK {wanted}_")  # as clients do after 433
        client.send("CAP END")
        return client

    def close(self) -> None:
        for client in self.opened:
            client.close()


@pytest.fixture
def clients_of(client_context: ssl.SSLContext) -> Callable[[ServerThread], Clients]:
    made: list[Clients] = []

    def make(server: ServerThread) -> Clients:
        made.append(Clients(server, client_context))
        return made[-1]

    yield make  # type: ignore[misc]
    for clients in made:
        clients.close()


def test_a_second_device_attaches_to_the_user_and_sees_what_the_first_sends(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start())
    laptop = clients.registered("alice")
    laptop.join("#team")
    bob = clients.plain("bob")
    bob.join("#team")
    laptop.expect(r":bob!\S+ JOIN :?#team")

    phone = clients.device("alice")
    assert phone.expect(r" 001 ").params[0] == "alice"  # the user's nick, not alice_
    assert phone.expect(r" JOIN :?#team").source.startswith("alice!")
    assert "bob" in phone.expect(r" 353 ").params[-1]
    phone.expect(r" 366 ")

    laptop.send("PRIVMSG #team :from the laptop")
    assert phone.expect(r"PRIVMSG #team").params[-1] == "from the laptop"
    assert bob.expect(r"PRIVMSG #team").params[-1] == "from the laptop"
    phone.send("PRIVMSG bob :from the phone")
    assert bob.expect(r"PRIVMSG bob").source.startswith("alice!")
    assert laptop.expect(r"PRIVMSG bob ").params[-1] == "from the phone"  # the sibling's copy
    bob.send("PRIVMSG alice :to both")
    assert laptop.expect(r"PRIVMSG alice ").params[-1] == "to both"
    assert phone.expect(r"PRIVMSG alice ").params[-1] == "to both"

    bob.send("NAMES #team")
    names = bob.expect(r" 353 ").params[-1].split()
    assert sorted(name.lstrip("@") for name in names) == ["alice", "bob"]  # one user


def test_join_part_and_nick_from_one_device_reach_every_device(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start())
    laptop = clients.registered("alice")
    phone = clients.device("alice")
    phone.expect(r" 001 ")
    phone.send("JOIN #new")
    laptop.expect(r":alice!\S+ JOIN :?#new")
    laptop.expect(r" 366 alice #new ")
    laptop.send("PART #new :bye")
    phone.expect(r":alice!\S+ PART #new")
    phone.send("NICK alicia")
    assert laptop.expect(r" NICK ").params[0] == "alicia"
    phone.expect(r" NICK ")


def test_one_device_quitting_does_not_quit_the_user(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start())
    laptop = clients.registered("alice")
    laptop.join("#team")
    bob = clients.plain("bob")
    bob.join("#team")
    phone = clients.device("alice")
    phone.expect(r" 366 ")
    phone.send("QUIT :phone off")
    phone.expect_closed()
    bob.send("PRIVMSG #team :still there?")
    assert laptop.expect(r"PRIVMSG #team").params[-1] == "still there?"
    laptop.send("QUIT :laptop off")  # the last device of a user that is not always-on
    assert bob.expect(r" QUIT ").source.startswith("alice!")


def test_a_message_to_an_offline_account_is_kept_and_the_sender_told(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start())
    alice = clients.registered("alice")
    alice.send("QUIT")
    alice.expect_closed()
    bob = clients.plain("bob")
    bob.send("PRIVMSG alice :while you were out")
    told = bob.expect(rf" {n.RPL_AWAY} ")
    assert told.params[1] == "alice" and "kept" in told.params[-1]
    bob.send("PRIVMSG nobody :hello")
    bob.expect(rf" {n.ERR_NOSUCHNICK} bob nobody ")

    back = clients.device("alice")
    back.expect(r" 001 ")
    kept = back.expect(r"PRIVMSG alice ")
    assert kept.params[-1] == "while you were out" and kept.source.startswith("bob!")
    assert "time" in kept.tags


def test_an_always_on_user_stays_while_detached_and_gets_what_it_missed(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start())
    alice = clients.registered("alice")
    alice.send("PRIVMSG NickServ :SET ALWAYS-ON ON")
    alice.expect(r"Always-on is ON")
    alice.join("#team")
    bob = clients.plain("bob", ("away-notify",))
    bob.join("#team")
    alice.send("QUIT :closing the laptop")
    alice.expect_closed()
    assert bob.expect(r" AWAY ").params[-1] == AUTO_AWAY
    bob.send("NAMES #team")
    assert "alice" in bob.expect(r" 353 ").params[-1]
    bob.send("PRIVMSG alice :ping me later")
    bob.expect(rf" {n.RPL_AWAY} bob alice ")
    bob.send("PRIVMSG #team :said while away")

    phone = clients.device("alice", caps=("sasl", "batch", "server-time", "message-tags"))
    phone.expect(r" 001 ")
    phone.send("PING :caught-up")  # answered after the replay and the kept messages
    seen = lines_until(phone, r" PONG ")
    assert any(line.startswith("JOIN #team") for line in seen)
    assert "PRIVMSG #team said while away" in seen  # the join replay
    assert "PRIVMSG alice ping me later" in seen  # kept while detached
    assert bob.expect(r" AWAY").params == ()  # back: the automatic away ends


def test_an_always_on_user_survives_a_restart(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    first = start()
    clients = clients_of(first)
    alice = clients.registered("alice")
    alice.send("PRIVMSG NickServ :SET ALWAYS-ON ON")
    alice.expect(r"Always-on is ON")
    alice.join("#team")
    alice.send("AWAY :on holiday")
    alice.expect(rf" {n.RPL_NOWAWAY} ")
    alice.send("QUIT")
    alice.expect_closed()
    bob = clients.registered("bob")
    bob.send("PRIVMSG alice :before the restart")
    bob.expect(rf" {n.RPL_AWAY} bob alice ")
    first.stop()

    second = start()
    clients = clients_of(second)
    bob = clients.device("bob", caps=("sasl",))
    bob.expect(r" 001 ")
    bob.send("JOIN #team")
    assert "alice" in bob.expect(r" 353 ").params[-1]
    bob.send("PRIVMSG alice :after the restart")
    assert bob.expect(rf" {n.RPL_AWAY} bob alice ").params[-1] == "on holiday"
    phone = clients.device("alice", caps=("sasl", "batch", "server-time", "draft/chathistory"))
    phone.expect(r" 001 ")
    phone.send("PING :caught-up")
    seen = lines_until(phone, r" PONG ")
    assert any(line.startswith("JOIN #team") for line in seen)
    kept = [line for line in seen if line.startswith("PRIVMSG alice ")]
    assert kept == ["PRIVMSG alice before the restart", "PRIVMSG alice after the restart"]
    phone.send("CHATHISTORY LATEST bob * 10")  # the same conversation, from history
    phone.expect(r"BATCH \+")
    said = [phone.expect(r"PRIVMSG alice ").params[-1] for _ in range(2)]
    assert said == ["before the restart", "after the restart"]

    carol = clients.registered("carol")  # another account: nothing of theirs to read
    carol.send("CHATHISTORY LATEST bob * 10")
    carol.send("CHATHISTORY LATEST alice * 10")
    carol.send("PING :done")
    assert not any("restart" in line for line in lines_until(carol, r" PONG "))


def test_connections_beyond_the_account_limit_are_refused(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start(max_connections_per_account=2))
    clients.registered("alice")
    second = clients.device("alice")
    second.expect(r" 001 ")
    third = clients.open()
    third.send("CAP LS 302")
    third.send("CAP REQ :sasl")
    third.expect(r" CAP \S+ ACK ")
    third.send("NICK other")
    third.send("USER other 0 * :other")
    third.send("AUTHENTICATE PLAIN")
    third.expect(r"^AUTHENTICATE \+")
    third.send("AUTHENTICATE " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode())
    refused = third.expect(rf" {n.ERR_SASLFAIL} ")
    assert "2 connections" in refused.params[-1]


def test_an_always_on_user_is_limited_in_rooms(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start(always_on_max_rooms=1))
    alice = clients.registered("alice")
    alice.send("PRIVMSG NickServ :SET ALWAYS-ON ON")
    alice.expect(r"Always-on is ON")
    alice.join("#one")
    alice.send("JOIN #two")
    alice.expect(rf" {n.ERR_TOOMANYCHANNELS} alice #two ")


def test_nobody_reads_another_accounts_kept_messages(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start())
    for nick in ("alice", "carol"):
        client = clients.registered(nick)
        client.send("QUIT")
        client.expect_closed()
    bob = clients.plain("bob")
    bob.send("PRIVMSG alice :for alice only")
    bob.expect(rf" {n.RPL_AWAY} ")
    carol = clients.device("carol", nick="alice")  # carol asks for alice's nick
    carol.expect(r" 001 ")
    carol.send("PING :done")
    assert not any("for alice only" in line for line in lines_until(carol, r" PONG "))


def lines_until(client: IrcClient, pattern: str) -> list[str]:
    """Every line read until one matches ``pattern``: "COMMAND param param ..."."""
    first = len(client.seen)
    client.expect(pattern)
    return [" ".join((m.command, *m.params)) for m in client.seen[first:]]


def test_identify_after_registration_attaches_to_the_user(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start())
    laptop = clients.registered("alice")
    laptop.join("#team")
    tablet = clients.plain("tablet")
    tablet.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert tablet.expect(r" NICK ").params == ("alice",)
    tablet.expect(r" JOIN :?#team")
    tablet.expect(r" 366 alice #team ")
    tablet.send("PRIVMSG #team :from the tablet")
    assert laptop.expect(r"PRIVMSG #team").params[-1] == "from the tablet"


def test_the_server_default_makes_every_account_always_on(
    start: Start, clients_of: Callable[[ServerThread], Clients]
) -> None:
    clients = clients_of(start(always_on_default=True))
    alice = clients.registered("alice")
    alice.join("#team")
    alice.send("QUIT")
    alice.expect_closed()
    bob = clients.plain("bob")
    bob.send("JOIN #team")
    assert "alice" in bob.expect(r" 353 ").params[-1]
