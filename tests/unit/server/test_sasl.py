"""SASL (IRCv3 sasl-3.1/3.2): AUTHENTICATE PLAIN and EXTERNAL, numerics 900 and 903-908."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"
CERTFP = "ab" * 32


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    harness = Harness(store=Store.open(tmp_path / "db.sqlite"), client_ca=tmp_path / "ca.pem")
    alice = harness.register("alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.send(f"PRIVMSG NickServ :CERT ADD {CERTFP}")
    alice.send("QUIT")
    return harness


def plain(authzid: str, authcid: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def negotiating(h: Harness, certfp: str | None = None) -> FakeClient:
    """A client in CAP negotiation with sasl acknowledged, NICK and USER sent."""
    client = h.connect(certfp=certfp)
    client.send("CAP LS 302").send("CAP REQ :sasl").send("NICK alice").send("USER a 0 * :A")
    client.take()
    return client


def numerics(client: FakeClient) -> list[str]:
    return [m.command for m in client.take() if m.command.isdigit()]


def test_cap_ls_302_lists_the_mechanisms(h: Harness) -> None:
    client = h.connect()
    client.send("CAP LS 302")
    assert "sasl=PLAIN,EXTERNAL" in client.last("CAP").params[-1].split()


def test_external_is_not_offered_without_a_client_ca(tmp_path: Path) -> None:
    client = Harness(store=Store.open(tmp_path / "db.sqlite")).connect()
    client.send("CAP LS 302")
    assert "sasl=PLAIN" in client.last("CAP").params[-1].split()


def test_sasl_is_not_offered_without_a_store() -> None:
    client = Harness().connect()
    client.send("CAP LS 302")
    assert not any(cap.startswith("sasl") for cap in client.last("CAP").params[-1].split())


def test_plain_logs_in_and_registration_follows_cap_end(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN")
    assert client.take()[0].params == ("+",)
    client.send(f"AUTHENTICATE {plain('', 'alice', PASSWORD)}")
    assert numerics(client) == [n.RPL_LOGGEDIN, n.RPL_SASLSUCCESS]
    client.send("CAP END")
    assert client.has(n.RPL_WELCOME)


def test_a_logged_in_nick_owner_is_not_warned(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('alice', 'alice', PASSWORD)}")
    client.send("CAP END")
    assert not any(m.command == "NOTICE" and "registered" in m.params[-1] for m in client.take())


def test_plain_with_a_wrong_password_fails_with_904(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('', 'alice', 'nope-nope')}")
    assert numerics(client) == [n.ERR_SASLFAIL]


def test_plain_refuses_an_authzid_other_than_the_authcid(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('bob', 'alice', PASSWORD)}")
    assert numerics(client) == [n.ERR_SASLFAIL]


def test_plain_failures_share_the_nickserv_throttle(h: Harness) -> None:
    client = negotiating(h)
    for _ in range(3):
        client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('', 'alice', 'nope-nope')}")
    client.take()
    client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('', 'alice', PASSWORD)}")
    assert "try again in 2 seconds" in client.last(n.ERR_SASLFAIL).params[-1]


def test_a_payload_of_exactly_400_bytes_ends_with_a_plus(h: Harness) -> None:
    password = "p" * 288  # 12 + 288 = 300 bytes: exactly 400 base64 characters
    payload = plain("alice", "alice", password)
    assert len(payload) == 400
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {payload}")
    assert numerics(client) == []  # waiting for more
    client.send("AUTHENTICATE +")
    assert numerics(client) == [n.ERR_SASLFAIL]  # complete, and the password is wrong


def test_a_chunk_over_400_bytes_is_too_long(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send("AUTHENTICATE " + "A" * 401)
    assert numerics(client) == [n.ERR_SASLTOOLONG]


def test_authenticate_star_aborts(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send("AUTHENTICATE *")
    assert numerics(client) == [n.ERR_SASLABORTED]


def test_cap_end_in_the_middle_of_an_exchange_aborts_and_registers(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send("CAP END")
    replies = numerics(client)
    assert replies[0] == n.ERR_SASLABORTED and n.RPL_WELCOME in replies


def test_authenticating_twice_gets_907(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('', 'alice', PASSWORD)}")
    client.send("AUTHENTICATE PLAIN")
    assert numerics(client)[-1] == n.ERR_SASLALREADY


def test_an_unknown_mechanism_lists_the_known_ones(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE SCRAM-SHA-256")
    assert client.last(n.RPL_SASLMECHS).params[1] == "PLAIN,EXTERNAL"
    assert numerics(client) == [n.RPL_SASLMECHS, n.ERR_SASLFAIL]


def test_authenticate_without_the_sasl_capability_fails(h: Harness) -> None:
    client = h.connect()
    client.send("AUTHENTICATE PLAIN")
    assert numerics(client) == [n.ERR_SASLFAIL]


def test_external_logs_in_with_a_registered_certificate(h: Harness) -> None:
    client = negotiating(h, certfp=CERTFP)
    client.send("AUTHENTICATE EXTERNAL").send("AUTHENTICATE +")
    assert client.last(n.RPL_LOGGEDIN).params[2] == "alice"
    assert numerics(client) == [n.RPL_LOGGEDIN, n.RPL_SASLSUCCESS]


def test_external_accepts_the_matching_authzid(h: Harness) -> None:
    client = negotiating(h, certfp=CERTFP)
    client.send("AUTHENTICATE EXTERNAL").send("AUTHENTICATE " + base64.b64encode(b"alice").decode())
    assert numerics(client) == [n.RPL_LOGGEDIN, n.RPL_SASLSUCCESS]


def test_external_with_an_unknown_certificate_fails(h: Harness) -> None:
    client = negotiating(h, certfp="cd" * 32)
    client.send("AUTHENTICATE EXTERNAL").send("AUTHENTICATE +")
    assert numerics(client) == [n.ERR_SASLFAIL]


def test_external_without_a_certificate_fails(h: Harness) -> None:
    client = negotiating(h)
    client.send("AUTHENTICATE EXTERNAL").send("AUTHENTICATE +")
    assert numerics(client) == [n.ERR_SASLFAIL]


def test_sasl_after_registration_logs_in_too(h: Harness) -> None:
    client = h.register("ally", caps=("sasl",))
    client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('', 'alice', PASSWORD)}")
    assert numerics(client) == [n.RPL_LOGGEDIN, n.RPL_SASLSUCCESS]


def test_strangers_failures_never_refuse_the_owners_sasl_login(h: Harness) -> None:
    """Review M1: the throttle is per (account, address) and per address, not per account."""
    stranger = h.connect(host="192.0.2.7")
    stranger.send("CAP LS 302").send("CAP REQ :sasl").send("NICK m").send("USER m 0 * :M")
    for _ in range(8):
        stranger.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('', 'alice', 'nope-nope')}")
    assert "try again in" in stranger.last(n.ERR_SASLFAIL).params[-1]
    owner = negotiating(h)  # from 127.0.0.1
    owner.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('', 'alice', PASSWORD)}")
    assert numerics(owner) == [n.RPL_LOGGEDIN, n.RPL_SASLSUCCESS]


def test_a_full_login_lane_fails_sasl_with_busy(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), hash_queue_login=0)
    client = negotiating(h)
    client.send("AUTHENTICATE PLAIN").send(f"AUTHENTICATE {plain('', 'alice', PASSWORD)}")
    assert client.last(n.ERR_SASLFAIL).params[-1] == (
        "SASL authentication failed: The server is busy; try again in a moment"
    )
