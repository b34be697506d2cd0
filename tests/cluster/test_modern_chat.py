"""Issue 16 network-wide (docs/CLUSTER.md, "Issue 16 across nodes"): several devices of one
account on different nodes, read markers, replies, reactions, typing, redaction, multiline,
in-band registration, offline private messages and always-on users, with three nodes on one
Redis and one PostgreSQL."""

from __future__ import annotations

import ssl

from securechat.protocol import numerics as n
from securechat.server.presence_accounts import AUTO_AWAY
from tests.cluster.support import StartNode, client
from tests.support import IrcClient, ServerThread, sync

PASSWORD = "correct-horse"
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


def registered(node: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    """``nick`` connected to ``node`` and registered (NickServ) as an account of its name."""
    conn = client(node, context, nick, *caps)
    conn.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    conn.expect(r" 900 ")
    return conn


def device(
    node: ServerThread, context: ssl.SSLContext, account: str, *caps: str, nick: str = ""
) -> IrcClient:
    """A connection to ``node`` logging into ``account`` with SASL PLAIN while registering;
    returns once the server answered the login (903 or 904), before CAP END's welcome."""
    conn = IrcClient.connect(node.host, node.port, context)
    wanted = nick or account
    conn.start_sasl_plain(wanted, account, PASSWORD, caps)
    if any(m.command == n.ERR_NICKNAMEINUSE for m in conn.seen):
        conn.send(f"NICK {wanted}_")  # as clients do after 433
    conn.send("CAP END")
    conn.nick = account
    return conn


def lines_until(conn: IrcClient, pattern: str) -> list[str]:
    """Every line read until one matches ``pattern``: "COMMAND param param ..."."""
    first = len(conn.seen)
    conn.expect(pattern)
    return [" ".join((m.command, *m.params)) for m in conn.seen[first:]]


def test_two_devices_of_one_account_on_two_nodes_are_one_user(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    laptop = registered(a, client_context, "alice", *CHAT_CAPS)
    laptop.send("JOIN #team")
    assert laptop.expect(r" MARKREAD #team ").params == ("#team", "*")
    laptop.expect(r" 366 alice #team ")
    bob = client(c, client_context, "bob", *CHAT_CAPS).join("#team")
    laptop.expect(r":bob!\S+ JOIN :?#team")

    phone = device(b, client_context, "alice", *CHAT_CAPS)
    assert phone.expect(r" 001 ").params[0] == "alice"  # the user's nick, not alice_
    assert phone.expect(r" JOIN :?#team").source.startswith("alice!")
    assert phone.expect(r" MARKREAD #team ").params == ("#team", "*")
    phone.expect(r" 366 alice #team ")

    laptop.send("PRIVMSG #team :from the laptop")
    msgids = {
        conn.expect(r"PRIVMSG #team :from the laptop").tags["msgid"]
        for conn in (laptop, phone, bob)  # the echo, the sibling's copy, the delivery
    }
    assert len(msgids) == 1
    phone.send("PRIVMSG bob :from the phone")
    assert bob.expect(r"PRIVMSG bob :from the phone").source.startswith("alice!")
    assert laptop.expect(r"PRIVMSG bob :from the phone").source.startswith("alice!")
    phone.expect(r"PRIVMSG bob :from the phone")  # its own echo
    bob.send("PRIVMSG alice :to both")
    for conn in (laptop, phone):
        conn.expect(r"PRIVMSG alice :to both")

    bob.send("PRIVMSG #team :standup in 5")
    line = phone.expect(r"PRIVMSG #team :standup in 5")
    phone.send(f"MARKREAD #team timestamp={line.tags['time']}")
    for conn in (phone, laptop):  # read on the phone (b): the marker moves on the laptop (a)
        marker = conn.expect(r" MARKREAD #team :?timestamp=")
        assert marker.params == ("#team", f"timestamp={line.tags['time']}")
    bob.send("NAMES #team")
    names = bob.expect(r" 353 bob = #team ").params[-1].split()
    assert sorted(name.lstrip("@") for name in names) == ["alice", "bob"]  # one user

    phone.send("QUIT :phone off")  # one device leaving does not quit the user
    phone.expect_closed()
    bob.send("PRIVMSG #team :still there?")
    laptop.expect(r"PRIVMSG #team :still there\?")
    tablet = device(c, client_context, "alice", *CHAT_CAPS)  # a third device, on c, later
    tablet.expect(r" 001 alice ")
    assert tablet.expect(r" MARKREAD #team ").params == ("#team", f"timestamp={line.tags['time']}")
    laptop.send("QUIT :laptop off")
    laptop.expect_closed()
    tablet.send("QUIT :tablet off")  # the last device of a user that is not always-on
    assert bob.expect(r" QUIT ").source.startswith("alice!")


def test_the_device_limit_of_an_account_counts_every_node(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url, max_connections_per_account=2) for _ in range(3))
    laptop = registered(a, client_context, "alice")
    phone = device(b, client_context, "alice")
    phone.expect(r" 001 alice ")
    third = device(c, client_context, "alice", nick="other")
    refused = next(m for m in third.seen if m.command in (n.ERR_SASLFAIL, n.RPL_SASLSUCCESS))
    assert refused.command == n.ERR_SASLFAIL
    assert "2 connections" in refused.params[-1]
    phone.send("QUIT")  # a device leaving b frees a place, on c too
    phone.expect_closed()  # closed once the QUIT was applied: before the next login
    fourth = device(c, client_context, "alice")
    fourth.expect(r" 001 alice ")
    sync(laptop, "still-here")  # the first device was never displaced


def test_replies_reactions_and_typing_cross_nodes_with_one_msgid(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    alice = client(a, client_context, "alice", *CHAT_CAPS).join("#team")
    bob = client(b, client_context, "bob", *CHAT_CAPS).join("#team")
    carol = client(c, client_context, "carol", *CHAT_CAPS).join("#team")
    alice.send("PRIVMSG #team :release is out")
    parent = alice.expect(r"PRIVMSG #team :release is out").tags["msgid"]
    assert carol.expect(r"PRIVMSG #team :release is out").tags["msgid"] == parent

    bob.send(f"@+draft/reply={parent} PRIVMSG #team :congrats")
    replies = [conn.expect(r"PRIVMSG #team :congrats") for conn in (bob, alice, carol)]
    assert {m.tags["+draft/reply"] for m in replies} == {parent}
    assert len({m.tags["msgid"] for m in replies}) == 1

    bob.send(f"@+draft/reply={parent};+draft/react=🎉 TAGMSG #team")
    reacts = [conn.expect(r" TAGMSG :?#team") for conn in (bob, alice, carol)]
    assert {(m.tags["+draft/react"], m.tags["+draft/reply"]) for m in reacts} == {("🎉", parent)}
    assert len({m.tags["msgid"] for m in reacts}) == 1
    carol.send("@+typing=active TAGMSG #team")
    for conn in (alice, bob):
        conn.expect(r"[@;]\+typing=active[; ].* TAGMSG :?#team")
    carol.send("@+typing=active TAGMSG alice")  # to a nick on another node
    typing = alice.expect(r" TAGMSG :?alice")
    assert typing.tags["+typing"] == "active" and typing.source.startswith("carol!")

    dana = client(c, client_context, "dana", *CHAT_CAPS).join("#team")  # history, from c
    dana.send("CHATHISTORY LATEST #team * 10")
    dana.expect(r" BATCH \+\S+ chathistory")
    kept = [dana.expect(r" (PRIVMSG|TAGMSG) :?#team") for _ in range(3)]
    assert [m.command for m in kept] == ["PRIVMSG", "TAGMSG", "PRIVMSG"]  # kept by its message
    assert kept[1].tags["+draft/react"] == "🎉"
    assert kept[1].tags["msgid"] == reacts[0].tags["msgid"]  # the msgid everybody saw
    assert kept[2].tags["+draft/reply"] == parent
    dana.expect(r" BATCH :?-")

    bob.send(f"@+draft/reply={parent};+draft/unreact=🎉 TAGMSG #team")
    unreacts = [conn.expect(r"\+draft/unreact=\S+ \S+ TAGMSG :?#team") for conn in (alice, carol)]
    assert len({m.tags["msgid"] for m in unreacts}) == 1

    dana.send("CHATHISTORY LATEST #team * 10")  # the unreaction removed it, seen from c
    dana.expect(r" BATCH \+\S+ chathistory")
    assert "TAGMSG #team" not in lines_until(dana, r" BATCH :?-")


def test_a_redaction_by_the_sender_crosses_nodes_and_history_elsewhere_shows_it_gone(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    alice = client(a, client_context, "alice", *CHAT_CAPS).join("#team")
    bob = client(b, client_context, "bob", *CHAT_CAPS).join("#team")
    carol = client(c, client_context, "carol", *CHAT_CAPS).join("#team")
    bob.send("PRIVMSG #team :the password is hunter2")
    msgid = bob.expect(r"PRIVMSG #team :the password is hunter2").tags["msgid"]
    carol.expect(r"PRIVMSG #team :the password is hunter2")
    carol.send(f"REDACT #team {msgid}")  # not hers, and she is no operator of #team
    assert carol.expect(r"FAIL REDACT ").params[:4] == (
        "REDACT",
        "REDACT_FORBIDDEN",
        "#team",
        msgid,
    )
    bob.send(f"REDACT #team {msgid} :oops")
    for conn in (bob, alice, carol):
        assert conn.expect(r" REDACT #team ").params == ("#team", msgid, "oops")

    reader = client(c, client_context, "reader", *CHAT_CAPS).join("#team")
    reader.send("CHATHISTORY LATEST #team * 10")
    reader.expect(r" BATCH \+\S+ chathistory")
    placeholder = reader.expect(r" PRIVMSG #team ")
    assert placeholder.tags["msgid"] == msgid and "hunter2" not in placeholder.params[1]
    assert reader.expect(r" REDACT #team ").params == ("#team", msgid, "oops")
    reader.expect(r" BATCH :?-")
    reader.send(f"REDACT #team {msgid}")
    assert reader.expect(r"FAIL REDACT ").params[:2] == ("REDACT", "UNKNOWN_MSGID")


def test_a_multiline_paste_is_one_batch_on_one_node_and_lines_on_another(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    alice = client(a, client_context, "alice", *CHAT_CAPS).join("#code")
    bob = client(b, client_context, "bob", *CHAT_CAPS).join("#code")
    plain = client(c, client_context, "plain").join("#code")
    alice.send("BATCH +p1 draft/multiline #code")
    for text in ("def f():", "", "    return 1"):
        alice.send(f"@batch=p1 PRIVMSG #code :{text}")
    alice.send("BATCH -p1")
    opening = bob.expect(r" BATCH \+\S+ draft/multiline :?#code")
    ref = opening.params[0][1:]
    inner = [bob.expect(r" PRIVMSG #code ") for _ in range(3)]
    assert [m.params[1] for m in inner] == ["def f():", "", "    return 1"]
    assert all(m.tags["batch"] == ref for m in inner)
    bob.expect(rf" BATCH :?-{ref}")
    echoed = alice.expect(r" BATCH \+\S+ draft/multiline :?#code")
    assert echoed.tags["msgid"] == opening.tags["msgid"]
    lines = [plain.expect(r" PRIVMSG #code ").params[1] for _ in range(2)]
    assert lines == ["def f():", "    return 1"]  # blank lines are not sent without the cap


def test_an_account_registered_in_band_on_one_node_logs_in_with_sasl_on_another(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b = make_node(database=pg_url), make_node(database=pg_url)
    first = IrcClient.connect(a.host, a.port, client_context)
    first.send("CAP LS 302")
    first.send("NICK dana")
    first.send(f"REGISTER dana * {PASSWORD}")
    assert first.expect(r" REGISTER SUCCESS ").params[:2] == ("SUCCESS", "dana")
    first.send("USER dana 0 * :Dana")
    first.send("CAP END")
    first.expect(r" 001 dana ")
    first.send("QUIT")
    first.expect_closed()
    again = device(b, client_context, "dana", "account-notify")
    assert any(m.command == n.RPL_SASLSUCCESS for m in again.seen)
    again.expect(r" 001 dana ")
    watcher = client(a, client_context, "erin")
    watcher.send("WHOIS dana")
    assert watcher.expect(r" 330 erin dana ").params[2] == "dana"  # logged in, seen on a


def test_a_private_message_to_an_offline_account_is_delivered_at_its_login_elsewhere(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    alice = registered(a, client_context, "alice")
    alice.send("QUIT")
    alice.expect_closed()
    bob = client(b, client_context, "bob")
    bob.send("PRIVMSG alice :while you were out")
    told = bob.expect(rf" {n.RPL_AWAY} ")
    assert told.params[1] == "alice" and "kept" in told.params[-1]

    back = device(c, client_context, "alice", "server-time")
    back.expect(r" 001 alice ")
    kept = back.expect(r"PRIVMSG alice ")
    assert kept.params[-1] == "while you were out" and kept.source.startswith("bob!")
    assert "time" in kept.tags
    back.send("PING :once")  # delivered once: not again on a second device
    assert not any("were out" in line for line in lines_until(back, r" PONG "))
    second = device(a, client_context, "alice")
    second.expect(r" 001 alice ")
    second.send("PING :done")
    assert not any("were out" in line for line in lines_until(second, r" PONG "))


def test_an_always_on_user_keeps_its_nick_and_rooms_across_nodes_and_a_node_stopping(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    alice = registered(a, client_context, "alice")
    alice.send("PRIVMSG NickServ :SET ALWAYS-ON ON")
    alice.expect(r"Always-on is ON")
    alice.join("#team")
    bob = client(b, client_context, "bob", "away-notify", "echo-message").join("#team")
    alice.send("QUIT :closing the laptop")
    alice.expect_closed()
    assert bob.expect(r" AWAY ").params[-1] == AUTO_AWAY
    bob.send("PRIVMSG alice :ping me later")
    bob.expect(rf" {n.RPL_AWAY} bob alice ")
    bob.send("PRIVMSG #team :said while away")
    bob.expect(r"PRIVMSG #team :said while away")  # the echo: committed, the kept PM before it

    a.stop()  # the node the device was on: the always-on user is the network's, not a's
    thief = client(c, client_context, "thief")
    thief.send("NICK alice")
    thief.expect(rf" {n.ERR_NICKNAMEINUSE} ")
    thief.send("NAMES #team")
    names = thief.expect(r" 353 thief = #team ").params[-1].split()
    assert "alice" in [name.lstrip("@") for name in names]

    phone = device(c, client_context, "alice", "batch", "server-time", "message-tags")
    phone.expect(r" 001 alice ")
    phone.send("PING :caught-up")  # answered after the replay and the kept messages
    seen = lines_until(phone, r" PONG ")
    assert any(line.startswith("JOIN #team") for line in seen)
    assert "PRIVMSG #team said while away" in seen  # the join replay, on another node
    assert "PRIVMSG alice ping me later" in seen  # kept while detached
    assert bob.expect(r":alice!\S+ AWAY").params == ()  # back: the automatic away ends
    phone.send("PRIVMSG #team :back")
    bob.expect(r":alice!\S+ PRIVMSG #team :back")
    assert not [m for m in bob.seen if m.command == "QUIT"]


def test_every_replica_holds_the_same_devices_and_markers(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    """The shared identity, its devices and the read markers are the same in every replica."""
    nodes = [make_node(database=pg_url) for _ in range(3)]
    laptop = registered(nodes[0], client_context, "alice", *CHAT_CAPS).join("#team")
    phone = device(nodes[1], client_context, "alice", *CHAT_CAPS)
    phone.expect(r" 366 alice #team ")
    phone.send("MARKREAD #team timestamp=2026-01-01T00:00:00.000Z")
    laptop.expect(r" MARKREAD #team :?timestamp=2026")
    sync(laptop, "settled")

    def summary(node: ServerThread) -> object:
        def read() -> object:
            core = node.server.core
            users = sorted(
                (user.nick, user.account, sorted(d.conn for d in user.devices or ()))
                for user in core.presences.homes.values()
            )
            markers = sorted(core.read_markers.by_account.items())
            return users, markers

        return node.in_loop(read)

    first = summary(nodes[0])
    assert first[0] and all(summary(node) == first for node in nodes[1:])
    assert first[1] == [("alice", {"#team": 1767225600.0})]  # 2026-01-01T00:00:00Z


def test_always_on_users_come_back_when_the_whole_cluster_restarts(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    """The first node of a fresh cluster restores the always-on users from PostgreSQL for
    every node (docs/CLUSTER.md, "Joining a running cluster")."""
    first = make_node(database=pg_url)
    alice = registered(first, client_context, "alice")
    alice.send("PRIVMSG NickServ :SET ALWAYS-ON ON")
    alice.expect(r"Always-on is ON")
    alice.join("#team")
    alice.send("QUIT")
    alice.expect_closed()
    bob = registered(first, client_context, "bob", "echo-message")
    bob.send("PRIVMSG alice :before the restart")
    bob.expect(rf" {n.RPL_AWAY} bob alice ")
    bob.send("PRIVMSG bob :flush")  # the writer's next job: the kept PM is stored by now
    bob.expect(r"PRIVMSG bob :flush")
    first.stop()

    b, c = make_node(database=pg_url), make_node(database=pg_url)
    carol = client(c, client_context, "carol")
    carol.send("JOIN #team")
    names = carol.expect(r" 353 carol = #team ").params[-1].split()
    assert "alice" in [name.lstrip("@") for name in names]
    phone = device(b, client_context, "alice", "batch", "server-time")
    phone.expect(r" 001 alice ")
    phone.send("PING :caught-up")
    seen = lines_until(phone, r" PONG ")
    assert any(line.startswith("JOIN #team") for line in seen)
    assert "PRIVMSG alice before the restart" in seen


def test_an_always_on_user_whose_device_was_on_a_stopped_node_stays_detached(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b = make_node(database=pg_url), make_node(database=pg_url)
    alice = registered(a, client_context, "alice")
    alice.send("PRIVMSG NickServ :SET ALWAYS-ON ON")
    alice.expect(r"Always-on is ON")
    alice.join("#team")
    bob = client(b, client_context, "bob", "away-notify", "echo-message").join("#team")
    a.stop()  # alice's only device goes with its node: the user stays, away
    assert bob.expect(r":alice!\S+ AWAY").params[-1] == AUTO_AWAY
    bob.send("PRIVMSG alice :are you there?")
    bob.expect(rf" {n.RPL_AWAY} bob alice ")
    bob.send("PRIVMSG #team :anyone?")
    bob.expect(r"PRIVMSG #team :anyone\?")  # the echo: committed, the kept PM before it
    phone = device(b, client_context, "alice", "batch", "server-time")
    phone.expect(r" 001 alice ")
    phone.send("PING :caught-up")
    seen = lines_until(phone, r" PONG ")
    assert any(line.startswith("JOIN #team") for line in seen)
    assert "PRIVMSG alice are you there?" in seen
    assert not [m for m in bob.seen if m.command == "QUIT"]
