"""Who is in which room, who sends, and how many deliveries each client should see.

Client ``i`` joins room ``i % rooms``; clients ``0 .. senders-1`` are the senders, so senders are
spread round-robin over the rooms too. A server does not echo a PRIVMSG to its sender (unless
echo-message is negotiated, which the bench never asks for), so each message sent in a room of
``m`` members is expected ``m - 1`` times.

At full speed a sender is held back by one of two windows (``window_by``): ``ping``, a PING
checkpoint every ``window`` messages (the server has *read* them), or ``delivery``, waiting while
more than ``window`` of its messages are undelivered to some room-mate (the receivers have *got*
them). The delivery window needs one shared counter per (sender, room-mate): ``ledger_layout``.

Against a cluster of ``nodes`` nodes, client ``i`` connects to node ``(i // rooms + i % rooms) %
nodes``: the members of each room alternate between nodes, and so do the senders (sender ``s``
is the first member of room ``s % rooms``, whose first member sits on node ``room % nodes``).

Every room's order is checked against one reference receiver, its first member that is not a
sender: each other member must see exactly the reference's sequence, less its own messages.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_KINDS = ("ping", "delivery")


@dataclass(frozen=True)
class FanoutPlan:
    clients: int
    rooms: int
    senders: int
    messages: int
    rate: float | None = None  # messages per second per sender; None = as fast as the server takes
    pipeline: int = 1  # lines per write (one TLS record)
    window: int = 64  # at full speed: messages per sender between PING checkpoints (0 = none)
    quiet_s: float = 3.0  # give up waiting for stragglers after this long without a delivery
    tag: str = "aa"
    window_by: str = "ping"  # "ping" checkpoints or "delivery" to every room-mate (see above)
    nodes: int = 1  # cluster nodes the clients are spread over (see above)

    def __post_init__(self) -> None:
        if self.clients < 2 or self.rooms < 1 or self.senders < 1 or self.messages < 1:
            raise ValueError("fanout needs clients >= 2, rooms >= 1, senders >= 1, messages >= 1")
        if self.rooms > self.clients // 2:
            raise ValueError("fanout needs at least two clients per room")
        if self.senders > self.clients:
            raise ValueError("fanout needs senders <= clients")
        if self.pipeline < 1 or self.window < 0:
            raise ValueError("fanout needs pipeline >= 1 and window >= 0")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("fanout rate must be positive")
        if self.window_by not in WINDOW_KINDS:
            raise ValueError(f"fanout window-by must be one of {', '.join(WINDOW_KINDS)}")
        if self.window_by == "delivery" and self.window < self.pipeline:
            raise ValueError("fanout delivery window needs window >= pipeline")
        if self.nodes < 1:
            raise ValueError("fanout needs nodes >= 1")

    def room_of(self, client: int) -> int:
        return client % self.rooms

    def room_name(self, room: int) -> bytes:
        return b"#bench%d" % room

    def is_sender(self, client: int) -> bool:
        return client < self.senders

    def node_of(self, client: int) -> int:
        return (client // self.rooms + client % self.rooms) % self.nodes

    def reference_of(self, room: int) -> int | None:
        """The room's first member that sends nothing (it sees every message), if any."""
        first = room + self.rooms * -(-max(0, self.senders - room) // self.rooms)
        return first if first < self.clients else None

    def members(self, room: int) -> int:
        return _count_congruent(self.clients, self.rooms, room)

    def senders_in(self, room: int) -> list[int]:
        return list(range(room, self.senders, self.rooms))

    def expected_senders(self, client: int) -> list[int]:
        """The senders whose messages this client should receive: its room's, except itself."""
        return [s for s in self.senders_in(self.room_of(client)) if s != client]

    def expected_deliveries(self) -> int:
        return sum(
            len(self.senders_in(room)) * self.messages * (self.members(room) - 1)
            for room in range(self.rooms)
        )


def ledger_layout(plan: FanoutPlan) -> dict[tuple[int, int], int]:
    """(sender, receiver) -> index of the shared counter where the receiver publishes how many of
    that sender's messages it has got. Each sender's counters are contiguous (see
    ``sender_slots``), so it reads its whole room with one slice."""
    layout: dict[tuple[int, int], int] = {}
    for sender in range(plan.senders):
        room = plan.room_of(sender)
        for receiver in range(room, plan.clients, plan.rooms):
            if receiver != sender:
                layout[sender, receiver] = len(layout)
    return layout


def sender_slots(layout: dict[tuple[int, int], int], sender: int) -> range:
    """The contiguous counters of ``sender``'s room-mates in a ``ledger_layout``."""
    slots = [index for (who, _), index in layout.items() if who == sender]
    return range(min(slots), max(slots) + 1) if slots else range(0)


def _count_congruent(total: int, modulus: int, residue: int) -> int:
    """How many of 0 .. total-1 are congruent to ``residue`` modulo ``modulus``."""
    return total // modulus + (1 if residue < total % modulus else 0)
