"""Fixtures of the cluster tests: ``make_node`` starts a node of the test's cluster."""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.support import NODE_EXEMPT, StartNode
from tests.conftest import test_config
from tests.support import ServerThread


@pytest.fixture
def make_node(server_context: ssl.SSLContext, redis_url: str) -> Iterator[StartNode]:
    """``make_node(**config changes)``: a node named a, b, c… of one cluster (the test's own
    Redis database), loopback exempt from flood pacing."""
    started: list[ServerThread] = []
    names = itertools.count()

    def start(**changes: Any) -> ServerThread:
        changes.setdefault("node_name", "abcdefgh"[next(names)])
        changes.setdefault("cluster", redis_url)
        changes.setdefault("exempt", NODE_EXEMPT)
        node = ServerThread(test_config(**changes), server_context).start()
        started.append(node)
        return node

    yield start
    for node in reversed(started):
        node.stop()
