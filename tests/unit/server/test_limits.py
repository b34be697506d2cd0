"""Flood control and per-address connection limits (sans-I/O)."""

from securechat.server.config import ServerConfig
from securechat.server.limits import AddressLimits, flood_delay
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
