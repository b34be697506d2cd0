"""The client's settings file: ``$XDG_CONFIG_HOME/securechat/client.toml``.

Rules:
- Every key is optional; command-line options win over the file.
- Keys are checked by name and type; a mistake is one line naming the file,
  the key and what was expected (``ConfigError``), never a traceback.
- Relative paths in the file are relative to the file's directory, so a
  config does not change meaning with the current directory.

Example::

    server = "chat.example.org:6697"
    nick = "alice"
    username = "alice"
    realname = "Alice Liddell"
    join = ["#lobby", "#ops"]
    ca = "ca.pem"
    cert = "alice.pem"
    key = "alice.key"
    trust_fingerprint = "3f2a…"          # 64 hex digits, colons allowed
    reconnect_max_delay = 60             # seconds
    account = "alice"                    # SASL account (default: the nick)
    password_file = "password.txt"       # first line: the account password (SASL PLAIN)
    password = "…"                       # or the password itself: keep the file private
    notify = "bell"                      # on a mention or private message: "bell",
                                         # "desktop" (OSC 777 / OSC 9) or "none"
    paste_confirm_lines = 3              # a paste of more lines asks before sending

A password in the file (or in ``$SECURECHAT_PASSWORD``) is never passed on a
command line, where any user could read it in ``ps``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from securechat.client.trust import Endpoint, config_dir, normalize_fingerprint
from securechat.protocol.names import is_valid_nick, is_valid_room

CONFIG_NAME = "client.toml"


class ConfigError(Exception):
    """A bad settings file; the message is one line for the user."""


@dataclass(slots=True)
class ClientConfig:
    server: Endpoint | None = None
    nick: str | None = None
    username: str | None = None
    realname: str | None = None
    join: list[str] = field(default_factory=list)
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    trust_fingerprint: str | None = None
    reconnect_max_delay: float = 60.0
    account: str | None = None
    password: str | None = None
    password_file: Path | None = None
    notify: str = "bell"
    paste_confirm_lines: int = 3

    def __repr__(self) -> str:  # a traceback or a debug print must not show the password
        return f"ClientConfig(server={self.server!r}, nick={self.nick!r})"


def default_path() -> Path:
    return config_dir() / CONFIG_NAME


def load(path: Path | None = None) -> ClientConfig:
    """The settings in ``path`` (the default file when None); a missing default file is fine."""
    explicit = path is not None
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such file") from None
        return ClientConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    return parse(text, path)


def parse(text: str, path: Path) -> ClientConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    config = ClientConfig()
    for key, value in data.items():
        setter = _KEYS.get(key)
        if setter is None:
            known = ", ".join(_KEYS)
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: {known})")
        try:
            setter(config, value, path.parent)
        except ValueError as exc:
            raise ConfigError(f"{path}: {key}: {exc}") from None
    return config


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _set_server(config: ClientConfig, value: Any, base: Path) -> None:
    config.server = Endpoint.parse(_string(value))


def _set_nick(config: ClientConfig, value: Any, base: Path) -> None:
    nick = _string(value)
    if not is_valid_nick(nick):
        raise ValueError(f"{nick!r} is not a valid nick (a letter first, no spaces)")
    config.nick = nick


def _set_username(config: ClientConfig, value: Any, base: Path) -> None:
    username = _string(value)
    if not username.isascii() or any(c in username for c in " @!:\t"):
        raise ValueError(f"{username!r} must be ASCII without spaces, @, ! or :")
    config.username = username


def _set_realname(config: ClientConfig, value: Any, base: Path) -> None:
    config.realname = _string(value)


def _set_join(config: ClientConfig, value: Any, base: Path) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of room names, got {value!r}")
    rooms = [v if v.startswith("#") else f"#{v}" for v in value]
    for room in rooms:
        if not is_valid_room(room):
            raise ValueError(f"{room!r} is not a valid room name")
    config.join = rooms


def _set_account(config: ClientConfig, value: Any, base: Path) -> None:
    account = _string(value)
    if any(c.isspace() or c == "\0" for c in account):
        raise ValueError("an account name has no spaces")
    config.account = account


def _set_password(config: ClientConfig, value: Any, base: Path) -> None:
    if not isinstance(value, str) or not value:  # the value is not echoed: it is a secret
        raise ValueError("expected a non-empty string")
    password = value
    if "\0" in password or "\n" in password:
        raise ValueError("a password is one line")
    config.password = password


def _path_setter(name: str) -> Callable[[ClientConfig, Any, Path], None]:
    def set_path(config: ClientConfig, value: Any, base: Path) -> None:
        setattr(config, name, base / Path(_string(value)).expanduser())

    return set_path


def _set_fingerprint(config: ClientConfig, value: Any, base: Path) -> None:
    fingerprint = normalize_fingerprint(_string(value))
    if fingerprint is None:
        raise ValueError("expected a SHA-256 fingerprint: 64 hex digits, colons allowed")
    config.trust_fingerprint = fingerprint


def _set_reconnect(config: ClientConfig, value: Any, base: Path) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 3600:
        raise ValueError(f"expected seconds between 1 and 3600, got {value!r}")
    config.reconnect_max_delay = float(value)


NOTIFY_MODES = ("bell", "desktop", "none")


def _set_notify(config: ClientConfig, value: Any, base: Path) -> None:
    if value not in NOTIFY_MODES:
        raise ValueError(f"expected one of {', '.join(map(repr, NOTIFY_MODES))}, got {value!r}")
    config.notify = value


def _set_paste_confirm(config: ClientConfig, value: Any, base: Path) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValueError(f"expected a number of lines between 1 and 1000, got {value!r}")
    config.paste_confirm_lines = value


_KEYS: dict[str, Callable[[ClientConfig, Any, Path], None]] = {
    "server": _set_server,
    "nick": _set_nick,
    "username": _set_username,
    "realname": _set_realname,
    "join": _set_join,
    "ca": _path_setter("ca"),
    "cert": _path_setter("cert"),
    "key": _path_setter("key"),
    "trust_fingerprint": _set_fingerprint,
    "reconnect_max_delay": _set_reconnect,
    "account": _set_account,
    "password": _set_password,
    "password_file": _path_setter("password_file"),
    "notify": _set_notify,
    "paste_confirm_lines": _set_paste_confirm,
}
