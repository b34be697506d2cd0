"""Names in development certificates: client names, subject alternative names, this machine's.

Split from certs.py, which re-exports ``CertsError``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence

from cryptography import x509

# RFC 5280 Appendix A: ub-common-name is 64; the client name becomes the certificate's CN.
_CLIENT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# RFC 1123 2.1 host name labels: letters, digits and hyphens, not at either end, 1-63 long.
_DNS_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_DNS_NAME_LENGTH = 253


class CertsError(Exception):
    """A user mistake or an unusable existing file; the message is one line naming it."""


def validated_client_names(names: Sequence[str]) -> list[str]:
    for name in names:
        if _CLIENT_NAME_RE.fullmatch(name) is None:
            raise CertsError(
                f"client name {name!r} is not allowed: use 1 to 64 letters, digits, '-', '_' "
                "or '.', starting with a letter or digit"
            )
    return list(dict.fromkeys(names))


def parse_san(text: str) -> x509.GeneralName:
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]  # "[::1]", as IPv6 literals are written in URLs
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        pass
    else:
        # Rebuilt from the packed bytes to drop an IPv6 zone ("%eth0"), which X.509 cannot hold.
        return x509.IPAddress(ipaddress.ip_address(address.packed))
    name = candidate.lower().removesuffix(".")
    if not is_dns_name(name, allow_wildcard=True):
        raise CertsError(
            f"--san {text!r} is neither an IP address nor a DNS name (ASCII letters, digits "
            "and '-' in dot-separated labels; write internationalized names in xn-- form)"
        )
    return x509.DNSName(name)


def is_dns_name(name: str, allow_wildcard: bool = False) -> bool:
    if not name or len(name) > _MAX_DNS_NAME_LENGTH:
        return False
    labels = name.split(".")
    if allow_wildcard and labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]  # CA/B Forum BR 7.1.4.2.1: a wildcard only as the whole first label
    # RFC 3696 2: a top-level domain is never all digits (that would be an IPv4 address).
    if labels[-1].isdigit():
        return False
    return all(_DNS_LABEL_RE.fullmatch(label) for label in labels)


def machine_names() -> list[str]:
    """This machine's host name and fully qualified name, when they are usable DNS names."""
    names = []
    for candidate in (socket.gethostname(), socket.getfqdn()):
        name = candidate.strip().lower().removesuffix(".")
        # getfqdn() falls back to reverse-DNS names such as "1.0.0.127.in-addr.arpa".
        if is_dns_name(name) and not name.endswith(".arpa"):
            names.append(name)
    return names


def server_sans(extra: list[x509.GeneralName]) -> list[x509.GeneralName]:
    defaults: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    machine = [x509.DNSName(name) for name in machine_names()]
    return list(dict.fromkeys([*defaults, *machine, *extra]))


def general_name_text(name: x509.GeneralName) -> str:
    return str(name.value)
