"""Cluster mode (``--cluster URL``, docs/CLUSTER.md): every node runs a full replica of the
sans-I/O core, fed the same inputs in the same order from one Redis Stream.

- codec.py: events, batches and store outcomes to bytes and back (an explicit codec: nothing
  from the network is unpickled);
- replica.py: applies events to the core (who does the side effects, continuations kept by a
  deterministic token, a client's lines held behind its work);
- bus.py: Redis I/O (the stream, leases);
- node.py: wires it into the network layer (net/server.py calls it through a few hooks).

Nothing here is imported by a default (single-process) server."""
