"""TLS configuration: SSLContext builders, certificate fingerprints, readable errors.

This is the one module that configures ``ssl``; the server and the client ask it for
contexts and never set protocol options themselves. The rules it enforces:

- TLS 1.2 is the minimum on both sides (RFC 8996 deprecates TLS 1.0 and 1.1); TLS 1.3 is
  negotiated whenever both peers have it. Cipher suites are the stdlib defaults.
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
import hashlib
import re
import ssl
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509

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


class TlsSetupError(Exception):
    """A certificate, key or CA file cannot be used; the message names the file."""


# --------------------------------------------------------------------------- contexts


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server context presenting ``cert`` (leaf first, then its chain) with ``key``.

    With ``client_ca``, clients may present a certificate signed by that CA (for SASL
    EXTERNAL); a client without one still connects (CERT_OPTIONAL).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_protocol_policy(context)
    # No TLS 1.3 session tickets (OpenSSL sends two after every handshake): chat connections
    # live long and IRC clients do not resume sessions, so tickets were pure handshake cost.
    context.num_tickets = 0
    _load_cert_and_key(context, cert, key)
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
        _load_cert_and_key(context, cert, key if key is not None else cert)
    return context


def _apply_protocol_policy(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    # OP_NO_RENEGOTIATION exists only when Python was built against OpenSSL >= 1.1.0h.
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)


# --------------------------------------------------------------------------- loading files

_PEM_CERT_RE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(?P<body>[A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)
_PEM_KEY_MARKER = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY-----")
_ENCRYPTED_KEY_MARKER = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsSetupError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise TlsSetupError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise TlsSetupError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _check_cert_file(path: Path, what: str) -> None:
    if _PEM_CERT_RE.search(_read(path, what)) is None:
        raise TlsSetupError(f"{what} {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")


def _check_key_file(path: Path) -> None:
    data = _read(path, "private key file")
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


def _load_cert_and_key(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    # The files are checked first so that the error names the file at fault; OpenSSL's own
    # errors ("PEM lib") do not say which of the two files it choked on.
    _check_cert_file(cert, "certificate file")
    _check_key_file(key)
    try:
        context.load_cert_chain(cert, key, password=_refuse_passphrase_prompt(key))
    except OSError as exc:
        if isinstance(exc, ssl.SSLError) and exc.reason in _KEY_MISMATCH_REASONS:
            raise TlsSetupError(
                f"private key {key} does not match the certificate in {cert}"
            ) from None
        raise TlsSetupError(
            f"cannot load certificate {cert} with key {key}: {_reason(exc)}"
        ) from None


def _load_trusted_ca(context: ssl.SSLContext, ca: Path) -> None:
    _check_cert_file(ca, "CA file")
    try:
        context.load_verify_locations(cafile=ca)
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
