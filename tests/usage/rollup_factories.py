"""Factories for the daily rollups: tests write rollup rows directly (processing fills them
in production), plus a small recount helper that builds them from activities."""

from __future__ import annotations

import datetime as dt

import factory
from django.db.models import F, FloatField, Sum
from django.db.models.functions import Cast, TruncDate

from tests.factories import CompanyFactory, EndUserFactory
from usage.models import Activity, CompanyActionDay, EnduserDay


class CompanyActionDayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CompanyActionDay

    company = factory.SubFactory(CompanyFactory)
    day = dt.date(2026, 1, 1)
    action = "Logged in"
    count = 1
    weighted_count = factory.LazyAttribute(lambda o: float(o.count))


class EnduserDayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EnduserDay

    enduser = factory.SubFactory(EndUserFactory)
    company = factory.LazyAttribute(lambda o: o.enduser.company)
    day = dt.date(2026, 1, 1)
    count = 1


def usage_add(
    *, enduser, day: dt.date, action: str = "Logged in", count: int = 1, weight: float = 1.0
) -> None:
    """Record ``count`` activities of one enduser on one day in both rollups (adding up)."""
    row, _ = CompanyActionDay.objects.get_or_create(company=enduser.company, day=day, action=action)
    row.count += count
    row.weighted_count += count * weight
    row.save()
    user_row, _ = EnduserDay.objects.get_or_create(
        company=enduser.company, enduser=enduser, day=day
    )
    user_row.count += count
    user_row.save()


def rollups_recount() -> None:
    """Rebuild both rollups from the activities (UTC days; test data left out)."""
    CompanyActionDay.objects.all().delete()
    EnduserDay.objects.all().delete()
    live = Activity.objects.filter(enduser__is_test=False, company__is_test=False).annotate(
        d=TruncDate("occurred_at", tzinfo=dt.UTC)
    )
    CompanyActionDay.objects.bulk_create(
        CompanyActionDay(
            company_id=r["company_id"],
            day=r["d"],
            action=r["action"],
            count=r["n"],
            weighted_count=r["w"],
        )
        for r in live.values("company_id", "d", "action").annotate(
            n=Sum("count"), w=Sum(Cast(F("count"), FloatField()) * F("weight"))
        )
    )
    EnduserDay.objects.bulk_create(
        EnduserDay(company_id=r["company_id"], enduser_id=r["enduser_id"], day=r["d"], count=r["n"])
        for r in live.values("company_id", "enduser_id", "d").annotate(n=Sum("count"))
    )
