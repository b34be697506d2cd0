"""`securechat serve` start-up helpers that touch the process, not the network."""

import logging
import resource

import pytest

from securechat.server.config import ServerConfig
from securechat.server.main import raise_open_files_limit


def test_soft_open_files_limit_is_raised_to_the_hard_limit() -> None:
    limit = raise_open_files_limit(ServerConfig(max_connections=10))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == limit and (hard == resource.RLIM_INFINITY or soft == hard)


def test_a_limit_below_max_connections_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="securechat"):
        raise_open_files_limit(ServerConfig(max_connections=10**9))
    assert "event=open_files_limit_low" in caplog.text and "wanted=1000000064" in caplog.text


def test_no_warning_when_the_limit_suffices(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="securechat"):
        raise_open_files_limit(ServerConfig(max_connections=10))
    assert "open_files_limit_low" not in caplog.text
