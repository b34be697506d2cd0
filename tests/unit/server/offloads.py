"""A harness that counts the worker (scrypt) jobs the core asks for, and can hold them."""

from __future__ import annotations

from securechat.server.actions import Action, Offload
from securechat.server.store import Store
from tests.unit.server.harness import Harness


class CountingHarness(Harness):
    """Like Harness; every ``Offload`` is recorded in ``offloads``. With ``holding`` set, they
    wait in ``held`` until ``run_held`` (a busy pool, seen from the core)."""

    def __init__(self, store: Store | None = None, **config: object) -> None:
        super().__init__(store=store, **config)
        self.offloads: list[Offload] = []
        self.held: list[Offload] = []
        self.holding = False

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Offload):
                self.offloads.append(action)
                if self.holding:
                    self.held.append(action)
                    continue
            super().apply([action])

    def run_held(self) -> None:
        held, self.held = self.held, []
        super().apply(list(held))
