"""`securechat hash-password`: turn a password into the scrypt hash the config stores.

Used for ``[opers.NAME] password_hash``: the config file never holds a plain
password. Reads the password from the terminal without echo (twice), or one
line from standard input when it is not a terminal (for scripts).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from securechat.protocol.services import MIN_PASSWORD_LENGTH
from securechat.server.passwords import hash_password


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Example: securechat hash-password  (then paste into [opers.NAME])"


def run(args: argparse.Namespace) -> int:
    try:
        password = read_password()
    except (EOFError, KeyboardInterrupt):
        print("securechat hash-password: error: no password given", file=sys.stderr)
        return 2
    if len(password) < MIN_PASSWORD_LENGTH:
        print(
            f"securechat hash-password: error: use at least {MIN_PASSWORD_LENGTH} characters",
            file=sys.stderr,
        )
        return 2
    print(hash_password(password))
    return 0


def read_password() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        print("securechat hash-password: error: the passwords differ", file=sys.stderr)
        raise EOFError
    return first
