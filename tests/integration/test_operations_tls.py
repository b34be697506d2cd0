"""Flood control, metrics and reload on the real server over TLS."""

from __future__ import annotations

import http.client
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from securechat import tls
from securechat.server.config import ConfigError, ServerConfig
from securechat.server.net import warn_if_certificate_expires
from tests.support import IrcClient, ServerThread

Connect = Callable[..., IrcClient]
MakeServer = Callable[..., ServerThread]


def client(server: ServerThread, context: ssl.SSLContext, nick: str) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register(nick)


def test_a_pasted_paragraph_arrives_whole_and_in_order(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(flood_burst=3, flood_rate=20.0)
    alice, bob = client(server, client_context, "alice"), client(server, client_context, "bob")
    alice.sock.sendall(b"".join(b"PRIVMSG bob :line %d\r\n" % i for i in range(12)))
    assert [bob.expect(r"PRIVMSG bob").params[1] for _ in range(12)] == [
        f"line {i}" for i in range(12)
    ]
    assert server.in_loop(lambda: server.server.core.metrics.flood_delays) > 0


def test_a_flooder_is_disconnected_and_others_keep_chatting(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(flood_burst=2, flood_rate=1.0, flood_max_backlog=20)
    flooder, bob = client(server, client_context, "flooder"), client(server, client_context, "bob")
    flooder.sock.sendall(b"".join(b"PRIVMSG bob :spam %d\r\n" % i for i in range(100)))
    assert any(b"Excess flood" in line for line in flooder.expect_closed())
    carol = client(server, client_context, "carol")
    carol.send("PRIVMSG bob :hello")
    bob.expect(r":carol!\S+ PRIVMSG bob :hello")


def test_exempt_addresses_are_not_paced(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(flood_burst=1, flood_rate=0.01, exempt=("127.0.0.0/8",))
    alice, bob = client(server, client_context, "alice"), client(server, client_context, "bob")
    alice.sock.sendall(b"".join(b"PRIVMSG bob :%d\r\n" % i for i in range(50)))
    for i in range(50):
        bob.expect(rf"PRIVMSG bob :{i}$")


def test_per_address_limit_refuses_with_an_error_line(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(max_connections_per_address=1)
    alice = client(server, client_context, "alice")  # holds the address's only slot
    refused = IrcClient.connect(server.host, server.port, client_context)
    assert any(b"Too many connections from your address" in x for x in refused.expect_closed())
    alice.send("PING :still-connected")
    alice.expect("still-connected")


def test_metrics_endpoint_serves_prometheus_text_on_loopback(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(metrics_port=0)
    alice, bob = client(server, client_context, "alice"), client(server, client_context, "bob")
    alice.send("PRIVMSG bob :count me")
    bob.expect("count me")
    conn = http.client.HTTPConnection("127.0.0.1", server.server.metrics_port, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read().decode()
    assert response.status == 200 and "text/plain" in response.getheader("Content-Type", "")
    assert "securechat_registered_users 2" in body
    assert "securechat_messages_in_total 1" in body
    assert "# TYPE securechat_deliveries_total counter" in body
    assert "securechat_event_loop_lag_seconds" in body


def test_metrics_endpoint_answers_404_elsewhere(make_server: MakeServer) -> None:
    server = make_server(metrics_port=0)
    conn = http.client.HTTPConnection("127.0.0.1", server.server.metrics_port, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().status == 404


def issue_server_files(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = directory / "server.pem", directory / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return cert, key


def reloader(
    config: ServerConfig, files: dict[str, Path]
) -> Callable[[], tuple[ServerConfig, ssl.SSLContext]]:
    """Stands in for re-reading the config file: uses whatever cert files are current."""

    def reload() -> tuple[ServerConfig, ssl.SSLContext]:
        if not files["cert"].exists():
            raise ConfigError(f"certificate file not found: {files['cert']}")
        return config, tls.server_context(files["cert"], files["key"])

    return reload


def test_reload_switches_certificates_for_new_handshakes_and_keeps_old_connections(
    make_server: MakeServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    new_ca = trustme.CA()
    cert, key = issue_server_files(new_ca, tmp_path / "new")
    files = {"cert": cert, "key": key}
    server = make_server(server_options={"reload_settings": reloader(ServerConfig(), files)})
    before = client(server, client_context, "before")  # trusts the first certificate's CA
    server.call(server.server.reload_now())
    new_trust = ssl.create_default_context()
    new_ca.configure_trust(new_trust)
    fresh = client(server, new_trust, "fresh")
    fresh.send("PRIVMSG before :new certificate")
    before.expect("new certificate")  # the old connection stayed up
    with pytest.raises(ssl.SSLCertVerificationError):
        IrcClient.connect(server.host, server.port, client_context)


@pytest.mark.logs_error  # an operator event logged at ERROR
def test_failed_reload_keeps_the_old_certificate(
    make_server: MakeServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    files = {"cert": tmp_path / "missing.pem", "key": tmp_path / "missing.key"}
    server = make_server(server_options={"reload_settings": reloader(ServerConfig(), files)})
    before = client(server, client_context, "before")
    server.call(server.server.reload_now())
    client(server, client_context, "after").send("PRIVMSG before :still trusted")
    before.expect("still trusted")


def test_a_certificate_close_to_expiry_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", not_after=datetime.now(UTC) + timedelta(days=5))
    cert = tmp_path / "soon.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    with caplog.at_level(logging.WARNING, logger="securechat"):
        warn_if_certificate_expires(ServerConfig(cert=cert))
    assert "event=cert_expiring" in caplog.text and "days_left=4" in caplog.text


def test_a_certificate_far_from_expiry_is_not_warned_about(
    cert_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="securechat"):
        warn_if_certificate_expires(ServerConfig(cert=cert_files[0]))
    assert "cert_expiring" not in caplog.text


def test_lines_held_by_flood_control_are_still_delivered_after_the_sender_leaves(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(flood_burst=2, flood_rate=50.0)
    alice, bob = client(server, client_context, "alice"), client(server, client_context, "bob")
    alice.join("#a")
    bob.join("#a")  # so that alice's QUIT reaches bob
    lines = b"".join(b"PRIVMSG bob :parting words %d\r\n" % i for i in range(20))
    alice.sock.sendall(lines + b"QUIT :done\r\n")
    alice.sock.close()
    for i in range(20):
        bob.expect(rf"PRIVMSG bob :parting words {i}$")
    assert bob.expect(r":alice!\S+ QUIT").params == ("Quit: done",)


def test_reload_applies_a_new_flush_pause(
    make_server: MakeServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """flush_pause_ms is the pacer's pause from the start, and a reload changes it live."""
    new_ca = trustme.CA()
    cert, key = issue_server_files(new_ca, tmp_path / "new")
    new_settings = reloader(ServerConfig(flush_pause_ms=9.0), {"cert": cert, "key": key})
    server = make_server(flush_pause_ms=1.5, server_options={"reload_settings": new_settings})
    assert server.server._pacer.pause == pytest.approx(0.0015)
    server.call(server.server.reload_now())
    assert server.server._pacer.pause == pytest.approx(0.009)
    new_trust = ssl.create_default_context()
    new_ca.configure_trust(new_trust)
    listener = client(server, new_trust, "listener")
    client(server, new_trust, "talker").send("PRIVMSG listener :after the reload")
    listener.expect("after the reload")
