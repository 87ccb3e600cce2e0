"""The HTTP client for Segment's Tracking API batch endpoint.

We pack and send batches ourselves rather than through segment-analytics-python's background
queue: that queue drops messages silently when it is full and reports no per-message outcome,
and every pushed object must be accounted for on its model's row.
"""

from __future__ import annotations

import gzip
import logging
import time
from dataclasses import dataclass, field

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

# Segment (and proxies in front of it) retry these; 501 means "never going to work".
RETRYABLE_STATUSES = frozenset({408, 423, 429} | (set(range(500, 600)) - {501}))
AUTH_STATUSES = frozenset({401, 403})


class WriteKeyRejected(Exception):
    """Segment (or a proxy) answered 401/403: nothing else in this run can succeed."""


@dataclass(frozen=True)
class BatchOutcome:
    ok: bool
    status_code: int | None
    attempts: int
    duration_ms: int
    # Transient failures (5xx, network) that outlived every retry; the rest are permanent.
    transient: bool = False
    error: str = ""
    attempt_log: list[str] = field(default_factory=list)


class _CappedRetry(Retry):
    """urllib3's Retry, with a ceiling on the server's Retry-After (a proxy may say 3600)."""

    retry_after_max: float = 60.0

    def new(self, **kw):
        fresh = super().new(**kw)
        fresh.retry_after_max = self.retry_after_max
        return fresh

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.retry_after_max)


def _retry_policy(*, max_attempts: int, backoff: float, backoff_max: float) -> Retry:
    # urllib3's Retry already does capped exponential backoff with jitter, Retry-After and
    # connection/read errors on a non-idempotent POST once allowed: no hand-rolled loop.
    retry = _CappedRetry(
        total=max(max_attempts - 1, 0),
        allowed_methods=frozenset({"POST"}),
        status_forcelist=RETRYABLE_STATUSES,
        backoff_factor=backoff,
        backoff_max=backoff_max,
        backoff_jitter=backoff,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    retry.retry_after_max = backoff_max
    return retry


class SegmentClient:
    """Posts pre-serialised batch bodies to ``{base_url}/v1/batch`` and reports the outcome."""

    def __init__(
        self,
        *,
        base_url: str,
        write_key: str,
        use_gzip: bool | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        backoff: float | None = None,
        backoff_max: float | None = None,
        max_events_per_second: float | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/batch"
        self.use_gzip = settings.WAREHOUSE_PUSH_GZIP if use_gzip is None else use_gzip
        self.timeout = timeout or settings.WAREHOUSE_PUSH_TIMEOUT_SECONDS
        self.max_attempts = max_attempts or settings.WAREHOUSE_PUSH_MAX_ATTEMPTS
        rate = (
            settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND
            if max_events_per_second is None
            else max_events_per_second
        )
        self.max_events_per_second = float(rate)
        self.session = requests.Session()
        adapter = HTTPAdapter(
            pool_connections=1,
            pool_maxsize=4,
            max_retries=_retry_policy(
                max_attempts=self.max_attempts,
                backoff=settings.WAREHOUSE_PUSH_BACKOFF_SECONDS if backoff is None else backoff,
                backoff_max=(
                    settings.WAREHOUSE_PUSH_BACKOFF_MAX_SECONDS
                    if backoff_max is None
                    else backoff_max
                ),
            ),
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # Segment's Basic auth: the write key as user name, an empty password.
        self.session.auth = (write_key, "")
        self.session.headers.update(
            {"Content-Type": "application/json", "User-Agent": "planhat-segment-warehouse/0.1"}
        )
        if self.use_gzip:
            self.session.headers["Content-Encoding"] = "gzip"
        self._pace_started: float | None = None
        self._pace_sent = 0

    def close(self) -> None:
        self.session.close()

    def pace(self, count: int) -> None:
        """Wait until ``count`` more messages may leave, keeping the average rate at or under
        max_events_per_second (0 = no pacing). Call from one thread only."""
        if self.max_events_per_second <= 0:
            return
        now = time.monotonic()
        if self._pace_started is None:
            self._pace_started = now
        due = self._pace_started + self._pace_sent / self.max_events_per_second
        if due > now:
            time.sleep(due - now)
        self._pace_sent += count

    def post(self, *, body: bytes) -> BatchOutcome:
        """Post one batch body; raise WriteKeyRejected on 401/403, else return the outcome.

        Safe to call from a few threads at once (the connection pool holds 4 connections).
        """
        data = gzip.compress(body, compresslevel=1, mtime=0) if self.use_gzip else body
        started = time.monotonic()
        try:
            response = self.session.post(self.url, data=data, timeout=self.timeout)
        except requests.RequestException as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            return BatchOutcome(
                ok=False,
                status_code=None,
                attempts=self.max_attempts,
                duration_ms=elapsed,
                transient=True,
                error=f"network error after {self.max_attempts} attempts: {_short(exc)}",
            )
        elapsed = int((time.monotonic() - started) * 1000)
        history = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
        attempt_log = [_describe(h) for h in history]
        attempts = len(history) + 1
        status = response.status_code
        if 200 <= status < 300:
            return BatchOutcome(
                ok=True,
                status_code=status,
                attempts=attempts,
                duration_ms=elapsed,
                attempt_log=attempt_log,
            )
        reason = f"HTTP {status}: {response.text[:200].strip() or response.reason}"
        if status in AUTH_STATUSES:
            raise WriteKeyRejected(f"write key rejected ({reason})")
        transient = status in RETRYABLE_STATUSES
        if transient:
            reason = f"{reason} (after {attempts} attempts)"
        return BatchOutcome(
            ok=False,
            status_code=status,
            attempts=attempts,
            duration_ms=elapsed,
            transient=transient,
            error=reason,
            attempt_log=attempt_log,
        )


def _describe(history) -> str:
    if history.error is not None:
        return f"error: {_short(history.error)}"
    return f"HTTP {history.status}"


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
