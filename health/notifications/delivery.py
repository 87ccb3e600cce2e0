"""Notification deliveries: one row per alert × target, one attempt row per try.

Sending never happens inside an evaluation (or an ingest worker): evaluation only writes
pending rows and nudges ``health.deliver_notifications`` on the ``notifications`` queue.
That task claims due rows (a lease, ``SKIP LOCKED`` on PostgreSQL), sends each with a short
timeout and records the attempt. Transient failures (timeouts, connection errors, 408, 425,
429 honouring ``Retry-After``, 5xx, SMTP 4xx) get ``next_attempt_at`` with capped exponential
backoff, and the periodic sweep (the same task, from beat) picks them up again — no long
Celery countdowns, which Redis's visibility timeout would run twice. Anything else (a 4xx, a
redirect, a refused address, an SMTP 5xx) is permanent: the row is ``failed`` with the reason.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import logging
import random
import smtplib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ..alerts.validation import UnresolvableHost, UnsafeUrl, webhook_url_check
from ..models_alerts import (
    AttemptOutcome,
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
)
from .messages import alert_payload_of, email_message, payload_bytes
from .queue import notifications_nudge

logger = logging.getLogger(__name__)

USER_AGENT = "planhat-segment-alerts/1.0"
ANSWER_LIMIT = 2000  # characters of the receiver's answer kept on the attempt
READ_LIMIT = 8192  # bytes read from the receiver's answer at most
CLAIM_BATCH = 10
TRANSIENT_STATUS = {408, 425, 429}


@dataclass(frozen=True)
class Target:
    channel: str
    email: str = ""
    webhook_id: int | None = None
    name: str = ""


def deliveries_for(
    *, alert_targets: Iterable[tuple[int, list[Target]]], now: dt.datetime
) -> list[Delivery]:
    """Pending delivery rows for new alerts: (alert id, targets) each, due now. Not saved."""
    return [
        Delivery(
            alert_id=alert_id,
            channel=target.channel,
            email=target.email,
            webhook_id=target.webhook_id,
            target=target.name or target.email,
            event="alert.opened",
            next_attempt_at=now,
        )
        for alert_id, targets in alert_targets
        for target in targets
    ]


def signature(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body with the webhook's secret (the X-Signature header)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- One attempt -----------------------------------------------------------------------------


@dataclass
class Result:
    outcome: str
    status_code: int | None = None
    error: str = ""
    answer: str = ""
    retry_after: float | None = None


def _retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _read_answer(response: requests.Response) -> str:
    try:
        raw = response.raw.read(READ_LIMIT, decode_content=True) or b""
    except Exception as exc:  # an answer we cannot read is noted, never fatal
        return f"(answer unreadable: {exc.__class__.__name__})"
    finally:
        response.close()
    return raw.decode("utf-8", errors="replace")[:ANSWER_LIMIT]


def _post(delivery: Delivery, session: requests.Session, attempt: int) -> Result:
    webhook = delivery.webhook
    if webhook is None:
        return Result(AttemptOutcome.PERMANENT, error="The webhook was deleted.")
    if not webhook.enabled:
        return Result(AttemptOutcome.PERMANENT, error="The webhook is disabled.")
    try:
        webhook_url_check(webhook.url)  # again at send time: a name may now resolve inside
    except UnresolvableHost as exc:
        return Result(AttemptOutcome.TRANSIENT, error=str(exc))
    except UnsafeUrl as exc:
        return Result(AttemptOutcome.PERMANENT, error=f"Refused: {exc}")
    body = payload_bytes(alert_payload_of(delivery.alert, delivery.event))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Signature": signature(webhook.secret, body),
        "X-Delivery-Id": str(delivery.pk),
        "X-Delivery-Attempt": str(attempt),
        "X-Event": delivery.event,
    }
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        response = session.post(
            webhook.url,
            data=body,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,  # a redirect could lead inside the network
            stream=True,  # read at most READ_LIMIT bytes of the answer
        )
    except requests.Timeout:
        return Result(AttemptOutcome.TRANSIENT, error=f"No answer within {timeout:g} s.")
    except requests.ConnectionError as exc:
        return Result(AttemptOutcome.TRANSIENT, error=f"Could not connect: {exc}")
    except requests.RequestException as exc:
        return Result(AttemptOutcome.PERMANENT, error=f"Request failed: {exc}")
    code = response.status_code
    retry_after = _retry_after(response.headers.get("Retry-After"), timezone.now())
    location = response.headers.get("Location", "")
    answer = _read_answer(response)
    if 200 <= code < 300:
        return Result(AttemptOutcome.SUCCESS, code, answer=answer)
    if code in TRANSIENT_STATUS or code >= 500:
        return Result(
            AttemptOutcome.TRANSIENT,
            code,
            error=f"HTTP {code}: the receiver may accept it later.",
            answer=answer,
            retry_after=retry_after if code in (429, 503) else None,
        )
    if 300 <= code < 400:
        return Result(
            AttemptOutcome.PERMANENT,
            code,
            error=f"HTTP {code}: redirects are not followed; set the webhook's URL to the "
            f"final address ({location or 'no Location given'}).",
            answer=answer,
        )
    return Result(
        AttemptOutcome.PERMANENT,
        code,
        error=f"HTTP {code}: the receiver refused the notification (not retried).",
        answer=answer,
    )


def _send_email(delivery: Delivery) -> Result:
    subject, body = email_message(alert_payload_of(delivery.alert, delivery.event))
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [delivery.email])
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        return Result(AttemptOutcome.PERMANENT, error=f"Recipient refused: {exc.recipients}")
    except smtplib.SMTPResponseException as exc:
        transient = 400 <= exc.smtp_code < 500
        return Result(
            AttemptOutcome.TRANSIENT if transient else AttemptOutcome.PERMANENT,
            exc.smtp_code,
            error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
        )
    except (smtplib.SMTPException, OSError) as exc:  # connection refused, timeout, TLS
        return Result(AttemptOutcome.TRANSIENT, error=f"Mail server: {exc}")
    return Result(AttemptOutcome.SUCCESS)


def backoff_seconds(attempt: int) -> float:
    """Capped exponential backoff after the ``attempt``-th failure, with ±10 % jitter."""
    base = settings.NOTIFICATIONS_BACKOFF_SECONDS * 2 ** (attempt - 1)
    capped = min(base, settings.NOTIFICATIONS_BACKOFF_MAX_SECONDS)
    return capped * random.uniform(0.9, 1.1)


def _record(delivery: Delivery, attempt: int, started: dt.datetime, ms: int, r: Result) -> None:
    now = timezone.now()
    status = DeliveryStatus.PENDING
    next_at = None
    error = r.error
    if r.outcome == AttemptOutcome.SUCCESS:
        status = DeliveryStatus.DELIVERED
    elif r.outcome == AttemptOutcome.PERMANENT:
        status = DeliveryStatus.FAILED
    elif attempt - delivery.attempt_base >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
        status = DeliveryStatus.FAILED
        error = f"Gave up after {attempt - delivery.attempt_base} attempts. Last: {r.error}"
    else:
        wait = backoff_seconds(attempt)
        if r.retry_after is not None:  # the receiver said when: honour it (within the cap)
            wait = min(max(r.retry_after, 1.0), settings.NOTIFICATIONS_BACKOFF_MAX_SECONDS)
        next_at = now + dt.timedelta(seconds=wait)
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=attempt,
            attempted_at=started,
            duration_ms=ms,
            status_code=r.status_code,
            outcome=r.outcome,
            error=r.error,
            response_body=r.answer,
        )
        Delivery.objects.filter(pk=delivery.pk).update(
            status=status,
            attempt_count=attempt,
            next_attempt_at=next_at,
            locked_until=None,
            last_status_code=r.status_code,
            last_error="" if status == DeliveryStatus.DELIVERED else error,
            delivered_at=now if status == DeliveryStatus.DELIVERED else None,
            updated_at=now,
        )
    logger.info(
        "notification_attempt",
        extra={
            "delivery_id": delivery.pk,
            "channel": delivery.channel,
            "attempt": attempt,
            "outcome": r.outcome,
            "status_code": r.status_code,
            "delivery_status": status,
        },
    )


def delivery_attempt(*, delivery: Delivery, session: requests.Session | None = None) -> str:
    """Try one delivery once and record the attempt; returns the delivery's new status."""
    attempt = delivery.attempt_count + 1
    started = timezone.now()
    clock = time.monotonic()
    if delivery.channel == Channel.WEBHOOK:
        own = session is None
        session = session or requests.Session()
        try:
            result = _post(delivery, session, attempt)
        finally:
            if own:
                session.close()
    else:
        result = _send_email(delivery)
    _record(delivery, attempt, started, int((time.monotonic() - clock) * 1000), result)
    delivery.refresh_from_db(fields=["status", "attempt_count", "next_attempt_at"])
    return delivery.status


# --- The sweep --------------------------------------------------------------------------------


def _claim(limit: int, now: dt.datetime, done: set[int]) -> list[int]:
    """Lease up to ``limit`` due deliveries to this worker (SKIP LOCKED on PostgreSQL; an
    IMMEDIATE transaction serialises this on SQLite). A worker that dies lets them lapse.
    ``done``: tried in this sweep already — never twice in one sweep (a ``Retry-After: 0``
    would otherwise spin)."""
    lease = dt.timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS)
    with transaction.atomic():
        due = (
            Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .exclude(pk__in=done)
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True)
        )
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            Delivery.objects.filter(pk__in=ids).update(locked_until=now + lease)
    return ids


@dataclass
class SweepSummary:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def as_dict(self) -> dict:
        return {
            "attempted": self.attempted,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
        }

    def __str__(self) -> str:
        return (
            f"{self.attempted} notification attempts: {self.delivered} delivered, "
            f"{self.retrying} to retry, {self.failed} failed."
        )


def deliveries_send_due(
    *, max_seconds: float | None = None, now: Callable[[], dt.datetime] = timezone.now
) -> SweepSummary:
    """Send every due delivery (pending, ``next_attempt_at`` passed, not leased), a few at a
    time, until none is due or ``max_seconds`` (default NOTIFICATIONS_SWEEP_MAX_SECONDS) has
    passed; the rest waits for the next sweep. Safe to run in several workers at once."""
    budget = settings.NOTIFICATIONS_SWEEP_MAX_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + budget
    summary = SweepSummary()
    done: set[int] = set()
    with requests.Session() as session:
        while time.monotonic() < deadline:
            ids = _claim(CLAIM_BATCH, now(), done)
            if not ids:
                break
            done.update(ids)
            batch = (
                Delivery.objects.select_related("webhook", "alert__rule", "alert__company")
                .filter(pk__in=ids)
                .order_by("id")
            )
            for delivery in batch:
                status = delivery_attempt(delivery=delivery, session=session)
                summary.attempted += 1
                if status == DeliveryStatus.DELIVERED:
                    summary.delivered += 1
                elif status == DeliveryStatus.FAILED:
                    summary.failed += 1
                else:
                    summary.retrying += 1
    if summary.attempted:
        logger.info("notifications_swept", extra=summary.as_dict())
    return summary


@transaction.atomic
def deliveries_retry(*, delivery_ids: Iterable[int]) -> int:
    """Queue failed deliveries again (after the webhook or address was fixed): pending, due
    now, with a fresh set of attempts. Returns how many were queued."""
    now = timezone.now()
    count = Delivery.objects.filter(pk__in=list(delivery_ids), status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        locked_until=None,
        attempt_base=F("attempt_count"),
        updated_at=now,
    )
    if count:
        notifications_nudge()
    return count
