"""Logging in while registering: SASL PLAIN and EXTERNAL, failures, 900/901."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from securechat.client import sasl
from securechat.client.sasl import Credentials
from securechat.client.session import Session
from securechat.protocol.message import parse

T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
PASSWORD = "correct-horse"


def wire(lines: list[bytes]) -> list[tuple[str, ...]]:
    parsed = [parse(line) for line in lines]
    assert all(line.endswith(b"\r\n") for line in lines) and None not in parsed
    return [(m.command, *m.params) for m in parsed if m is not None]


def negotiating(credentials: Credentials, offer: str = "sasl=PLAIN,EXTERNAL") -> Session:
    """A session that has sent CAP LS and got ``offer`` with server-time."""
    session = Session("alice", credentials=credentials)
    session.connection_made()
    requested = wire(session.receive(f":srv CAP * LS :server-time {offer}", T0))
    assert requested == [("CAP", "REQ", "server-time sasl")]
    return session


def acked(
    credentials: Credentials, offer: str = "sasl=PLAIN,EXTERNAL"
) -> tuple[Session, list[tuple[str, ...]]]:
    session = negotiating(credentials, offer)
    return session, wire(session.receive(":srv CAP * ACK :server-time sasl", T0))


def server_texts(session: Session) -> list[str]:
    return [line.text for line in session.server.lines]


# ---- the pure helpers ---------------------------------------------------------------------


def test_plain_payload_is_rfc_4616_with_the_nick_as_default_account() -> None:
    assert sasl.payload("PLAIN", Credentials(password="pw"), "alice") == b"\0alice\0pw"
    named = Credentials(account="acct", password="pw")
    assert sasl.payload("PLAIN", named, "alice") == b"\0acct\0pw"


def test_external_payload_is_empty_and_sent_as_plus() -> None:
    assert sasl.payload("EXTERNAL", Credentials(certificate=True), "alice") == b""
    assert sasl.chunks(b"") == ["+"]


def test_long_payloads_are_split_in_400_byte_chunks_ending_with_plus_on_a_boundary() -> None:
    exact = sasl.chunks(b"x" * 300)  # 300 bytes -> exactly 400 base64 characters
    assert [len(c) for c in exact] == [400, 1] and exact[-1] == "+"
    longer = sasl.chunks(b"x" * 301)
    assert [len(c) for c in longer] == [400, 4]
    assert base64.b64decode("".join(longer)) == b"x" * 301


def test_mechanisms_follow_what_is_offered_and_what_we_have() -> None:
    both = Credentials(password="pw", certificate=True)
    assert sasl.mechanisms(both, "PLAIN,EXTERNAL") == ["EXTERNAL", "PLAIN"]
    assert sasl.mechanisms(both, "PLAIN") == ["PLAIN"]
    assert sasl.mechanisms(both, None) == ["EXTERNAL", "PLAIN"]  # no value: try both
    assert sasl.mechanisms(Credentials(certificate=True), "PLAIN") == []


def test_credentials_never_show_the_password() -> None:
    assert PASSWORD not in repr(Credentials(password=PASSWORD))


# ---- the exchange ---------------------------------------------------------------------------


def test_no_credentials_means_no_sasl_request() -> None:
    session = Session("alice")
    session.connection_made()
    sent = wire(session.receive(":srv CAP * LS :server-time sasl=PLAIN", T0))
    assert sent == [("CAP", "REQ", "server-time")]


def test_plain_login_holds_cap_end_until_903() -> None:
    session, sent = acked(Credentials(password=PASSWORD))
    assert sent == [("AUTHENTICATE", "PLAIN")]
    payload = session.receive("AUTHENTICATE +", T0)
    expected = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    assert payload == [f"AUTHENTICATE {expected}\r\n".encode()]
    text = ":srv 900 alice alice!alice@h alice :You are now logged in as alice"
    assert session.receive(text, T0) == []
    assert session.account == "alice"
    assert wire(session.receive(":srv 903 alice :SASL authentication successful", T0)) == [
        ("CAP", "END")
    ]
    assert "You are now logged in as alice." in server_texts(session)


def test_external_goes_first_when_a_certificate_is_given() -> None:
    session, sent = acked(Credentials(password=PASSWORD, certificate=True))
    assert sent == [("AUTHENTICATE", "EXTERNAL")]
    assert session.receive("AUTHENTICATE +", T0) == [b"AUTHENTICATE +\r\n"]


def test_a_failed_external_falls_back_to_plain() -> None:
    session, _ = acked(Credentials(password=PASSWORD, certificate=True))
    session.receive("AUTHENTICATE +", T0)
    failed = ":srv 904 alice :SASL authentication failed: the certificate is not registered"
    assert wire(session.receive(failed, T0)) == [("AUTHENTICATE", "PLAIN")]


def test_a_wrong_password_is_a_sentence_and_registration_continues() -> None:
    session, _ = acked(Credentials(password="wrong-password"))
    session.receive("AUTHENTICATE +", T0)
    failed = ":srv 904 alice :SASL authentication failed: Invalid account name or password"
    assert wire(session.receive(failed, T0)) == [("CAP", "END")]
    texts = server_texts(session)
    assert "Automatic login (SASL) failed: invalid account name or password." in texts
    assert any("Continuing without logging in" in t for t in texts)
    assert session.account is None
    assert all("wrong-password" not in t for t in texts)


def test_a_server_without_sasl_is_said_and_negotiation_ends() -> None:
    session = Session("alice", credentials=Credentials(password=PASSWORD))
    session.connection_made()
    session.receive(":srv CAP * LS :server-time", T0)
    assert wire(session.receive(":srv CAP * ACK :server-time", T0)) == [("CAP", "END")]
    assert any("does not offer SASL" in t for t in server_texts(session))


def test_a_server_offering_only_plain_to_a_certificate_user_ends_negotiation() -> None:
    _, sent = acked(Credentials(certificate=True), offer="sasl=PLAIN")
    assert sent == [("CAP", "END")]


def test_nick_locked_counts_as_a_failure() -> None:
    session, _ = acked(Credentials(password=PASSWORD))
    session.receive("AUTHENTICATE +", T0)
    assert wire(session.receive(":srv 902 alice :You must use a nick assigned to you", T0)) == [
        ("CAP", "END")
    ]


def test_logged_out_clears_the_account() -> None:
    session, _ = acked(Credentials(password=PASSWORD))
    session.receive(":srv 900 alice alice!a@h alice :You are now logged in as alice", T0)
    session.receive(":srv 901 alice alice!a@h :You are now logged out", T0)
    assert session.account is None


def test_a_reconnect_logs_in_again() -> None:
    session, _ = acked(Credentials(password=PASSWORD))
    session.receive(":srv 900 alice alice!a@h alice :You are now logged in as alice", T0)
    session.receive(":srv 903 alice :SASL authentication successful", T0)
    session.receive(":srv 001 alice :Welcome", T0)
    session.connection_lost("gone", T0)
    session.connection_made()
    assert session.account is None
    sent = wire(session.receive(":srv CAP * LS :server-time sasl=PLAIN", T0))
    assert sent == [("CAP", "REQ", "server-time sasl")]


def test_a_late_cap_ack_after_sasl_does_not_start_it_again() -> None:
    session, _ = acked(Credentials(password=PASSWORD))
    session.receive(":srv 900 alice alice!a@h alice :You are now logged in as alice", T0)
    session.receive(":srv 903 alice :SASL authentication successful", T0)
    assert wire(session.receive(":srv CAP * ACK :server-time", T0)) == [("CAP", "END")]
