"""Cluster nodes for the tests: in-process ChatServers (each on its own loop and thread, as
tests/support.ServerThread), all on one real Redis (tests/redis.py), each its own node."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path

from securechat.server.config import ServerConfig
from securechat.server.settings_scope import REPLICATED_SETTINGS
from tests.conftest import test_config
from tests.support import IrcClient, ServerThread

StartNode = Callable[..., ServerThread]
NODE_EXEMPT = ("127.0.0.0/8",)  # make_node's nodes: loopback exempt from flood pacing


def node_settings(directory: Path, *extra: str) -> Path:
    """A config file giving a `securechat serve --cluster` node the replicated settings of
    make_node's nodes (test_config's), plus ``extra`` TOML lines: without it the cluster
    refuses it (docs/CLUSTER.md, "Replicated settings")."""
    config, default = test_config(exempt=NODE_EXEMPT), ServerConfig()
    lines = [
        f"{name} = {_toml(getattr(config, name))}"
        for name in sorted(REPLICATED_SETTINGS)
        if getattr(config, name) != getattr(default, name)
    ]
    path = directory / "cluster-node.toml"
    path.write_text("\n".join([*lines, *extra]) + "\n")
    return path


def _toml(value: object) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        return json.dumps(list(value))
    raise TypeError(f"node_settings does not write a {type(value).__name__} setting")


def client(node: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    return IrcClient.connect(node.host, node.port, context).register(nick, caps)
