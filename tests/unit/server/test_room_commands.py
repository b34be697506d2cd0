"""JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE through the core."""

from securechat.server.actions import Send
from tests.unit.server.harness import Harness


def joined(h: Harness, room: str, *nicks: str):  # type: ignore[no-untyped-def]
    clients = [h.register(nick) for nick in nicks]
    for client in clients:
        client.send(f"JOIN {room}")
    for client in clients:
        client.take()
    return clients


def test_join_sends_join_then_names_to_the_joiner() -> None:
    h = Harness()
    alice = h.register("alice").send("JOIN #lobby")
    assert alice.commands() == ["JOIN", "353", "366"]


def test_first_joiner_is_operator() -> None:
    h = Harness()
    alice = h.register("alice").send("JOIN #lobby")
    assert alice.last("353").params[-1] == "@alice"


def test_join_is_broadcast_to_existing_members() -> None:
    h = Harness()
    (alice,) = joined(h, "#a", "alice")
    h.register("bob").send("JOIN #a")
    assert alice.last("JOIN").source.startswith("bob!")


def test_join_several_rooms_and_join_zero_parts_all() -> None:
    h = Harness()
    alice = h.register("alice").send("JOIN #a,#b,#c")
    assert alice.commands().count("JOIN") == 3
    alice.send("JOIN 0")
    assert alice.commands().count("PART") == 3
    assert len(h.core.rooms) == 0


def test_join_invalid_room_gets_476_and_others_still_join() -> None:
    h = Harness()
    alice = h.register("alice").send("JOIN #ok,bad,#fine")
    commands = alice.commands()
    assert commands.count("476") == 1 and commands.count("JOIN") == 2


def test_joining_twice_does_nothing() -> None:
    h = Harness()
    (alice,) = joined(h, "#a", "alice")
    alice.send("JOIN #a")
    assert alice.take() == []


def test_room_limit_per_user_gets_405() -> None:
    h = Harness(max_rooms_per_user=2)
    alice = h.register("alice").send("JOIN #a,#b,#c")
    assert alice.commands().count("405") == 1


def test_part_broadcasts_with_reason_and_removes_empty_room() -> None:
    h = Harness()
    alice, bob = joined(h, "#a", "alice", "bob")
    bob.send("PART #a :see you")
    assert alice.last("PART").params == ("#a", "see you")
    alice.send("PART #a")
    assert h.core.rooms.get("#a") is None


def test_part_room_not_joined_gets_442() -> None:
    h = Harness()
    joined(h, "#a", "alice")
    assert h.register("bob").send("PART #a").has("442")


def test_part_unknown_room_gets_403() -> None:
    assert Harness().register("bob").send("PART #nowhere").has("403")


def test_topic_set_by_op_is_broadcast_and_queried_with_333() -> None:
    h = Harness()
    alice, bob = joined(h, "#a", "alice", "bob")
    alice.send("TOPIC #a :release friday")
    assert bob.last("TOPIC").params == ("#a", "release friday")
    bob.take()
    bob.send("TOPIC #a")
    assert bob.commands() == ["332", "333"]


def test_topic_with_plus_t_needs_op() -> None:
    h = Harness()
    _, bob = joined(h, "#a", "alice", "bob")
    assert bob.send("TOPIC #a :mine").has("482")


def test_topic_shown_on_join() -> None:
    h = Harness()
    (alice,) = joined(h, "#a", "alice")
    alice.send("TOPIC #a :hello")
    bob = h.register("bob").send("JOIN #a")
    assert bob.commands() == ["JOIN", "332", "333", "353", "366"]


def test_no_topic_query_gets_331() -> None:
    h = Harness()
    (alice,) = joined(h, "#a", "alice")
    assert alice.send("TOPIC #a").has("331")


def test_names_lists_every_member_with_prefixes() -> None:
    h = Harness()
    alice, _ = joined(h, "#a", "alice", "bob")
    alice.send("NAMES #a")
    assert sorted(alice.last("353").params[-1].split()) == ["@alice", "bob"]


def test_names_is_split_to_fit_512_bytes() -> None:
    h = Harness()
    nicks = [f"user{i:03d}xxxxxxxxxxxxxxxxxx" for i in range(60)]
    clients = joined(h, "#big", *nicks)
    clients[0].send("NAMES #big")
    replies = [raw for raw in clients[0].raw if b" 353 " in raw]
    listed = [n for m in clients[0].take() if m.command == "353" for n in m.params[-1].split()]
    assert len(listed) == 60 and len(replies) >= 3 + 2  # one on join, more for the query
    assert all(len(raw) <= 512 for raw in replies)


def test_multi_prefix_shows_every_status() -> None:
    h = Harness()
    alice = h.register("alice", caps=("multi-prefix",)).send("JOIN #a")
    alice.send("MODE #a +v alice").take()
    alice.send("NAMES #a")
    assert alice.last("353").params[-1] == "@+alice"


def test_list_shows_rooms_with_counts_and_topics() -> None:
    h = Harness()
    alice, _ = joined(h, "#a", "alice", "bob")
    alice.send("TOPIC #a :t").take()
    alice.send("LIST")
    assert alice.commands() == ["321", "322", "323"]
    alice.send("LIST")
    assert alice.last("322").params[1:] == ("#a", "2", "t")


def test_kick_by_op_removes_member_and_is_broadcast() -> None:
    h = Harness()
    alice, bob = joined(h, "#a", "alice", "bob")
    alice.send("KICK #a bob :bye")
    assert bob.last("KICK").params == ("#a", "bob", "bye")
    assert h.core.rooms.get("#a").member(h.core.nicks.get("bob")) is None  # type: ignore[union-attr, arg-type]


def test_kick_by_non_op_gets_482() -> None:
    h = Harness()
    _, bob = joined(h, "#a", "alice", "bob")
    assert bob.send("KICK #a alice").has("482")


def test_kick_of_absent_nick_gets_441() -> None:
    h = Harness()
    (alice,) = joined(h, "#a", "alice")
    assert alice.send("KICK #a nobody").has("441")


def test_invite_reaches_target_and_confirms_with_341() -> None:
    h = Harness()
    (alice,) = joined(h, "#a", "alice")
    bob = h.register("bob")
    alice.send("INVITE bob #a")
    assert alice.has("341") and bob.last("INVITE").params == ("bob", "#a")


def test_join_broadcast_is_one_send_per_tag_variant() -> None:
    h = Harness()
    joined(h, "#a", "a1", "a2", "a3")
    h.register("t1", caps=("server-time",)).send("JOIN #a")
    h.sends.clear()
    h.register("bob").send("JOIN #a")
    joins = [s for s in h.sends if isinstance(s, Send) and b" JOIN " in s.data]
    assert len(joins) == 2  # plain and server-time variants
    assert sorted(len(s.targets) for s in joins) == [1, 4]
