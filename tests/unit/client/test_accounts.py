"""Accounts from the user's side: /register, /login, masking, and where the password comes from."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from securechat.client import main
from securechat.client.commands import Context, interpret, mask_input, mask_service_text
from securechat.client.config import ConfigError, parse
from securechat.client.session import Session
from securechat.protocol.message import parse as parse_line

ROOM = Context(room="#lobby")
T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
SECRET = "correct-horse"


def sent(text: str) -> list[tuple[str, ...]]:
    outcome = interpret(text, ROOM)
    assert not outcome.error, outcome.notes
    lines = [parse_line(line) for line in outcome.send]
    return [(m.command, *m.params) for m in lines if m is not None]


def hint_for(text: str) -> str:
    outcome = interpret(text, ROOM)
    assert outcome.error and outcome.send == []
    return outcome.notes[0]


# ---- commands -------------------------------------------------------------------------------


def _welcomed(caps: str) -> Session:
    session = Session("alice")
    session.connection_made()
    session.receive(f":srv CAP * LS :{caps}", T0)
    session.receive(f":srv CAP * ACK :{caps}", T0)
    session.receive(":srv 001 alice :Welcome", T0)
    return session


def _wire(lines: list[bytes]) -> list[tuple[str, ...]]:
    return [(m.command, *m.params) for m in map(parse_line, lines) if m is not None]


def test_register_sends_the_password_to_nickserv_without_account_registration() -> None:
    session = _welcomed("message-tags")
    sent = _wire(session.submit(f"/register {SECRET}", T0))
    assert sent == [("PRIVMSG", "NickServ", f"REGISTER {SECRET}")]


def test_register_uses_ircv3_register_where_the_server_offers_it() -> None:
    session = _welcomed("draft/account-registration")
    assert _wire(session.submit(f"/register {SECRET}", T0)) == [("REGISTER", "alice", "*", SECRET)]
    with_email = _wire(session.submit(f"/register {SECRET} a@example.org", T0))
    assert with_email == [("REGISTER", "alice", "a@example.org", SECRET)]


def test_register_replies_are_said_and_verification_names_the_command() -> None:
    session = _welcomed("draft/account-registration")
    session.receive(":srv REGISTER VERIFICATION_REQUIRED alice :Check your email.", T0)
    assert session.shown.lines[-1].text == "Check your email. Then type /verify alice CODE."
    assert _wire(session.submit("/verify alice 12345", T0)) == [("VERIFY", "alice", "12345")]
    session.receive(":srv VERIFY SUCCESS alice :Account created", T0)
    assert session.account == "alice"


def test_register_without_a_password_or_with_a_short_one_is_a_hint() -> None:
    assert "Give your password." in hint_for("/register")
    assert "at least 8 characters" in hint_for("/register short")


def test_login_with_and_without_an_account_name() -> None:
    assert sent(f"/login {SECRET}") == [("PRIVMSG", "NickServ", f"IDENTIFY {SECRET}")]
    assert sent(f"/login alice {SECRET}") == [("PRIVMSG", "NickServ", f"IDENTIFY alice {SECRET}")]
    assert sent(f"/identify {SECRET}") == [("PRIVMSG", "NickServ", f"IDENTIFY {SECRET}")]


def test_login_with_too_many_words_is_a_hint() -> None:
    assert "no spaces" in hint_for("/login alice my secret")


def test_logout() -> None:
    assert sent("/logout") == [("PRIVMSG", "NickServ", "LOGOUT")]


def test_history_takes_an_optional_positive_count() -> None:
    assert interpret("/history", ROOM).history == 0
    assert interpret("/history 20", ROOM).history == 20
    assert "number of messages" in hint_for("/history lots")
    assert interpret("/history", Context()).error


# ---- masking --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        (f"/login {SECRET}", "/login ********"),
        (f"/login alice {SECRET}", "/login alice ********"),
        (f"/register {SECRET}", "/register ********"),
        (f"/msg NickServ IDENTIFY {SECRET}", "/msg NickServ IDENTIFY ********"),
        (f"/msg nickserv identify alice {SECRET}", "/msg nickserv identify alice ********"),
        (
            f"/quote PRIVMSG NickServ :REGISTER {SECRET}",
            "/quote PRIVMSG NickServ :REGISTER ********",
        ),
        ("/msg NickServ INFO alice", "/msg NickServ INFO alice"),
        ("hello there", "hello there"),
        ("/login", "/login"),
    ],
)
def test_input_history_keeps_passwords_masked(typed: str, kept: str) -> None:
    assert mask_input(typed) == kept


def test_service_text_masking() -> None:
    assert mask_service_text(f"DROP {SECRET}") == "DROP ********"
    assert mask_service_text("HELP") == "HELP"


def test_a_typed_nickserv_login_is_never_echoed_with_its_password() -> None:
    session = Session("alice")  # no echo-message: the client echoes what it sends
    session.connection_made()
    session.receive(":srv 001 alice :Welcome", T0)
    session.submit(f"/msg NickServ IDENTIFY {SECRET}", T0)
    session.submit(f"/login {SECRET}", T0)
    shown = [line.text for buffer in session.ordered for line in buffer.lines]
    assert all(SECRET not in text for text in shown)
    assert "IDENTIFY ********" in shown


# ---- where the password comes from ---------------------------------------------------------


def args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    main.add_arguments(parser)
    config = tmp_path / "client.toml"
    if not config.exists():
        config.write_text("")
    return parser.parse_args(["--config", str(config), "--nick", "alice", *extra])


def test_a_password_on_the_command_line_is_refused_not_taken_for_a_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    main.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--password", SECRET])
    error = capsys.readouterr().err
    assert "--password-file" in error and SECRET not in error


def test_password_file_gives_plain_credentials_for_the_nick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(main.PASSWORD_ENV, raising=False)
    secret = tmp_path / "pw"
    secret.write_text(f"{SECRET}\n")
    settings = main.resolve(args(tmp_path, "--password-file", str(secret)))
    assert settings.credentials.password == SECRET
    assert settings.credentials.account == ""
    session = main.make_client(settings).session
    assert session.credentials.password == SECRET


def test_environment_then_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "client.toml").write_text('password = "from-file"\naccount = "acct"\n')
    monkeypatch.setenv(main.PASSWORD_ENV, SECRET)
    assert main.resolve(args(tmp_path)).credentials.password == SECRET
    monkeypatch.delenv(main.PASSWORD_ENV)
    credentials = main.resolve(args(tmp_path)).credentials
    assert (credentials.password, credentials.account) == ("from-file", "acct")


def test_password_file_key_is_relative_to_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(main.PASSWORD_ENV, raising=False)
    (tmp_path / "pw.txt").write_text(SECRET)
    (tmp_path / "client.toml").write_text('password_file = "pw.txt"\n')
    assert main.resolve(args(tmp_path)).credentials.password == SECRET


def test_an_unreadable_or_empty_password_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(main.UsageError, match="cannot read it"):
        main.resolve(args(tmp_path, "--password-file", str(tmp_path / "missing")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(main.UsageError, match="first line is empty"):
        main.resolve(args(tmp_path, "--password-file", str(tmp_path / "empty")))


def test_a_client_certificate_allows_external(tmp_path: Path) -> None:
    extra = ("--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "c.key"))
    assert main.resolve(args(tmp_path, *extra)).credentials.certificate


def test_a_bad_password_value_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as error:
        parse("password = 12345678\n", Path("/c/client.toml"))
    assert "12345678" not in str(error.value)
    assert SECRET not in repr(parse(f'password = "{SECRET}"\n', Path("/c/client.toml")))
