"""securechat.tls: context policy over real loopback handshakes, file errors, fingerprints."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securechat import tls_groups
from securechat.tls import (
    TlsSetupError,
    cert_der_from_pem_file,
    client_context,
    describe_verify_error,
    fingerprint_colons,
    fingerprint_sha256,
    not_after,
    server_context,
)
from securechat.tls_groups import restrict_groups

IO_TIMEOUT = 10.0


@dataclass
class Handshake:
    client_error: OSError | None
    server_error: OSError | None
    version: str | None
    server_cert_seen_by_client: bytes | None
    client_cert_seen_by_server: bytes | None


def loopback_handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str = "localhost"
) -> Handshake:
    """One real TLS handshake over 127.0.0.1 on an ephemeral port, server in a thread."""
    server_side: dict[str, object] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(IO_TIMEOUT)
        thread = threading.Thread(target=_serve_once, args=(listener, server, server_side))
        thread.start()
        try:
            outcome = _connect_once(listener.getsockname()[1], client, server_hostname)
        finally:
            thread.join(IO_TIMEOUT)
    server_error = server_side.get("error")
    peer = server_side.get("peer")
    return Handshake(
        client_error=outcome[0],
        server_error=server_error if isinstance(server_error, OSError) else None,
        version=outcome[1],
        server_cert_seen_by_client=outcome[2],
        client_cert_seen_by_server=peer if isinstance(peer, bytes) else None,
    )


def _serve_once(listener: socket.socket, context: ssl.SSLContext, out: dict[str, object]) -> None:
    try:
        conn, _ = listener.accept()
        conn.settimeout(IO_TIMEOUT)
        with context.wrap_socket(conn, server_side=True) as tls:
            out["peer"] = tls.getpeercert(binary_form=True)
            # One byte from the server: with TLS 1.3 the client learns the outcome only
            # when it reads after the handshake.
            tls.sendall(b"!")
    except OSError as exc:
        out["error"] = exc


def _connect_once(
    port: int, context: ssl.SSLContext, server_hostname: str
) -> tuple[OSError | None, str | None, bytes | None]:
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            tls.recv(1)
            return None, tls.version(), tls.getpeercert(binary_form=True)
    except OSError as exc:
        return exc, None, None


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def other_ca() -> trustme.CA:
    return trustme.CA()


@dataclass
class PemFiles:
    cert: Path
    key: Path
    ca: Path


def write_leaf(directory: Path, ca: trustme.CA, leaf: trustme.LeafCert, stem: str) -> PemFiles:
    cert, key, ca_file = directory / f"{stem}.pem", directory / f"{stem}.key", directory / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    ca.cert_pem.write_to_path(str(ca_file))
    return PemFiles(cert, key, ca_file)


@pytest.fixture
def localhost_files(tmp_path: Path, ca: trustme.CA) -> PemFiles:
    return write_leaf(tmp_path, ca, ca.issue_cert("localhost", "127.0.0.1"), "server")


def ca_file(tmp_path: Path, ca: trustme.CA, name: str) -> Path:
    path = tmp_path / name
    ca.cert_pem.write_to_path(str(path))
    return path


def tls11_only_client(ca: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=ca)
    with warnings.catch_warnings():  # Python rightly deprecates these; here they are the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    # OpenSSL 3 refuses to even offer TLS 1.1 at the default security level; level 0 makes
    # the client try, so the refusal we see is the server's.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


# --------------------------------------------------------------------------- protocol policy


def test_server_context_completes_a_handshake_with_a_verifying_client(
    localhost_files: PemFiles,
) -> None:
    server = server_context(localhost_files.cert, localhost_files.key)
    outcome = loopback_handshake(server, client_context(ca=localhost_files.ca))
    assert outcome.client_error is None
    assert outcome.version in {"TLSv1.2", "TLSv1.3"}


def test_server_context_refuses_a_tls11_client(localhost_files: PemFiles) -> None:
    server = server_context(localhost_files.cert, localhost_files.key)
    outcome = loopback_handshake(server, tls11_only_client(localhost_files.ca))
    assert isinstance(outcome.client_error, ssl.SSLError)
    # The server saw the TLS 1.1 ClientHello and rejected it (not a client that never tried).
    assert isinstance(outcome.server_error, ssl.SSLError)
    assert outcome.server_error.reason in {"UNSUPPORTED_PROTOCOL", "WRONG_VERSION_NUMBER"}


def test_contexts_require_tls12_and_disable_compression(localhost_files: PemFiles) -> None:
    contexts = [
        server_context(localhost_files.cert, localhost_files.key),
        client_context(ca=localhost_files.ca),
    ]
    for context in contexts:
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert context.options & ssl.OP_NO_COMPRESSION
        assert context.options & getattr(ssl, "OP_NO_RENEGOTIATION", 0) == getattr(
            ssl, "OP_NO_RENEGOTIATION", 0
        )


def test_client_context_verifies_the_server_and_its_name_by_default() -> None:
    context = client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_client_context_without_verify_connects_to_an_unknown_ca(
    tmp_path: Path, other_ca: trustme.CA
) -> None:
    files = write_leaf(tmp_path, other_ca, other_ca.issue_cert("elsewhere.example"), "server")
    server = server_context(files.cert, files.key)
    outcome = loopback_handshake(server, client_context(verify=False))
    assert outcome.client_error is None
    # Pinning is then up to the caller: the certificate it got is the one on disk.
    assert outcome.server_cert_seen_by_client == cert_der_from_pem_file(files.cert)


def test_server_context_with_client_ca_receives_a_client_certificate(
    tmp_path: Path, ca: trustme.CA, localhost_files: PemFiles
) -> None:
    alice = write_leaf(tmp_path, ca, ca.issue_cert("alice@example.test"), "alice")
    server = server_context(
        localhost_files.cert, localhost_files.key, client_ca=ca_file(tmp_path, ca, "client-ca.pem")
    )
    client = client_context(ca=localhost_files.ca, cert=alice.cert, key=alice.key)
    outcome = loopback_handshake(server, client)
    assert outcome.client_error is None
    assert outcome.client_cert_seen_by_server == cert_der_from_pem_file(alice.cert)


def test_server_context_with_client_ca_still_accepts_a_client_without_certificate(
    tmp_path: Path, ca: trustme.CA, localhost_files: PemFiles
) -> None:
    client_ca = ca_file(tmp_path, ca, "client-ca.pem")
    server = server_context(localhost_files.cert, localhost_files.key, client_ca=client_ca)
    assert server.verify_mode == ssl.CERT_OPTIONAL
    outcome = loopback_handshake(server, client_context(ca=localhost_files.ca))
    assert outcome.client_error is None
    assert outcome.client_cert_seen_by_server is None


# --------------------------------------------------------------------------- file errors


def test_missing_certificate_file_is_named(localhost_files: PemFiles, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(TlsSetupError, match=r"nope\.pem does not exist"):
        server_context(missing, localhost_files.key)


def test_missing_key_file_is_named(localhost_files: PemFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsSetupError, match=r"private key file .*nope\.key does not exist"):
        server_context(localhost_files.cert, tmp_path / "nope.key")


def test_key_of_another_certificate_is_reported_as_a_mismatch(
    tmp_path: Path, ca: trustme.CA, localhost_files: PemFiles
) -> None:
    other = write_leaf(tmp_path, ca, ca.issue_cert("other.example"), "other")
    with pytest.raises(TlsSetupError, match="does not match the certificate") as caught:
        server_context(localhost_files.cert, other.key)
    assert str(other.key) in str(caught.value)


def test_key_of_another_type_is_reported_as_a_mismatch(
    tmp_path: Path, ca: trustme.CA, localhost_files: PemFiles
) -> None:
    rsa_leaf = ca.issue_cert("rsa.example", key_type=trustme.KeyType.RSA)
    rsa = write_leaf(tmp_path, ca, rsa_leaf, "rsa")
    with pytest.raises(TlsSetupError, match="does not match the certificate"):
        server_context(localhost_files.cert, rsa.key)


def test_certificate_file_without_pem_is_named(localhost_files: PemFiles, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    with pytest.raises(TlsSetupError, match=r"garbage\.pem holds no PEM certificate"):
        server_context(garbage, localhost_files.key)


def test_encrypted_key_is_refused_without_prompting(
    localhost_files: PemFiles, tmp_path: Path
) -> None:
    key = serialization.load_pem_private_key(localhost_files.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(TlsSetupError, match=r"encrypted\.key is encrypted"):
        server_context(localhost_files.cert, encrypted)


def test_unreadable_client_ca_is_named(localhost_files: PemFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsSetupError, match=r"CA file .*missing-ca\.pem does not exist"):
        client_context(ca=tmp_path / "missing-ca.pem")


def test_directory_given_as_certificate_is_named(localhost_files: PemFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsSetupError, match="is a directory"):
        server_context(tmp_path, localhost_files.key)


# --------------------------------------------------------------------------- fingerprints


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_fingerprints_match_openssl_x509_output(localhost_files: PemFiles) -> None:
    printed = subprocess.run(
        ["openssl", "x509", "-in", str(localhost_files.cert), "-noout", "-fingerprint", "-sha256"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    openssl_colons = printed.split("=", 1)[1]  # "sha256 Fingerprint=AB:CD:..."
    der = cert_der_from_pem_file(localhost_files.cert)
    assert fingerprint_colons(der) == openssl_colons
    assert fingerprint_sha256(der) == openssl_colons.replace(":", "").lower()


def test_fingerprint_forms_are_weechat_hex_and_irssi_colons() -> None:
    der = b"any bytes hash the same way"
    bare, colons = fingerprint_sha256(der), fingerprint_colons(der)
    assert len(bare) == 64
    assert bare == bare.lower()
    assert colons == ":".join(bare[i : i + 2] for i in range(0, 64, 2)).upper()


def test_cert_der_from_pem_file_returns_the_leaf_of_a_chain(tmp_path: Path, ca: trustme.CA) -> None:
    intermediate = ca.create_child_ca()
    files = write_leaf(tmp_path, intermediate, intermediate.issue_cert("leaf.example"), "chain")
    leaf = x509.load_der_x509_certificate(cert_der_from_pem_file(files.cert))
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["leaf.example"]


def test_cert_der_from_pem_file_without_certificate_raises(tmp_path: Path) -> None:
    key_only = tmp_path / "key-only.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    key_only.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(TlsSetupError, match=r"key-only\.pem holds no PEM certificate"):
        cert_der_from_pem_file(key_only)


def test_not_after_is_the_certificate_expiry_in_utc(tmp_path: Path, ca: trustme.CA) -> None:
    expiry = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    files = write_leaf(tmp_path, ca, ca.issue_cert("x.example", not_after=expiry), "x")
    assert not_after(cert_der_from_pem_file(files.cert)) == expiry


# --------------------------------------------------------------------------- errors in words


def failed_verification(server: ssl.SSLContext, client: ssl.SSLContext, host: str) -> ssl.SSLError:
    outcome = loopback_handshake(server, client, server_hostname=host)
    assert isinstance(outcome.client_error, ssl.SSLError)
    return outcome.client_error


def test_unknown_ca_is_described_in_plain_words(
    tmp_path: Path, other_ca: trustme.CA, localhost_files: PemFiles
) -> None:
    server = server_context(localhost_files.cert, localhost_files.key)
    client = client_context(ca=ca_file(tmp_path, other_ca, "other-ca.pem"))
    error = failed_verification(server, client, "localhost")
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert describe_verify_error(error) == (
        "the server's certificate is signed by an unknown certificate authority"
    )


def test_hostname_mismatch_names_the_host(localhost_files: PemFiles) -> None:
    server = server_context(localhost_files.cert, localhost_files.key)
    error = failed_verification(server, client_context(ca=localhost_files.ca), "chat.example.org")
    assert describe_verify_error(error) == (
        "the server's certificate is not valid for 'chat.example.org'"
    )


def test_expired_certificate_is_described(tmp_path: Path, ca: trustme.CA) -> None:
    past = datetime.now(UTC) - timedelta(days=30)
    leaf = ca.issue_cert("localhost", not_before=past - timedelta(days=1), not_after=past)
    files = write_leaf(tmp_path, ca, leaf, "expired")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # another server: ours refuses to serve it
    server.load_cert_chain(files.cert, files.key)
    error = failed_verification(server, client_context(ca=files.ca), "localhost")
    assert describe_verify_error(error) == "the server's certificate has expired"


def test_plaintext_peer_is_described(localhost_files: PemFiles) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(IO_TIMEOUT)
        answer = threading.Thread(target=_answer_in_plaintext, args=(listener,))
        answer.start()
        outcome = _connect_once(
            listener.getsockname()[1], client_context(ca=localhost_files.ca), "localhost"
        )
        answer.join(IO_TIMEOUT)
    assert isinstance(outcome[0], ssl.SSLError)
    assert "did not answer with TLS" in describe_verify_error(outcome[0])


def _answer_in_plaintext(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.sendall(b"ERROR :This port requires TLS\r\n")


# --------------------------------------------------------------------------- key exchange groups
# Review H1: ffdhe groups make a replayed ClientHello cost the event loop ~125 ms.

SERVER_GROUPS = {"X25519", "P-256", "P-384"}
OTHER_GROUPS = ["ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192", "P-521", "X448"]


def memory_handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> bool:
    """One TLS handshake through memory BIOs (no sockets); True when both sides finish."""
    pipes = [(ssl.MemoryBIO(), ssl.MemoryBIO()) for _ in range(2)]
    server_side = server.wrap_bio(*pipes[0], server_side=True)
    client_side = client.wrap_bio(*pipes[1], server_hostname="localhost")
    done = {id(server_side): False, id(client_side): False}
    for _ in range(10):  # TLS 1.2 and 1.3 need fewer than five flights each way
        for side in (client_side, server_side):
            try:
                side.do_handshake()
                done[id(side)] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False
        pipes[1][0].write(pipes[0][1].read())  # server -> client
        pipes[0][0].write(pipes[1][1].read())  # client -> server
        if all(done.values()):
            return True
    return False


def client_offering(ca: Path, groups: list[str], tls13_only: bool = True) -> ssl.SSLContext:
    """A client whose ClientHello offers only ``groups`` (set the same way as the server)."""
    context = client_context(ca=ca)
    if tls13_only:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    assert restrict_groups(context, groups) is None, "this Python cannot choose groups"
    return context


@pytest.mark.parametrize("group", sorted(SERVER_GROUPS))
def test_server_accepts_each_elliptic_curve_group(localhost_files: PemFiles, group: str) -> None:
    server = server_context(localhost_files.cert, localhost_files.key)
    assert memory_handshake(server, client_offering(localhost_files.ca, [group]))


@pytest.mark.parametrize("group", OTHER_GROUPS)
def test_server_refuses_ffdhe_and_other_groups(localhost_files: PemFiles, group: str) -> None:
    server = server_context(localhost_files.cert, localhost_files.key)
    for tls13_only in (True, False):  # TLS 1.2 ECDHE must not fall back to them either
        assert not memory_handshake(
            server, client_offering(localhost_files.ca, [group], tls13_only)
        )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offered=st.lists(st.sampled_from([*sorted(SERVER_GROUPS), *OTHER_GROUPS]), min_size=1))
def test_a_handshake_succeeds_exactly_when_a_curve_group_is_offered(
    offered: list[str], group_files: PemFiles
) -> None:
    server = server_context(group_files.cert, group_files.key)
    client = client_offering(group_files.ca, list(dict.fromkeys(offered)))
    assert memory_handshake(server, client) == bool(SERVER_GROUPS & set(offered))


@pytest.fixture(scope="module")
def group_files(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> PemFiles:
    directory = tmp_path_factory.mktemp("groups")
    return write_leaf(directory, ca, ca.issue_cert("localhost"), "server")


def test_configured_groups_are_the_only_ones_offered(localhost_files: PemFiles) -> None:
    server = server_context(localhost_files.cert, localhost_files.key, groups=["P-384"])
    assert memory_handshake(server, client_offering(localhost_files.ca, ["P-384"]))
    assert not memory_handshake(server, client_offering(localhost_files.ca, ["X25519"]))


@pytest.mark.parametrize(
    ("groups", "message"),
    [([], "at least one group"), (["X25519:ffdhe8192"], "not a group name"), (["P-999"], "P-999")],
)
def test_unusable_group_lists_are_one_line_errors(
    localhost_files: PemFiles, groups: list[str], message: str
) -> None:
    with pytest.raises(TlsSetupError, match=message):
        server_context(localhost_files.cert, localhost_files.key, groups=groups)


def test_without_a_way_to_choose_groups_the_server_offers_p256_only_and_warns(
    localhost_files: PemFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    p256_client = client_offering(localhost_files.ca, ["P-256"])
    x25519_client = client_offering(localhost_files.ca, ["X25519"])
    # As on a Python without SSLContext.set_groups whose ssl object layout is unknown.
    monkeypatch.setattr(tls_groups, "_groups_setter", lambda: "layout unknown")
    with caplog.at_level(logging.WARNING, logger="securechat"):
        server = server_context(localhost_files.cert, localhost_files.key)
    assert [r.getMessage() for r in caplog.records] == [
        'event=tls_groups_fallback reason="cannot choose TLS key-exchange groups here '
        '(layout unknown); offering only P-256"'
    ]
    assert memory_handshake(server, p256_client)
    assert not memory_handshake(server, x25519_client)


# --------------------------------------------------------------------------- ciphers and tickets


def test_server_offers_only_forward_secret_aead_suites_for_tls12(localhost_files: PemFiles) -> None:
    server = server_context(localhost_files.cert, localhost_files.key)
    tls12 = [c for c in server.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(c["aead"] and c["kea"] == "kx-ecdhe" for c in tls12)


def test_server_issues_no_tls12_session_ticket(localhost_files: PemFiles) -> None:
    server = server_context(localhost_files.cert, localhost_files.key)
    client = client_context(ca=localhost_files.ca)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(IO_TIMEOUT)
        thread = threading.Thread(target=_serve_once, args=(listener, server, {}))
        thread.start()
        with (
            socket.create_connection(listener.getsockname(), timeout=IO_TIMEOUT) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.recv(1)
            assert tls.version() == "TLSv1.2"
            assert tls.session is not None and not tls.session.has_ticket
        thread.join(IO_TIMEOUT)


def test_a_self_signed_root_in_the_chain_file_is_not_sent(
    tmp_path: Path, localhost_files: PemFiles
) -> None:
    with_root = tmp_path / "with-root.pem"
    with_root.write_bytes(localhost_files.cert.read_bytes() + localhost_files.ca.read_bytes())
    server = server_context(with_root, localhost_files.key)
    chain = _sent_chain(server, localhost_files.ca)
    assert chain == [localhost_files.cert.read_bytes().strip()]


def _sent_chain(server: ssl.SSLContext, ca: Path) -> list[bytes]:
    """The certificates the server sends, as PEM, seen by ``openssl s_client -showcerts``."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (Debian package openssl)")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(IO_TIMEOUT)
        thread = threading.Thread(target=_serve_once, args=(listener, server, {}))
        thread.start()
        shown = subprocess.run(
            [
                *("openssl", "s_client", "-showcerts", "-CAfile", str(ca)),
                *("-connect", f"127.0.0.1:{listener.getsockname()[1]}"),
            ],
            input=b"",
            capture_output=True,
            timeout=IO_TIMEOUT,
        ).stdout
        thread.join(IO_TIMEOUT)
    return [m.group(0).strip() for m in PEM_BLOCK.finditer(shown)]


PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


# --------------------------------------------------------------------------- key permissions
# Review L4: a private key other users can read was served silently.


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o604, 0o660])
def test_a_key_others_may_read_is_refused_with_the_fix(
    localhost_files: PemFiles, mode: int
) -> None:
    if mode & 0o070 and os.geteuid() == 0:
        os.chown(localhost_files.key, 65534, -1)  # root may share a key with its group
    localhost_files.key.chmod(mode)
    with pytest.raises(
        TlsSetupError, match=rf"server\.key is .* \(mode 0{mode:o}\); run chmod 600"
    ):
        server_context(localhost_files.cert, localhost_files.key)


def test_an_explicitly_allowed_exposed_key_is_served_with_a_warning(
    localhost_files: PemFiles, caplog: pytest.LogCaptureFixture
) -> None:
    localhost_files.key.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="securechat"):
        server = server_context(
            localhost_files.cert, localhost_files.key, allow_insecure_key_permissions=True
        )
    assert memory_handshake(server, client_context(ca=localhost_files.ca))
    [warning] = caplog.records
    assert "event=insecure_key_permissions" in warning.getMessage()
    assert "mode 0644" in warning.getMessage()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a key file to root")
def test_a_root_owned_key_readable_by_its_group_is_accepted(localhost_files: PemFiles) -> None:
    os.chown(localhost_files.key, 0, -1)  # Debian: /etc/ssl/private, mode 0640 root:ssl-cert
    localhost_files.key.chmod(0o640)
    assert memory_handshake(
        server_context(localhost_files.cert, localhost_files.key),
        client_context(ca=localhost_files.ca),
    )


# --------------------------------------------------------------------------- validity period


def test_an_expired_certificate_is_refused_with_its_date(tmp_path: Path, ca: trustme.CA) -> None:
    past = datetime(2024, 3, 4, 5, 6, tzinfo=UTC)
    leaf = ca.issue_cert("localhost", not_before=past - timedelta(days=1), not_after=past)
    files = write_leaf(tmp_path, ca, leaf, "expired")
    with pytest.raises(TlsSetupError, match=r"expired\.pem expired on 2024-03-04 05:06 UTC"):
        server_context(files.cert, files.key)


def test_a_certificate_not_valid_yet_is_refused(tmp_path: Path, ca: trustme.CA) -> None:
    future = datetime.now(UTC) + timedelta(days=2)
    leaf = ca.issue_cert("localhost", not_before=future, not_after=future + timedelta(days=90))
    files = write_leaf(tmp_path, ca, leaf, "future")
    with pytest.raises(TlsSetupError, match=r"future\.pem is not valid before .*clock"):
        server_context(files.cert, files.key)


# --------------------------------------------------------------------------- files that block
# Review L5: a FIFO as the certificate path blocked open() and with it the event loop.


@pytest.mark.timeout(20)
@pytest.mark.parametrize("which", ["cert", "key"])
def test_a_fifo_as_certificate_or_key_is_refused_without_blocking(
    localhost_files: PemFiles, tmp_path: Path, which: str
) -> None:
    fifo = tmp_path / "pipe.pem"
    os.mkfifo(fifo)
    cert = fifo if which == "cert" else localhost_files.cert
    key = fifo if which == "key" else localhost_files.key
    with pytest.raises(TlsSetupError, match=r"pipe\.pem is a named pipe \(FIFO\)"):
        server_context(cert, key)


def test_a_device_as_client_ca_is_refused(localhost_files: PemFiles) -> None:
    with pytest.raises(TlsSetupError, match=r"CA file /dev/zero is a character device"):
        server_context(localhost_files.cert, localhost_files.key, client_ca=Path("/dev/zero"))
