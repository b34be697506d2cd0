"""client.toml: every key checked, one-line errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.client.config import ConfigError, load, parse
from securechat.client.trust import Endpoint

PATH = Path("/home/u/.config/securechat/client.toml")


def test_a_full_file_is_read() -> None:
    colons = ":".join(["AB"] * 32)
    config = parse(
        f"""
        server = "chat.example.org:7000"
        nick = "alice"
        username = "al"
        realname = "Alice L"
        join = ["lobby", "#ops"]
        ca = "ca.pem"
        cert = "/abs/alice.pem"
        key = "~/alice.key"
        trust_fingerprint = "{colons}"
        reconnect_max_delay = 30
        """,
        PATH,
    )
    assert config.server == Endpoint("chat.example.org", 7000)
    assert (config.nick, config.username, config.realname) == ("alice", "al", "Alice L")
    assert config.join == ["#lobby", "#ops"]
    assert config.ca == PATH.parent / "ca.pem"
    assert config.cert == Path("/abs/alice.pem")
    assert config.key == Path.home() / "alice.key"
    assert config.trust_fingerprint == "ab" * 32
    assert config.reconnect_max_delay == 30.0


def test_an_empty_file_gives_defaults() -> None:
    config = parse("", PATH)
    assert config.server is None and config.join == [] and config.reconnect_max_delay == 60.0


def test_unknown_key_names_the_key_and_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"client.toml: unknown key 'nik' \(known keys: server"):
        parse('nik = "alice"', PATH)


def test_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"client.toml: nick: expected a non-empty string"):
        parse("nick = 3", PATH)


def test_invalid_nick_is_refused() -> None:
    with pytest.raises(ConfigError, match="nick: '1abc' is not a valid nick"):
        parse('nick = "1abc"', PATH)


def test_join_must_be_a_list_of_rooms() -> None:
    with pytest.raises(ConfigError, match="join: expected a list of room names"):
        parse('join = "#lobby"', PATH)


def test_bad_server_is_refused() -> None:
    with pytest.raises(ConfigError, match="server: port 0 is out of range"):
        parse('server = "host:0"', PATH)


def test_bad_fingerprint_is_refused() -> None:
    with pytest.raises(ConfigError, match="trust_fingerprint: expected a SHA-256 fingerprint"):
        parse('trust_fingerprint = "abc"', PATH)


def test_reconnect_delay_must_be_in_range() -> None:
    with pytest.raises(ConfigError, match="reconnect_max_delay: expected seconds"):
        parse("reconnect_max_delay = 0", PATH)


def test_invalid_toml_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse("nick = ", PATH)
    assert str(info.value).startswith(f"{PATH}: not valid TOML") and "\n" not in str(info.value)


def test_missing_default_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load().nick is None


def test_default_file_is_under_xdg_config_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "securechat").mkdir()
    (tmp_path / "securechat" / "client.toml").write_text('nick = "zed"\n')
    assert load().nick == "zed"


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "nope.toml")


def test_notify_and_paste_confirm_lines_are_read_and_checked() -> None:
    config = parse('notify = "desktop"\npaste_confirm_lines = 5', PATH)
    assert (config.notify, config.paste_confirm_lines) == ("desktop", 5)
    assert parse("", PATH).notify == "bell"
    with pytest.raises(ConfigError, match=r"notify: expected one of 'bell', 'desktop', 'none'"):
        parse('notify = "loud"', PATH)
    with pytest.raises(ConfigError, match="paste_confirm_lines: expected a number of lines"):
        parse("paste_confirm_lines = 0", PATH)
