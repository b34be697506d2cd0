"""Which key-exchange groups a server context offers (security review H1).

OpenSSL 3.0 enables the finite-field groups ffdhe2048…ffdhe8192 for TLS 1.3 by default. A
replayed ClientHello that offers only ffdhe8192 costs the server ~125 ms of CPU on the
event loop (X25519: 0.6 ms) while the attacker does no work at all. So the server offers
elliptic-curve groups only: X25519, P-256 and P-384 by default (the IANA "Recommended"
groups of RFC 8446 §4.2.7 minus X448; P-256 is the one every TLS 1.3 client must
implement, RFC 8446 §9.1).

The standard library gained ``SSLContext.set_groups`` only in Python 3.15
(python/cpython#136306). Before that, the ways to reach ``SSL_CTX_set1_groups_list`` are:

1. an OpenSSL configuration file (``OPENSSL_CONF`` with a ``Groups`` line): it must be in
   the environment before ``ssl`` is first imported, replaces the system's openssl.cnf
   and applies to every context of the process (our client, and any library's). Too blunt.
2. ``SSLContext.set_ecdh_curve(name)``: on OpenSSL 3 it sets exactly one group. That
   removes ffdhe, but also X25519.
3. ctypes: CPython's ``_ssl`` context object has held its ``SSL_CTX *`` as the first field
   after the object header since Python 3.4 (``PySSLContext`` in Modules/_ssl.c), and
   ``SSL_CTX_set1_groups_list`` is the macro ``SSL_CTX_ctrl(ctx, 92, 0, list)`` in OpenSSL
   1.1.1 to 3.x. The call goes through the very libssl that ``_ssl`` is linked to.

We use ``set_groups`` where it exists, else (3), guarded: only on CPython, only when the
libssl that ``_ssl`` resolves reports the version ``ssl.OPENSSL_VERSION_NUMBER`` gives, and
only when reading options through the pointer gives what ``SSLContext.options`` gives, on a
probe context, before touching a real one. If any guard fails we fall back to (2) with P-256,
which still shuts out ffdhe and which every client speaks, and say so in one warning.
"""

from __future__ import annotations

import ctypes
import functools
import re
import ssl
import sys
from collections.abc import Callable, Sequence

__all__ = ["DEFAULT_GROUPS", "FALLBACK_GROUP", "GroupsError", "restrict_groups"]

DEFAULT_GROUPS = ("X25519", "P-256", "P-384")
FALLBACK_GROUP = "prime256v1"  # P-256 under its OpenSSL curve name, for set_ecdh_curve

_SSL_CTRL_SET_GROUPS_LIST = 92  # include/openssl/ssl.h, 1.1.1 through 3.x
_GROUP_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

Setter = Callable[[ssl.SSLContext, str], bool]


class GroupsError(Exception):
    """The configured group list cannot be used; the message is one line for an operator."""


def restrict_groups(context: ssl.SSLContext, groups: Sequence[str]) -> str | None:
    """Offer only ``groups`` on ``context``. Returns None when applied as asked, or one
    line saying why only P-256 is offered instead (this Python cannot set a list)."""
    names = _checked_names(groups)
    setter = _groups_setter()
    if isinstance(setter, str):
        context.set_ecdh_curve(FALLBACK_GROUP)
        return f"cannot choose TLS key-exchange groups here ({setter}); offering only P-256"
    if not setter(context, ":".join(names)):
        raise GroupsError(
            f"tls_groups: this OpenSSL ({ssl.OPENSSL_VERSION}) refuses {':'.join(names)}; "
            f"known names include {', '.join(DEFAULT_GROUPS)}, P-521, X448"
        )
    return None


def _checked_names(groups: Sequence[str]) -> list[str]:
    names = list(groups)
    if not names:
        raise GroupsError("tls_groups must name at least one group, e.g. X25519")
    for name in names:
        if not _GROUP_NAME.fullmatch(name):
            raise GroupsError(f"tls_groups: {name!r} is not a group name (e.g. X25519, P-256)")
    return names


@functools.cache
def _groups_setter() -> Setter | str:
    """A function that sets a group list on a context, or why there is none."""
    if hasattr(ssl.SSLContext, "set_groups"):  # Python 3.15+
        return _set_with_stdlib
    if sys.implementation.name != "cpython":
        return f"{sys.implementation.name} has no SSLContext.set_groups"
    try:
        library = _libssl()
    except (OSError, AttributeError) as exc:
        return f"libssl not reachable through ctypes: {exc}"
    if library.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
        return "the libssl found is not the one the ssl module uses"
    if not _pointer_reads_options(library, ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)):
        return "this Python's SSLContext layout is not the one expected"
    return functools.partial(_set_with_ctypes, library)


def _set_with_stdlib(context: ssl.SSLContext, names: str) -> bool:
    try:
        context.set_groups(names)  # type: ignore[attr-defined]
    except ssl.SSLError:
        return False
    return True


def _libssl() -> ctypes.CDLL:
    # dlsym on _ssl's own handle searches the libraries _ssl is linked with, so this finds
    # the libssl the ssl module really uses; a built-in _ssl lives in the main program.
    import _ssl

    library = ctypes.CDLL(getattr(_ssl, "__file__", None))
    library.OpenSSL_version_num.restype = ctypes.c_ulong
    library.OpenSSL_version_num.argtypes = []
    library.SSL_CTX_get_options.restype = ctypes.c_uint64
    library.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    library.SSL_CTX_ctrl.restype = ctypes.c_long
    library.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    library.ERR_clear_error.restype = None
    library.ERR_clear_error.argtypes = []
    return library


def _ssl_ctx_pointer(context: ssl.SSLContext) -> int | None:
    # PySSLContext: PyObject_HEAD, then SSL_CTX *ctx; object.__basicsize__ is the header.
    pointer: int | None = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    return pointer


def _pointer_reads_options(library: ctypes.CDLL, probe: ssl.SSLContext) -> bool:
    pointer = _ssl_ctx_pointer(probe)
    if not pointer:
        return False
    for extra in (0, ssl.OP_NO_TICKET):  # two distinct values: a coincidence is ruled out
        probe.options |= extra
        if library.SSL_CTX_get_options(pointer) != int(probe.options):
            return False
    return True


def _set_with_ctypes(library: ctypes.CDLL, context: ssl.SSLContext, names: str) -> bool:
    pointer = _ssl_ctx_pointer(context)
    applied = bool(library.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, names.encode()))
    if not applied:
        library.ERR_clear_error()  # leave no stale error for the ssl module's next call
    return applied
