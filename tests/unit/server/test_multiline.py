"""draft/multiline: one message of several lines, batched or line by line, kept as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol.message import Message
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

ML = ("draft/multiline", "batch", "message-tags", "server-time", "echo-message")


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(store=Store.open(tmp_path / "db.sqlite"))


def in_room(*clients: FakeClient) -> None:
    for client in clients:
        client.send("JOIN #a")
    for client in clients:
        client.take()


def send_batch(client: FakeClient, target: str, *lines: str, ref: str = "b1") -> None:
    """Each line is sent as given, e.g. ``"@draft/multiline-concat PRIVMSG #a :more"``; a
    plain text becomes ``PRIVMSG <target> :text``."""
    client.send(f"BATCH +{ref} draft/multiline {target}")
    for line in lines:
        raw = line if line.startswith(("@", "PRIVMSG ", "NOTICE ")) else f"PRIVMSG {target} :{line}"
        tags, _, rest = raw.partition(" ") if raw.startswith("@") else ("@", "", raw)
        prefix = f"{tags};batch={ref}" if tags != "@" else f"@batch={ref}"
        client.send(f"{prefix} {rest}")
    client.send(f"BATCH -{ref}")


def test_the_cap_advertises_its_limits(h: Harness) -> None:
    client = h.connect()
    client.send("CAP LS 302")
    offered = " ".join(m.params[-1] for m in client.take())
    assert "draft/multiline=max-bytes=4096,max-lines=24" in offered


def test_a_capable_client_gets_one_batch_with_concat_kept(h: Harness) -> None:
    alice, bob = h.register("alice", ML), h.register("bob", ML)
    in_room(alice, bob)
    send_batch(alice, "#a", "hello", "how is ", "@draft/multiline-concat PRIVMSG #a :everyone?")
    got = bob.take()
    assert [m.command for m in got] == ["BATCH", "PRIVMSG", "PRIVMSG", "PRIVMSG", "BATCH"]
    opening = got[0]
    assert opening.params[1:] == ("draft/multiline", "#a") and "msgid" in opening.tags
    ref = opening.params[0][1:]
    assert all(m.tags.get("batch") == ref for m in got[1:4])
    assert "draft/multiline-concat" in got[3].tags and got[4].params == (f"-{ref}",)
    assert alice.has("BATCH")  # echo-message


def test_a_client_without_the_cap_gets_the_lines_without_blank_ones(h: Harness) -> None:
    alice, plain = h.register("alice", ML), h.register("plain", ("message-tags",))
    in_room(alice, plain)
    send_batch(alice, "#a", "first", "", "third")
    got = plain.take()
    assert [(m.command, m.params[1]) for m in got] == [("PRIVMSG", "first"), ("PRIVMSG", "third")]
    assert "msgid" in got[0].tags and "msgid" not in got[1].tags


def test_history_returns_it_as_one_message_in_a_batch_or_line_by_line(h: Harness) -> None:
    alice = h.register("alice", (*ML, "draft/chathistory"))
    in_room(alice)
    send_batch(alice, "#a", "line one", "line two")
    alice.take()
    alice.send("CHATHISTORY LATEST #a * 1")
    got = alice.take()
    assert [m.command for m in got] == ["BATCH", "BATCH", "PRIVMSG", "PRIVMSG", "BATCH", "BATCH"]
    assert got[1].params[1:] == ("draft/multiline", "#a")
    assert got[1].tags["batch"] == got[0].params[0][1:]  # nested in the chathistory batch
    assert h.store is not None
    (stored,) = h.store.latest("#a", 10)
    assert stored.text == "line one\nline two" and len(stored.lines) == 2
    plain = h.register("plain", ("batch", "server-time"))
    plain.send("JOIN #a")
    texts = [m.params[1] for m in plain.take() if m.command == "PRIVMSG"]
    assert texts == ["line one", "line two"]


def test_a_private_multiline_message_reaches_the_nick(h: Harness) -> None:
    alice, bob = h.register("alice", ML), h.register("bob", ML)
    send_batch(alice, "bob", "a", "b")
    assert [m.command for m in bob.take()] == ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"]


def fail_of(client: FakeClient) -> tuple[str, ...]:
    fails: list[Message] = [m for m in client.take() if m.command == "FAIL"]
    assert len(fails) == 1, fails
    return fails[0].params


def test_too_many_bytes_fails_once_and_delivers_nothing(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), multiline_max_bytes=10)
    alice, bob = h.register("alice", ML), h.register("bob", ML)
    in_room(alice, bob)
    send_batch(alice, "#a", "12345", "12345", "more")  # 5 + 1 + 5 = 11 bytes
    assert fail_of(alice)[:3] == ("BATCH", "MULTILINE_MAX_BYTES", "10")
    assert not bob.take()


def test_too_many_lines_fails(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), multiline_max_lines=2)
    alice = h.register("alice", ML)
    in_room(alice)
    send_batch(alice, "#a", "1", "2", "3")
    assert fail_of(alice)[:3] == ("BATCH", "MULTILINE_MAX_LINES", "2")


def test_a_line_to_another_target_fails(h: Harness) -> None:
    alice = h.register("alice", ML)
    in_room(alice)
    send_batch(alice, "#a", "ok", "PRIVMSG #b :elsewhere")
    assert fail_of(alice)[:4] == ("BATCH", "MULTILINE_INVALID_TARGET", "#a", "#b")


@pytest.mark.parametrize(
    "lines",
    [
        ("", ""),  # blank lines only
        ("ok", "@draft/multiline-concat PRIVMSG #a :"),  # a blank concat line
        ("ok", "NOTICE #a :not a privmsg"),
    ],
)
def test_invalid_batches_fail_with_multiline_invalid(h: Harness, lines: tuple[str, ...]) -> None:
    alice = h.register("alice", ML)
    in_room(alice)
    send_batch(alice, "#a", *lines)
    assert fail_of(alice)[:2] == ("BATCH", "MULTILINE_INVALID")


def test_a_line_for_no_open_batch_and_a_batch_without_the_cap_fail(h: Harness) -> None:
    alice = h.register("alice", ML)
    alice.send("@batch=nope PRIVMSG #a :stray")
    assert fail_of(alice)[:2] == ("BATCH", "MULTILINE_INVALID")
    plain = h.register("plain", ("batch",))
    plain.send("BATCH +x draft/multiline #a")
    assert fail_of(plain)[:2] == ("BATCH", "MULTILINE_INVALID")


def test_a_batch_to_a_room_one_cannot_speak_in_gets_404(h: Harness) -> None:
    alice, bob = h.register("alice", ML), h.register("bob", ML)
    in_room(alice)
    alice.send("MODE #a +m")
    alice.take()
    bob.send("JOIN #a")
    bob.take()
    send_batch(bob, "#a", "hi", "there")
    assert bob.last("404").params[1] == "#a"
    assert not any(m.command == "BATCH" for m in alice.take())


def test_each_device_of_a_user_gets_the_form_its_own_caps_ask_for(h: Harness) -> None:
    laptop = h.register("alice", ML)
    laptop.send("PRIVMSG NickServ :REGISTER correct-horse")
    phone = h.register("alicephone", ("message-tags",))
    phone.send("PRIVMSG NickServ :IDENTIFY alice correct-horse")  # a second device of alice
    laptop.take(), phone.take()
    bob = h.register("bob", ML)
    send_batch(bob, "alice", "one", "two")
    assert [m.command for m in laptop.take()] == ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"]
    assert [m.params[1] for m in phone.take() if m.command == "PRIVMSG"] == ["one", "two"]
