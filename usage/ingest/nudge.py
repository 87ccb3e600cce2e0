"""The coalesced trigger: a process publishes ``usage.drain_inbox`` at most once a window.

A publish per request is the single-event bottleneck (DESIGN.md §7), and a publish while
Redis is down can block for seconds. So the request only sets a flag; one daemon thread per
process publishes on the leading edge of a quiet period and once more on the trailing edge
of each busy window, with ``retry=False``. Failures are logged, never raised: the inbox is
the source of truth and the beat sweeper claims rows whose nudge was lost.

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
                wait = self._last_publish + self.interval - self._clock()
                if wait > 0:
                    # Inside a window: publish once at its end, for every nudge it received.
                    self._cond.wait(min(wait, self.interval))
                    continue
                self._wanted = False
                self._last_publish = self._clock()
            self.publish()

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
        except Exception as exc:  # any broker failure: the sweeper is the safety net
            self.failed += 1
            self.last_error = exc
            logger.warning(
                "ingest_nudge_failed",
                extra={"error": repr(exc), "seconds": round(time.monotonic() - started, 3)},
            )
            return False
        self.published += 1
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
