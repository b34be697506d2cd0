"""Server operators: OPER, KILL, KLINE/UNKLINE, STATS, WALLOPS, REHASH; connection limits."""

import pytest

from securechat.protocol import numerics as n
from securechat.server.actions import Reload
from securechat.server.config import OperBlock
from securechat.server.passwords import hash_password
from tests.unit.server.harness import FakeClient, Harness
from tests.unit.server.offloads import CountingHarness

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def opers() -> dict[str, OperBlock]:
    return {
        "root": OperBlock(hash_password(PASSWORD)),
        "remote": OperBlock(hash_password(PASSWORD), hosts=("*@192.0.2.*",)),
    }


def oper(h: Harness, nick: str) -> FakeClient:
    client = h.register(nick).send(f"OPER root :{PASSWORD}")
    assert client.has(n.RPL_YOUREOPER), [m.command for m in client.inbox]
    client.take()
    return client


def test_oper_with_right_password_gets_381_and_mode(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers)
    alice = h.register("alice").send(f"OPER root :{PASSWORD}")
    assert alice.has(n.RPL_YOUREOPER) and alice.last("MODE").params == ("alice", "+o")
    assert h.core.nicks.get("alice").oper  # type: ignore[union-attr]


def test_oper_with_wrong_password_gets_464_and_third_failure_closes(
    opers: dict[str, OperBlock],
) -> None:
    h = Harness(opers=opers)
    alice = h.register("alice")
    for _ in range(2):
        alice.send("OPER root wrong")
        assert alice.has(n.ERR_PASSWDMISMATCH) and alice.closed is None
    alice.send("OPER root wrong")
    assert alice.closed == "Too many failed OPER attempts"


def test_oper_from_a_host_outside_the_block_gets_491_and_an_unknown_name_464(
    opers: dict[str, OperBlock],
) -> None:
    """Modern IRC OPER: ERR_NOOPERHOST for a host the block does not allow; an unknown
    name answers ERR_PASSWDMISMATCH like a wrong password (both after the same hash)."""
    h = Harness(opers=opers)
    alice = h.register("alice").send(f"OPER remote :{PASSWORD}")
    assert alice.has(n.ERR_NOOPERHOST) and not alice.has(n.ERR_PASSWDMISMATCH)
    bob = h.register("bob").send(f"OPER nobody :{PASSWORD}")
    assert bob.has(n.ERR_PASSWDMISMATCH) and not bob.has(n.ERR_NOOPERHOST)


def test_kill_needs_oper(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers)
    h.register("bob")
    assert h.register("alice").send("KILL bob :bye").has(n.ERR_NOPRIVILEGES)


def test_kill_closes_the_target_and_tells_its_rooms(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers)
    alice = oper(h, "alice")
    bob, carol = h.register("bob"), h.register("carol")
    bob.send("JOIN #a")
    carol.send("JOIN #a")
    carol.take()
    alice.send("KILL bob :spamming")
    # Modern IRC KILL: the rooms see "Killed (<killer> (<reason>))"
    assert bob.closed == "Killed (alice (spamming))"
    assert carol.last("QUIT").params[0] == "Killed (alice (spamming))"


def test_kline_removes_matching_users_and_refuses_them_at_registration(
    opers: dict[str, OperBlock],
) -> None:
    h = Harness(opers=opers)
    alice = oper(h, "alice")
    bob = h.register("bob")
    alice.send("KLINE ~bob@127.0.0.1 :go away")
    assert bob.has(n.ERR_YOUREBANNEDCREEP) and bob.closed == "K-lined: go away"
    again = h.connect().send("NICK bob2").send("USER bob 0 * :b")
    assert again.has(n.ERR_YOUREBANNEDCREEP) and not again.has(n.RPL_WELCOME)
    assert alice.closed is None  # the mask did not match the operator


def test_unkline_lets_them_back(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers)
    alice = oper(h, "alice")
    alice.send("KLINE ~bob@* :go away").send("UNKLINE ~bob@*")
    assert "Removed K-line" in alice.last("NOTICE").params[-1]
    assert h.connect().send("NICK bob").send("USER bob 0 * :b").has(n.RPL_WELCOME)


def test_timed_kline_expires(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers)
    alice = oper(h, "alice")
    alice.send("KLINE 1 ~bob@* :cool down")
    assert h.connect().send("NICK bob").send("USER bob 0 * :b").has(n.ERR_YOUREBANNEDCREEP)
    h.now += 61
    assert h.connect().send("NICK bob").send("USER bob 0 * :b").has(n.RPL_WELCOME)


def test_configured_klines_apply() -> None:
    h = Harness(klines=("~mallory@*",))
    assert h.connect().send("NICK m").send("USER mallory 0 * :m").has(n.ERR_YOUREBANNEDCREEP)


def test_stats_shows_counts_to_opers_only(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers)
    assert h.register("bob").send("STATS").has(n.ERR_NOPRIVILEGES)
    alice = oper(h, "alice").send("STATS")
    notices = [m.params[-1] for m in alice.take() if m.command == "NOTICE"]
    assert any(text.startswith("connections=2 registered=2") for text in notices)
    assert alice.send("STATS u").last(n.RPL_STATSUPTIME).params[-1].startswith("Server Up 0 days")


def test_wallops_reaches_users_with_mode_w_only(opers: dict[str, OperBlock]) -> None:
    """Modern IRC WALLOPS: sent to every user with user mode +w, operator or not."""
    h = Harness(opers=opers)
    alice, bob = oper(h, "alice"), oper(h, "bob")
    carol, dave = h.register("carol").send("MODE carol +w"), h.register("dave")
    carol.take()
    alice.send("WALLOPS :maintenance at noon")
    assert carol.last("WALLOPS").params == ("maintenance at noon",)
    assert (carol.last("WALLOPS").source or "").startswith("alice!")
    assert not bob.has("WALLOPS") and not dave.has("WALLOPS")


def test_rehash_asks_the_network_layer_to_reload(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers)
    alice = oper(h, "alice")
    actions = h.core.receive_line(alice.conn, b"REHASH", h.now)
    assert Reload(alice.conn) in actions


def test_reloaded_config_applies_and_operator_hears_about_failure(
    opers: dict[str, OperBlock],
) -> None:
    h = Harness(opers=opers)
    alice = oper(h, "alice")
    h.apply(h.core.reloaded(h.config.replace(flood_burst=99), None, alice.conn, h.now))
    assert alice.has(n.RPL_REHASHING) and h.core.config.flood_burst == 99
    h.apply(h.core.reloaded(h.config, "cert.pem: no such file", alice.conn, h.now))
    assert "Reload failed" in alice.last("NOTICE").params[-1]
    assert h.core.config.flood_burst == 99


def test_connections_over_the_per_address_limit_get_error_and_close() -> None:
    h = Harness(max_connections_per_address=1)
    h.connect()
    refused = h.connect()
    assert refused.closed == "Too many connections from your address"
    assert "Too many connections" in refused.last("ERROR").params[0]


def test_disconnect_frees_the_address_slot() -> None:
    h = Harness(max_connections_per_address=1)
    first = h.register("first")
    first.send("QUIT")
    assert h.register("second").closed is None


def test_excess_flood_closes_with_error() -> None:
    h = Harness()
    alice = h.register("alice")
    h.apply(h.core.excess_flood(alice.conn, h.now))
    assert alice.closed == "Excess flood" and "Excess flood" in alice.last("ERROR").params[0]


def test_exempt_address_has_no_flood_delay() -> None:
    h = Harness(exempt=("127.0.0.0/8",), flood_burst=1)
    alice = h.register("alice")
    assert all(h.core.flood_delay(alice.conn, h.now) == 0.0 for _ in range(50))


def test_flood_delay_grows_once_the_burst_is_spent() -> None:
    h = Harness(flood_burst=2, flood_rate=1.0)
    alice = h.connect()
    delays = [h.core.flood_delay(alice.conn, h.now) for _ in range(3)]
    assert delays == [0.0, 0.0, 1.0]


# ---- OPER across reconnects and names that do not exist: review L2 ----------------------------


def test_an_unknown_oper_name_costs_the_same_hash_as_a_known_one(
    opers: dict[str, OperBlock],
) -> None:
    h = CountingHarness(opers=opers)
    for name in ("root", "nobody", "remote"):
        client = h.register(f"c{name}").send(f"OPER {name} wrongpassword")
        assert client.has(n.ERR_NOOPERHOST if name == "remote" else n.ERR_PASSWDMISMATCH)
    assert [o.lane for o in h.offloads] == ["bulk"] * 3


def test_oper_failures_from_one_address_slow_down_across_reconnects(
    opers: dict[str, OperBlock],
) -> None:
    h = Harness(opers=opers)
    for index in range(h.config.oper_free_failures):
        h.register(f"guess{index}").send("OPER root wrong").send("QUIT")
    next_try = h.register("guess9").send(f"OPER root :{PASSWORD}")
    assert next_try.last(n.RPL_TRYAGAIN).params[1:] == (
        "OPER",
        "Too many failed attempts; try again in 2 seconds",
    )
    assert not next_try.has(n.RPL_YOUREOPER)
    h.advance(2)
    assert next_try.send(f"OPER root :{PASSWORD}").has(n.RPL_YOUREOPER)


def test_oper_failures_from_another_address_do_not_block_the_operator(
    opers: dict[str, OperBlock],
) -> None:
    h = Harness(opers=opers)
    for index in range(h.config.oper_free_failures + 2):
        guess = h.connect(host="192.0.2.9").send(f"NICK g{index}").send("USER g 0 * :g")
        guess.send("OPER root wrong").send("QUIT")
    assert h.register("admin").send(f"OPER root :{PASSWORD}").has(n.RPL_YOUREOPER)


def test_a_full_bulk_lane_answers_oper_with_try_again(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers, hash_queue_bulk=0)
    client = h.register("alice").send(f"OPER root :{PASSWORD}")
    assert client.last(n.RPL_TRYAGAIN).params[-1] == "The server is busy; try again in a moment"
