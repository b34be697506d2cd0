"""Writing development keys and certificates: whole files, created with their final mode.

Split from certs.py.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

KEY_FILE_MODE = 0o600
CERT_FILE_MODE = 0o644


def write_key(path: Path, key: CertificateIssuerPrivateKeyTypes) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_file(path, pem, KEY_FILE_MODE)


def write_certs(path: Path, chain: list[x509.Certificate]) -> None:
    pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
    write_file(path, pem, CERT_FILE_MODE)


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file created with ``mode``.

    O_EXCL on a fresh name means the file is ours from the first byte with the final
    permissions; replacing an existing file with O_TRUNC would keep that file's old mode.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
