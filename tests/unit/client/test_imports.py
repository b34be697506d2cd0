"""The client never imports the server (DESIGN.md §3), and its core never does I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLIENT = Path(__file__).parents[3] / "securechat" / "client"
PURE = (
    "buffers.py",
    "session.py",
    "session_base.py",
    "registration.py",
    "history.py",
    "events.py",
    "commands.py",
    "completion.py",
    "replies.py",
)


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", sorted(CLIENT.glob("*.py")), ids=lambda p: p.name)
def test_client_module_does_not_import_the_server(path: Path) -> None:
    assert not any(m.startswith("securechat.server") for m in imported_modules(path))


@pytest.mark.parametrize("name", PURE)
def test_core_module_does_no_io(name: str) -> None:
    forbidden = {"asyncio", "ssl", "socket", "textual", "securechat.client.net"}
    assert imported_modules(CLIENT / name).isdisjoint(forbidden)
