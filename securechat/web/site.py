"""What the web listener serves and whom it lets in: static files, headers, Origin, proxies.

- The app is package data (``securechat/web/static``), read once into memory when the listener
  starts: a request can only name a file in that table, so there is no path traversal and no
  directory listing (RFC 9110 §9.3.1 leaves what a GET returns to us).
- Every response carries the security headers below. The Content-Security-Policy allows only
  our own scripts and styles, no inline script and no ``eval``, and WebSocket connections to
  this host (``connect-src 'self'`` does not cover ``wss:`` in every browser, so the origin is
  named too; research/scale-out-and-web.md §2.5).
- A WebSocket handshake must come from an allowed Origin (RFC 6455 §10.2, against cross-site
  WebSocket hijacking): ``web_allowed_origins``, or by default this server's own origin (the
  ``https://`` + Host the browser asked for). A client that sends no Origin is not a browser
  (a browser always sends one on a WebSocket handshake, RFC 6455 §4.1) and is let in, as on
  the TLS port.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from importlib import resources

from securechat.server.config import ServerConfig
from securechat.web.http import REASONS, Request, response

WEBSOCKET_PATH = "/webirc"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}
HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
HSTS_SECONDS = 180 * 24 * 3600


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static() -> dict[str, StaticFile]:
    """The bundled app by URL path; ``/`` is index.html."""
    files: dict[str, StaticFile] = {}
    for entry in resources.files("securechat.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files["/" + entry.name] = StaticFile(body, CONTENT_TYPES[suffix], etag)
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


def security_headers(host: str) -> list[tuple[str, str]]:
    websocket = f" wss://{host}" if HOST.fullmatch(host) else ""
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'{websocket}; manifest-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    return [
        ("Content-Security-Policy", policy),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Strict-Transport-Security", f"max-age={HSTS_SECONDS}"),
    ]


class Site:
    """Answers the requests that are not a WebSocket upgrade, and judges the ones that are."""

    def __init__(self, static: dict[str, StaticFile]) -> None:
        self.static = static

    def answer(self, request: Request) -> bytes:
        """The whole response to a static-file request (GET or HEAD)."""
        headers = security_headers(request.header("host"))
        if request.method not in ("GET", "HEAD"):
            return error_response(405, [*headers, ("Allow", "GET, HEAD")])
        if request.path == WEBSOCKET_PATH:
            return error_response(426, [*headers, ("Upgrade", "websocket")])
        found = self.static.get(request.path)
        if found is None:
            return error_response(404, headers)
        headers += [("ETag", found.etag), ("Cache-Control", "no-cache")]
        if found.etag in request.header("if-none-match"):
            return response(304, headers)
        headers.append(("Content-Type", found.content_type))
        full = response(200, headers, found.body)
        return full[: len(full) - len(found.body)] if request.method == "HEAD" else full


def error_response(status: int, headers: list[tuple[str, str]]) -> bytes:
    body = f"{status} {REASONS.get(status, 'Error')}\n".encode()
    return response(status, [*headers, ("Content-Type", "text/plain; charset=utf-8")], body)


def is_upgrade(request: Request) -> bool:
    return request.path == WEBSOCKET_PATH and "websocket" in request.header("upgrade").lower()


def origin_allowed(request: Request, config: ServerConfig) -> bool:
    origin = request.header("origin")
    if not origin:
        return True  # not a browser: nothing to hijack (see the module docstring)
    if config.web_allowed_origins:
        return origin in config.web_allowed_origins
    host = request.header("host")
    return bool(HOST.fullmatch(host)) and origin.lower() == f"https://{host}".lower()


def client_address(peer: str, request: Request, config: ServerConfig) -> str:
    """The address a session is known by: behind a trusted proxy (``web_proxies``), the
    nearest untrusted address in X-Forwarded-For; else the socket's peer."""
    if not config.web_proxies or not _in_networks(peer, config.web_proxies):
        return peer
    hops = [hop.strip() for hop in request.header("x-forwarded-for").split(",") if hop.strip()]
    for hop in reversed(hops):  # each proxy appends the address it saw: trust from the right
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            return peer  # a garbled header: keep what we know
        if not _in_networks(address, config.web_proxies):
            return address
    return peer


def _in_networks(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network) for network in networks)
