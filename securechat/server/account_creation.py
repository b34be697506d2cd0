"""Creating an account: the one path NickServ ``REGISTER`` and the IRCv3 ``REGISTER`` command
(draft/account-registration) share.

Rules kept here (review M2, L7):

- Attempts are limited per connection and per address (``register_per_connection`` /
  ``register_per_address`` per ``register_window_seconds``), and accounts created per address
  (``accounts_per_address`` per ``accounts_per_address_window_seconds``).
- The name is looked up *before* hashing: a taken name costs a store read, never an scrypt.
- The hash runs in the ``bulk`` hashing lane, which answers "busy" when full instead of
  queueing without bound; one account operation runs at a time per connection.
- On success the connection is logged in (accounts.login), as after SASL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from securechat.logs import event
from securechat.server.accounts import alive, login, state, whole_seconds
from securechat.server.actions import StoreCall
from securechat.server.hashing import BULK, BUSY_TEXT, offload
from securechat.server.passwords import hash_password
from securechat.server.records import Account, AccountExists
from securechat.server.throttle import source_key

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")

Failure = Literal["exists", "error", "busy"]


@dataclass(frozen=True, slots=True)
class Created:
    """How a registration ended: ``failure`` None means created and logged in."""

    name: str
    failure: Failure | None = None

    @property
    def text(self) -> str:
        if self.failure is None:
            return f"Account {self.name} registered; you are logged in"
        if self.failure == "exists":
            return f"{self.name} is already registered"
        if self.failure == "busy":
            return BUSY_TEXT
        return "Registration failed; try again later"


Done = Callable[[Created, float], None]


def refusal(core: ServerCore, session: Session, now: float) -> str | None:
    """Count one attempt, or say why this one is refused (throttled: how long to wait)."""
    accounts, source = state(core), source_key(session.host)
    if accounts.created_by_source.wait(source, now) > 0:
        return "Too many accounts were registered from your address; try later"
    wait = max(
        accounts.register_by_conn.wait(session.conn, now),
        accounts.register_by_source.wait(source, now),
    )
    if wait > 0:
        return f"Too many REGISTER attempts; try again in {whole_seconds(wait)} seconds"
    accounts.register_by_conn.spend(session.conn, now)
    accounts.register_by_source.spend(source, now)
    return None


def create(
    core: ServerCore, session: Session, name: str, password: str, now: float, done: Done
) -> None:
    """Look up, hash off the loop, create, log in; then ``done`` (if still connected)."""
    session.auth_pending = True

    def failed(failure: Failure, outcome: object) -> None:
        session.auth_pending = False
        if failure == "error":
            log.error("account creation failed: %s", outcome)
        if alive(core, session):
            done(Created(name, failure), now)

    def checked(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, Account | BaseException):
            failed("exists" if isinstance(outcome, Account) else "error", outcome)
        elif not offload(core, BULK, lambda: hash_password(password), hashed):
            failed("busy", None)

    def hashed(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            failed("error", outcome)
            return
        core.perform(StoreCall(lambda store: store.create_account(name, outcome, now), created))

    def created(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            failed("exists" if isinstance(outcome, AccountExists) else "error", outcome)
            return
        session.auth_pending = False
        state(core).created_by_source.spend(source_key(session.host), now)
        event(log, "account_registered", conn=session.conn, account=name)
        if alive(core, session):
            done(Created(name), now)
            login(core, session, name, now)

    core.perform(StoreCall(lambda store: store.get_account(name), checked, client=session.conn))
