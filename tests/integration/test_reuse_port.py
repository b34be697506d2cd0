"""``reuse_port`` (``--reuse-port``): processes that ask may listen on one port (how
``--workers``' children share it); without it the port stays exclusive."""

from __future__ import annotations

import pytest

from securechat.server.net.sockets import open_listeners


def test_listeners_that_ask_share_a_port() -> None:
    first = open_listeners("127.0.0.1", 0, reuse_port=True)
    port = first[0].getsockname()[1]
    second = open_listeners("127.0.0.1", port, reuse_port=True)
    try:
        assert second[0].getsockname()[1] == port
    finally:
        for sock in first + second:
            sock.close()


def test_without_reuse_port_the_port_is_exclusive() -> None:
    first = open_listeners("127.0.0.1", 0, reuse_port=True)
    try:
        with pytest.raises(OSError):
            open_listeners("127.0.0.1", first[0].getsockname()[1])
    finally:
        for sock in first:
            sock.close()
