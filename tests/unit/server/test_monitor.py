"""MONITOR and extended-monitor (IRCv3 monitor, extended-monitor)."""

from __future__ import annotations

from pathlib import Path

from securechat.protocol import numerics as n
from securechat.server.store import Store
from tests.unit.server.harness import Harness


def test_monitor_add_answers_730_for_online_and_731_for_offline_nicks() -> None:
    h = Harness()
    h.register("bob")
    alice = h.register("alice")
    replies = {m.command: m.params[-1] for m in alice.send("MONITOR + bob,carol").take()}
    assert replies[n.RPL_MONONLINE] == "bob!~bob@127.0.0.1"
    assert replies[n.RPL_MONOFFLINE] == "carol"


def test_a_watched_nick_signing_on_and_off_is_announced() -> None:
    h = Harness()
    alice = h.register("alice").send("MONITOR + carol")
    alice.take()
    carol = h.register("carol")
    assert alice.last(n.RPL_MONONLINE).params[-1] == "carol!~carol@127.0.0.1"
    carol.send("QUIT")
    assert alice.last(n.RPL_MONOFFLINE).params[-1] == "carol"


def test_a_rename_is_offline_for_the_old_nick_and_online_for_the_new() -> None:
    h = Harness()
    h.register("carol")
    alice = h.register("alice").send("MONITOR + carol,caroline")
    alice.take()
    h.clients[1].send("NICK caroline")
    replies = [(m.command, m.params[-1]) for m in alice.take()]
    assert replies == [
        (n.RPL_MONOFFLINE, "carol"),
        (n.RPL_MONONLINE, "caroline!~carol@127.0.0.1"),
    ]


def test_monitor_list_clear_remove_and_status() -> None:
    h = Harness()
    h.register("bob")
    alice = h.register("alice").send("MONITOR + bob,carol,dave").send("MONITOR - dave")
    alice.take()
    listed = alice.send("MONITOR L").take()
    assert [m.command for m in listed] == [n.RPL_MONLIST, n.RPL_ENDOFMONLIST]
    assert listed[0].params[-1] == "bob,carol"
    status = {m.command for m in alice.send("MONITOR S").take()}
    assert status == {n.RPL_MONONLINE, n.RPL_MONOFFLINE}
    alice.send("MONITOR C")
    assert [m.command for m in alice.send("MONITOR L").take()] == [n.RPL_ENDOFMONLIST]


def test_monitor_past_the_limit_gets_734_with_the_nicks_not_added() -> None:
    h = Harness(monitor_limit=2)
    alice = h.register("alice")
    full = alice.send("MONITOR + a1,a2,a3,a4").last(n.ERR_MONLISTFULL)
    assert full.params[1:3] == ("2", "a3,a4")
    alice.take()
    assert alice.send("MONITOR L").take()[0].params[-1] == "a1,a2"


def test_a_long_734_list_is_split_over_lines_never_cut() -> None:
    """Adversarial re-check: 45 ten-character nicks past the limit came back in one 734 cut
    mid-nick, its trailing text lost."""
    h = Harness(monitor_limit=1)
    alice = h.register("alice")
    nicks = [f"nobody{i:04d}" for i in range(40)]  # one line of input: 449 bytes
    alice.send("MONITOR + " + ",".join(nicks))
    full = [m for m in alice.take() if m.command == n.ERR_MONLISTFULL]
    assert len(full) > 1
    assert all(m.params[-1] == "Monitor list is full" for m in full)
    assert [nick for m in full for nick in m.params[2].split(",")] == nicks[1:]


def test_isupport_advertises_the_monitor_limit() -> None:
    client = Harness(monitor_limit=7).connect().send("NICK a").send("USER a 0 * :A")
    tokens = [t for m in client.take() if m.command == n.RPL_ISUPPORT for t in m.params[1:-1]]
    assert "MONITOR=7" in tokens


def test_a_disconnected_watcher_is_forgotten() -> None:
    h = Harness()
    alice = h.register("alice").send("MONITOR + carol")
    alice.send("QUIT")
    h.register("carol")
    assert h.core.monitors.watchers == {} and h.core.monitors.watching == {}


def test_extended_monitor_sends_away_and_setname_of_watched_users() -> None:
    h = Harness()
    caps = ("extended-monitor", "away-notify", "setname")
    watcher = h.register("watcher", caps=caps).send("MONITOR + bob")
    plain = h.register("plain", caps=("away-notify",)).send("MONITOR + bob")
    watcher.take(), plain.take()
    bob = h.register("bob")
    bob.send("AWAY :gone").send("SETNAME :Bob B")
    assert watcher.last("AWAY").params == ("gone",)
    assert watcher.last("SETNAME").params == ("Bob B",)
    assert not plain.has("AWAY")


def test_extended_monitor_sends_account_changes_of_watched_users(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"))
    watcher = h.register("watcher", caps=("extended-monitor", "account-notify"))
    watcher.send("MONITOR + bob")
    watcher.take()
    h.register("bob").send("PRIVMSG NickServ :REGISTER correct-horse")
    assert watcher.last("ACCOUNT").params == ("bob",)


def test_chghost_is_offered() -> None:
    client = Harness().connect().send("CAP LS 302")
    assert "chghost" in client.last("CAP").params[-1].split(" ")
