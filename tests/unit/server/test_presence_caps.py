"""away-notify and userhost-in-names (IRCv3)."""

from __future__ import annotations

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness


def test_away_notify_tells_room_peers_with_the_cap_when_someone_goes_away_and_back() -> None:
    """IRCv3 away-notify: ``:nick!user@host AWAY :text``, and ``AWAY`` alone on return."""
    h = Harness()
    watcher = h.register("watcher", caps=("away-notify",)).send("JOIN #a")
    plain = h.register("plain").send("JOIN #a")
    stranger = h.register("stranger", caps=("away-notify",))  # shares no room with alice
    alice = h.register("alice").send("JOIN #a")
    watcher.take(), plain.take()
    alice.send("AWAY :lunch")
    gone = watcher.last("AWAY")
    assert gone.params == ("lunch",) and (gone.source or "").startswith("alice!")
    alice.send("AWAY")
    assert watcher.last("AWAY").params == ()
    assert not plain.has("AWAY")
    assert "AWAY" not in stranger.commands()


def test_away_notify_sends_an_away_joiners_state_after_its_join() -> None:
    h = Harness()
    watcher = h.register("watcher", caps=("away-notify",)).send("JOIN #a")
    watcher.take()
    h.register("alice").send("AWAY :busy").send("JOIN #a")
    commands = watcher.commands()
    assert commands[-2:] == ["JOIN", "AWAY"]


def test_userhost_in_names_gives_full_masks_in_names() -> None:
    h = Harness()
    h.register("bob").send("JOIN #a")
    alice = h.register("alice", caps=("userhost-in-names",)).send("JOIN #a")
    names = alice.last(n.RPL_NAMREPLY).params[-1].split(" ")
    assert set(names) == {"@bob!~bob@127.0.0.1", "alice!~alice@127.0.0.1"}


def test_the_new_caps_are_offered() -> None:
    client = Harness().connect().send("CAP LS 302")
    offered = client.last("CAP").params[-1].split(" ")
    assert {"away-notify", "userhost-in-names"} <= set(offered)


# ---- setname (IRCv3) ----------------------------------------------------------------------


def test_setname_changes_the_realname_and_tells_peers_with_the_cap() -> None:
    h = Harness()
    watcher = h.register("watcher", caps=("setname",)).send("JOIN #a")
    plain = h.register("plain").send("JOIN #a")
    alice = h.register("alice", caps=("setname",)).send("JOIN #a")
    watcher.take(), plain.take(), alice.take()
    alice.send("SETNAME :Alice Liddell")
    assert alice.last("SETNAME").params == ("Alice Liddell",)
    seen = watcher.last("SETNAME")
    assert seen.params == ("Alice Liddell",) and (seen.source or "").startswith("alice!")
    assert not plain.has("SETNAME")
    whois = plain.send("WHOIS alice").last(n.RPL_WHOISUSER)
    assert whois.params[-1] == "Alice Liddell"


def test_setname_with_an_empty_name_fails_invalid_realname() -> None:
    alice = Harness().register("alice", caps=("setname",))
    fail = alice.send("SETNAME :").last("FAIL")
    assert fail.params[:2] == ("SETNAME", "INVALID_REALNAME")
