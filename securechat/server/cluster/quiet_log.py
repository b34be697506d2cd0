"""Every node applies every event, so the core's info lines about it (connect, join, quit,
login, …) would be written once per node: an operator reading several nodes' logs, or the
workers' logs through one parent, would see each N times. The node the event came from writes
them; the others stay quiet while they apply it. Warnings and errors are written everywhere:
a replica that fails where the origin did not is exactly what an operator must see."""

from __future__ import annotations

import logging
import threading

SERVER_LOGGER = "securechat.server"  # the one logger of the core and its handlers


class RemoteEventFilter(logging.Filter):
    """Drops info (and lower) records while this thread applies another node's event.
    Per thread: tests run several in-process nodes, each on its own thread."""

    def __init__(self) -> None:
        super().__init__()
        self._state = threading.local()

    def set_quiet(self, quiet: bool) -> None:
        self._state.quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not getattr(self._state, "quiet", False)


REMOTE_EVENTS = RemoteEventFilter()


def install() -> None:
    logger = logging.getLogger(SERVER_LOGGER)
    if REMOTE_EVENTS not in logger.filters:
        logger.addFilter(REMOTE_EVENTS)
