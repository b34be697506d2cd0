"""The web listener's request-head parser and its policy helpers, without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.server.config import ConfigError, ServerConfig, build_config, validate
from securechat.server.main import SERVE_DEFAULTS
from securechat.web.http import HttpError, parse_head, take_request
from securechat.web.site import client_address, load_static, origin_allowed


def head(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode() + b"\r\n"


def test_a_partial_head_waits_for_more_bytes() -> None:
    buffer = bytearray(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert take_request(buffer, 8192) is None and buffer


def test_a_complete_head_is_taken_and_the_rest_kept() -> None:
    buffer = bytearray(head("GET /app.js?v=1 HTTP/1.1\nHost: x\n") + b"GET")
    request = take_request(buffer, 8192)
    assert request is not None and request.path == "/app.js" and bytes(buffer) == b"GET"


def test_a_head_over_the_limit_is_431_before_its_end_arrives() -> None:
    with pytest.raises(HttpError) as refused:
        take_request(bytearray(b"GET / HTTP/1.1\r\nX: " + b"a" * 100), 64)
    assert refused.value.status == 431


def test_repeated_headers_are_joined() -> None:
    request = parse_head(
        head("GET / HTTP/1.1\nHost: x\nX-Forwarded-For: 1.1.1.1\nX-Forwarded-For: 2.2.2.2\n")
    )
    assert request.header("x-forwarded-for") == "1.1.1.1, 2.2.2.2"


@given(st.binary(max_size=600))
def test_any_bytes_give_a_request_none_or_an_http_error(data: bytes) -> None:
    try:
        take_request(bytearray(data), 512)
    except HttpError as refused:
        assert refused.status in (400, 431)


@given(st.text(max_size=200))
def test_any_header_text_gives_a_request_or_a_400(value: str) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + value.encode("utf-8", "replace") + b"\r\n\r\n"
    try:
        parse_head(raw)
    except HttpError as refused:
        assert refused.status == 400


def test_the_default_origin_is_https_plus_the_host_asked_for() -> None:
    config = ServerConfig()
    for host in ("localhost:8443", "127.0.0.1:8443", "[::1]:8443", "chat.example"):
        request = parse_head(head(f"GET /webirc HTTP/1.1\nHost: {host}\nOrigin: https://{host}\n"))
        assert origin_allowed(request, config), host
    for origin in ("http://localhost:8443", "https://localhost:9999", "null"):
        request = parse_head(
            head(f"GET /webirc HTTP/1.1\nHost: localhost:8443\nOrigin: {origin}\n")
        )
        assert not origin_allowed(request, config), origin


def test_forwarded_for_is_read_from_the_right_skipping_trusted_proxies() -> None:
    config = ServerConfig(web_proxies=("10.0.0.0/8",))
    request = parse_head(
        head("GET / HTTP/1.1\nHost: x\nX-Forwarded-For: 6.6.6.6, 203.0.113.5, 10.1.1.1\n")
    )
    assert client_address("10.0.0.2", request, config) == "203.0.113.5"
    assert client_address("192.0.2.1", request, config) == "192.0.2.1"  # not a proxy


def test_the_bundled_app_is_package_data() -> None:
    files = load_static()
    assert {"/", "/index.html", "/app.js", "/app.css", "/irc.js"} <= set(files)


def test_web_port_accepts_off_and_ports_and_serve_defaults_to_8443() -> None:
    assert validate("web_port", "off") is None and validate("web_port", "0") == 0
    with pytest.raises(ConfigError):
        validate("web_port", "99999")
    assert build_config(SERVE_DEFAULTS).web_port == 8443
    assert build_config(SERVE_DEFAULTS, {"web_port": None}).web_port is None
    assert ServerConfig().web_port is None  # the library (and tests) default: off
