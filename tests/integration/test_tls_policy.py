"""The server's TLS policy, checked from the outside over real handshakes on loopback.

DESIGN.md §2.1: TLS 1.2 minimum (1.3 preferred), the stdlib's default cipher suites
(which offer only forward-secret key exchange), compression off. TLS 1.1 refusal is in
``test_server_tls.py::test_tls_1_1_is_refused`` and the context settings themselves in
``tests/unit/test_tls.py``; here are the remaining checks a scanner would make.

A refused handshake ends, from the client's side, in an abrupt EOF (the server drops the
connection without an alert), which a client that never sent a ClientHello would see
too. So each refusal test also checks that the server counted a failed handshake: it did
receive the offer, and said no.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from tests.support import IrcClient, ServerThread

TIMEOUT = 10.0
NON_FORWARD_SECRET = "AES128-GCM-SHA256:AES256-GCM-SHA384"  # static RSA key exchange
# The two CBC suites the stdlib's defaults offer with TLS 1.2 (testssl: LUCKY13), per key type.
CBC_SUITES = (
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:"
    "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384"
)
# What `openssl s_client` prints as "Server Temp Key" for each group the server offers.
TEMP_KEY = {"X25519": "X25519, 253 bits", "P-256": "prime256v1", "P-384": "secp384r1"}


def handshake_failures(server: ServerThread) -> int:
    count: int = server.in_loop(lambda: server.server.core.metrics.tls_handshake_failures)
    return count


def assert_refused(server: ServerThread, context: ssl.SSLContext) -> None:
    """The handshake fails for the client, and the server counts it as a failed handshake."""
    before = handshake_failures(server)
    with (
        socket.create_connection((server.host, server.port), timeout=TIMEOUT) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
    ):
        context.wrap_socket(raw, server_hostname="localhost")
    deadline = time.monotonic() + TIMEOUT
    while handshake_failures(server) == before:  # counted once the server's side unwinds
        assert time.monotonic() < deadline, "the server never saw a failed handshake"
        time.sleep(0.02)  # a polling interval


def trusting_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls_ca.configure_trust(context)
    return context


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_0_is_refused(server: ServerThread, tls_ca: trustme.CA) -> None:
    context = trusting_context(tls_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1
    # OpenSSL 3 will not even offer TLS 1.0 at the default security level; level 0 makes
    # this client try, so the refusal is the server's.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    assert_refused(server, context)


def test_a_client_offering_only_non_forward_secret_ciphers_is_refused(
    server: ServerThread, tls_ca: trustme.CA
) -> None:
    context = trusting_context(tls_ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 suites are all forward secret
    context.set_ciphers(NON_FORWARD_SECRET)
    offered = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert offered == set(NON_FORWARD_SECRET.split(":"))
    assert_refused(server, context)


def test_tls_1_3_is_negotiated_by_default(server: ServerThread, tls_ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    client = IrcClient.connect(server.host, server.port, context).register("modern")
    try:
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() == "TLSv1.3"
    finally:
        client.close()


def test_a_tls_1_2_client_gets_a_forward_secret_aead_cipher(
    server: ServerThread, tls_ca: trustme.CA
) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    client = IrcClient.connect(server.host, server.port, context).register("older")
    try:
        assert isinstance(client.sock, ssl.SSLSocket)
        cipher = client.sock.cipher()
        assert cipher is not None
        name = cipher[0]
        assert name.startswith(("ECDHE-", "DHE-")), name
        assert "GCM" in name or "CHACHA20" in name, name
    finally:
        client.close()


def test_compression_is_off(server: ServerThread, tls_ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 has no compression at all
    client = IrcClient.connect(server.host, server.port, context).register("squeezer")
    try:
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.compression() is None
        assert server.in_loop(lambda: server.server.ssl_context.options) & ssl.OP_NO_COMPRESSION
    finally:
        client.close()


def test_a_tls_1_2_client_offering_only_cbc_suites_is_refused(
    server: ServerThread, tls_ca: trustme.CA
) -> None:
    context = trusting_context(tls_ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CBC_SUITES)
    assert_refused(server, context)


# --------------------------------------------------------------------------- groups (review H1)
# A ClientHello offering only ffdhe8192 cost ~125 ms of event-loop CPU per replay. These
# use the real `openssl s_client`, the tool a scanner or an attacker would use.


def s_client(server: ServerThread, ca_file: Path, *options: str) -> str:
    """What `openssl s_client` prints for one handshake (and an immediate EOF)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (Debian: apt-get install openssl)")
    done = subprocess.run(
        [
            *("openssl", "s_client", "-connect", f"{server.host}:{server.port}"),
            *("-servername", "localhost", "-CAfile", str(ca_file), *options),
        ],
        input=b"",
        capture_output=True,
        timeout=TIMEOUT,
    )
    return done.stdout.decode(errors="replace")


@pytest.mark.parametrize("group", sorted(TEMP_KEY))
def test_openssl_offering_one_curve_group_completes_tls13(
    server: ServerThread, ca_file: Path, group: str
) -> None:
    shown = s_client(server, ca_file, "-tls1_3", "-groups", group)
    assert f"Server Temp Key: {'ECDH, ' if group != 'X25519' else ''}{TEMP_KEY[group]}" in shown
    assert "Verify return code: 0 (ok)" in shown


@pytest.mark.parametrize("tls_version", ["-tls1_3", "-tls1_2"])
def test_openssl_offering_only_ffdhe8192_gets_no_handshake_and_a_bystander_is_not_delayed(
    server: ServerThread,
    ca_file: Path,
    connect: Callable[..., IrcClient],
    tls_version: str,
) -> None:
    bystander = connect("bystander")
    before = handshake_failures(server)
    failures: list[str] = []

    def replay() -> None:
        for _ in range(5):
            shown = s_client(server, ca_file, tls_version, "-groups", "ffdhe8192")
            if "Cipher is (NONE)" not in shown or "Server Temp Key" in shown:
                failures.append(shown)

    attacker = threading.Thread(target=replay)
    attacker.start()
    for number in range(5):  # answered within the client's timeout while the replays run
        bystander.send(f"PING :canary-{number}")
        bystander.expect(f"canary-{number}")
    attacker.join(TIMEOUT * 5)
    assert failures == []
    deadline = time.monotonic() + TIMEOUT
    while handshake_failures(server) < before + 5:  # the server saw and refused each one
        assert time.monotonic() < deadline, "the server did not count the refused handshakes"
        time.sleep(0.02)  # a polling interval
