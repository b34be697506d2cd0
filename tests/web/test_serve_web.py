"""`securechat serve` opens the web listener, says where, and serves the app there."""

from __future__ import annotations

import re
import ssl
import urllib.request
from pathlib import Path

from tests.e2e.test_serve import ServeProcess, dev_certs  # noqa: F401  (dev_certs: a fixture)
from tests.support import IrcClient


def test_serve_prints_the_browser_url_and_serves_the_app(dev_certs: Path) -> None:  # noqa: F811
    server = ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", "none"),
        *("--cert", str(dev_certs / "server.pem"), "--key", str(dev_certs / "server.key")),
    )
    try:
        line = server.wait_for_log("browsers:")
        match = re.search(r"https://localhost:(\d+)/", line)
        assert match is not None and match[1] != "8443"  # the tests ask for a free port
        context = ssl.create_default_context(cafile=str(dev_certs / "ca.pem"))
        with urllib.request.urlopen(match[0], context=context, timeout=10) as answer:
            assert answer.status == 200 and b"securechat" in answer.read()
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err


def test_serve_with_web_port_off_opens_no_web_listener(dev_certs: Path) -> None:  # noqa: F811
    server = ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", "none", "--web-port", "off"),
        *("--cert", str(dev_certs / "server.pem"), "--key", str(dev_certs / "server.key")),
    )
    try:  # a registered client: the server is up and its signal handlers are installed
        context = ssl.create_default_context(cafile=str(dev_certs / "ca.pem"))
        IrcClient.connect("127.0.0.1", server.port, context).register("alice").close()
    finally:
        code, err = server.stop()
    assert code == 0 and "browsers:" not in err
