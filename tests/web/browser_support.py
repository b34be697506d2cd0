"""Driving the bundled web app in headless Chromium (Debian's /usr/bin/chromium, Playwright)
against the real server over TLS: the browser trusts the test certificate by its SPKI hash.

Every page records console errors, uncaught exceptions and CSP violations; tests end by
asserting there were none. A browser test module calls ``require_browser()`` at import; the
``browser`` and ``pages`` fixtures are in conftest.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support import IrcClient, ServerThread
from tests.web.web_support import web_port

CHROMIUM = "/usr/bin/chromium"
# As root, offline (research/scale-out-and-web.md §2.6): no sandbox, no background traffic.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
# Where the screenshot test also saves its picture (the README's docs/web-client.png).
SCREENSHOT_ENV = "SECURECHAT_WEB_SCREENSHOT"
RECORDER = """
window.__problems = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__problems.push("CSP " + e.violatedDirective + " " + e.blockedURI);
});
"""

try:
    from playwright import sync_api as playwright_api
except ImportError:  # the browser tests are skipped (require_browser)
    playwright_api = None


def require_browser() -> None:
    """Skip the calling test module when Playwright or Debian's chromium is missing."""
    if playwright_api is None:
        pytest.skip("playwright is not installed", allow_module_level=True)
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(
            f"{CHROMIUM} is missing (scripts/test installs Debian's chromium)",
            allow_module_level=True,
        )


Page = Any  # playwright.sync_api.Page
Start = Callable[..., ServerThread]


def spki_hash(cert: trustme.LeafCert) -> str:
    leaf = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class Browser:
    """Opens pages (one browser profile each) and remembers what went wrong on them."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.problems: list[str] = []
        self.pages: list[Page] = []
        self.contexts: list[Any] = []

    def page(self, width: int = 1280, height: int = 720) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        context.add_init_script(RECORDER)  # injected by the driver: not an inline script
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        page.on("pageerror", lambda e: self.problems.append(f"exception: {e}"))
        self.pages.append(page)
        return page

    def all_problems(self) -> list[str]:
        found = list(self.problems)
        for page in self.pages:
            if not page.is_closed():
                found += page.evaluate("window.__problems || []")
        return found

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def url(server: ServerThread) -> str:
    return f"https://localhost:{web_port(server)}/"


def log_in(page: Page, server: ServerThread, nick: str, password: str = "") -> None:
    page.goto(url(server))
    page.get_by_label("Nickname").fill(nick)
    if password:
        page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Connect").click()
    room("#general", page).wait_for()


def room(name: str, page: Page) -> Any:
    return page.get_by_role("navigation", name="Rooms").get_by_role("button", name=name)


def say(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def shown(page: Page, text: str) -> Any:
    return page.get_by_role("log").get_by_text(text, exact=True)


def raw_client(server: ServerThread, context: Any, nick: str) -> IrcClient:
    client = IrcClient.connect(server.host, server.port, context).register(nick)
    client.send("JOIN #general")
    client.expect(r" 366 ")
    return client
