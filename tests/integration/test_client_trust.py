"""Trust decisions over real TLS: CA verification, pins, changed certificates, prompts."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme

from securechat import tls
from securechat.client.trust import (
    ConnectError,
    Endpoint,
    KnownHosts,
    Trust,
    TrustError,
    close,
    open_trusted,
)
from tests.support import ServerThread


class Listener:
    """A minimal TLS listener that records every byte a client sends it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                self.received += data
        except (OSError, ssl.SSLError):
            pass  # a client that aborts the handshake: nothing to record
        writer.close()


@asynccontextmanager
async def listening(
    cert: trustme.LeafCert | None, port: int = 0, greeting: bytes = b""
) -> AsyncIterator[Listener]:
    listener = Listener()
    context = None
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await listener._handle(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)
    listener.port = server.sockets[0].getsockname()[1]
    async with server:
        yield listener


def fingerprint_of(cert: trustme.LeafCert) -> str:
    pem = cert.cert_chain_pems[0].bytes()
    return tls.fingerprint_sha256(ssl.PEM_cert_to_DER_cert(pem.decode()))


def trust(tmp_path: Path, **kwargs: object) -> Trust:
    return Trust(KnownHosts(tmp_path / "known_hosts"), **kwargs)  # type: ignore[arg-type]


async def connect_and_close(endpoint: Endpoint, settings: Trust) -> None:
    _, writer = await open_trusted(endpoint, settings)
    await close(writer)


def test_certificate_from_the_given_ca_is_trusted(
    server: ServerThread, ca_file: Path, tmp_path: Path
) -> None:
    endpoint = Endpoint("127.0.0.1", server.port)
    asyncio.run(connect_and_close(endpoint, trust(tmp_path, ca=ca_file)))
    assert not (tmp_path / "known_hosts").exists()  # verified: no pin needed


def test_unknown_ca_is_refused_with_the_fingerprint_and_the_command(
    server: ServerThread, server_cert: trustme.LeafCert, tmp_path: Path
) -> None:
    endpoint = Endpoint("127.0.0.1", server.port)
    with pytest.raises(TrustError) as info:
        asyncio.run(connect_and_close(endpoint, trust(tmp_path)))
    message = str(info.value)
    fingerprint = fingerprint_of(server_cert)
    assert "unknown certificate authority" in message
    assert f"--trust-fingerprint {fingerprint}" in message
    assert f"securechat connect 127.0.0.1:{server.port}" in message


def test_nothing_is_sent_to_an_untrusted_server(tls_ca: trustme.CA, tmp_path: Path) -> None:
    async def scenario() -> bytes:
        async with listening(tls_ca.issue_cert("127.0.0.1")) as listener:
            with pytest.raises(TrustError):
                await connect_and_close(Endpoint("127.0.0.1", listener.port), trust(tmp_path))
        return bytes(listener.received)

    assert asyncio.run(scenario()) == b""


def test_name_mismatch_is_explained(tls_ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))

    async def scenario() -> None:
        async with listening(tls_ca.issue_cert("chat.example.org")) as listener:
            endpoint = Endpoint("127.0.0.1", listener.port)
            await connect_and_close(endpoint, trust(tmp_path, ca=ca_file))

    with pytest.raises(TrustError, match=r"not valid for this IP address|not valid for '127"):
        asyncio.run(scenario())


def test_pinned_fingerprint_is_trusted_and_remembered(
    server: ServerThread, server_cert: trustme.LeafCert, tmp_path: Path
) -> None:
    endpoint = Endpoint("127.0.0.1", server.port)
    fingerprint = fingerprint_of(server_cert)
    asyncio.run(connect_and_close(endpoint, trust(tmp_path, fingerprint=fingerprint)))
    assert KnownHosts(tmp_path / "known_hosts").get(endpoint) == fingerprint


def test_pin_in_known_hosts_is_trusted_without_a_ca(
    server: ServerThread, server_cert: trustme.LeafCert, tmp_path: Path
) -> None:
    endpoint = Endpoint("127.0.0.1", server.port)
    KnownHosts(tmp_path / "known_hosts").set(endpoint, fingerprint_of(server_cert))
    asyncio.run(connect_and_close(endpoint, trust(tmp_path)))


def test_wrong_trust_fingerprint_is_refused(server: ServerThread, tmp_path: Path) -> None:
    endpoint = Endpoint("127.0.0.1", server.port)
    with pytest.raises(TrustError, match="does not match --trust-fingerprint"):
        asyncio.run(connect_and_close(endpoint, trust(tmp_path, fingerprint="0" * 64)))


def test_changed_certificate_for_a_pinned_host_is_refused_loudly(
    tls_ca: trustme.CA, tmp_path: Path
) -> None:
    old_cert, new_cert = tls_ca.issue_cert("127.0.0.1"), tls_ca.issue_cert("127.0.0.1")

    async def scenario() -> tuple[str, bytes]:
        async with listening(old_cert) as first:
            endpoint = Endpoint("127.0.0.1", first.port)
            pinning = trust(tmp_path, fingerprint=fingerprint_of(old_cert))
            await connect_and_close(endpoint, pinning)
        async with listening(new_cert, port=endpoint.port) as second:
            with pytest.raises(TrustError) as info:
                await connect_and_close(endpoint, trust(tmp_path))
        return str(info.value), bytes(second.received)

    message, received = asyncio.run(scenario())
    assert "HAS CHANGED" in message
    assert fingerprint_of(old_cert) in message and fingerprint_of(new_cert) in message
    assert "--trust-fingerprint " + fingerprint_of(new_cert) in message
    assert received == b""


def test_a_changed_certificate_signed_by_the_named_ca_replaces_the_stale_pin(
    tls_ca: trustme.CA, tmp_path: Path
) -> None:
    """A pin taken once (no ca.pem at hand) used to refuse a certificate --ca verifies."""
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    cert = tls_ca.issue_cert("127.0.0.1")
    settings = trust(tmp_path, ca=ca_file)

    async def scenario() -> Endpoint:
        async with listening(cert) as listener:
            endpoint = Endpoint("127.0.0.1", listener.port)
            KnownHosts(tmp_path / "known_hosts").set(endpoint, "0" * 64)
            await connect_and_close(endpoint, settings)
            return endpoint

    endpoint = asyncio.run(scenario())
    assert KnownHosts(tmp_path / "known_hosts").get(endpoint) == fingerprint_of(cert)
    assert len(settings.notices) == 1 and "signed by your CA" in settings.notices[0]


def test_a_changed_certificate_from_another_ca_is_still_refused_loudly(
    tls_ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))  # the user's CA did not sign it

    async def scenario() -> None:
        async with listening(tls_ca.issue_cert("127.0.0.1")) as listener:
            endpoint = Endpoint("127.0.0.1", listener.port)
            KnownHosts(tmp_path / "known_hosts").set(endpoint, "0" * 64)
            await connect_and_close(endpoint, trust(tmp_path, ca=ca_file))

    with pytest.raises(TrustError, match="HAS CHANGED"):
        asyncio.run(scenario())


def test_a_missing_ca_file_is_an_error_even_for_a_pinned_host(
    tls_ca: trustme.CA, tmp_path: Path
) -> None:
    """With a pin present, a wrong --ca path used to be ignored without a word."""
    cert = tls_ca.issue_cert("127.0.0.1")

    async def scenario() -> None:
        async with listening(cert) as listener:
            endpoint = Endpoint("127.0.0.1", listener.port)
            KnownHosts(tmp_path / "known_hosts").set(endpoint, fingerprint_of(cert))
            await connect_and_close(endpoint, trust(tmp_path, ca=tmp_path / "typo.pem"))

    with pytest.raises(ConnectError, match=r"the CA file .*typo.pem does not exist"):
        asyncio.run(scenario())


def test_accepted_prompt_pins_the_certificate(
    server: ServerThread, server_cert: trustme.LeafCert, tmp_path: Path
) -> None:
    questions: list[str] = []

    def answer_yes(question: str) -> bool:
        questions.append(question)
        return True

    endpoint = Endpoint("127.0.0.1", server.port)
    asyncio.run(connect_and_close(endpoint, trust(tmp_path, prompt=answer_yes)))
    fingerprint = fingerprint_of(server_cert)
    assert fingerprint in questions[0] and "[y/N]" in questions[0]
    assert KnownHosts(tmp_path / "known_hosts").get(endpoint) == fingerprint


def test_declined_prompt_refuses_and_pins_nothing(server: ServerThread, tmp_path: Path) -> None:
    endpoint = Endpoint("127.0.0.1", server.port)
    with pytest.raises(TrustError, match="Not connecting"):
        asyncio.run(connect_and_close(endpoint, trust(tmp_path, prompt=lambda q: False)))
    assert KnownHosts(tmp_path / "known_hosts").get(endpoint) is None


def test_a_plaintext_port_is_explained(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with listening(None, greeting=b"ERROR :This port requires TLS\r\n") as listener:
            await connect_and_close(Endpoint("127.0.0.1", listener.port), trust(tmp_path))

    with pytest.raises(ConnectError, match="did not answer with TLS"):
        asyncio.run(scenario())
