"""The coalesced trigger: a process publishes ``usage.drain_inbox`` at most once a window.

A publish per request is the single-event bottleneck (DESIGN.md §7), and a publish while
Redis is down can block for seconds. So the request only sets a flag; one daemon thread per
process publishes on the leading edge of a quiet period and once more on the trailing edge
of each busy window, with ``retry=False``. Failures are never raised: the inbox is the source
of truth. A failed publish is tried again on the nudger's thread (backoff up to
``RETRY_MAX_SECONDS``) until one succeeds, so the rows stored while the broker was down are
drained within seconds of it coming back, whether or not new requests arrive; it is logged
once when an outage starts and once when it ends, not at every attempt.

:func:`drain_soon` is the one way anything asks for a drain (ingest, re-queued rows, a
drain out of time): every caller goes through this process's nudger.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

DRAIN_TASK = "usage.drain_inbox"
DRAIN_QUEUE = "ingest"
# After a failed publish the nudger tries again after 0.5 s, doubling, at most this often.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0


def _default_app() -> Any:
    from planhat_segment.celery import app

    return app


class Nudger:
    """Coalesces nudges into at most one publish per ``interval`` seconds (plus a trailing one).

    ``app`` is the Celery app to publish with (the project's by default); ``clock`` tells
    the time in seconds (``time.monotonic``; tests drive their own).
    """

    def __init__(
        self, *, interval: float, app: Any = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._app = app
        self._clock = clock
        self._cond = threading.Condition()
        self._wanted = False
        self._last_publish = float("-inf")
        self._thread: threading.Thread | None = None
        self.published = 0
        self.failed = 0
        self.last_error: Exception | None = None
        # The current outage: failed publishes in a row, since when (None: the broker is up).
        self.failing = 0
        self.failing_since: float | None = None
        self._retry_at = float("-inf")

    def nudge(self) -> None:
        """Ask for a drain; returns at once (the publish happens on the nudger's thread)."""
        with self._cond:
            if self._wanted:
                # Already due at the end of this window: waking the thread again for every
                # request cost more than the insert itself (measured: ~0.4 ms a request).
                return
            self._wanted = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ingest-nudger", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._wanted:
                    self._cond.wait()
                due = max(self._last_publish + self.interval, self._retry_at)
                wait = due - self._clock()
                if wait > 0:
                    # Inside a window (or a retry's backoff): publish once at its end, for
                    # every nudge it received.
                    self._cond.wait(min(wait, max(self.interval, RETRY_MAX_SECONDS)))
                    continue
                self._wanted = False
                self._last_publish = self._clock()
            if not self.publish():
                with self._cond:
                    # Still wanted: the rows are stored, only the trigger was lost.
                    self._wanted = True
                    backoff = RETRY_FIRST_SECONDS * 2 ** min(self.failing - 1, 10)
                    self._retry_at = self._clock() + min(backoff, RETRY_MAX_SECONDS)

    def flush(self) -> None:
        """Publish now if a nudge is still due (a process that exits must not drop it)."""
        with self._cond:
            due, self._wanted = self._wanted, False
        if due:
            self.publish()

    def publish(self) -> bool:
        """Publish one drain task now; False (logged) when the broker cannot take it."""
        app = self._app or _default_app()
        started = time.monotonic()
        try:
            app.send_task(DRAIN_TASK, queue=DRAIN_QUEUE, retry=False, ignore_result=True)
        except Exception as exc:  # any broker failure: retried, and the sweeper is the net
            self.failed += 1
            self.failing += 1
            self.last_error = exc
            if self.failing == 1:
                # Once per outage: during one, a busy process would log this every 100 ms.
                self.failing_since = started
                logger.warning(
                    "ingest_nudge_failed",
                    extra={"error": repr(exc), "seconds": round(time.monotonic() - started, 3)},
                )
            else:
                logger.debug("ingest_nudge_failed_again", extra={"attempts": self.failing})
            return False
        self.published += 1
        if self.failing:
            logger.warning(
                "ingest_nudge_recovered",
                extra={
                    "failed_attempts": self.failing,
                    "outage_seconds": round(started - (self.failing_since or started), 1),
                },
            )
            self.failing = 0
            self.failing_since = None
            self._retry_at = float("-inf")
        return True


_nudger: Nudger | None = None
_nudger_lock = threading.Lock()


def _forget_after_fork() -> None:
    # A forked child (gunicorn --preload, Celery prefork) has the object but not its thread,
    # and maybe a lock held by it: start over with a fresh nudger.
    global _nudger, _nudger_lock
    _nudger = None
    _nudger_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def nudger() -> Nudger:
    """This process's nudger, created on first use with INGEST_NUDGE_INTERVAL_MS."""
    global _nudger
    if _nudger is None:
        with _nudger_lock:
            if _nudger is None:
                _nudger = Nudger(interval=settings.INGEST_NUDGE_INTERVAL_MS / 1000)
    return _nudger


@atexit.register
def _flush_at_exit() -> None:
    # A short-lived process (a management command) may exit inside a window, before the
    # daemon thread publishes on its trailing edge.
    if _nudger is not None:
        _nudger.flush()


def nudge() -> None:
    """Ask this process's nudger for a drain (the ``on_commit`` callback of drain_soon)."""
    nudger().nudge()


def drain_soon() -> None:
    """Ask a worker to drain the inbox once the current transaction commits (coalesced)."""
    transaction.on_commit(nudge, robust=True)
