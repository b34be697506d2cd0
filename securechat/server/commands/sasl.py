"""SASL: ``AUTHENTICATE`` with PLAIN and EXTERNAL (https://ircv3.net/specs/extensions/sasl-3.1).

The exchange::

    C: CAP REQ :sasl             S: CAP * ACK :sasl
    C: AUTHENTICATE PLAIN        S: AUTHENTICATE +
    C: AUTHENTICATE <base64>     (400-byte chunks; a shorter chunk, or "+", ends the payload)
    S: 900 RPL_LOGGEDIN, 903 RPL_SASLSUCCESS      or      904 ERR_SASLFAIL

Rules kept here:

- Only a client that negotiated the ``sasl`` capability may authenticate (904 otherwise);
  one already logged in gets 907; an unknown mechanism gets 908 (the list) and 904; a line
  over 400 bytes or a payload over ``MAX_PAYLOAD_CHARS`` gets 905; ``AUTHENTICATE *`` 906.
- PLAIN (RFC 4616): ``authzid NUL authcid NUL password``; the authzid must be empty or name
  the authcid (we do not let one account act as another). Password checks share NickServ's
  throttle (accounts.py), so SASL is no way around it.
- EXTERNAL (RFC 4422 appendix A): the account whose ``CERT ADD`` registered the SHA-256
  fingerprint of the client's TLS certificate; an authzid, if given, must name that account.
  It is offered only when the server has ``client_ca``: Python's ssl asks for and accepts
  only client certificates it can verify against that CA.
- Registration waits while a check is in flight (``Session.auth_pending``) and completes when
  it ends; ``CAP END`` in the middle of an unfinished exchange aborts it with 906 (accounts.
  abort_sasl) and registers the client without an account.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message
from securechat.protocol.names import casefold
from securechat.server.accounts import LoginOutcome, alive, check_password, login, refusal_text
from securechat.server.actions import IrcError, StoreCall
from securechat.server.commands.registration import try_register
from securechat.server.presence_accounts import login_refusal

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

CHUNK_BYTES = 400
MAX_PAYLOAD_CHARS = 2000  # base64 of a PLAIN payload with generous names and password
# Written by hand: build() makes every last parameter a trailing one (":+"), and some clients
# compare this line literally.
GO_AHEAD = b"AUTHENTICATE +\r\n"


def mechanisms(core: ServerCore) -> list[str]:
    return ["PLAIN", "EXTERNAL"] if core.config.client_ca is not None else ["PLAIN"]


# AUTHENTICATE <mechanism> | <base64 chunk> | + | *
def handle_authenticate(core: ServerCore, session: Session, message: Message, now: float) -> None:
    if not core.persistent or "sasl" not in session.caps:
        raise IrcError(n.ERR_SASLFAIL, "SASL authentication failed: negotiate the sasl capability")
    data = message.params[0]
    if data == "*":
        _reset(session)
        raise IrcError(n.ERR_SASLABORTED, "SASL authentication aborted")
    if session.auth_pending:
        raise IrcError(n.ERR_SASLFAIL, "SASL authentication failed: a check is in progress")
    if session.sasl_mechanism is None:
        _start(core, session, data.upper())
    else:
        _collect(core, session, data, now)


def _start(core: ServerCore, session: Session, mechanism: str) -> None:
    if session.account is not None:
        raise IrcError(n.ERR_SASLALREADY, "You have already authenticated using SASL")
    offered = mechanisms(core)
    if mechanism not in offered:
        core.reply(session, n.RPL_SASLMECHS, ",".join(offered), "are available SASL mechanisms")
        raise IrcError(n.ERR_SASLFAIL, "SASL authentication failed")
    session.sasl_mechanism = mechanism
    session.sasl_buffer = ""
    core.send(session, GO_AHEAD)


def _collect(core: ServerCore, session: Session, data: str, now: float) -> None:
    if len(data) > CHUNK_BYTES or len(session.sasl_buffer) + len(data) > MAX_PAYLOAD_CHARS:
        _reset(session)
        raise IrcError(n.ERR_SASLTOOLONG, "SASL message too long")
    if data != "+":
        session.sasl_buffer += data
    if len(data) == CHUNK_BYTES:
        return  # a full chunk: more follows (a final "+" if the payload was a multiple of 400)
    mechanism, encoded = session.sasl_mechanism, session.sasl_buffer
    _reset(session)
    payload = _decode(encoded)
    if payload is None:
        _fail(core, session, now)
    elif mechanism == "PLAIN":
        _plain(core, session, payload, now)
    else:
        _external(core, session, payload, now)


def _reset(session: Session) -> None:
    session.sasl_mechanism = None
    session.sasl_buffer = ""


def _decode(encoded: str) -> bytes | None:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _plain(core: ServerCore, session: Session, payload: bytes, now: float) -> None:
    try:
        authzid, authcid, password = payload.decode("utf-8").split("\0")
    except ValueError:  # not UTF-8, or not exactly three fields
        _fail(core, session, now)
        return
    if not authcid or (authzid and casefold(authzid) != casefold(authcid)):
        _fail(core, session, now)
        return

    def done(outcome: LoginOutcome, now: float) -> None:
        if outcome.account is None:
            _fail(core, session, now, refusal_text(outcome))
        else:
            _succeed(core, session, outcome.account, now)

    check_password(core, session, authcid, password, now, done)


def _external(core: ServerCore, session: Session, payload: bytes, now: float) -> None:
    certfp = session.certfp
    authzid = payload.decode("utf-8", "replace")
    if certfp is None:
        _fail(core, session, now, "no client certificate was presented")
        return
    session.auth_pending = True

    def found(outcome: Outcome, now: float) -> None:
        session.auth_pending = False
        if not alive(core, session):
            return
        name = getattr(outcome, "name", None)
        if not isinstance(name, str) or (authzid and casefold(authzid) != casefold(name)):
            _fail(core, session, now, "the certificate is not registered to that account")
        else:
            _succeed(core, session, name, now)

    lookup = StoreCall(lambda store: store.account_by_certfp(certfp), found, client=session.conn)
    core.perform(lookup)


def _succeed(core: ServerCore, session: Session, account: str, now: float) -> None:
    refusal = login_refusal(core, account)  # max_connections_per_account
    if refusal is not None:
        _fail(core, session, now, refusal)
        return
    login(core, session, account, now)
    core.reply(session, n.RPL_SASLSUCCESS, "SASL authentication successful")
    try_register(core, session, now)


def _fail(core: ServerCore, session: Session, now: float, why: str = "") -> None:
    text = f"SASL authentication failed: {why}" if why else "SASL authentication failed"
    core.reply(session, n.ERR_SASLFAIL, text)
    try_register(core, session, now)
