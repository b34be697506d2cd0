"""Each event's info lines are written by the node it came from only (cluster/quiet_log.py)."""

from __future__ import annotations

import logging
import ssl

import pytest

from tests.cluster.support import StartNode, client
from tests.support import sync


def _events(caplog: pytest.LogCaptureFixture, name: str, **fields: str) -> list[str]:
    wanted = [f"event={name}", *(f"{key}={value}" for key, value in fields.items())]
    return [r.getMessage() for r in caplog.records if all(w in r.getMessage() for w in wanted)]


def test_a_registration_is_logged_once_by_three_nodes(
    make_node: StartNode, client_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securechat.server")
    nodes = [make_node() for _ in range(3)]
    others = [client(node, client_context, f"watcher{i}") for i, node in enumerate(nodes[1:])]
    alice = client(nodes[0], client_context, "alice")
    for conn in (alice, *others):
        sync(conn, "applied")  # every node applied alice's registration before its watcher's PING
    assert len(_events(caplog, "register", nick="alice")) == 1


def test_a_bug_while_applying_is_still_logged_by_every_node() -> None:
    """Warnings and errors pass the filter even while a remote event is applied."""
    from securechat.server.cluster.quiet_log import REMOTE_EVENTS

    record = logging.LogRecord("securechat.server", logging.ERROR, __file__, 1, "bug", (), None)
    info = logging.LogRecord("securechat.server", logging.INFO, __file__, 1, "join", (), None)
    REMOTE_EVENTS.set_quiet(True)
    try:
        assert REMOTE_EVENTS.filter(record)
        assert not REMOTE_EVENTS.filter(info)
    finally:
        REMOTE_EVENTS.set_quiet(False)
    assert REMOTE_EVENTS.filter(info)
