"""In-band registration: IRCv3 ``draft/account-registration``
(https://ircv3.net/specs/extensions/account-registration), so a client can offer "create
account" without NickServ.

Rules kept here:

- ``REGISTER <account> {<email> | *} <password>`` registers the client's current nick (``*``
  or the nick itself: ``custom-account-name`` is not offered, another name earns
  ``ACCOUNT_NAME_MUST_BE_NICK``). No email is needed or kept (``email-required`` is not offered;
  an address given is ignored), so no verification is ever pending: ``REGISTER SUCCESS`` logs the
  client in at once, as SASL would, and ``VERIFY`` only ever answers ``INVALID_CODE``.
- It works before connection registration (``before-connect`` in the cap value) once NICK was
  sent (else ``NEED_NICK``), except on a server with a password: there ``before-connect`` is
  not offered and an early REGISTER earns ``COMPLETE_CONNECTION_REQUIRED``, so it never
  bypasses PASS (the spec's "Server considerations").
- It goes through the path NickServ REGISTER takes (account_creation.py): the same per
  connection and per address throttles and quotas, the name looked up before any hashing, the
  bulk hashing lane; refusals and a full lane are ``TEMPORARILY_UNAVAILABLE``.
- Passwords are ``MIN_PASSWORD_LENGTH`` characters at least (``WEAK_PASSWORD``) and 300 bytes
  at most, the spec's safe limit (``UNACCEPTABLE_PASSWORD``); Guest nicks and names that are not
  valid nicks are ``BAD_ACCOUNT_NAME``; a taken name ``ACCOUNT_EXISTS``; a logged-in client
  ``ALREADY_AUTHENTICATED``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol.message import Message, build
from securechat.protocol.names import NICKLEN, casefold, is_valid_nick
from securechat.protocol.services import MIN_PASSWORD_LENGTH
from securechat.server import account_creation
from securechat.server.accounts import GUEST_PREFIX
from securechat.server.standard_replies import fail

if TYPE_CHECKING:
    from securechat.server.account_creation import Created
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

CAP = "draft/account-registration"
MAX_PASSWORD_BYTES = 300


def cap_value(core: ServerCore) -> str:
    """``before-connect`` unless a server password must come first."""
    return "" if core.config.password else "before-connect"


# REGISTER <account> {<email> | *} <password>
def handle_register(core: ServerCore, session: Session, message: Message, now: float) -> None:
    account, password = message.params[0], message.params[2]
    refused = _refusal(core, session, account, password)
    if refused is not None:
        code, text = refused
        fail(core, session, "REGISTER", code, account if code != "NEED_NICK" else "*", text=text)
        return
    throttled = account_creation.refusal(core, session, now)
    if throttled is not None:
        fail(core, session, "REGISTER", "TEMPORARILY_UNAVAILABLE", session.nick, text=throttled)
        return

    def done(created: Created, now: float) -> None:
        if created.failure is None:
            params = ["SUCCESS", created.name, created.text]
            core.send(session, build("REGISTER", params, core.config.name))
            return
        code = "ACCOUNT_EXISTS" if created.failure == "exists" else "TEMPORARILY_UNAVAILABLE"
        fail(core, session, "REGISTER", code, created.name, text=created.text)

    account_creation.create(core, session, session.nick, password, now, done)


def _refusal(
    core: ServerCore, session: Session, account: str, password: str
) -> tuple[str, str] | None:
    """(FAIL code, description) when this REGISTER cannot go ahead, checked in spec order."""
    if not session.registered and core.config.password and not session.password_ok:
        return "COMPLETE_CONNECTION_REQUIRED", "Send PASS and complete registration first"
    if not core.persistent:
        return "TEMPORARILY_UNAVAILABLE", "Accounts are not available on this server"
    if session.nick == "*":
        return "NEED_NICK", "Send NICK first: the account is named after it"
    if session.account is not None:
        return "ALREADY_AUTHENTICATED", f"You are already logged in as {session.account}"
    if session.auth_pending:
        return "TEMPORARILY_UNAVAILABLE", "Another login is in progress; wait for its answer"
    if account != "*" and casefold(account) != session.nick_cf:
        return "ACCOUNT_NAME_MUST_BE_NICK", "The account is named after your nick"
    nick = session.nick
    if nick.lower().startswith(GUEST_PREFIX.lower()) or not is_valid_nick(nick, NICKLEN):
        return "BAD_ACCOUNT_NAME", "Guest nicks cannot be registered; pick another nick first"
    if len(password) < MIN_PASSWORD_LENGTH:
        return "WEAK_PASSWORD", f"Passwords have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return "UNACCEPTABLE_PASSWORD", f"Passwords have at most {MAX_PASSWORD_BYTES} bytes"
    return None


# VERIFY <account> <code>
def handle_verify(core: ServerCore, session: Session, message: Message, now: float) -> None:
    account = message.params[0]
    if session.account is not None:
        text = f"You are already logged in as {session.account}"
        fail(core, session, "VERIFY", "ALREADY_AUTHENTICATED", account, text=text)
        return
    text = "No verification is pending: REGISTER here never needs one"
    fail(core, session, "VERIFY", "INVALID_CODE", account, text=text)
