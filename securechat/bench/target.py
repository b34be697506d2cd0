"""Where the load goes and how to reach it: host, port(s) and the client TLS settings.

A ``Target`` is plain data so it can be handed to worker processes; each worker builds its own
``SSLContext`` from it (contexts cannot be pickled). A cluster is one network served by several
nodes on one host: ``node_ports`` are the other nodes' ports, node 0 being ``port``.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    ca_file: str | None
    insecure: bool
    connect_timeout: float = 10.0
    node_ports: tuple[int, ...] = ()

    @property
    def nodes(self) -> int:
        return 1 + len(self.node_ports)

    def node(self, index: int) -> Target:
        """The same network reached through node ``index`` (0 is ``port``)."""
        if index == 0:
            return self
        return replace(self, port=self.node_ports[index - 1], node_ports=())

    def ssl_context(self) -> ssl.SSLContext:
        """A client context: verify against ``ca_file``, or (benchmarks only) verify nothing."""
        if self.insecure:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost': the only places this tool sends load."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
