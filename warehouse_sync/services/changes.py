"""What a run sends: changed objects per model, read in keyset-paginated chunks.

Incremental (DESIGN.md §4.3): objects created, updated or deleted since the start of the last
completed run that pushed the model (succeeded or partial), less a safety margin for
transactions that committed late; plus companies whose derived traits changed (their
licenses or endusers changed or were deleted); plus objects recorded as failed earlier.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q, QuerySet

from health.selectors import companies_with_score_changes_since
from planhat_segment.models import SYNCABLE_MODELS, EndUser, License, Tombstone

from ..models import COMPLETED_STATUSES, FailedObject, FailedObjectKind, SyncModelResult
from . import fastread
from .mapping import OBJECT_FIELDS, TOMBSTONE_FIELDS

# Models whose changes alter a company's derived traits (MRR / ARR, counts).
COMPANY_DERIVED_FROM = ("license", "enduser")


def change_mark(*, model: str, exclude_run_id: int | None = None) -> datetime | None:
    """Start of the last completed run that pushed ``model``, less the safety margin.

    None means there is no such run: everything is sent. One query: each run has a result
    row per model it pushes.
    """
    results = SyncModelResult.objects.filter(model=model, run__status__in=COMPLETED_STATUSES)
    if exclude_run_id is not None:
        results = results.exclude(run_id=exclude_run_id)
    last = results.aggregate(last=Max("run__started_at"))["last"]
    if last is None:
        return None
    return last - timedelta(seconds=settings.WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS)


def _failed_pks(model: str, kind: str):
    return FailedObject.objects.filter(model=model, kind=kind).values("object_pk")


def objects_changed(*, model: str, since: datetime | None) -> QuerySet:
    """The objects of ``model`` to push (test data left out); everything when ``since`` is None."""
    qs = SYNCABLE_MODELS[model].objects.all()
    if model == "company":
        qs = qs.filter(is_test=False)
    elif model == "enduser":
        qs = qs.filter(is_test=False, company__is_test=False)
    else:
        qs = qs.filter(company__is_test=False)
    if since is None:
        return qs
    changed = Q(updated_at__gte=since) | Q(pk__in=_failed_pks(model, FailedObjectKind.OBJECT))
    if model == "company":
        changed |= (
            Q(pk__in=License.objects.filter(updated_at__gte=since).values("company_id"))
            | Q(pk__in=EndUser.objects.filter(updated_at__gte=since).values("company_id"))
            | Q(
                pk__in=Tombstone.objects.filter(
                    model__in=COMPANY_DERIVED_FROM,
                    deleted_at__gte=since,
                    company_pk__isnull=False,
                ).values("company_pk")
            )
            # A changed health score row changes the company's pushed traits.
            | Q(pk__in=companies_with_score_changes_since(since))
        )
    return qs.filter(changed)


def tombstones_changed(*, model: str, since: datetime | None) -> QuerySet:
    qs = Tombstone.objects.filter(model=model)
    if since is None:
        return qs
    return qs.filter(
        Q(deleted_at__gte=since) | Q(pk__in=_failed_pks(model, FailedObjectKind.TOMBSTONE))
    )


def chunks(qs: QuerySet, *, fields: tuple[str, ...], size: int) -> Iterator[list[tuple]]:
    """Keyset pagination on pk (``fields[0]``): constant memory, and stable while rows change
    underneath. Yields tuples in ``fields`` order; on PostgreSQL through ``fastread``'s binary
    cursor (the same SQL, values the ORM would return, a fraction of the CPU)."""
    last_pk = 0
    base = qs.order_by("pk").values_list(*fields)
    fetch = fastread.fetch_queryset if fastread.available(qs.db) else list
    while True:
        rows = fetch(base.filter(pk__gt=last_pk)[:size])
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        last_pk = rows[-1][0]


def object_chunks(*, model: str, since: datetime | None, size: int) -> Iterator[list[tuple]]:
    """Changed objects of ``model`` as tuples in ``OBJECT_FIELDS[model]`` order."""
    return chunks(objects_changed(model=model, since=since), fields=OBJECT_FIELDS[model], size=size)


def tombstone_chunks(*, model: str, since: datetime | None, size: int) -> Iterator[list[dict]]:
    """Deletions of ``model`` as dicts keyed by ``TOMBSTONE_FIELDS`` (few: no fast path needed)."""
    for rows in chunks(
        tombstones_changed(model=model, since=since), fields=TOMBSTONE_FIELDS, size=size
    ):
        yield [dict(zip(TOMBSTONE_FIELDS, row, strict=True)) for row in rows]
