"""TLS configuration: SSLContext builders, certificate fingerprints, readable errors.

This is the one module that configures ``ssl``; the server and the client ask it for
contexts and never set protocol options themselves. The rules it enforces:

- TLS 1.2 is the minimum on both sides (RFC 8996 deprecates TLS 1.0 and 1.1); TLS 1.3 is
  negotiated whenever both peers have it. The client keeps the stdlib's cipher suites; the
  server drops the stdlib's two TLS 1.2 CBC suites (Lucky13-class padding oracles) and offers
  ECDHE with AEAD only, and only the key-exchange groups of ``tls_groups`` (see that module).
- The server sends no session tickets (TLS 1.3: ``num_tickets``; TLS 1.2: OP_NO_TICKET, whose
  ticket key would live as long as the process and undo forward secrecy), and no
  self-signed trust anchor in its chain (RFC 8446 §4.4.2 lets it be omitted; a client that
  trusts the root has it already).
- The server refuses a private key other users may read (unless the operator allows it
  explicitly) and a certificate outside its validity period.
- TLS compression is off (the CRIME attack) and renegotiation is refused where OpenSSL
  can refuse it (a client-initiated renegotiation is a cheap CPU denial of service).
- The client verifies the server's chain and host name by default. ``verify=False`` is
  only for a client that pins the server certificate's fingerprint and checks it itself.
- Anything wrong with a certificate or key file becomes a :class:`TlsSetupError` whose
  message is one line for an operator, naming the file; never a traceback.

Fingerprints are SHA-256 over the DER certificate, in the two spellings IRC clients
accept: bare lowercase hex (WeeChat's ``tls_fingerprint``) and uppercase colon-separated
hex (irssi's ``-tls_pinned_cert``, also what ``openssl x509 -fingerprint -sha256`` prints).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import re
import ssl
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from securechat.logs import event
from securechat.regular_files import FileRefused, RegularFile, read_regular_file
from securechat.tls_groups import DEFAULT_GROUPS, GroupsError, restrict_groups

__all__ = [
    "TlsSetupError",
    "cert_der_from_pem_file",
    "client_context",
    "describe_verify_error",
    "fingerprint_colons",
    "fingerprint_sha256",
    "not_after",
    "server_context",
]

log = logging.getLogger("securechat.tls")

# The stdlib's default list (Lib/ssl.py _DEFAULT_CIPHERS) without "ECDH+AES:DHE+AES", the
# CBC suites; TLS 1.3 suites are set apart by OpenSSL and are all AEAD already.
SERVER_CIPHERS = "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"


class TlsSetupError(Exception):
    """A certificate, key or CA file cannot be used; the message names the file."""


# --------------------------------------------------------------------------- contexts


def server_context(
    cert: Path,
    key: Path,
    client_ca: Path | None = None,
    *,
    groups: Sequence[str] = DEFAULT_GROUPS,
    allow_insecure_key_permissions: bool = False,
) -> ssl.SSLContext:
    """A server context presenting ``cert`` (leaf first, then its chain) with ``key``.

    With ``client_ca``, clients may present a certificate signed by that CA (for SASL
    EXTERNAL); a client without one still connects (CERT_OPTIONAL). ``groups`` are the
    only key-exchange groups offered.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_protocol_policy(context)
    context.set_ciphers(SERVER_CIPHERS)
    _restrict_groups(context, groups)
    # No TLS 1.3 session tickets (OpenSSL sends two after every handshake): chat connections
    # live long and IRC clients do not resume sessions, so tickets were pure handshake cost.
    context.num_tickets = 0
    context.options |= ssl.OP_NO_TICKET  # the same for TLS 1.2
    cert_file, key_file = _read_pem(cert, "certificate file"), _read_pem(key, "private key file")
    _check_key_pem(key, key_file.data)  # what is wrong with the content is said first
    _check_key_permissions(key, key_file, allow_insecure_key_permissions)
    chain = _server_chain(cert, cert_file.data)
    _load_cert_and_key(context, cert, key, chain, key_file.data)
    if client_ca is not None:
        _load_trusted_ca(context, client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_context(
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    verify: bool = True,
) -> ssl.SSLContext:
    """A client context trusting the system store plus ``ca``, optionally with a client cert.

    ``key`` defaults to ``cert`` (a PEM file may hold both). ``verify=False`` turns off
    chain and host name checks: the caller must then compare the server's fingerprint.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_protocol_policy(context)
    if verify:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if ca is not None:
            _load_trusted_ca(context, ca)
    else:
        # check_hostname must be switched off before verify_mode may drop to CERT_NONE.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        key = key if key is not None else cert
        cert_pem, key_pem = _read(cert, "certificate file"), _read(key, "private key file")
        _load_cert_and_key(context, cert, key, cert_pem, key_pem)
    return context


def _apply_protocol_policy(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    # OP_NO_RENEGOTIATION exists only when Python was built against OpenSSL >= 1.1.0h.
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)


def _restrict_groups(context: ssl.SSLContext, groups: Sequence[str]) -> None:
    try:
        fallback = restrict_groups(context, groups)
    except GroupsError as exc:
        raise TlsSetupError(str(exc)) from None
    if fallback is not None:
        event(log, "tls_groups_fallback", level=logging.WARNING, reason=fallback)


# --------------------------------------------------------------------------- loading files

_PEM_CERT_RE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(?P<body>[A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)
_PEM_KEY_MARKER = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY-----")
_ENCRYPTED_KEY_MARKER = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED")


def _read_pem(path: Path, what: str) -> RegularFile:
    try:
        return read_regular_file(path)
    except FileRefused as exc:
        raise TlsSetupError(f"{what} {path} {exc}") from None


def _read(path: Path, what: str) -> bytes:
    return _read_pem(path, what).data


def _check_cert_pem(path: Path, data: bytes, what: str) -> None:
    if _PEM_CERT_RE.search(data) is None:
        raise TlsSetupError(f"{what} {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")


def _check_key_pem(path: Path, data: bytes) -> None:
    if _ENCRYPTED_KEY_MARKER.search(data):
        raise TlsSetupError(
            f"private key file {path} is encrypted; securechat needs an unencrypted key"
        )
    if _PEM_KEY_MARKER.search(data) is None:
        raise TlsSetupError(f"private key file {path} holds no PEM private key")


def _refuse_passphrase_prompt(key: Path) -> Callable[[], str]:
    # Without a callback OpenSSL would prompt on the terminal for a passphrase; a server
    # started by a script must fail with a message instead of hanging.
    def refuse() -> str:
        raise TlsSetupError(
            f"private key file {key} is encrypted; securechat needs an unencrypted key"
        )

    return refuse


# OpenSSL says KEY_VALUES_MISMATCH for a key of the right type, and NO_CERTIFICATE_ASSIGNED
# when the key is of another type (an RSA key next to an EC certificate).
_KEY_MISMATCH_REASONS = frozenset({"KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"})


def _load_cert_and_key(
    context: ssl.SSLContext, cert: Path, key: Path, cert_pem: bytes, key_pem: bytes
) -> None:
    """Load the bytes already read (never the paths again: the file checked is the file
    used). The PEM checks come first so that the error names the file at fault; OpenSSL's
    own errors ("PEM lib") do not say which of the two files it choked on."""
    _check_cert_pem(cert, cert_pem, "certificate file")
    _check_key_pem(key, key_pem)
    try:
        with _memory_files(cert_pem, key_pem) as (cert_name, key_name):
            context.load_cert_chain(cert_name, key_name, password=_refuse_passphrase_prompt(key))
    except OSError as exc:
        if isinstance(exc, ssl.SSLError) and exc.reason in _KEY_MISMATCH_REASONS:
            raise TlsSetupError(
                f"private key {key} does not match the certificate in {cert}"
            ) from None
        raise TlsSetupError(
            f"cannot load certificate {cert} with key {key}: {_reason(exc)}"
        ) from None


@contextlib.contextmanager
def _memory_files(*blobs: bytes) -> Iterator[list[str]]:
    """Names under which OpenSSL can open ``blobs`` (``load_cert_chain`` takes only paths):
    anonymous in-memory files on Linux (memfd), so a private key is never copied to disk;
    elsewhere files in a private temporary directory, removed at once."""
    if not _HAVE_MEMFD:
        with tempfile.TemporaryDirectory(prefix="securechat-tls-") as directory:
            names = [os.path.join(directory, str(index)) for index in range(len(blobs))]
            for name, blob in zip(names, blobs, strict=True):
                Path(name).write_bytes(blob)
            yield names
        return
    descriptors: list[int] = []
    try:
        for blob in blobs:
            descriptors.append(os.memfd_create("securechat-tls", os.MFD_CLOEXEC))
            os.write(descriptors[-1], blob)
        yield [f"/proc/self/fd/{fd}" for fd in descriptors]
    finally:
        for fd in descriptors:
            os.close(fd)


_HAVE_MEMFD = hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


# A private key may be read by its owner only; root-owned keys may also be group-readable,
# the Debian convention of /etc/ssl/private with the ssl-cert group (PostgreSQL's rule).
def _key_permission_problem(info: os.stat_result) -> str | None:
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o007:
        return f"is readable or writable by every user (mode {mode:04o})"
    group_ok = info.st_uid == 0 and mode & 0o070 in (0, 0o040)
    if mode & 0o070 and not group_ok:
        return f"is readable or writable by its group (mode {mode:04o})"
    return None


def _check_key_permissions(key: Path, key_file: RegularFile, allowed: bool) -> None:
    problem = _key_permission_problem(key_file.info)
    if problem is None:
        return
    if not allowed:
        raise TlsSetupError(
            f"private key file {key} {problem}; run chmod 600 {key}, or set "
            "allow_insecure_key_permissions = true to accept it"
        )
    event(
        log,
        "insecure_key_permissions",
        level=logging.WARNING,
        key=key,
        problem=problem,
        hint=f"chmod 600 {key}",
    )


def _server_chain(cert: Path, pem: bytes) -> bytes:
    """The chain to send: checked for validity now, without self-signed trust anchors."""
    certificates = _parse_chain(cert, pem)
    _check_validity(cert, certificates[0], datetime.now(UTC))
    kept = [certificates[0], *(c for c in certificates[1:] if not _self_signed(c))]
    return b"".join(c.public_bytes(Encoding.PEM) for c in kept)


def _parse_chain(cert: Path, pem: bytes) -> list[x509.Certificate]:
    _check_cert_pem(cert, pem, "certificate file")
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise TlsSetupError(f"certificate file {cert} holds a damaged certificate: {exc}") from None


def _check_validity(cert: Path, leaf: x509.Certificate, now: datetime) -> None:
    if now > leaf.not_valid_after_utc:
        raise TlsSetupError(
            f"certificate {cert} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; "
            "renew it (scripts/gen-dev-certs makes a development one)"
        )
    if now < leaf.not_valid_before_utc:
        raise TlsSetupError(
            f"certificate {cert} is not valid before "
            f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check this machine's clock)"
        )


def _self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _load_trusted_ca(context: ssl.SSLContext, ca: Path) -> None:
    pem = _read(ca, "CA file")
    _check_cert_pem(ca, pem, "CA file")
    try:
        context.load_verify_locations(cadata=pem.decode("ascii", errors="replace"))
    except OSError as exc:
        raise TlsSetupError(f"cannot load CA file {ca}: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    return exc.strerror or str(exc)


# --------------------------------------------------------------------------- fingerprints


def fingerprint_sha256(der: bytes) -> str:
    """SHA-256 of a DER certificate as 64 lowercase hex digits (WeeChat's form)."""
    return hashlib.sha256(der).hexdigest()


def fingerprint_colons(der: bytes) -> str:
    """SHA-256 of a DER certificate as ``AB:CD:...`` (irssi's and ``openssl x509``'s form)."""
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())


def cert_der_from_pem_file(path: Path) -> bytes:
    """The DER bytes of the first certificate in a PEM file (a chain file gives its leaf)."""
    match = _PEM_CERT_RE.search(_read(path, "certificate file"))
    if match is None:
        raise TlsSetupError(f"certificate file {path} holds no PEM certificate")
    try:
        return base64.b64decode(b"".join(match["body"].split()), validate=True)
    except binascii.Error:
        raise TlsSetupError(f"certificate file {path} holds a damaged PEM certificate") from None


def not_after(der: bytes) -> datetime:
    """The end of a DER certificate's validity period, as an aware UTC datetime."""
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError as exc:
        raise TlsSetupError(f"not a valid X.509 certificate: {exc}") from None


# --------------------------------------------------------------------------- errors in words

# OpenSSL X509_V_ERR_* codes (include/openssl/x509_vfy.h) that a user can act on.
_UNKNOWN_CA = "the server's certificate is signed by an unknown certificate authority"
_VERIFY_CODE_WORDS: dict[int, str] = {
    2: _UNKNOWN_CA,  # UNABLE_TO_GET_ISSUER_CERT
    9: "the server's certificate is not valid yet (check this machine's clock)",
    10: "the server's certificate has expired",
    18: "the server's certificate is self-signed and not trusted",  # DEPTH_ZERO_SELF_SIGNED
    19: _UNKNOWN_CA,  # SELF_SIGNED_CERT_IN_CHAIN: the chain ends at a root we do not trust
    20: _UNKNOWN_CA,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: _UNKNOWN_CA,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    23: "the server's certificate has been revoked",
    24: "the server's certificate chain contains a certificate that may not act as a CA",
    26: "the server's certificate is not meant for a TLS server (wrong extended key usage)",
    62: "the server's certificate is not valid for this host name",  # HOSTNAME_MISMATCH
    64: "the server's certificate is not valid for this IP address",  # IP_ADDRESS_MISMATCH
}
_MISMATCH_NAME_RE = re.compile(r"not valid for '([^']*)'")

# Handshake failures that are not certificate verification, by OpenSSL reason.
_REASON_WORDS: dict[str, str] = {
    "WRONG_VERSION_NUMBER": "the server did not answer with TLS (is this a plaintext port?)",
    "UNSUPPORTED_PROTOCOL": "the peer only offers a TLS version older than 1.2",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the peer refused our TLS version (it needs another one)",
    "NO_PROTOCOLS_AVAILABLE": "no TLS version is enabled that both sides accept",
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not trust our client certificate's authority",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server rejected our client certificate",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the TLS handshake failed: no cipher or version in common",
}


def describe_verify_error(exc: ssl.SSLCertVerificationError | ssl.SSLError) -> str:
    """Say in plain words why a TLS handshake failed, e.g. an unknown CA or a name mismatch."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _describe_certificate_error(exc)
    if exc.reason in _REASON_WORDS:
        return _REASON_WORDS[exc.reason]
    return f"the TLS handshake failed ({_reason(exc)})"


def _describe_certificate_error(exc: ssl.SSLCertVerificationError) -> str:
    words = _VERIFY_CODE_WORDS.get(exc.verify_code)
    if words is None:
        detail = exc.verify_message or "unknown reason"
        return f"the server's certificate could not be verified ({detail})"
    name = _MISMATCH_NAME_RE.search(exc.verify_message or "")
    if exc.verify_code in (62, 64) and name is not None:
        return f"the server's certificate is not valid for '{name[1]}'"
    return words
