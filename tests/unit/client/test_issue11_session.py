"""Client core behaviours from the terminal-client review (issue 11), without sockets."""

from __future__ import annotations

from tests.unit.client.test_session import T0, joined, registered


def test_whois_idle_reply_says_connected_on_a_date_once() -> None:
    session = joined(registered())
    session.receive(":srv 317 alice bob 5 1767355200 :seconds idle, signon time", T0)
    text = session.shown.lines[-1].text
    assert "on on" not in text
    assert text.startswith("bob has been idle 5s, connected on ")
