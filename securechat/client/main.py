"""`securechat connect`: options, settings file, then the full-screen client or line mode.

Rules:
- Command-line options win over ``client.toml``, which wins over the defaults
  (``localhost:6697``, the login name as nick, ``certs/ca.pem`` when it exists
  in the current directory).
- Line mode is used with ``--plain`` or when stdin or stdout is not a terminal;
  only a terminal gets the "trust this certificate?" question.
- Every failure the user can fix is one clear message and a non-zero status:
  2 for bad options or settings, 1 for a connection or trust failure.
- The account password comes from ``--password-file``, else
  ``$SECURECHAT_PASSWORD``, else the settings file (``password_file`` or
  ``password``); there is deliberately no ``--password``: a command line is
  visible to every user in ``ps``. With a password the client logs in with SASL
  PLAIN; with ``--cert``/``--key`` it tries SASL EXTERNAL first.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from securechat.client import config as client_config
from securechat.client.net import Backoff, Client
from securechat.client.sasl import Credentials
from securechat.client.session import Session
from securechat.client.trust import (
    ConnectError,
    Endpoint,
    KnownHosts,
    Prompt,
    Trust,
    TrustError,
    config_dir,
    normalize_fingerprint,
)
from securechat.protocol.names import NICKLEN, is_valid_nick, is_valid_room

DEFAULT_SERVER = Endpoint("localhost", 6697)
DEFAULT_CA = Path("certs/ca.pem")
PASSWORD_ENV = "SECURECHAT_PASSWORD"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "server", nargs="?", metavar="HOST[:PORT]", help="server to connect to (localhost:6697)"
    )
    parser.add_argument("--nick", help="your nickname (default: your login name)")
    parser.add_argument(
        "--join", nargs="+", action="extend", default=[], metavar="ROOM", help="rooms to join"
    )
    parser.add_argument(
        "--ca",
        type=Path,
        metavar="FILE",
        help="CA certificate to trust besides the system store "
        f"(default: {DEFAULT_CA} if it exists in the current directory)",
    )
    parser.add_argument("--cert", type=Path, metavar="FILE", help="client certificate (PEM)")
    parser.add_argument("--key", type=Path, metavar="FILE", help="client certificate's key")
    parser.add_argument(
        "--account", metavar="NAME", help="account to log in to with SASL (default: the nick)"
    )
    # Not an option: without this, argparse would take "--password X" as an abbreviation
    # of --password-file, and a password typed on a command line is visible in ps.
    parser.add_argument("--password", action=_RefusePassword, help=argparse.SUPPRESS)
    parser.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help=f"log in with SASL PLAIN using the password on the first line of FILE "
        f"(or set {PASSWORD_ENV}, or password_file in the settings file)",
    )
    parser.add_argument(
        "--trust-fingerprint",
        metavar="SHA256",
        help="trust the server certificate with this SHA-256 fingerprint and remember it",
    )
    parser.add_argument(
        "--plain", action="store_true", help="line mode (automatic when not on a terminal)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"settings file (default: {client_config.default_path()})",
    )


class _RefusePassword(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        parser.error(
            f"--password is not accepted: every user could read it in ps. "
            f"Use --password-file FILE or the {PASSWORD_ENV} environment variable."
        )


@dataclass(slots=True)
class Settings:
    endpoint: Endpoint
    nick: str
    username: str | None
    realname: str | None
    rooms: list[str]
    trust: Trust
    reconnect_max_delay: float
    credentials: Credentials = field(default_factory=Credentials)
    notify: str = "bell"
    paste_confirm_lines: int = 3


class UsageError(Exception):
    """A bad option or setting; the message is one line."""


def resolve(args: argparse.Namespace, prompt: Prompt | None = None) -> Settings:
    """Options merged over the settings file; UsageError or ConfigError when something is off."""
    file = client_config.load(args.config)
    endpoint = _endpoint(args.server) if args.server else file.server or DEFAULT_SERVER
    nick = args.nick or file.nick or default_nick()
    if not is_valid_nick(nick):
        raise UsageError(f"--nick {nick}: not a valid nick (a letter first, no spaces)")
    rooms = [r if r.startswith("#") else f"#{r}" for r in args.join] or file.join
    for room in rooms:
        if not is_valid_room(room):
            raise UsageError(f"--join {room}: not a valid room name")
    fingerprint = file.trust_fingerprint
    if args.trust_fingerprint:
        fingerprint = normalize_fingerprint(args.trust_fingerprint)
        if fingerprint is None:
            raise UsageError("--trust-fingerprint: expected 64 hex digits (colons allowed)")
    trust = Trust(
        KnownHosts(config_dir() / "known_hosts"),
        ca=args.ca or file.ca or (DEFAULT_CA if DEFAULT_CA.is_file() else None),
        cert=args.cert or file.cert,
        key=args.key or file.key,
        fingerprint=fingerprint,
        prompt=prompt,
    )
    credentials = Credentials(
        account=args.account or file.account or "",
        password=_password(args, file),
        certificate=trust.cert is not None,
    )
    return Settings(
        endpoint,
        nick,
        file.username,
        file.realname,
        rooms,
        trust,
        file.reconnect_max_delay,
        credentials,
        file.notify,
        file.paste_confirm_lines,
    )


def _password(args: argparse.Namespace, file: client_config.ClientConfig) -> str | None:
    """The account password: --password-file, $SECURECHAT_PASSWORD, then the settings file."""
    if args.password_file is not None:
        return read_password_file(args.password_file, "--password-file")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if file.password_file is not None:
        return read_password_file(file.password_file, "password_file")
    return file.password


def read_password_file(path: Path, option: str) -> str:
    """The first line of ``path``, without its line ending."""
    try:
        with path.open(encoding="utf-8") as stream:
            password = stream.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{option} {path}: cannot read it ({reason})") from None
    if not password:
        raise UsageError(f"{option} {path}: the first line is empty; put the password there")
    return password


def _endpoint(text: str) -> Endpoint:
    try:
        return Endpoint.parse(text)
    except ValueError as exc:
        raise UsageError(f"server: {exc}") from None


def default_nick() -> str:
    """The login name when it can be a nick, else ``guest``."""
    try:
        login = getpass.getuser()
    except (OSError, KeyError):
        return "guest"
    nick = re.sub(r"[^A-Za-z0-9\[\]\\`_^{|}-]", "", login)[:NICKLEN]
    return nick if is_valid_nick(nick) else "guest"


def ask_on_terminal(question: str) -> bool:
    """The trust question, answered on the terminal; anything but yes is no."""
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def make_client(settings: Settings) -> Client:
    session = Session(
        settings.nick,
        username=settings.username,
        realname=settings.realname,
        rooms=settings.rooms,
        server_label=settings.endpoint.host,
        credentials=settings.credentials,
    )
    backoff = Backoff(cap=settings.reconnect_max_delay)
    return Client(session, settings.endpoint, settings.trust, backoff=backoff)


def run(args: argparse.Namespace) -> int:
    plain = args.plain or not (sys.stdin.isatty() and sys.stdout.isatty())
    try:
        settings = resolve(args, prompt=None if plain else ask_on_terminal)
    except (UsageError, client_config.ConfigError) as exc:
        print(f"securechat connect: {exc}", file=sys.stderr)
        return 2
    client = make_client(settings)
    try:
        if plain:
            from securechat.client import plain as line_mode

            return asyncio.run(line_mode.run(client, sys.stdin, sys.stdout))
        from securechat.client import tui

        options = tui.Options(settings.notify, settings.paste_confirm_lines)
        return asyncio.run(tui.run(client, options))
    except TrustError as exc:
        print(str(exc), file=sys.stderr)
    except ConnectError as exc:
        print(f"securechat connect: {exc}", file=sys.stderr)
    return 1
