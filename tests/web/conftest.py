"""Fixtures for the web listener: a server with web_port=0, and Chromium pages for the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from tests.support import ServerThread
from tests.web.browser_support import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    Browser,
    playwright_api,
    require_browser,
    spki_hash,
)


@pytest.fixture
def web_server(make_server: Callable[..., ServerThread]) -> Callable[..., ServerThread]:
    """``web_server(**changes)``: a server with its web listener on a free port."""

    def start(**changes: Any) -> ServerThread:
        changes.setdefault("exempt", ("127.0.0.0/8",))
        return make_server(web_port=0, **changes)

    return start


@pytest.fixture(scope="module")
def browser(server_cert: trustme.LeafCert) -> Iterator[Any]:
    """One headless Chromium per test module, trusting the test certificate."""
    require_browser()
    flags = [*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={spki_hash(server_cert)}"]
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        yield launched
        launched.close()


@pytest.fixture
def pages(browser: Any) -> Iterator[Browser]:
    opened = Browser(browser)
    yield opened
    opened.close()
