"""What outsiders see of +s, +p, +i and +k rooms (security review L6; Modern IRC "Secret
Channel Mode", RFC 2811 §4.2.6): members are hidden, +s rooms are not listed."""

from __future__ import annotations

import pytest

from securechat.protocol import numerics as n
from securechat.server.config import OperBlock
from securechat.server.passwords import hash_password
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct horse"


def private_room(h: Harness, modes: str) -> tuple[FakeClient, FakeClient]:
    """alice (operator) and bob in #a with ``modes`` set and a topic; carol is outside."""
    alice, bob = h.register("alice"), h.register("bob")
    alice.send("JOIN #a").send("TOPIC #a :plans")
    bob.send("JOIN #a")
    alice.send(f"MODE #a {modes}")
    alice.take()
    bob.take()
    return alice, bob


CLOSED = ["+s", "+p", "+i", "+k sesame"]


@pytest.mark.parametrize("modes", CLOSED)
def test_names_of_a_closed_room_gives_outsiders_only_366(modes: str) -> None:
    h = Harness()
    private_room(h, modes)
    carol = h.register("carol").send("NAMES #a")
    assert carol.commands() == [n.RPL_ENDOFNAMES]


@pytest.mark.parametrize("modes", CLOSED)
def test_who_of_a_closed_room_lists_no_member_to_outsiders(modes: str) -> None:
    h = Harness()
    private_room(h, modes)
    carol = h.register("carol").send("WHO #a")
    assert carol.commands() == [n.RPL_ENDOFWHO]


@pytest.mark.parametrize("modes", CLOSED)
def test_whois_hides_a_closed_room_from_outsiders(modes: str) -> None:
    h = Harness()
    private_room(h, modes)
    carol = h.register("carol").send("WHOIS bob")
    assert n.RPL_WHOISCHANNELS not in carol.commands()


def test_whois_shows_a_closed_room_to_someone_who_shares_it() -> None:
    h = Harness()
    alice, _ = private_room(h, "+s")
    alice.send("WHOIS bob")
    assert alice.last(n.RPL_WHOISCHANNELS).params[-1] == "#a"


def test_members_still_see_names_and_who_of_their_closed_room() -> None:
    h = Harness()
    _, bob = private_room(h, "+sik sesame")
    bob.send("NAMES #a")
    assert bob.last(n.RPL_NAMREPLY).params[1:] == ("@", "#a", "@alice bob")
    bob.take()
    assert bob.send("WHO #a").commands().count(n.RPL_WHOREPLY) == 2


def test_names_reply_marks_private_rooms_with_a_star() -> None:
    h = Harness()
    alice, _ = private_room(h, "+p")
    alice.send("NAMES #a")
    assert alice.last(n.RPL_NAMREPLY).params[1] == "*"


def test_an_open_room_still_shows_its_members_to_outsiders() -> None:
    h = Harness()
    private_room(h, "+m")
    carol = h.register("carol").send("NAMES #a")
    assert carol.last(n.RPL_NAMREPLY).params[1:] == ("=", "#a", "@alice bob")


def test_list_omits_secret_rooms_for_outsiders() -> None:
    h = Harness()
    private_room(h, "+s")
    carol = h.register("carol").send("LIST")
    assert n.RPL_LIST not in carol.commands()
    carol.send("LIST #a")
    assert n.RPL_LIST not in carol.commands()


def test_list_shows_a_secret_room_to_its_members() -> None:
    h = Harness()
    alice, _ = private_room(h, "+s")
    alice.send("LIST")
    assert alice.last(n.RPL_LIST).params[1:] == ("#a", "2", "plans")


@pytest.mark.parametrize("modes", ["+i", "+k sesame"])
def test_list_shows_invite_only_and_keyed_rooms_with_count_and_topic(modes: str) -> None:
    h = Harness()
    private_room(h, modes)
    carol = h.register("carol").send("LIST")
    assert carol.last(n.RPL_LIST).params[1:] == ("#a", "2", "plans")


def test_list_shows_a_private_room_with_its_count_but_not_its_topic() -> None:
    h = Harness()
    private_room(h, "+p")
    carol = h.register("carol").send("LIST")
    assert carol.last(n.RPL_LIST).params[1:] == ("#a", "2", "")


@pytest.mark.parametrize("modes", ["+s", "+p"])
def test_topic_of_a_secret_or_private_room_is_refused_to_outsiders(modes: str) -> None:
    h = Harness()
    private_room(h, modes)
    carol = h.register("carol").send("TOPIC #a")
    assert carol.commands() == [n.ERR_NOTONCHANNEL]


def test_setting_secret_unsets_private_and_says_so() -> None:
    h = Harness()
    alice, bob = private_room(h, "+p")
    alice.send("MODE #a +s")
    assert bob.last("MODE").params == ("#a", "+s-p")
    room = h.core.rooms.get("#a")
    assert room is not None and "s" in room.modes and "p" not in room.modes


def test_setting_private_unsets_secret() -> None:
    h = Harness()
    alice, bob = private_room(h, "+s")
    alice.send("MODE #a +p")
    assert bob.last("MODE").params == ("#a", "+p-s")


def test_secret_and_private_in_one_command_leave_the_last_one() -> None:
    h = Harness()
    private_room(h, "+sp")
    room = h.core.rooms.get("#a")
    assert room is not None and "p" in room.modes and "s" not in room.modes


def test_isupport_lists_secret_and_private_as_flag_modes() -> None:
    client = Harness().connect().send("NICK alice").send("USER a 0 * :A")
    tokens = {p for m in client.take() if m.command == n.RPL_ISUPPORT for p in m.params}
    assert "CHANMODES=b,k,l,imnpst" in tokens


def test_server_operators_see_members_of_closed_rooms() -> None:
    h = Harness(opers={"root": OperBlock(hash_password(PASSWORD))})
    private_room(h, "+s")
    carol = h.register("carol").send(f"OPER root :{PASSWORD}")
    assert carol.has(n.RPL_YOUREOPER)
    carol.take()
    carol.send("NAMES #a")
    assert carol.last(n.RPL_NAMREPLY).params[-1] == "@alice bob"
