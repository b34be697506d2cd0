"""Three nodes, one network: nicknames, rooms and messages across nodes (docs/CLUSTER.md)."""

from __future__ import annotations

import re
import ssl

from securechat.server.config import OperBlock
from securechat.server.passwords import hash_password
from tests.cluster.support import StartNode, client
from tests.support import IrcClient, ServerThread, sync


def privmsgs(conn: IrcClient, room: str, count: int) -> list[str]:
    """The texts of the next ``count`` PRIVMSGs to ``room`` that ``conn`` receives."""
    texts = []
    while len(texts) < count:
        line = conn.expect(rf"PRIVMSG {re.escape(room)} :")
        texts.append(line.params[-1])
    return texts


def test_a_message_reaches_a_room_member_on_another_node(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a, b = make_node(), make_node()
    alice = client(a, client_context, "alice")
    bob = client(b, client_context, "bob")
    alice.join("#lobby")
    bob.join("#lobby")
    alice.expect(r":bob!\S+ JOIN :?#lobby")
    alice.send("PRIVMSG #lobby :hello from a")
    bob.expect(r":alice!\S+ PRIVMSG #lobby :hello from a")


def test_two_clients_racing_for_one_nick_on_two_nodes_exactly_one_wins(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a, b = make_node(), make_node()
    for round_ in range(5):
        nick = f"racer{round_}"
        first = IrcClient.connect(a.host, a.port, client_context)
        second = IrcClient.connect(b.host, b.port, client_context)
        for conn in (first, second):  # both sent before either is answered
            conn.send(f"NICK {nick}\r\nUSER x 0 * :x")
        outcomes = [conn.expect(r" (001|433) ").command for conn in (first, second)]
        assert sorted(outcomes) == ["001", "433"], outcomes
        first.close()
        second.close()


def test_every_member_on_every_node_sees_one_order_of_a_rooms_messages(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    nodes = [make_node(), make_node(), make_node()]
    senders = [client(node, client_context, f"s{i}") for i, node in enumerate(nodes)]
    readers = [client(node, client_context, f"r{i}") for i, node in enumerate(nodes)]
    for conn in senders + readers:
        conn.join("#busy")
    count = 30
    for n in range(count):  # interleaved, without waiting: the nodes race
        for i, sender in enumerate(senders):
            sender.send(f"PRIVMSG #busy :{i}-{n}")
    seen = [privmsgs(reader, "#busy", count * 3) for reader in readers]
    assert seen[0] == seen[1] == seen[2]
    for i in range(3):  # and each sender's messages in the order sent
        assert [t for t in seen[0] if t.startswith(f"{i}-")] == [f"{i}-{n}" for n in range(count)]


def test_private_messages_and_whois_across_nodes_name_the_users_node(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a, b, c = make_node(), make_node(), make_node()
    alice = client(a, client_context, "alice")
    carol = client(c, client_context, "carol")
    alice.send("PRIVMSG carol :psst")
    carol.expect(r":alice!\S+ PRIVMSG carol :psst")
    bob = client(b, client_context, "bob")
    bob.send("WHOIS carol")
    whois = bob.expect(r" 312 bob carol ")
    assert whois.params[2] == "c"
    bob.send("WHOIS alice")
    assert bob.expect(r" 312 bob alice ").params[2] == "a"
    bob.send("WHOIS bob")
    assert bob.expect(r" 312 bob bob ").params[2] == "b"


def test_room_modes_are_checked_against_the_network_wide_room(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a, b, c = make_node(), make_node(), make_node()
    op = client(a, client_context, "op").join("#guarded")
    op.send("MODE #guarded +k sesame")
    op.expect(r"MODE #guarded \+k")
    guest = client(b, client_context, "guest")
    guest.send("JOIN #guarded")
    guest.expect(r" 475 guest #guarded ")  # bad key, checked on b against a's mode
    guest.send("JOIN #guarded sesame")
    guest.expect(r" 366 guest #guarded ")
    op.send("MODE #guarded -k sesame")
    op.send("MODE #guarded +l 2")
    op.expect(r"MODE #guarded \+l :?2")
    third = client(c, client_context, "third")
    third.send("JOIN #guarded")
    third.expect(r" 471 third #guarded ")  # full
    op.send("MODE #guarded -l")
    op.send("MODE #guarded +b third!*@*")
    op.expect(r"MODE #guarded \+b :?third")
    third.send("JOIN #guarded")
    third.expect(r" 474 third #guarded ")  # banned
    op.send("MODE #guarded -b third!*@*")
    op.send("MODE #guarded +i")
    op.expect(r"MODE #guarded :?\+i")
    third.send("JOIN #guarded")
    third.expect(r" 473 third #guarded ")  # invite only
    op.send("INVITE third #guarded")
    third.expect(r"INVITE third :?#guarded")
    third.send("JOIN #guarded")
    third.expect(r" 366 third #guarded ")
    guest.send("MODE #guarded +m")
    guest.expect(r" 482 guest #guarded ")  # not an operator, whichever node asks


def test_names_list_who_and_lusers_answer_for_the_whole_network(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a, b, c = make_node(), make_node(), make_node()
    members = [client(a, client_context, "ann"), client(b, client_context, "ben")]
    for member in members:
        member.join("#all")
    cat = client(c, client_context, "cat")
    cat.send("NAMES #all")
    names = cat.expect(r" 353 cat = #all ").params[-1].split()
    assert sorted(n.lstrip("@") for n in names) == ["ann", "ben"]
    cat.send("LIST")
    assert cat.expect(r" 322 cat #all ").params[2] == "2"
    cat.send("WHO #all")
    who = {tuple(cat.expect(r" 352 cat #all ").params[4:6]) for _ in range(2)}
    assert who == {("a", "ann"), ("b", "ben")}  # each with its node as server
    cat.send("LUSERS")
    assert " 3 users" in cat.expect(r" 251 cat ").params[-1]


def test_away_account_and_extended_join_notifications_cross_nodes(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a, b = make_node(), make_node()
    caps = ("away-notify", "extended-join", "echo-message", "message-tags")
    watcher = client(a, client_context, "watcher", *caps).join("#room")
    other = client(b, client_context, "other").join("#room")
    watcher.expect(r":other!\S+ JOIN #room \* :other Test")  # extended-join: no account
    other.send("AWAY :lunch")
    watcher.expect(r":other!\S+ AWAY :lunch")
    other.send("AWAY")
    watcher.expect(r":other!\S+ AWAY$")


def test_echo_and_delivery_carry_the_same_msgid_on_every_node(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a, b, c = make_node(), make_node(), make_node()
    caps = ("echo-message", "message-tags")
    sender = client(a, client_context, "sender", *caps).join("#ids")
    on_b = client(b, client_context, "onb", *caps).join("#ids")
    on_c = client(c, client_context, "onc", *caps).join("#ids")
    sender.send("PRIVMSG #ids :tagged")
    ids = {conn.expect(r"PRIVMSG #ids :tagged").tags["msgid"] for conn in (sender, on_b, on_c)}
    assert len(ids) == 1
    sync(sender, "end")


def replica_summary(node: ServerThread) -> object:
    """What a replica knows of the network: nicks, rooms with members, modes and topics."""

    def summary() -> object:
        core = node.server.core
        sessions = sorted((s.nick, s.user, s.away, s.account) for s in core.sessions.values())
        rooms = sorted(
            (
                room.name,
                room.topic,
                room.mode_params(True),
                sorted((nick, member.prefixes(True)) for nick, member in room.members.items()),
            )
            for room in core.rooms
        )
        return sessions, rooms, core.accounts.guest_counter

    return node.in_loop(summary)


def test_every_replica_holds_the_same_network_after_a_busy_session(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    opers = {"root": OperBlock(hash_password("oper-password"))}
    nodes = [make_node(opers=opers) for _ in range(3)]
    users = [client(node, client_context, f"u{i}") for i, node in enumerate(nodes)]
    for user in users:
        user.join("#mix")
    first, second, third = users
    first.send("TOPIC #mix :a topic")
    first.send("MODE #mix +v u1")
    second.send("NICK renamed")
    third.send("AWAY :gone")
    third.send("JOIN #other")
    first.expect(r"NICK :?renamed")  # applied before the KICK that names it, on every node
    first.send("KICK #mix renamed :out")
    second.expect(r"KICK #mix renamed")
    second.send("JOIN #mix")
    third.send("PART #mix :bye")
    first.send("OPER root oper-password")
    first.expect(r" 381 ")
    victim = client(nodes[2], client_context, "victim")
    first.send("KILL victim :enough")  # an operator on a kills a user on c
    assert any(b"Killed" in line for line in victim.expect_closed())
    for user in users:
        sync(user, "settled")
    summaries = [replica_summary(node) for node in nodes]
    assert summaries[0] == summaries[1] == summaries[2]
    assert ("renamed", "~u1", None, None) in summaries[0][0]  # type: ignore[index]
