"""MODE on rooms and users."""

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness


def setup_room(h: Harness):  # type: ignore[no-untyped-def]
    alice, bob = h.register("alice"), h.register("bob")
    alice.send("JOIN #a")
    bob.send("JOIN #a")
    alice.take()
    bob.take()
    return alice, bob


def test_mode_query_shows_modes_and_creation_time() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a")
    assert alice.commands() == [n.RPL_CHANNELMODEIS, n.RPL_CREATIONTIME]
    alice.send("MODE #a")
    assert alice.last(n.RPL_CHANNELMODEIS).params[-1] == "+nt"


def test_op_can_give_op_and_voice_in_one_line() -> None:
    h = Harness()
    alice, bob = setup_room(h)
    alice.send("MODE #a +ov bob bob")
    assert bob.last("MODE").params == ("#a", "+ov", "bob", "bob")
    alice.send("NAMES #a")
    assert "@bob" in alice.last(n.RPL_NAMREPLY).params[-1].split()


def test_flags_toggle_and_only_changes_are_announced() -> None:
    h = Harness()
    alice, bob = setup_room(h)
    alice.send("MODE #a -t+n")
    assert bob.last("MODE").params == ("#a", "-t")


def test_without_t_anyone_can_set_the_topic() -> None:
    h = Harness()
    alice, bob = setup_room(h)
    alice.send("MODE #a -t")
    bob.send("TOPIC #a :free for all")
    assert alice.last("TOPIC").params[1] == "free for all"


def test_without_n_outsiders_can_send() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a -n")
    h.register("carol").send("PRIVMSG #a :from outside")
    assert alice.last("PRIVMSG").params[1] == "from outside"


def test_non_op_cannot_change_modes() -> None:
    h = Harness()
    _, bob = setup_room(h)
    assert bob.send("MODE #a +o bob").has(n.ERR_CHANOPRIVSNEEDED)


def test_unknown_mode_letter_gets_472_and_others_apply() -> None:
    h = Harness()
    alice, bob = setup_room(h)
    alice.send("MODE #a +zv bob")
    assert alice.has(n.ERR_UNKNOWNMODE) and bob.last("MODE").params == ("#a", "+v", "bob")


def test_op_on_a_nick_that_does_not_exist_gets_401() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    # Modern IRC: 441 is for existing nicks
    assert alice.send("MODE #a +o ghost").has(n.ERR_NOSUCHNICK)


def test_ban_list_query_ends_with_368() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    assert alice.send("MODE #a b").has(n.RPL_ENDOFBANLIST)


def test_user_mode_invisible_is_set_and_queried() -> None:
    h = Harness()
    alice = h.register("alice")
    alice.send("MODE alice +i")
    assert alice.last("MODE").params == ("alice", "+i")
    alice.send("MODE alice")
    assert alice.last(n.RPL_UMODEIS).params[-1] == "+i"


def test_user_mode_of_someone_else_gets_502() -> None:
    h = Harness()
    h.register("bob")
    assert h.register("alice").send("MODE bob +i").has(n.ERR_USERSDONTMATCH)


def test_unknown_user_mode_gets_501() -> None:
    assert Harness().register("alice").send("MODE alice +z").has(n.ERR_UMODEUNKNOWNFLAG)


def test_invisible_users_are_hidden_from_names_of_outsiders() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE alice +i")
    carol = h.register("carol").send("NAMES #a")
    assert carol.last(n.RPL_NAMREPLY).params[-1].split() == ["bob"]
