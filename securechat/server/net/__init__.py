"""The server's I/O shell: the event loop, sockets and TLS around the sans-I/O ``ServerCore``.

server.py (``ChatServer``: accept, connections, carrying out the core's actions),
tls_transport.py (TLS on a non-blocking socket), pacing.py and sendq.py (when and how much
is written), metrics_http.py, blocking.py (reads that may hang, on a daemon thread).
"""

from securechat.server.net.server import ChatServer, hash_pools, warn_if_certificate_expires

__all__ = ["ChatServer", "hash_pools", "warn_if_certificate_expires"]
