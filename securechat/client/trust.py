"""Deciding whether to trust a server's certificate, before a single byte of IRC is sent.

Rules:
- By default the certificate must verify: the system store plus ``--ca``, and the
  host name. That needs no pin and no question.
- A pin is a SHA-256 certificate fingerprint for ``host:port``, kept in a file
  like SSH's ``known_hosts`` (``$XDG_CONFIG_HOME/securechat/known_hosts``).
  A pinned host is checked against its pin: the user chose that certificate,
  so any other one — even one a public CA vouches for — is refused loudly,
  with the fingerprints and how to replace the pin (but see the next rule).
- ``--trust-fingerprint`` accepts a certificate with that fingerprint and
  records the pin (replacing an old one: that is how a pin is replaced).
- A CA the user named (``--ca``, the config's ``ca``, ``certs/ca.pem``) wins over
  a stale pin: a certificate that is not the pinned one but verifies against that
  CA alone (not the system store) is accepted, and the pin replaced, with a
  notice (``Trust.notices``). A named CA file that does not exist is always an
  error, pinned or not.
- When verification fails, the user is asked "trust this certificate?" only when
  there is a terminal to ask on; otherwise the connection is refused with the
  reason in plain words, the fingerprint and the exact command to trust it.
- Only TLS happens on a connection whose certificate is not yet trusted; it is
  closed without sending anything, and a fresh connection is made once trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from securechat import tls

HANDSHAKE_TIMEOUT = 15.0  # seconds for TCP connect plus TLS handshake
DEFAULT_PORT = 6697

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Prompt = Callable[[str], bool]  # shows the question, returns the user's yes or no


class TrustError(Exception):
    """The certificate is not trusted; the message says why and what to do (a few lines)."""


class ConnectError(Exception):
    """The server could not be reached over TLS; the message is one line."""


@dataclass(slots=True, frozen=True)
class Endpoint:
    host: str
    port: int = DEFAULT_PORT

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; ValueError if bad."""
        match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:\s]+)(?::(\d+))?|([0-9A-Fa-f:]+)", text)
        if match is None:
            raise ValueError(f"{text!r} is not HOST or HOST:PORT")
        host = match[1] or match[3] or match[5]
        port = int(match[2] or match[4] or DEFAULT_PORT)
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range (1-65535)")
        return cls(host, port)


def normalize_fingerprint(text: str) -> str | None:
    """``SHA256:AB:CD…`` or ``abcd…`` -> 64 lowercase hex digits; None when it is not one."""
    bare = re.sub(r"^sha-?256[:=]?", "", text.strip(), flags=re.IGNORECASE)
    bare = bare.replace(":", "").lower()
    return bare if re.fullmatch(r"[0-9a-f]{64}", bare) else None


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/securechat``, by default ``~/.config/securechat``."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "securechat"


class KnownHosts:
    """Pins, one ``host:port sha256-hex`` per line; ``#`` starts a comment."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> list[tuple[str, str]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TrustError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        entries = []
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2 and normalize_fingerprint(fields[1]):
                entries.append((fields[0], fields[1].lower()))
        return entries

    def get(self, endpoint: Endpoint) -> str | None:
        for label, fingerprint in self._entries():
            if label == endpoint.label:
                return normalize_fingerprint(fingerprint)
        return None

    def set(self, endpoint: Endpoint, fingerprint: str) -> None:
        """Record the pin, replacing any other for the same host:port; file mode 0600."""
        kept = [(h, f) for h, f in self._entries() if h != endpoint.label]
        lines = [f"{h} {f}" for h, f in [*kept, (endpoint.label, fingerprint)]]
        header = "# securechat pinned server certificates: host:port sha256-fingerprint\n"
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(header + "\n".join(lines) + "\n")
            temporary.replace(self.path)
        except OSError as exc:
            raise TrustError(f"cannot write {self.path}: {exc.strerror or exc}") from None


@dataclass(slots=True)
class Trust:
    """Everything that decides whether a certificate is trusted, and the client's own."""

    known_hosts: KnownHosts
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    fingerprint: str | None = None  # --trust-fingerprint, normalized
    prompt: Prompt | None = None  # None: no terminal, never ask
    notices: list[str] = field(default_factory=list)  # said once connected (a replaced pin)

    def context(self, verify: bool) -> ssl.SSLContext:
        try:
            return tls.client_context(self.ca, self.cert, self.key, verify=verify)
        except tls.TlsSetupError as exc:
            raise ConnectError(str(exc)) from None

    def check_ca_file(self) -> None:
        """A named CA file that is missing is a mistake to report, even when a pin decides."""
        if self.ca is not None and not self.ca.is_file():
            raise ConnectError(f"the CA file {self.ca} does not exist (--ca or the config's ca)")

    def ca_only_context(self) -> ssl.SSLContext:
        """Verifies chain and host name against the named CA alone, not the system store."""
        context = self.context(verify=False)  # the protocol policy and our client certificate
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        try:
            context.load_verify_locations(cafile=str(self.ca))
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot use the CA file {self.ca}: {exc}") from None
        return context


async def open_trusted(endpoint: Endpoint, trust: Trust) -> Streams:
    """A TLS connection to a server whose certificate is trusted; nothing sent on it yet."""
    trust.check_ca_file()
    pin = trust.fingerprint or trust.known_hosts.get(endpoint)
    if pin is not None:
        return await _open_pinned(endpoint, trust, pin)
    try:
        return await handshake(endpoint, trust.context(verify=True))
    except ssl.SSLCertVerificationError as exc:
        reason = tls.describe_verify_error(exc)
    fingerprint = await peek_fingerprint(endpoint, trust)
    if trust.prompt is None or not trust.prompt(question(endpoint, reason, fingerprint)):
        raise TrustError(untrusted_message(endpoint, reason, fingerprint))
    trust.known_hosts.set(endpoint, fingerprint)
    return await _open_pinned(endpoint, trust, fingerprint)


async def _open_pinned(endpoint: Endpoint, trust: Trust, pin: str) -> Streams:
    reader, writer = await handshake(endpoint, trust.context(verify=False))
    presented = peer_fingerprint(writer)
    if presented != pin:
        await close(writer)
        if trust.fingerprint is not None:
            raise TrustError(wrong_fingerprint_message(endpoint, pin, presented))
        vouched = await _open_vouched(endpoint, trust, pin)
        if vouched is not None:
            return vouched
        raise TrustError(changed_message(endpoint, pin, presented, trust.known_hosts.path))
    if trust.fingerprint is not None and trust.known_hosts.get(endpoint) != pin:
        trust.known_hosts.set(endpoint, pin)  # an explicit --trust-fingerprint is remembered
    return reader, writer


async def _open_vouched(endpoint: Endpoint, trust: Trust, stale: str) -> Streams | None:
    """A certificate that replaced the pinned one, verified by the user's own CA; else None."""
    if trust.ca is None:
        return None
    try:
        reader, writer = await handshake(endpoint, trust.ca_only_context())
    except ssl.SSLCertVerificationError:
        return None
    fingerprint = peer_fingerprint(writer)
    trust.known_hosts.set(endpoint, fingerprint)
    trust.notices.append(
        f"The certificate of {endpoint.label} changed and is signed by your CA {trust.ca}: "
        f"trusted, and the old pin {stale[:16]}… replaced by {fingerprint[:16]}…"
    )
    return reader, writer


async def peek_fingerprint(endpoint: Endpoint, trust: Trust) -> str:
    """The fingerprint of the certificate the server presents; the connection is then closed."""
    _, writer = await handshake(endpoint, trust.context(verify=False))
    fingerprint = peer_fingerprint(writer)
    await close(writer)
    return fingerprint


def peer_fingerprint(writer: asyncio.StreamWriter) -> str:
    ssl_object: ssl.SSLObject | None = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise ConnectError("the server presented no certificate")
    return tls.fingerprint_sha256(der)


async def handshake(endpoint: Endpoint, context: ssl.SSLContext) -> Streams:
    """TCP connect and TLS handshake; any failure but verification becomes a ConnectError."""
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(
                endpoint.host, endpoint.port, ssl=context, server_hostname=endpoint.host
            ),
            HANDSHAKE_TIMEOUT,
        )
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as exc:
        reason = tls.describe_verify_error(exc)
    except TimeoutError:
        reason = "no TLS handshake within the timeout (does this port speak TLS?)"
    except socket.gaierror:
        reason = f"the host name {endpoint.host} could not be resolved"
    except ConnectionRefusedError:
        reason = "connection refused (is the server running on that port?)"
    except (ConnectionResetError, asyncio.IncompleteReadError, EOFError):
        reason = "the server closed the connection during the TLS handshake (not a TLS port?)"
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
    raise ConnectError(f"cannot connect to {endpoint.label}: {reason}")


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    # The connection is going away anyway: a failure to close it cleanly changes nothing.
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), 5.0)


# ---- what the user reads ----------------------------------------------------------------


def trust_command(endpoint: Endpoint, fingerprint: str) -> str:
    return f"securechat connect {endpoint.label} --trust-fingerprint {fingerprint}"


def question(endpoint: Endpoint, reason: str, fingerprint: str) -> str:
    return (
        f"The certificate of {endpoint.label} cannot be verified: {reason}.\n"
        f"Its SHA-256 fingerprint is {fingerprint}\n"
        "Compare it with the one the server's operator gave you "
        "(scripts/gen-dev-certs prints it).\n"
        "Trust this certificate and remember it for this server? [y/N] "
    )


def untrusted_message(endpoint: Endpoint, reason: str, fingerprint: str) -> str:
    return (
        f"Not connecting to {endpoint.label}: {reason}.\n"
        f"  The server's certificate has SHA-256 fingerprint {fingerprint}\n"
        f"  If its CA is yours, pass it:  securechat connect {endpoint.label} --ca CA_FILE\n"
        f"  or, if you trust this certificate, pin it:  {trust_command(endpoint, fingerprint)}\n"
        "  Nothing was sent to the server."
    )


def changed_message(endpoint: Endpoint, pinned: str, presented: str, path: Path) -> str:
    return (
        f"WARNING: THE CERTIFICATE OF {endpoint.label} HAS CHANGED SINCE YOU PINNED IT.\n"
        "  Someone may be intercepting the connection, or the server got a new certificate.\n"
        f"  pinned:    {pinned}\n"
        f"  presented: {presented}\n"
        "  Nothing was sent. If you know the change is legitimate, replace the pin with:\n"
        f"    {trust_command(endpoint, presented)}\n"
        f"  (or delete the line for {endpoint.label} in {path})"
    )


def wrong_fingerprint_message(endpoint: Endpoint, expected: str, presented: str) -> str:
    return (
        f"Not connecting to {endpoint.label}: its certificate does not match "
        "--trust-fingerprint.\n"
        f"  expected:  {expected}\n"
        f"  presented: {presented}\n"
        "  Nothing was sent to the server."
    )
