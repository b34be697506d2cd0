"""Room moderation: modes i k l m b, INVITE with invite-notify, and what they refuse."""

from __future__ import annotations

import pytest

from securechat.protocol import numerics as n
from securechat.server.config import ConfigError, validate
from tests.unit.server.harness import FakeClient, Harness


def setup_room(h: Harness, *caps: str) -> tuple[FakeClient, FakeClient]:
    """alice (operator of #a) and bob (plain member); inboxes emptied."""
    alice, bob = h.register("alice", caps=caps), h.register("bob")
    alice.send("JOIN #a")
    bob.send("JOIN #a")
    alice.take()
    bob.take()
    return alice, bob


def joined(client: FakeClient, room: str = "#a") -> bool:
    return any(m.command == "JOIN" and m.params[0] == room for m in client.take())


# ---- MODE: key, limit and the 324 reply -------------------------------------------------


def test_mode_query_shows_key_and_limit_to_members() -> None:
    alice, _ = setup_room(Harness())
    alice.send("MODE #a +kl sesame 10").take()
    alice.send("MODE #a")
    assert alice.last(n.RPL_CHANNELMODEIS).params[2:] == ("+klnt", "sesame", "10")


def test_mode_query_hides_key_from_outsiders() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +k sesame")
    carol = h.register("carol").send("MODE #a")
    assert carol.last(n.RPL_CHANNELMODEIS).params[2:] == ("+knt", "*")


def test_setting_a_key_is_announced_with_the_key() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +k sesame")
    assert bob.last("MODE").params == ("#a", "+k", "sesame")


def test_plus_k_without_a_key_gets_461() -> None:
    alice, _ = setup_room(Harness())
    assert alice.send("MODE #a +k").has(n.ERR_NEEDMOREPARAMS)


def test_key_with_a_comma_gets_696() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +k a,b")
    assert alice.last(n.ERR_INVALIDMODEPARAM).params[1:3] == ("#a", "k") and not bob.has("MODE")


def test_minus_k_without_a_parameter_removes_the_key() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +k sesame").send("MODE #a -k")
    assert bob.last("MODE").params == ("#a", "-k", "*")


def test_minus_k_ignores_the_value_given() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +k sesame").send("MODE #a -k wrong")
    assert joined(h.register("carol").send("JOIN #a"))


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "1234567890", "²"])
def test_limit_must_be_a_positive_whole_number(limit: str) -> None:
    alice, bob = setup_room(Harness())
    alice.send(f"MODE #a +l {limit}")
    assert alice.has(n.ERR_INVALIDMODEPARAM) and not bob.has("MODE")


def test_minus_l_takes_no_parameter_and_removes_the_limit() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +l 2").send("MODE #a -l+v bob")
    assert bob.last("MODE").params == ("#a", "-l+v", "bob")


def test_non_operator_cannot_set_a_key() -> None:
    _, bob = setup_room(Harness())
    assert bob.send("MODE #a +k sesame").has(n.ERR_CHANOPRIVSNEEDED)


def test_parameters_beyond_four_per_command_are_ignored() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +bbbbb a b c d e")
    assert bob.last("MODE").params[1:] == ("+bbbb", "a!*@*", "b!*@*", "c!*@*", "d!*@*")


# ---- JOIN against +k, +l, +i --------------------------------------------------------------


def test_join_without_the_key_gets_475() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +k sesame")
    assert h.register("carol").send("JOIN #a wrong").last(n.ERR_BADCHANNELKEY).params[1] == "#a"


def test_keys_in_join_go_with_rooms_in_order() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +k sesame")
    carol = h.register("carol").send("JOIN #new,#a x,sesame")
    channels = [m.params[0] for m in carol.take() if m.command == "JOIN"]
    assert channels == ["#new", "#a"]


def test_full_room_gets_471() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +l 2")
    assert h.register("carol").send("JOIN #a").has(n.ERR_CHANNELISFULL)


def test_invite_only_room_gets_473() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +i")
    assert h.register("carol").send("JOIN #a").has(n.ERR_INVITEONLYCHAN)


def test_invited_nick_may_join_an_invite_only_room() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    carol = h.register("carol")
    alice.send("MODE #a +i").send("INVITE carol #a")
    assert joined(carol.send("JOIN #a"))


def test_invite_is_used_up_by_joining() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    carol = h.register("carol")
    alice.send("MODE #a +i").send("INVITE carol #a")
    carol.send("JOIN #a").send("PART #a").take()
    assert carol.send("JOIN #a").has(n.ERR_INVITEONLYCHAN)


def test_invite_lets_the_invitee_past_the_limit() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    carol = h.register("carol")
    alice.send("MODE #a +l 2").send("INVITE carol #a")
    assert joined(carol.send("JOIN #a"))


def test_invite_does_not_override_a_key() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    carol = h.register("carol")
    alice.send("MODE #a +k sesame").send("INVITE carol #a")
    assert carol.send("JOIN #a").has(n.ERR_BADCHANNELKEY)


def test_invite_to_an_invite_only_room_needs_an_operator() -> None:
    h = Harness()
    alice, bob = setup_room(h)
    h.register("carol")
    alice.send("MODE #a +i")
    assert bob.send("INVITE carol #a").has(n.ERR_CHANOPRIVSNEEDED)


def test_invite_follows_the_invitee_across_a_nick_change() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    carol = h.register("carol")
    alice.send("MODE #a +i").send("INVITE carol #a")
    carol.send("NICK caroline")
    assert joined(carol.send("JOIN #a"))


def test_invite_is_forgotten_when_the_invitee_quits() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    carol = h.register("carol")
    alice.send("MODE #a +i").send("INVITE carol #a")
    carol.send("QUIT")
    assert h.register("carol").send("JOIN #a").has(n.ERR_INVITEONLYCHAN)


def test_invite_is_forgotten_when_the_room_empties() -> None:
    h = Harness()
    alice = h.register("alice").send("JOIN #a")
    carol, mallory = h.register("carol"), h.register("mallory")
    alice.send("INVITE carol #a").send("PART #a")
    mallory.send("JOIN #a").send("MODE #a +i")
    assert carol.send("JOIN #a").has(n.ERR_INVITEONLYCHAN)


# ---- bans ---------------------------------------------------------------------------------


def test_ban_is_completed_to_a_full_mask_and_announced() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +b carol")
    assert bob.last("MODE").params == ("#a", "+b", "carol!*@*")


def test_banned_user_cannot_join() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +b carol")
    assert h.register("carol").send("JOIN #a").last(n.ERR_BANNEDFROMCHAN).params[1] == "#a"


def test_ban_wildcards_match_user_and_host() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +b *!~c?rol@127.0.*")
    assert h.register("carol").send("JOIN #a").has(n.ERR_BANNEDFROMCHAN)


def test_ban_does_not_catch_others() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +b *!~carol@*")
    assert joined(h.register("dave").send("JOIN #a"))


def test_ban_list_shows_mask_setter_and_time_then_368() -> None:
    h = Harness()
    alice, bob = setup_room(h)
    alice.send("MODE #a +b carol")
    bob.take()
    bob.send("MODE #a +b")
    ban = bob.last(n.RPL_BANLIST).params[1:]
    assert ban == ("#a", "carol!*@*", "alice!~alice@127.0.0.1", str(int(h.now))) and bob.has(
        n.RPL_ENDOFBANLIST
    )


def test_setting_the_same_ban_twice_announces_it_once() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +b carol").send("MODE #a +b CAROL!*@*")
    assert [m.command for m in bob.take()] == ["MODE"]


def test_unban_removes_the_ban() -> None:
    h = Harness()
    alice, bob = setup_room(h)
    alice.send("MODE #a +b carol").send("MODE #a -b Carol")
    assert bob.last("MODE").params == ("#a", "-b", "carol!*@*")
    assert joined(h.register("carol").send("JOIN #a"))


def test_unban_of_an_unknown_mask_changes_nothing() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a -b nobody")
    assert not bob.has("MODE") and not alice.has("MODE")


def test_ban_mask_starting_with_a_colon_gets_696() -> None:
    alice, _ = setup_room(Harness())
    assert alice.send("MODE #a +b ::x").has(n.ERR_INVALIDMODEPARAM)


def test_full_ban_list_gets_478() -> None:
    alice, bob = setup_room(Harness(max_bans_per_room=2))
    alice.send("MODE #a +bbb a b c")
    assert alice.has(n.ERR_BANLISTFULL) and bob.last("MODE").params[1] == "+bb"


def test_banned_member_cannot_speak() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +b bob")
    assert bob.send("PRIVMSG #a :hello").last(n.ERR_CANNOTSENDTOCHAN).params[1] == "#a"


def test_banned_member_with_voice_can_speak() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +bv bob bob").take()
    bob.send("PRIVMSG #a :hello")
    assert alice.last("PRIVMSG").params[1] == "hello"


def test_unbanned_member_can_speak_again() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +b bob")
    bob.send("PRIVMSG #a :muted")
    alice.send("MODE #a -b bob").take()
    bob.send("PRIVMSG #a :back")
    assert alice.last("PRIVMSG").params[1] == "back"


def test_member_renamed_into_a_banned_nick_is_silenced() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +b robert")
    bob.send("PRIVMSG #a :before").send("NICK robert")
    assert bob.send("PRIVMSG #a :after").has(n.ERR_CANNOTSENDTOCHAN)


def test_banned_member_cannot_change_nick() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +b bob").take()
    bob.send("NICK robert")
    assert bob.last(n.ERR_BANONCHAN).params[1:3] == ("robert", "#a") and not alice.has("NICK")


def test_banned_member_can_still_part() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +b bob").take()
    bob.send("PART #a")
    assert alice.last("PART").params == ("#a",)


# ---- +m -----------------------------------------------------------------------------------


def test_moderated_room_silences_members_without_voice() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +m")
    assert bob.send("PRIVMSG #a :hi").has(n.ERR_CANNOTSENDTOCHAN)


def test_moderated_room_lets_voiced_members_speak() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +mv bob").take()
    bob.send("PRIVMSG #a :hi")
    assert alice.last("PRIVMSG").params[1] == "hi"


def test_moderated_room_lets_operators_speak() -> None:
    alice, bob = setup_room(Harness())
    alice.send("MODE #a +m").send("PRIVMSG #a :ops speak")
    assert bob.last("PRIVMSG").params[1] == "ops speak"


def test_moderated_room_refuses_outsiders_even_without_n() -> None:
    h = Harness()
    alice, _ = setup_room(h)
    alice.send("MODE #a +m-n")
    assert h.register("carol").send("PRIVMSG #a :hi").has(n.ERR_CANNOTSENDTOCHAN)


# ---- invite-notify ------------------------------------------------------------------------


def test_invite_notify_shows_operators_the_invite() -> None:
    h = Harness()
    alice, bob = setup_room(h, "invite-notify")
    h.register("carol")
    alice.send("MODE #a +o bob").take()
    bob.send("INVITE carol #a")
    assert alice.last("INVITE").params == ("carol", "#a")


def test_invite_notify_needs_the_capability() -> None:
    h = Harness()
    alice, bob = setup_room(h)
    h.register("carol")
    alice.send("MODE #a +o bob").take()
    bob.send("INVITE carol #a")
    assert not alice.has("INVITE")


def test_invite_notify_skips_plain_members_of_an_invite_only_room() -> None:
    h = Harness()
    alice = h.register("alice").send("JOIN #a").send("MODE #a +i")
    bob = h.register("bob", caps=("invite-notify",))
    h.register("carol")
    alice.send("INVITE bob #a")
    bob.send("JOIN #a").take()
    alice.send("INVITE carol #a")
    assert not bob.has("INVITE")


def test_invite_notify_skips_the_inviter() -> None:
    h = Harness()
    alice, _ = setup_room(h, "invite-notify")
    h.register("carol")
    alice.send("INVITE carol #a")
    assert not alice.has("INVITE") and alice.has(n.RPL_INVITING)


# ---- advertising and configuration --------------------------------------------------------


def test_isupport_advertises_room_modes_and_ban_list_size() -> None:
    h = Harness(max_bans_per_room=7)
    client = h.connect().send("NICK alice").send("USER a 0 * :A")
    tokens = {p for m in client.take() if m.command == n.RPL_ISUPPORT for p in m.params}
    assert {"CHANMODES=b,k,l,imnpst", "MAXLIST=b:7"} <= tokens


def test_cap_ls_offers_invite_notify() -> None:
    client = Harness().connect().send("CAP LS 302")
    assert "invite-notify" in client.last("CAP").params[-1].split()


def test_max_bans_per_room_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_bans_per_room"):
        validate("max_bans_per_room", 0)
