"""IRCv3 standard replies (https://ircv3.net/specs/extensions/standard-replies): one helper
for the ``FAIL <command> <code> [<context>...] :<description>`` lines of issue 16's modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol.message import build, safe_param

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


def fail(
    core: ServerCore, session: Session, command: str, code: str, *context: str, text: str
) -> None:
    """``FAIL``: context tokens that came from the client are made safe to echo here."""
    params = [command, code, *(safe_param(item) for item in context), text]
    core.send(session, build("FAIL", params, core.config.name))
