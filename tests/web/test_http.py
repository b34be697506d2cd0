"""The web listener's HTTP side over real TLS: static files, headers, and refusals."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from tests.support import DEFAULT_TIMEOUT, ServerThread
from tests.web.web_support import get, https_exchange, parse_answers, web_port

Start = Callable[..., ServerThread]


def test_root_serves_the_app_with_strict_security_headers(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    answer = get(web_server(), client_context, "/")
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="/app.js">' in answer.body
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy and "wss://localhost" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    assert answer.headers["etag"].startswith('"')


def test_scripts_and_styles_have_their_content_types(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server()
    assert (
        get(server, client_context, "/app.js").headers["content-type"].startswith("text/javascript")
    )
    assert get(server, client_context, "/app.css").headers["content-type"].startswith("text/css")


def test_matching_etag_answers_304_without_a_body(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server()
    etag = get(server, client_context, "/app.js").headers["etag"]
    answer = get(server, client_context, "/app.js", f"If-None-Match: {etag}\r\n")
    assert answer.status == 304 and answer.body == b""


def test_head_answers_the_headers_only(web_server: Start, client_context: ssl.SSLContext) -> None:
    request = b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    data = https_exchange(web_server(), client_context, request)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: " in head and body == b""


def test_unknown_paths_traversal_and_directories_are_404(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server()
    for path in ("/nope", "/../pyproject.toml", "/static/app.js", "/%2e%2e/http.py", "/static/"):
        answer = get(server, client_context, path)
        assert answer.status == 404, path
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_malformed_requests_are_400_and_closed(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server()
    for request in (
        b"GET / HTTP/1.1\nHost: localhost\n\n\r\n\r\n",  # bare LF
        b"GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n",  # absolute form
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        answers = parse_answers(https_exchange(server, client_context, request))
        assert [a.status for a in answers] == [400], request


def test_an_oversized_request_head_is_431(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n"
    data = https_exchange(web_server(web_max_request_bytes=2048), client_context, request)
    assert data.startswith(b"HTTP/1.1 431 ")


def test_other_methods_are_405(web_server: Start, client_context: ssl.SSLContext) -> None:
    request = b"DELETE / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    answer = parse_answers(https_exchange(web_server(), client_context, request))[0]
    assert answer.status == 405 and answer.headers["allow"] == "GET, HEAD"


def test_websocket_path_without_upgrade_is_426(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    assert get(web_server(), client_context, "/webirc").status == 426


def test_keep_alive_answers_pipelined_requests_in_order(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    request = (
        b"GET /app.css HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    answers = parse_answers(https_exchange(web_server(), client_context, request))
    assert [a.status for a in answers] == [200, 404, 200]


def test_a_silent_connection_is_closed_after_the_request_timeout(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    """Nothing sent: the server hangs up by itself (EOF, not our read timeout)."""
    server = web_server(web_request_timeout=0.3)
    raw = socket.create_connection((server.host, web_port(server)), timeout=DEFAULT_TIMEOUT)
    with client_context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.recv(100) == b""
