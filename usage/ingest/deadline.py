"""A client-side bound on the ingest path's database work, for a server that never answers.

A statement timeout (``SET LOCAL statement_timeout``, see ``services.inbox_store``) needs a
server that runs statements; a database that accepts connections and answers nothing (a hung
host, a stuck proxy, a network partition after the handshake) leaves the request waiting
for as long as the hang lasts, while Segment gives up after 5 s and requests pile up. So
the ingest view runs its database work under :func:`database_deadline`: when the time is up,
one watchdog thread per process shuts the connection's socket down, the blocked call fails
at once with ``OperationalError`` and the view answers 503 with ``Retry-After``. New
connections are bounded by ``connect_timeout`` (``DATABASE_CONNECT_TIMEOUT_SECONDS``).

The watchdog polls a few times a second rather than being woken per request: registering
costs a dict insert, never a thread switch. PostgreSQL only (SQLite is a local file).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.25


class _Entry:
    __slots__ = ("deadline", "done", "fired", "lock", "wrapper")

    def __init__(self, deadline: float, wrapper) -> None:
        self.deadline = deadline
        self.wrapper = wrapper
        self.lock = threading.Lock()
        self.done = False
        self.fired = False


class Watchdog:
    """Shuts down the database socket of work that outlives its deadline."""

    def __init__(self, *, tick: float = TICK_SECONDS) -> None:
        self.tick = tick
        self.entries: dict[int, _Entry] = {}
        self._thread = threading.Thread(target=self._run, name="ingest-db-deadline", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.tick)
            now = time.monotonic()
            for entry in list(self.entries.values()):
                if entry.deadline <= now:
                    self._fire(entry)

    def _fire(self, entry: _Entry) -> None:
        with entry.lock:
            if entry.done or entry.fired:
                return
            entry.fired = True
            raw = entry.wrapper.connection  # the psycopg connection, None before connecting
            fd = -1
            try:
                fd = raw.pgconn.socket if raw is not None and not raw.closed else -1
            except Exception:  # a connection in the middle of closing: nothing to cut
                fd = -1
            if fd < 0:
                return
            try:
                # shutdown() acts on the socket itself, so the blocked recv returns at once;
                # a duplicate descriptor keeps psycopg's own one valid until it closes it.
                with socket.socket(fileno=os.dup(fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                return
        logger.warning("ingest_database_deadline_exceeded", extra={"alias": entry.wrapper.alias})


_watchdog: Watchdog | None = None
_watchdog_lock = threading.Lock()


def _forget_after_fork() -> None:
    # A forked child has the object but not its thread: start over.
    global _watchdog, _watchdog_lock
    _watchdog = None
    _watchdog_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def watchdog() -> Watchdog:
    global _watchdog
    if _watchdog is None:
        with _watchdog_lock:
            if _watchdog is None:
                _watchdog = Watchdog()
    return _watchdog


@contextmanager
def database_deadline(seconds: float) -> Iterator[None]:
    """Bound this thread's database work inside the block to ``seconds`` (0: no bound).

    Past the deadline the default connection's socket is shut down, so the blocked call
    raises ``OperationalError`` (a ``DatabaseError``) in this thread; the connection is
    closed afterwards and the next request opens a fresh one.
    """
    # The wrapper itself, not django.db.connection: that proxy would resolve to the
    # watchdog thread's own connection when the watchdog reads it.
    wrapper = connections[DEFAULT_DB_ALIAS]
    if seconds <= 0 or wrapper.vendor != "postgresql":
        yield
        return
    entry = _Entry(time.monotonic() + seconds, wrapper)
    dog = watchdog()
    key = threading.get_ident()
    dog.entries[key] = entry
    try:
        yield
    finally:
        with entry.lock:
            entry.done = True
        dog.entries.pop(key, None)
        if entry.fired:
            # Cut even if the work finished just in time: the socket is unusable either way.
            wrapper.close()
