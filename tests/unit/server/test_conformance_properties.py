"""Property tests for the issue-13 inputs a client controls: WHO masks and WHOX fields,
labels, MONITOR lists and TAGMSG tags. Whatever the input, no traceback, and the reply
shapes the specs promise hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness

_mask_text = st.text(alphabet="*?ab~!@.#%,0123456789 :\\\u00e9", max_size=200)


@settings(max_examples=150, deadline=None)
@given(mask=_mask_text, options=_mask_text)
def test_who_always_ends_with_exactly_one_315(mask: str, options: str) -> None:
    """Modern IRC WHO: whatever the mask, the answer ends with one RPL_ENDOFWHO."""
    h = Harness()
    h.register("bob").send("JOIN #a")
    alice = h.register("alice")
    mask = mask.strip(" :") or "*"
    replies = alice.send(f"WHO {mask} :{options}").take()
    commands = [m.command for m in replies]
    assert commands.count(n.RPL_ENDOFWHO) == 1 and commands[-1] == n.RPL_ENDOFWHO
    assert set(commands) <= {n.RPL_WHOREPLY, n.RPL_WHOSPCRPL, n.RPL_ENDOFWHO}


_commands = st.sampled_from(
    ["PING :x", "PONG x", "LUSERS", "WHO *", "FROB", "MODE alice", "JOIN #a", "HELP", "ISON a b"]
)
_labels = st.text(alphabet="abc=;\\ \u00e9+-/", min_size=1, max_size=80)


@settings(max_examples=150, deadline=None)
@given(label=_labels, line=_commands)
def test_a_labeled_command_gets_exactly_one_labeled_response(label: str, line: str) -> None:
    """IRCv3 labeled-response: one ACK, one labeled reply, or one labeled batch."""
    h = Harness()
    alice = h.register("alice", caps=("labeled-response", "batch", "message-tags"))
    escaped = label.replace("\\", "\\\\").replace(";", "\\:").replace(" ", "\\s")
    replies = alice.send(f"@label={escaped} {line}").take()
    labeled = [m for m in replies if "label" in m.tags]
    if len(label.encode()) > 64:  # beyond the spec's limit: treated as unlabeled
        assert labeled == []
        return
    assert len(labeled) == 1 and labeled[0].tags["label"] == label
    if labeled[0].command == "BATCH":
        ref = labeled[0].params[0][1:]
        assert replies[-1].params == (f"-{ref}",)
        assert all(m.tags.get("batch") == ref for m in replies[1:-1])
    else:
        assert len(replies) == 1


@settings(max_examples=100, deadline=None)
@given(targets=st.lists(st.text(alphabet="ab,*! \u00e9", max_size=12), max_size=8))
def test_monitor_lists_never_exceed_the_limit(targets: list[str]) -> None:
    h = Harness(monitor_limit=3)
    alice = h.register("alice")
    for target in targets:
        alice.send(f"MONITOR + :{target}")
    session = h.core.nicks.get("alice")
    assert session is not None and len(h.core.monitors.of(session)) <= 3
