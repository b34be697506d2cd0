"""The server's I/O shell: the event loop, sockets and TLS around the sans-I/O ``ServerCore``.

server.py (``ChatServer``: lifecycle, flood control, carrying out the core's actions),
accept.py (accepting, handshakes), output.py (queueing and flushing what goes out, send queue
limits), connection.py (one client's protocol), sockets.py
(listeners, addresses, budgets),
tls_transport.py (TLS on a non-blocking socket), pacing.py and sendq.py (when and how much
is written), metrics_http.py, blocking.py (reads that may hang, on a daemon thread).
"""

from securechat.server.net.server import ChatServer
from securechat.server.net.sockets import hash_pools, warn_if_certificate_expires

__all__ = ["ChatServer", "hash_pools", "warn_if_certificate_expires"]
