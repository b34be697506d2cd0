"""The `securechat` command: serve | connect | certs | bench.

Each subcommand lives in the module that owns it and exposes
``add_arguments(parser)`` and ``run(args) -> int``; this file only wires them
together and sets up logging. Modules are imported when their subcommand runs,
so `securechat connect` does not pay for importing the server.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

# subcommand -> (the module that owns it, its one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("securechat.server.main", "run the TLS chat server"),
    "connect": ("securechat.client.main", "connect to a server with the terminal client"),
    "certs": ("securechat.certs", "generate development certificates (local CA, server, clients)"),
    "bench": ("securechat.bench.main", "load-test a server over TLS on loopback"),
    "hash-password": (
        "securechat.server.hash_password",
        "hash a password for the config (operators)",
    ),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, ModuleType | None]:
    parser = argparse.ArgumentParser(prog="securechat", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv else None
    module = None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser, module = build_parser(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 2
    try:
        result: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
