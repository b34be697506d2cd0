"""Which settings a cluster's nodes must share (settings_scope.py): every ServerConfig field is
classified, and the fingerprint names what differs, not how a file spelled it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from securechat.server.config import OperBlock, ServerConfig
from securechat.server.settings_scope import (
    NODE_LOCAL_SETTINGS,
    REPLICATED_SETTINGS,
    changed_replicated,
    differing,
    settings_hashes,
)


def test_every_setting_is_either_replicated_or_node_local() -> None:
    names = {f.name for f in dataclasses.fields(ServerConfig)}
    unclassified = names - NODE_LOCAL_SETTINGS - REPLICATED_SETTINGS
    assert not unclassified, f"classify these in settings_scope.py: {sorted(unclassified)}"
    assert not NODE_LOCAL_SETTINGS & REPLICATED_SETTINGS
    assert names == (NODE_LOCAL_SETTINGS | REPLICATED_SETTINGS)  # no stale names either


def test_the_differences_are_named_and_node_local_ones_do_not_count() -> None:
    base = ServerConfig()
    other = base.replace(
        flood_burst=3, max_rooms_per_user=5, port=7000, cert=Path("/elsewhere.pem"), log_burst=1
    )
    assert changed_replicated(base, other) == ["flood_burst", "max_rooms_per_user"]
    assert set(settings_hashes(base)) == REPLICATED_SETTINGS


def test_the_same_values_in_another_form_are_the_same_settings() -> None:
    one, two = OperBlock("hash-1"), OperBlock("hash-2", ("*@10.*",))
    base = ServerConfig(opers={"a": one, "b": two}, flood_rate=4.0)
    respelled = ServerConfig(opers={"b": two, "a": one}, flood_rate=4)  # TOML order, an int
    assert changed_replicated(base, respelled) == []
    assert changed_replicated(base, base.replace(opers={"a": one})) == ["opers"]


def test_client_ca_counts_by_whether_there_is_one_not_its_path() -> None:
    with_ca = ServerConfig(client_ca=Path("/etc/a/ca.pem"))
    assert changed_replicated(with_ca, with_ca.replace(client_ca=Path("/srv/ca.pem"))) == []
    assert changed_replicated(with_ca, with_ca.replace(client_ca=None)) == ["client_ca"]


def test_a_setting_only_one_side_knows_differs() -> None:
    """Another version of the server, with a setting this one lacks: named, not ignored."""
    mine = settings_hashes(ServerConfig())
    theirs = {**mine, "future_setting": "x"}
    assert differing(mine, theirs) == ["future_setting"]
