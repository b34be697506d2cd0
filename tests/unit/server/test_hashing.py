"""Hashing lanes (server/hashing.py): bounded jobs in flight, slots always given back."""

from __future__ import annotations

from securechat.server.actions import Outcome
from securechat.server.config import ServerConfig
from securechat.server.hashing import BULK, LOGIN, offload
from securechat.server.net import hash_pools
from tests.unit.server.harness import Harness


def failing_job() -> object:
    raise RuntimeError("scrypt ran out of memory")


def test_a_full_lane_refuses_at_once_and_a_failed_job_gives_its_slot_back() -> None:
    h = Harness(hash_queue_login=1)
    outcomes: list[Outcome] = []

    def then(outcome: Outcome, now: float) -> None:
        outcomes.append(outcome)

    assert offload(h.core, LOGIN, failing_job, then)
    assert not offload(h.core, LOGIN, lambda: True, then)
    assert h.core.accounts.hashing.refused[LOGIN] == 1
    h.advance(0)  # the harness runs the queued job, which raises
    assert isinstance(outcomes[0], RuntimeError)
    assert h.core.accounts.hashing.in_flight[LOGIN] == 0
    assert offload(h.core, LOGIN, lambda: True, then)


def test_the_lanes_are_counted_apart() -> None:
    h = Harness(hash_queue_bulk=1, hash_queue_login=1)
    assert offload(h.core, BULK, lambda: True, lambda outcome, now: None)
    assert offload(h.core, LOGIN, lambda: True, lambda outcome, now: None)


def test_the_network_layer_runs_one_pool_per_lane_of_the_configured_size() -> None:
    pools = hash_pools(ServerConfig(hash_workers_login=3, hash_workers_bulk=1))
    try:
        assert {lane: pool._max_workers for lane, pool in pools.items()} == {
            LOGIN: 3,
            BULK: 1,
        }
    finally:
        for pool in pools.values():
            pool.shutdown()
