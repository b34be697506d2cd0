"""The replicated settings (settings_scope.py) are the cluster's: a node whose settings differ
is refused at start with one line naming them, and a reload may not change them on one node."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.server.config import OperBlock
from securechat.server.passwords import hash_password
from tests.cluster.support import StartNode, client, node_settings
from tests.cluster.test_failures import node_process
from tests.e2e.test_serve import ROOT, securechat
from tests.support import sync


def test_a_node_with_other_settings_is_refused_naming_them_and_its_name_stays_free(
    cert_files: tuple[Path, Path], redis_url: str, tmp_path: Path
) -> None:
    flags = ("--cluster", redis_url, "--data-dir", "none")
    first = node_process(cert_files, *flags, "--node-name", "a")
    try:
        (tmp_path / "other").mkdir()
        other = node_settings(tmp_path / "other", "flood_burst = 3", "max_rooms_per_user = 5")
        cert, key = cert_files
        result = subprocess.run(
            securechat(
                *("serve", "--port", "0", "--cert", str(cert), "--key", str(key)),
                *(*flags, "--node-name", "b", "--config", str(other)),
            ),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert result.returncode == 2
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert "Traceback" not in result.stderr
        assert errors == [
            f"securechat serve: error: cluster {redis_url}: settings differ from the running "
            "cluster's: flood_burst, max_rooms_per_user; every node must use the same ones "
            "(docs/CLUSTER.md)"
        ]
        # its lease was released at once: the same name with the cluster's settings joins
        second = node_process(cert_files, *flags, "--node-name", "b")
        assert second.stop()[0] == 0
    finally:
        first.stop()


def test_nodes_differing_only_in_node_local_settings_form_one_network(
    make_node: StartNode, client_context: ssl.SSLContext
) -> None:
    a = make_node()
    b = make_node(log_burst=5, sendq_bytes=512 * 1024, shutdown_notice="bye from b")
    alice = client(a, client_context, "alice").join("#room")
    bob = client(b, client_context, "bob").join("#room")
    sync(alice, "joined")
    bob.send("PRIVMSG #room :hello across")
    alice.expect("hello across")


@pytest.mark.logs_error  # reload_failed is logged at ERROR
def test_rehash_may_change_node_local_settings_but_not_replicated_ones(
    make_node: StartNode, client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    node = make_node(opers={"admin": OperBlock(hash_password("oper-s3cret"))})
    oper = client(node, client_context, "admin")
    oper.send("OPER admin oper-s3cret")
    oper.expect(n.RPL_YOUREOPER)
    config = node.server.config

    def reload_to(**changes: object) -> None:
        new = config.replace(**changes)
        node.in_loop(lambda: setattr(node.server, "reload_settings", lambda: (new, server_context)))

    reload_to(flood_burst=3, max_rooms_per_user=5, log_burst=7)
    oper.send("REHASH")
    notice = oper.expect("Reload failed, old settings kept")
    assert notice.params[-1].endswith(
        "flood_burst, max_rooms_per_user must be the same on every node of the cluster; "
        "to change them restart the whole cluster (docs/CLUSTER.md)"
    )
    kept = node.in_loop(lambda: (node.server.config, node.server.core.config))
    assert kept == (config, config)  # nothing of it taken, not even the node-local part

    reload_to(log_burst=7, sendq_bytes=512 * 1024)
    oper.send("REHASH")
    oper.expect(n.RPL_REHASHING)
    taken = node.in_loop(lambda: (node.server.config.log_burst, node.server.core.config.log_burst))
    assert taken == (7, 7)
