"""Reads of health scores: for the push, the company list and API, and the Trends page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TypedDict

from django.db.models import (
    CharField,
    DateTimeField,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from planhat_segment.models import Company

from .models import HealthProfile, HealthScore


class HealthTraits(TypedDict):
    health_score: float | None
    health_band: str | None
    last_activity_at: str | None
    active_endusers_30d: int
    activity_change_30d: float | None


EMPTY_TRAITS: HealthTraits = {
    "health_score": None,
    "health_band": None,
    "last_activity_at": None,
    "active_endusers_30d": 0,
    "activity_change_30d": None,
}


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _latest_rows(company_ids: list[int]) -> QuerySet:
    latest = HealthScore.objects.filter(company=OuterRef("pk")).order_by("-day")
    ids = (
        Company.objects.filter(pk__in=company_ids)
        .annotate(sid=Subquery(latest.values("id")[:1]))
        .values("sid")
    )
    return HealthScore.objects.filter(pk__in=ids)


def company_health_traits(company_ids: Iterable[int]) -> dict[int, HealthTraits]:
    """The warehouse push's company traits, from each company's latest score row.

    Every company asked for gets every key with stable types: ``health_score`` float or
    None, ``health_band`` "green" / "amber" / "red" or None, ``last_activity_at`` ISO 8601
    UTC ("…Z") or None, ``active_endusers_30d`` int, ``activity_change_30d`` float or None.
    A company without a score row gets the empty values. One query per 5,000 companies.
    """
    wanted = list(dict.fromkeys(company_ids))
    result: dict[int, HealthTraits] = {pk: dict(EMPTY_TRAITS) for pk in wanted}
    for start in range(0, len(wanted), 5000):
        rows = _latest_rows(wanted[start : start + 5000]).values_list(
            "company_id",
            "score",
            "band",
            "last_activity_at",
            "active_endusers_30d",
            "activity_change_30d",
        )
        for company_id, score, band, last_at, active, change in rows:
            result[company_id] = {
                "health_score": None if score is None else float(score),
                "health_band": band or None,
                "last_activity_at": _iso(last_at),
                "active_endusers_30d": int(active or 0),
                "activity_change_30d": None if change is None else float(change),
            }
    return result


def companies_with_score_changes_since(since: dt.datetime | None) -> QuerySet:
    """Ids of companies whose pushed health traits changed at or after ``since``.

    A queryset of ``company_id`` values (use it in ``pk__in``); ``None`` means every
    company with a score row. Unchanged recomputes do not move the mark.
    """
    rows = HealthScore.objects.all()
    if since is not None:
        rows = rows.filter(traits_changed_at__gte=since)
    return rows.order_by().values("company_id").distinct()


def _latest(field: str, output_field):
    latest = HealthScore.objects.filter(company=OuterRef("pk")).order_by("-day")
    return Subquery(latest.values(field)[:1], output_field=output_field)


def companies_with_health(qs: QuerySet | None = None) -> QuerySet:
    """Companies annotated with their latest health figures, sortable and filterable:
    ``health_score``, ``health_band``, ``last_activity_at``, ``active_endusers_30d``,
    ``activity_change_30d``, ``health_mrr`` and ``health_mrr_currency``.

    Each is a correlated subquery on the (company, day) unique index, so a page of
    companies costs one query whatever the number of score rows.
    """
    qs = Company.objects.all() if qs is None else qs
    return qs.annotate(
        health_score=_latest("score", FloatField()),
        health_band=_latest("band", CharField()),
        last_activity_at=_latest("last_activity_at", DateTimeField()),
        active_endusers_30d=Coalesce(_latest("active_endusers_30d", IntegerField()), 0),
        activity_change_30d=_latest("activity_change_30d", FloatField()),
        health_mrr=_latest("mrr", FloatField()),
        health_mrr_currency=_latest("mrr_currency", CharField()),
    )


def health_score_list() -> QuerySet[HealthScore]:
    """Score rows, newest first, with their company and profile."""
    return HealthScore.objects.select_related("company", "profile").order_by("-day", "company_id")


def company_latest_score(*, company_id: int) -> HealthScore | None:
    return (
        HealthScore.objects.select_related("profile")
        .filter(company_id=company_id)
        .order_by("-day")
        .first()
    )


def company_health_history(
    *, company_id: int, first: dt.date, last: dt.date
) -> list[tuple[dt.date, float | None, str | None]]:
    """(day, score, band) of one company in a range, oldest first."""
    return list(
        HealthScore.objects.filter(company_id=company_id, day__gte=first, day__lte=last)
        .order_by("day")
        .values_list("day", "score", "band")
    )


def health_profile_list() -> QuerySet[HealthProfile]:
    return HealthProfile.objects.prefetch_related("factors__metric").order_by(
        "is_default", "order", "id"
    )
