"""Fixtures for the web listener: a server with web_port=0 and a client context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import ServerThread


@pytest.fixture
def web_server(make_server: Callable[..., ServerThread]) -> Callable[..., ServerThread]:
    """``web_server(**changes)``: a server with its web listener on a free port."""

    def start(**changes: Any) -> ServerThread:
        changes.setdefault("exempt", ("127.0.0.0/8",))
        return make_server(web_port=0, **changes)

    return start
