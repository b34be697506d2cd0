"""Development certificates: a local CA, a server certificate it signs, client certificates.

``securechat certs`` (and ``scripts/gen-dev-certs``) writes into ``--out`` (default ``certs/``)::

    ca.pem  ca.key              the local certificate authority (CA)
    server.pem  server.key      the server's certificate followed by the CA (a chain file)
    clients/NAME.pem  NAME.key  a client certificate per ``--client NAME`` (for SASL EXTERNAL)

Rules this module keeps, and where they come from:

- Keys are EC P-256 with ECDSA-SHA256 signatures: generating one takes about a millisecond
  (RSA-2048 takes tens to hundreds), and OpenSSL, GnuTLS (WeeChat) and every other TLS stack
  an IRC client uses accept them.
- The CA is valid for 10 years; server and client certificates for 825 days, the longest
  Apple platforms accept for a TLS server certificate. notBefore is set an hour back so that
  a peer whose clock runs a little behind does not see a certificate from the future.
- Serial numbers are 159 random bits (CA/Browser Forum Baseline Requirements 7.1: at least
  64 bits from a CSPRNG; RFC 5280 4.1.2.2: positive, at most 20 octets).
- Extensions follow RFC 5280 4.2.1: basicConstraints (critical; CA true with pathLen 0, so
  the CA can only sign end-entity certificates), keyUsage (critical; keyCertSign + cRLSign for
  the CA, digitalSignature alone for leaves, as ECDSA keys only sign), extendedKeyUsage
  serverAuth or clientAuth, subjectKeyIdentifier and authorityKeyIdentifier. The server's
  names are subjectAltNames (IP addresses as iPAddress, names as dNSName): TLS clients match
  the host against these, not the common name (RFC 6125 6.4.4).
- An existing, usable CA is always reused, with ``--force`` too, so that clients which already
  trust ``ca.pem`` keep working when the server certificate is replaced. To start a new CA,
  delete ``ca.pem`` and ``ca.key``.
- Nothing is written before every check has passed. Existing files are replaced only with
  ``--force``. Each file is written to a fresh temporary file created with its final mode
  (0600 for keys, never loosened first and tightened later) and renamed into place; a new
  output directory is created 0700.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securechat.cert_files import write_certs, write_key
from securechat.cert_names import (
    CertsError,
    general_name_text,
    parse_san,
    server_sans,
    validated_client_names,
)
from securechat.tls import (
    TlsSetupError,
    cert_der_from_pem_file,
    fingerprint_colons,
    fingerprint_sha256,
)

__all__ = [
    "CertsError",
    "ClientCertFiles",
    "DevCertResult",
    "add_arguments",
    "ensure_dev_certs",
    "generate_dev_certs",
    "run",
    "summary_lines",
]

DEFAULT_OUT = Path("certs")
CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=825)
CLOCK_SKEW_ALLOWANCE = timedelta(hours=1)
ORGANIZATION = "securechat development"
DIR_MODE = 0o700
DEFAULT_PORT = 6697


RELOAD_HINT = (
    "A running server keeps serving the old certificate until it reloads: send it SIGHUP "
    "(kill -HUP <pid>), or as an operator type /quote REHASH."
)

_SIGNING_KEY_TYPES = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    # No DSA: merely naming cryptography's dsa module warns (CryptographyDeprecationWarning) on
    # every run, and no CA we would reuse holds a DSA key; such a key is refused as unusable.
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


@dataclass(frozen=True)
class ClientCertFiles:
    name: str
    cert: Path
    key: Path
    fingerprint_sha256: str


@dataclass(frozen=True)
class DevCertResult:
    """Where the development certificates are, and the server certificate's fingerprints."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    server_names: tuple[str, ...]
    server_fingerprint_sha256: str
    server_fingerprint_colons: str
    clients: tuple[ClientCertFiles, ...]
    created: tuple[Path, ...]


@dataclass(frozen=True)
class _Layout:
    out: Path

    @property
    def ca_cert(self) -> Path:
        return self.out / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.out / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.out / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.out / "server.key"

    @property
    def clients_dir(self) -> Path:
        return self.out / "clients"

    def client_cert(self, name: str) -> Path:
        return self.clients_dir / f"{name}.pem"

    def client_key(self, name: str) -> Path:
        return self.clients_dir / f"{name}.key"


@dataclass(frozen=True)
class _Issuer:
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


# --------------------------------------------------------------------------- public API


def generate_dev_certs(
    out: Path,
    sans: Sequence[str] = (),
    clients: Sequence[str] = (),
    force: bool = False,
) -> DevCertResult:
    """Create the CA (unless one exists), the server certificate and any client certificates.

    With only ``clients`` (and no ``sans``) an existing server certificate is kept, so that
    minting a client certificate later does not need ``force``.
    """
    client_names = validated_client_names(clients)
    extra_sans = [parse_san(text) for text in sans]
    replace_server = bool(extra_sans) or not client_names
    return _generate(_Layout(out), extra_sans, client_names, force, replace_server)


def ensure_dev_certs(out: Path) -> DevCertResult:
    """Create the CA and the server certificate only if missing; otherwise change nothing."""
    return _generate(_Layout(out), [], [], force=False, replace_server=False)


# --------------------------------------------------------------------------- the plan


def _generate(
    layout: _Layout,
    extra_sans: list[x509.GeneralName],
    client_names: list[str],
    force: bool,
    replace_server: bool,
) -> DevCertResult:
    issuer = _load_existing_ca(layout)
    make_ca = issuer is None
    make_server = replace_server or make_ca or not _all_exist(_server_files(layout))
    if make_ca and not force:
        _refuse_orphaned_server(layout)
    targets = _planned_files(layout, make_ca, make_server, client_names)
    if not force:
        _refuse_existing(targets)
    _create_dirs(layout, client_names)

    now = datetime.now(UTC)
    if issuer is None:
        issuer = _new_ca(now)
        write_key(layout.ca_key, issuer.key)
        write_certs(layout.ca_cert, [issuer.cert])
    if make_server:
        _write_server(layout, issuer, extra_sans, now)
    clients = tuple(_write_client(layout, issuer, name, now) for name in client_names)
    return _result(layout, clients, targets)


def _server_files(layout: _Layout) -> list[Path]:
    return [layout.server_cert, layout.server_key]


def _planned_files(
    layout: _Layout, make_ca: bool, make_server: bool, client_names: list[str]
) -> list[Path]:
    files: list[Path] = []
    if make_ca:
        files += [layout.ca_cert, layout.ca_key]
    if make_server:
        files += _server_files(layout)
    for name in client_names:
        files += [layout.client_cert(name), layout.client_key(name)]
    return files


def _all_exist(paths: Iterable[Path]) -> bool:
    return all(path.exists() for path in paths)


def _refuse_existing(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.exists() or path.is_symlink():
            raise CertsError(f"{path} already exists; use --force to replace it")


def _refuse_orphaned_server(layout: _Layout) -> None:
    # A new CA cannot vouch for a server certificate signed by the one that is gone.
    for path in _server_files(layout):
        if path.exists():
            raise CertsError(
                f"{path} exists but its CA ({layout.ca_cert}) does not; restore the CA, "
                "or use --force to replace the server certificate with one from a new CA"
            )


def _create_dirs(layout: _Layout, client_names: list[str]) -> None:
    _make_private_dir(layout.out)
    if client_names:
        _make_private_dir(layout.clients_dir)


def _make_private_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise CertsError(f"{path} exists and is not a directory")
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


# --------------------------------------------------------------------------- the CA


def _load_existing_ca(layout: _Layout) -> _Issuer | None:
    have_cert, have_key = layout.ca_cert.exists(), layout.ca_key.exists()
    if not have_cert and not have_key:
        return None
    if not have_cert or not have_key:
        present, missing = (
            (layout.ca_cert, layout.ca_key) if have_cert else (layout.ca_key, layout.ca_cert)
        )
        raise CertsError(
            f"{present} exists but {missing} does not; restore it, or delete {present} "
            "to create a new CA"
        )
    issuer = _Issuer(_read_certificate(layout.ca_cert), _read_signing_key(layout.ca_key))
    _check_usable_ca(issuer, layout)
    return issuer


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        raise CertsError(f"{path} does not hold a PEM certificate") from None


def _read_signing_key(path: Path) -> CertificateIssuerPrivateKeyTypes:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except TypeError:  # cryptography's way of saying "encrypted, and no password given"
        raise CertsError(f"{path} is encrypted; securechat needs an unencrypted key") from None
    except ValueError:
        raise CertsError(f"{path} does not hold a PEM private key") from None
    if not isinstance(key, _SIGNING_KEY_TYPES):
        raise CertsError(f"{path} holds a key that cannot sign certificates")
    return key


def _check_usable_ca(issuer: _Issuer, layout: _Layout) -> None:
    if _public_key_der(issuer.cert) != _public_key_der(issuer.key):
        raise CertsError(f"{layout.ca_key} does not match the certificate in {layout.ca_cert}")
    if not _is_ca(issuer.cert):
        raise CertsError(f"{layout.ca_cert} is not a CA certificate (basicConstraints CA:FALSE)")
    expired = issuer.cert.not_valid_after_utc
    if expired <= datetime.now(UTC):
        raise CertsError(
            f"{layout.ca_cert} expired on {expired:%Y-%m-%d}; delete {layout.ca_cert} and "
            f"{layout.ca_key} to create a new CA"
        )


def _public_key_der(holder: x509.Certificate | CertificateIssuerPrivateKeyTypes) -> bytes:
    public_key = holder.public_key()
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _new_ca(now: datetime) -> _Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    # A random suffix keeps the subjects of successive dev CAs apart in a trust store.
    name = _name(f"securechat development CA {secrets.token_hex(4)}")
    not_before = now - CLOCK_SKEW_ALLOWANCE
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    # RFC 5280 4.2.1.1: authorityKeyIdentifier MAY be omitted from a self-signed certificate.
    return _Issuer(builder.sign(key, hashes.SHA256()), key)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --------------------------------------------------------------------------- leaves


def _issue_leaf(
    issuer: _Issuer,
    common_name: str,
    purpose: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
    now: datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    not_before = now - CLOCK_SKEW_ALLOWANCE
    # A leaf that outlives its CA would fail verification anyway; end it with the CA.
    not_after = min(not_before + LEAF_VALIDITY, issuer.cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(issuer.key, _signature_hash(issuer.key))


def _authority_key_id(issuer: _Issuer) -> x509.AuthorityKeyIdentifier:
    # Copy the CA's own subjectKeyIdentifier when it has one: verifiers match the two
    # byte for byte, and a reused CA may have computed its identifier another way.
    try:
        ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    # Ed25519 and Ed448 sign the message itself; cryptography wants no hash for them.
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def _write_server(
    layout: _Layout, issuer: _Issuer, extra_sans: list[x509.GeneralName], now: datetime
) -> None:
    sans = server_sans(extra_sans)
    common_name = general_name_text(sans[0])  # RFC 6125: the CN, if any, is one of the SANs
    key, cert = _issue_leaf(issuer, common_name, ExtendedKeyUsageOID.SERVER_AUTH, sans, now)
    write_key(layout.server_key, key)
    write_certs(layout.server_cert, [cert, issuer.cert])


def _write_client(layout: _Layout, issuer: _Issuer, name: str, now: datetime) -> ClientCertFiles:
    key, cert = _issue_leaf(issuer, name, ExtendedKeyUsageOID.CLIENT_AUTH, [], now)
    cert_path, key_path = layout.client_cert(name), layout.client_key(name)
    write_key(key_path, key)
    write_certs(cert_path, [cert])
    der = cert.public_bytes(serialization.Encoding.DER)
    return ClientCertFiles(name, cert_path, key_path, fingerprint_sha256(der))


# --------------------------------------------------------------------------- result


def _result(
    layout: _Layout, clients: tuple[ClientCertFiles, ...], created: list[Path]
) -> DevCertResult:
    der = cert_der_from_pem_file(layout.server_cert)
    return DevCertResult(
        ca_cert=layout.ca_cert,
        ca_key=layout.ca_key,
        server_cert=layout.server_cert,
        server_key=layout.server_key,
        server_names=_names_in_certificate(der),
        server_fingerprint_sha256=fingerprint_sha256(der),
        server_fingerprint_colons=fingerprint_colons(der),
        clients=clients,
        created=tuple(created),
    )


def _names_in_certificate(der: bytes) -> tuple[str, ...]:
    try:
        cert = x509.load_der_x509_certificate(der)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return ()
    return tuple(general_name_text(name) for name in sans)


def summary_lines(
    result: DevCertResult, host: str = "localhost", port: int = DEFAULT_PORT
) -> list[str]:
    """What was made, the server fingerprints, and the irssi/WeeChat settings that use them."""
    ca_file = result.ca_cert.resolve()
    colons, bare = result.server_fingerprint_colons, result.server_fingerprint_sha256
    lines = [_created_line(result)]
    lines += [
        f"CA certificate:     {result.ca_cert}  (give this file to clients; keep ca.key private)",
        f"Server certificate: {result.server_cert}  (key {result.server_key})",
        f"  valid for: {', '.join(result.server_names) or '(no names found)'}",
    ]
    lines += [f"Client certificate: {client.cert}  (key {client.key})" for client in result.clients]
    lines += [
        "Server certificate SHA-256 fingerprint:",
        f"  {colons}",
        f"  {bare}",
        "Trust the CA (irssi checks DNS names only: use localhost, not 127.0.0.1):",
        f"  irssi:        /connect -tls -tls_cafile {ca_file} {host} {port}",
        f'  WeeChat ≥ 4:  /set weechat.network.gnutls_ca_user "{ca_file}"',
        f"                /server add sc {host}/{port} -tls",
        f'  WeeChat 3.x:  /set weechat.network.gnutls_ca_user "{ca_file}"',
        f"                /server add sc {host}/{port} -ssl",
        "  (WeeChat 3.x ignores -tls without a word and connects in plaintext: use -ssl there.)",
        "Or pin this server certificate (the fingerprint changes when it is regenerated):",
        f"  irssi:        /connect -tls -tls_pinned_cert {colons} {host} {port}",
        f"  WeeChat ≥ 4:  /server add sc {host}/{port} -tls -tls_fingerprint={bare}",
        f"  WeeChat 3.x:  /server add sc {host}/{port} -ssl -ssl_fingerprint={bare}",
    ]
    lines += [
        f"  irssi with client {client.name}: add -tls_cert {client.cert.resolve()} "
        f"-tls_pkey {client.key.resolve()}"
        for client in result.clients
    ]
    return lines


def _created_line(result: DevCertResult) -> str:
    if not result.created:
        return f"Nothing to do: {result.ca_cert} and {result.server_cert} already exist."
    return "Created " + ", ".join(str(path) for path in result.created)


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``securechat certs`` (and ``scripts/gen-dev-certs``)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"directory for the certificates and keys (default: {DEFAULT_OUT}/)",
    )
    parser.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME_OR_IP",
        help="another DNS name or IP address for the server certificate (repeatable)",
    )
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="NAME",
        help="also make clients/NAME.pem and clients/NAME.key signed by the CA (repeatable)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing server and client files (an existing CA is always kept)",
    )
    parser.add_argument(
        "--only-missing",
        action="store_true",
        help="create the CA and server certificate only if they are missing",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``securechat certs``: 0 on success, 2 with one line on stderr on a user error."""
    try:
        result = _run(args)
    except (CertsError, TlsSetupError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_describe_os_error(exc))
    print("\n".join(summary_lines(result)))
    if args.force and result.server_cert in result.created:
        print(RELOAD_HINT)
    return 0


def _run(args: argparse.Namespace) -> DevCertResult:
    out: Path = args.out
    if args.only_missing:
        if args.san or args.client or args.force:
            raise CertsError("--only-missing cannot be combined with --san, --client or --force")
        return ensure_dev_certs(out)
    return generate_dev_certs(out, sans=args.san, clients=args.client, force=args.force)


def _fail(message: str) -> int:
    print(f"securechat certs: error: {message}", file=sys.stderr)
    return 2


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot write {exc.filename}: {reason}" if exc.filename else reason
