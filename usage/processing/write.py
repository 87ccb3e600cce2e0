"""Write: a claim's decisions stored in bulk, one statement each whatever the claim's size.

Inserts are conflict tolerant (reprocessing a row never duplicates its outputs, two workers
never create the same enduser twice) and go through ``usage.bulk``: the same SQL on
PostgreSQL and SQLite, rows as one JSON parameter. The inbox rows get their outcomes in one
``UPDATE … FROM``, written only to the rows the claim still holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from integrations.models import MetricDefinition, MetricSource
from planhat_segment.models import EndUser
from usage.bulk import keys_in, rows_insert, rows_update, rows_where_in
from usage.models import Activity, InboxEvent, InboxStatus, MetricValue

from .claim import Hold
from .load import UserRef
from .matching import ActivitySpec, MetricValueSpec, Outcome
from .parse import EventFacts
from .policy import failure_detail, next_attempt

_NEW_USER_FIELDS = (
    "company",
    "external_id",
    "email",
    "email_normalized",
    "name",
    "first_name",
    "last_name",
    "title",
    "source",
    "created_at",
    "updated_at",
)


@dataclass
class Created:
    inserted: int  # rows this claim inserted (another worker may have created the rest)
    unbound: list[UserRef]  # plans bound to no row (deleted meanwhile; their events fail)


def endusers_create(*, users: list[UserRef], now: datetime) -> Created:
    """Insert planned endusers, tolerating conflicts, and bind each plan to the stored row.

    ON CONFLICT DO NOTHING then a re-read by external id and email: when another worker
    created the same enduser first, we bind to its row instead of creating a second one.
    """
    if not users:
        return Created(inserted=0, unbound=[])
    # A stable order keeps two workers inserting overlapping sets from deadlocking.
    users = sorted(users, key=lambda u: (u.external_id or "", u.email or ""))
    segment = EndUser.Source.SEGMENT.value
    inserted = rows_insert(
        EndUser,
        _NEW_USER_FIELDS,
        [
            (
                u.company_id,
                u.external_id,
                u.email,
                u.email,
                u.name,
                u.first_name,
                u.last_name,
                u.title,
                segment,
                now,
                now,
            )
            for u in users
        ],
        returning=("pk",),
    )
    stored = rows_where_in(
        EndUser,
        ("pk", "company_id", "external_id", "email_normalized"),
        external_id=[u.external_id for u in users if u.external_id],
        email_normalized=[u.email for u in users if u.email],
    )
    by_ext = {ext: (pk, company) for pk, company, ext, _ in stored if ext}
    by_email = {email: (pk, company) for pk, company, _, email in stored if email}
    unbound = []
    for user in users:
        hit = by_ext.get(user.external_id) if user.external_id else None
        hit = hit or (by_email.get(user.email) if user.email else None)
        if hit is None:
            unbound.append(user)
            continue
        user.pk, user.company_id = hit
    return Created(inserted=len(inserted), unbound=unbound)


def endusers_fill(*, users: list[UserRef], now: datetime) -> None:
    """Write the empty fields identify filled in (never a set one), and ``updated_at``.

    Only the fields some user changed; for the others their current value is re-written,
    which is the value we read moments ago inside the same transaction. Bulk writes set
    ``updated_at`` themselves (``auto_now`` does not fire here; the push depends on it).
    """
    if not users:
        return
    fields = sorted({name for u in users for name in u.changed})
    if "email" in fields:
        fields.append("email_normalized")
    values = sorted(  # in pk order: two workers filling overlapping users lock them alike
        (
            u.pk,
            *(getattr(u, "email" if f == "email_normalized" else f) for f in fields),
            now,
        )
        for u in users
    )
    rows_update(EndUser, ("pk", *fields, "updated_at"), values)


_ACTIVITY_FIELDS = (
    "enduser",
    "company",
    "asset",
    "project",
    "action",
    "count",
    "weight",
    "occurred_at",
    "received_at",
    "properties",
    "message_id",
)


def activities_write(*, specs: list[ActivitySpec]) -> list[tuple[ActivitySpec, float]]:
    """Insert activities; a message id already stored is skipped (unique constraint).

    Returns the activities really inserted, each with its stored weight: what the rollups
    add up (a re-delivered event inserts nothing and so counts nothing).
    """
    specs = [s for s in specs if s.user.pk is not None]
    inserted = rows_insert(
        Activity,
        _ACTIVITY_FIELDS,
        [
            (
                s.user.pk,
                s.user.company_id,
                s.asset_id,
                s.project_id,
                s.action,
                s.count,
                s.weight,
                s.occurred_at,
                s.received_at,
                s.properties,
                s.message_id,
            )
            for s in specs
        ],
        returning=("message_id", "weight"),
    )
    weights = dict(inserted)
    return [(s, weights[s.message_id]) for s in specs if s.message_id in weights]


def metric_definitions_ensure(*, keys: Iterable[str], now: datetime) -> dict[str, int]:
    """Metric definitions for these keys (pk by key), creating the missing ones as dimension
    data's (Planhat's rule: any dimension id is accepted and creates its metric).

    ON CONFLICT DO NOTHING then a re-read: a definition another worker (or an admin) created
    meanwhile is used as it is, whatever its source.
    """
    keys = sorted(set(keys))
    if not keys:
        return {}
    rows_insert(
        MetricDefinition,
        ("key", "label", "source", "created_at"),
        [
            (k, k.replace("_", " ").capitalize(), MetricSource.DIMENSION_DATA.value, now)
            for k in keys
        ],
    )
    return dict(rows_where_in(MetricDefinition, ("key", "pk"), key=keys))


def metric_values_write(*, specs: list[MetricValueSpec], now: datetime | None = None) -> None:
    """Insert metric values; (message id, metric) already stored is skipped.

    A value for an enduser planned in this claim takes the pk it got when created; one whose
    enduser could not be created is left out (its event fails, see the pipeline).
    """
    created = metric_definitions_ensure(
        keys=[s.metric_key for s in specs if s.metric_id is None], now=now or timezone.now()
    )
    rows = []
    for s in specs:
        metric_id = s.metric_id if s.metric_id is not None else created.get(s.metric_key)
        enduser_id = s.user.pk if s.user is not None else None
        if metric_id is None or (s.user is not None and enduser_id is None):
            continue
        rows.append(
            (
                s.company_id,
                enduser_id,
                s.asset_id,
                s.project_id,
                metric_id,
                s.value,
                s.occurred_at,
                s.message_id,
            )
        )
    rows_insert(
        MetricValue,
        ("company", "enduser", "asset", "project", "metric", "value", "occurred_at", "message_id"),
        rows,
    )


_OUTCOME_FIELDS = (
    "id",
    "status",
    "reason",
    "detail",
    "user_key",
    "email_key",
    "company_key",
    "enduser",
    "wait_until",
    "processed_at",
    "attempts",
    "next_attempt_at",
)


def inbox_outcomes_write(
    *, hold: Hold, events: list[EventFacts], outcomes: dict[int, Outcome], now: datetime
) -> int:
    """One bulk UPDATE of the claim's rows: outcome, identity keys, enduser, attempts.

    Only rows the claim still holds are written (``hold``): a row whose lease lapsed and
    that another worker re-claimed is that worker's to finish. A failed event counts one
    more attempt and gets its retry time from the one retry policy.
    """
    values = []
    for facts in events:
        outcome = outcomes[facts.row_id]
        attempts, retry_at, detail = facts.attempts, None, outcome.detail
        if outcome.status == InboxStatus.FAILED:
            attempts += 1
            retry_at = next_attempt(attempts, now=now)
            detail = failure_detail(detail, attempts=attempts, retry_at=retry_at)
        finished = outcome.status not in (InboxStatus.FAILED, InboxStatus.WAITING)
        values.append(
            (
                facts.row_id,
                str(outcome.status),
                str(outcome.reason),
                detail,
                facts.user_key,
                facts.email_key,
                facts.company_key,
                outcome.user.pk if outcome.user is not None else None,
                outcome.wait_until,
                now if finished else None,
                attempts,
                retry_at,
            )
        )
    return rows_update(
        InboxEvent,
        _OUTCOME_FIELDS,
        values,
        extra=hold.release,
        where=hold.where,
        where_params=hold.params,
    )


# --- putting rows back to pending -------------------------------------------------------------

# What makes a row look as if it had just arrived. Attempts are kept (the retry budget)
# unless a person asks for a fresh start.
_FRESH = {
    "status": InboxStatus.PENDING,
    "reason": "",
    "detail": "",
    "next_attempt_at": None,
    "claim_id": None,
    "claimed_until": None,
    "wait_until": None,
    "processed_at": None,
}


def inbox_requeue(*, rows: Q, reset_attempts: bool = False) -> int:
    """Put the matching rows back to pending, as if just received; returns how many.

    The one way rows go back to the queue: waiting rows whose user or company is known by
    now, rows assigned by a person, failed rows due for a retry, "Reprocess selected". A
    row under a lease (a worker holds it) is left alone. Outputs are idempotent, so
    nothing a row already produced is duplicated. Draining them is the caller's call.
    """
    fresh = {**_FRESH, "attempts": 0} if reset_attempts else _FRESH
    return InboxEvent.objects.filter(rows).exclude(status=InboxStatus.PROCESSING).update(**fresh)


def waiting_for_users(*, user_keys: Iterable[str], emails: Iterable[str]) -> Q:
    """Waiting rows of these users (by user id or normalised email)."""
    match = Q(pk__in=[])
    if user_keys := sorted(set(user_keys)):
        match |= Q(user_key__in=keys_in(user_keys))
    if emails := sorted(set(emails)):
        match |= Q(email_key__in=keys_in(emails))
    return Q(status=InboxStatus.WAITING) & match
