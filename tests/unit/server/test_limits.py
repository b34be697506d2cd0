"""Flood control and per-address connection limits (sans-I/O)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.server.config import ConfigError, ServerConfig, validate
from securechat.server.limits import AcceptGate, AddressLimits, address_group, flood_delay
from securechat.server.state import Session


def session_with_full_bucket(config: ServerConfig, now: float) -> Session:
    session = Session(1, "10.0.0.1", now)
    session.flood_tokens = float(config.flood_burst)
    return session


def test_burst_passes_then_lines_are_paced_at_the_rate() -> None:
    config = ServerConfig(flood_burst=5, flood_rate=2.0)
    session = session_with_full_bucket(config, 0.0)
    assert [flood_delay(session, config, 0.0) for _ in range(5)] == [0.0] * 5
    assert flood_delay(session, config, 0.0) == 0.5  # one token takes 1/rate seconds
    assert flood_delay(session, config, 0.5) == 0.0


def test_bucket_never_holds_more_than_the_burst() -> None:
    config = ServerConfig(flood_burst=3, flood_rate=10.0)
    session = session_with_full_bucket(config, 0.0)
    delays = [flood_delay(session, config, 1000.0) for _ in range(4)]
    assert delays[:3] == [0.0] * 3 and delays[3] > 0


def test_a_ten_line_paste_finishes_within_a_second_by_default() -> None:
    config = ServerConfig()
    session = session_with_full_bucket(config, 0.0)
    now = 0.0
    for _ in range(10):
        delay = flood_delay(session, config, now)
        if delay:  # the network layer waits this long, then the line goes
            now += delay
            assert flood_delay(session, config, now) == 0.0
    assert now <= 1.0


def test_per_address_limit_refuses_the_extra_connection() -> None:
    limits = AddressLimits(ServerConfig(max_connections_per_address=2))
    assert limits.refusal("10.0.0.1", 0.0) is None
    assert limits.refusal("10.0.0.1", 0.0) is None
    assert limits.refusal("10.0.0.1", 0.0) == "Too many connections from your address"
    assert limits.refusal("10.0.0.2", 0.0) is None


def test_released_connections_free_their_slot() -> None:
    limits = AddressLimits(ServerConfig(max_connections_per_address=1))
    assert limits.refusal("10.0.0.1", 0.0) is None
    limits.release("10.0.0.1")
    assert limits.refusal("10.0.0.1", 0.0) is None
    assert limits.total == 1


def test_connection_rate_per_address_is_a_token_bucket() -> None:
    limits = AddressLimits(ServerConfig(connect_burst=2, connect_rate=1.0))
    assert limits.refusal("10.0.0.1", 0.0) is None
    assert limits.refusal("10.0.0.1", 0.0) is None
    assert limits.refusal("10.0.0.1", 0.0) is not None
    assert limits.refusal("10.0.0.1", 1.0) is None


def test_total_limit_applies_even_to_exempt_addresses() -> None:
    limits = AddressLimits(ServerConfig(max_connections=1, exempt=("127.0.0.0/8",)))
    assert limits.refusal("127.0.0.1", 0.0) is None
    assert limits.refusal("127.0.0.2", 0.0) == "Server is full"


def test_exempt_cidrs_skip_per_address_limits_including_mapped_ipv6() -> None:
    config = ServerConfig(max_connections_per_address=1, exempt=("127.0.0.0/8", "::1/128"))
    limits = AddressLimits(config)
    for _ in range(5):
        assert limits.refusal("127.0.0.1", 0.0) is None
    assert limits.is_exempt("::ffff:127.0.0.1") and limits.is_exempt("::1")
    assert not limits.is_exempt("10.0.0.1") and not limits.is_exempt("not-an-ip")


def test_prune_forgets_refilled_buckets() -> None:
    limits = AddressLimits(ServerConfig(connect_burst=2, connect_rate=1.0))
    limits.refusal("10.0.0.1", 0.0)
    limits.prune(0.5)
    assert "10.0.0.1" in limits._buckets
    limits.prune(10.0)
    assert limits._buckets == {}


# ---- at accept, before any TLS work (AcceptGate) ---------------------------------------------


def gate(fd_budget: int = 1000, **changes: object) -> AcceptGate:
    return AcceptGate(ServerConfig().replace(**changes), fd_budget)


def test_gate_refuses_a_socket_past_the_handshakes_in_progress_of_one_address() -> None:
    g = gate(max_handshakes_per_address=2)
    for key in (1, 2):
        assert g.refusal("10.0.0.1", 0.0) is None
        g.opened("10.0.0.1", key, f"hs{key}")
    assert g.refusal("10.0.0.1", 0.0) == "handshakes"
    assert g.refusal("10.0.0.2", 0.0) is None  # another address is not affected
    g.handshake_ended("10.0.0.1", 1)  # done: the socket stays counted, the handshake not
    assert g.refusal("10.0.0.1", 0.0) is None


def test_gate_counts_sockets_until_they_close_handshaking_or_connected() -> None:
    g = gate(max_sockets_per_address=2)
    g.opened("10.0.0.1", 1, "a")
    g.handshake_ended("10.0.0.1", 1)
    g.opened("10.0.0.1", 2, "b")
    assert g.refusal("10.0.0.1", 0.0) == "sockets"
    g.closed("10.0.0.1")
    assert g.refusal("10.0.0.1", 0.0) is None
    assert g.total == 1


def test_gate_rate_limits_new_sockets_per_address_with_a_token_bucket() -> None:
    g = gate(accept_burst=3, accept_rate=2.0)
    assert [g.refusal("10.0.0.1", 0.0) for _ in range(4)] == [None, None, None, "rate"]
    assert g.refusal("10.0.0.1", 0.5) is None  # one token back after 1 / rate
    g.prune(100.0)
    assert not g._buckets  # refilled buckets are forgotten


def test_gate_lets_exempt_networks_through_but_not_loopback_by_default() -> None:
    assert (
        gate(max_handshakes_per_address=1, exempt=("127.0.0.0/8",)).refusal("127.0.0.1", 0.0)
        is None
    )
    g = gate(max_handshakes_per_address=1)
    g.opened("127.0.0.1", 1, "a")
    assert g.refusal("127.0.0.1", 0.0) == "handshakes"


def test_ipv6_addresses_in_one_64_count_as_one_address_and_mapped_ipv4_as_ipv4() -> None:
    assert address_group("2001:db8:1:2::1") == address_group("2001:db8:1:2:ffff::9")
    assert address_group("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_group("2001:db8:1:3::1") != address_group("2001:db8:1:2::1")
    assert address_group("2001:db8:1:2::1", 128) == "2001:db8:1:2::1/128"
    assert address_group("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_group("not-an-ip") == "not-an-ip"


def test_over_the_descriptor_budget_the_newest_handshake_of_the_busiest_address_is_shed() -> None:
    g = gate(fd_budget=4)
    g.opened("10.0.0.9", 1, "bystander")
    for key in (2, 3, 4):
        g.opened("10.0.0.1", key, f"flood{key}")
    assert g.shed() is None  # at the budget, not over it
    g.opened("10.0.0.2", 5, "newcomer")
    assert g.shed() == ("10.0.0.1", "flood4")
    g.closed("10.0.0.1")
    assert g.shed() is None
    assert list(g.pending["10.0.0.1"]) == [2, 3]


def test_connected_sockets_are_never_shed() -> None:
    g = gate(fd_budget=1)
    g.opened("10.0.0.1", 1, "a")
    g.handshake_ended("10.0.0.1", 1)
    g.opened("10.0.0.1", 2, "b")
    assert g.shed() == ("10.0.0.1", "b")
    assert g.shed() is None  # over budget still, but only a connected client is left


@given(
    st.lists(
        st.tuples(st.sampled_from(["open", "end", "close", "shed"]), st.integers(0, 3)),
        max_size=80,
    )
)
def test_gate_counts_stay_consistent_under_any_sequence(steps: list[tuple[str, int]]) -> None:
    g = gate(fd_budget=5)
    open_keys: dict[int, str] = {}  # key -> group, sockets open
    next_key = 0
    for op, n in steps:
        group = f"10.0.0.{n}"
        if op == "open":
            next_key += 1
            g.opened(group, next_key, next_key)
            open_keys[next_key] = group
        elif op == "end" and open_keys:
            key = next(iter(open_keys))
            g.handshake_ended(open_keys[key], key)
        elif op == "close" and open_keys:
            key, group = open_keys.popitem()
            g.handshake_ended(group, key)
            g.closed(group)
        elif op == "shed" and (victim := g.shed()) is not None:
            open_keys.pop(victim[1])
            g.closed(victim[0])
        assert g.total == len(open_keys) == sum(g.sockets.values())
        assert all(len(p) <= g.sockets[grp] for grp, p in g.pending.items())
        assert all(p for p in g.pending.values())


def test_the_ipv6_grouping_prefix_must_be_a_prefix_length() -> None:
    assert validate("address_ipv6_prefix", 56) == 56
    for bad in (0, 129, "x"):
        with pytest.raises(ConfigError, match="address_ipv6_prefix"):
            validate("address_ipv6_prefix", bad)
