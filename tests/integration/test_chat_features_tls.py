"""Issue 16 over real TLS, on a real database: read markers on two devices of one account,
reactions, redaction, multiline and in-band registration, with a third user."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from pathlib import Path

from securechat.protocol.message import Message
from tests.support import IrcClient, ServerThread

PASSWORD = "correct-horse"
StartServer = Callable[..., ServerThread]
CHAT_CAPS = (
    "batch",
    "server-time",
    "message-tags",
    "echo-message",
    "draft/chathistory",
    "draft/read-marker",
    "draft/message-redaction",
    "draft/multiline",
)


def start(make_server: StartServer, data_dir: Path) -> ServerThread:
    return make_server(data_dir=data_dir, exempt=("127.0.0.0/8",))


def connect(server: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register(nick, caps)


def logged_in(client: IrcClient, command: str) -> IrcClient:
    client.send(f"PRIVMSG NickServ :{command}")
    client.expect(r" 900 ")
    return client


def sent_msgid(client: IrcClient, text: str) -> str:
    """The msgid of ``client``'s own message, from its echo."""
    echo = client.expect(rf"PRIVMSG \S+ :{re.escape(text)}$")
    return echo.tags["msgid"]


def test_reading_on_the_phone_moves_the_marker_on_the_laptop(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = start(make_server, tmp_path)
    laptop = logged_in(connect(server, client_context, "alice", *CHAT_CAPS), f"REGISTER {PASSWORD}")
    laptop.send("JOIN #team")
    assert laptop.expect(r" MARKREAD #team ").params == ("#team", "*")
    laptop.expect(r" 366 ")
    # The phone logs in to the same account: it becomes a second device of alice (chat-multi),
    # shown #team with its marker before the end of NAMES.
    phone = connect(server, client_context, "alicephone", *CHAT_CAPS)
    logged_in(phone, f"IDENTIFY alice {PASSWORD}")
    phone.expect(r" JOIN :?#team")
    assert phone.expect(r" MARKREAD #team ").params == ("#team", "*")
    phone.expect(r" 366 ")
    bob = connect(server, client_context, "bob", *CHAT_CAPS)
    bob.join("#team")
    bob.send("PRIVMSG #team :standup in 5")
    line = phone.expect(r"PRIVMSG #team :standup in 5")
    phone.send(f"MARKREAD #team timestamp={line.tags['time']}")
    for device in (phone, laptop):
        marker = device.expect(r" MARKREAD #team :?timestamp=")
        assert marker.params == ("#team", f"timestamp={line.tags['time']}")
    bob.send("MARKREAD #team")  # bob has no account: markers are kept per account
    assert bob.expect(r"FAIL MARKREAD ").params[:3] == ("MARKREAD", "ACCOUNT_REQUIRED", "#team")
    laptop.close()

    laptop = connect(server, client_context, "alicelaptop", *CHAT_CAPS)  # back as a device
    logged_in(laptop, f"IDENTIFY alice {PASSWORD}")
    marker: Message = laptop.expect(r" MARKREAD #team ")
    assert marker.params == ("#team", f"timestamp={line.tags['time']}")
    for client in (laptop, phone, bob):
        client.close()

    server.stop()
    server = start(make_server, tmp_path)  # the marker is in the database
    laptop = connect(server, client_context, "alice", *CHAT_CAPS)
    logged_in(laptop, f"IDENTIFY {PASSWORD}")
    laptop.send("JOIN #team")
    marker = laptop.expect(r" MARKREAD #team ")
    assert marker.params == ("#team", f"timestamp={line.tags['time']}")


def test_a_reaction_is_relayed_and_comes_back_with_its_message_after_a_reconnect(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = start(make_server, tmp_path)
    alice = connect(server, client_context, "alice", *CHAT_CAPS)
    bob = connect(server, client_context, "bob", *CHAT_CAPS)
    for client in (alice, bob):
        client.join("#team")
    alice.send("PRIVMSG #team :release is out")
    parent = sent_msgid(alice, "release is out")
    bob.send(f"@+draft/reply={parent} PRIVMSG #team :congrats")
    bob.send(f"@+draft/reply={parent};+draft/react=🎉 TAGMSG #team")
    relayed = alice.expect(r" TAGMSG :?#team")
    assert relayed.tags["+draft/react"] == "🎉" and relayed.tags["+draft/reply"] == parent
    alice.close()

    alice = connect(server, client_context, "alice", *CHAT_CAPS)
    alice.join("#team")
    alice.send("CHATHISTORY LATEST #team * 10")
    alice.expect(r" BATCH \+\S+ chathistory")
    lines = [alice.expect(r" (PRIVMSG|TAGMSG) :?#team") for _ in range(3)]
    assert [m.command for m in lines] == ["PRIVMSG", "TAGMSG", "PRIVMSG"]
    assert lines[1].tags["+draft/react"] == "🎉" and lines[1].tags["msgid"] == relayed.tags["msgid"]
    assert lines[2].tags["+draft/reply"] == parent


def test_a_redacted_message_is_gone_from_history_after_a_reconnect(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = start(make_server, tmp_path)
    alice = connect(server, client_context, "alice", *CHAT_CAPS)
    bob = connect(server, client_context, "bob", *CHAT_CAPS)
    for client in (alice, bob):
        client.join("#team")
    bob.send("PRIVMSG #team :the password is hunter2")
    msgid = sent_msgid(bob, "the password is hunter2")
    carol = connect(server, client_context, "carol", *CHAT_CAPS)
    carol.join("#team")
    carol.send(f"REDACT #team {msgid}")  # not hers, and she is no operator of #team
    assert carol.expect(r"FAIL REDACT ").params[:4] == (
        "REDACT",
        "REDACT_FORBIDDEN",
        "#team",
        msgid,
    )
    bob.send(f"REDACT #team {msgid} :oops")
    assert bob.expect(r" REDACT #team ").params == ("#team", msgid, "oops")
    assert alice.expect(r" REDACT #team ").params == ("#team", msgid, "oops")
    for client in (alice, bob, carol):
        client.close()

    server.stop()
    server = start(make_server, tmp_path)  # the same database, after a restart
    bob = connect(server, client_context, "bob", *CHAT_CAPS)
    bob.join("#team")
    bob.send("CHATHISTORY LATEST #team * 10")
    bob.expect(r" BATCH \+\S+ chathistory")
    placeholder = bob.expect(r" PRIVMSG #team ")
    assert placeholder.tags["msgid"] == msgid and "hunter2" not in placeholder.params[1]
    assert bob.expect(r" REDACT #team ").params == ("#team", msgid, "oops")
    bob.expect(r" BATCH :?-")
    carol = connect(server, client_context, "carol", *CHAT_CAPS)
    carol.join("#team")
    carol.send(f"REDACT #team {msgid}")
    assert carol.expect(r"FAIL REDACT ").params[:2] == ("REDACT", "UNKNOWN_MSGID")
    carol.send("REDACT #elsewhere x")
    assert carol.expect(r"FAIL REDACT ").params[:3] == ("REDACT", "INVALID_TARGET", "#elsewhere")


def test_a_multiline_paste_is_one_batch_for_capable_clients_and_lines_for_others(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = start(make_server, tmp_path)
    alice = connect(server, client_context, "alice", *CHAT_CAPS)
    bob = connect(server, client_context, "bob", *CHAT_CAPS)
    plain = connect(server, client_context, "plain")
    for client in (alice, bob, plain):
        client.join("#code")
    alice.send("BATCH +p1 draft/multiline #code")
    for text in ("def f():", "", "    return 1"):
        alice.send(f"@batch=p1 PRIVMSG #code :{text}")
    alice.send("BATCH -p1")
    opening = bob.expect(r" BATCH \+\S+ draft/multiline")
    ref = opening.params[0][1:]
    inner = [bob.expect(r" PRIVMSG #code ") for _ in range(3)]
    assert [m.params[1] for m in inner] == ["def f():", "", "    return 1"]
    assert all(m.tags["batch"] == ref for m in inner)
    bob.expect(rf" BATCH :?-{ref}")
    lines = [plain.expect(r" PRIVMSG #code ").params[1] for _ in range(2)]
    assert lines == ["def f():", "    return 1"]  # blank lines are not sent without the cap

    alice.send("BATCH +p2 draft/multiline #code")
    alice.send("@batch=p2 PRIVMSG #elsewhere :wrong")
    alice.send("BATCH -p2")
    fail = alice.expect(r"FAIL BATCH ")
    assert fail.params[:4] == ("BATCH", "MULTILINE_INVALID_TARGET", "#code", "#elsewhere")

    carol = connect(server, client_context, "carol", *CHAT_CAPS)
    carol.join("#code")
    carol.send("CHATHISTORY LATEST #code * 5")
    carol.expect(r" BATCH \+\S+ chathistory")
    carol.expect(r" BATCH \+\S+ draft/multiline")
    assert carol.expect(r" PRIVMSG #code ").params[1] == "def f():"


def test_register_before_connecting_creates_an_account_that_logs_in_later(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = start(make_server, tmp_path)
    client = IrcClient.connect(server.host, server.port, client_context)
    client.send("CAP LS 302")
    offered = client.expect(r" CAP \* LS ")
    assert "draft/account-registration=before-connect" in offered.params[-1].split()
    client.send(f"REGISTER dana * {PASSWORD}")  # before NICK
    assert client.expect(r"FAIL REGISTER ").params[:3] == ("REGISTER", "NEED_NICK", "*")
    client.send("NICK dana")
    client.send(f"REGISTER dana * {PASSWORD}")
    assert client.expect(r" REGISTER SUCCESS ").params[:2] == ("SUCCESS", "dana")
    client.expect(r" 900 ")
    client.send("VERIFY dana 000000")
    assert client.expect(r"FAIL VERIFY ").params[:2] == ("VERIFY", "ALREADY_AUTHENTICATED")
    client.send("USER dana 0 * :Dana")
    client.send("CAP END")
    client.expect(r" 001 ")
    client.close()

    again = connect(server, client_context, "dana2")
    again.send(f"REGISTER * * {PASSWORD}")  # dana2 is free: a second account
    again.expect(r" REGISTER SUCCESS dana2 ")
    third = connect(server, client_context, "erin")
    third.send("REGISTER * * weak")
    assert third.expect(r"FAIL REGISTER ").params[:2] == ("REGISTER", "WEAK_PASSWORD")
    third.send(f"PRIVMSG NickServ :IDENTIFY dana {PASSWORD}")  # the account logs in as usual
    third.expect(r" 900 ")
