"""Selectors the warehouse push reads: company traits and the incremental change mark."""

import datetime as dt

import pytest
from django.utils import timezone

from health.models import HealthScore
from health.selectors import (
    EMPTY_TRAITS,
    companies_with_score_changes_since,
    company_health_traits,
)
from health.services import health_defaults_ensure, health_scores_recompute
from tests.factories import CompanyFactory, EndUserFactory
from tests.usage.rollup_factories import usage_add
from usage.models import Activity

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 15)


def test_traits_have_stable_types_from_the_latest_row():
    health_defaults_ensure()
    active, silent, never_scored = CompanyFactory(), CompanyFactory(), CompanyFactory()
    enduser = EndUserFactory(company=active)
    for n in range(1, 61):
        usage_add(enduser=enduser, day=TODAY - dt.timedelta(days=n))
    when = dt.datetime(2026, 3, 14, 18, 5, 7, tzinfo=dt.UTC)
    Activity.objects.create(
        enduser=enduser,
        company=active,
        action="x",
        occurred_at=when,
        received_at=when,
        message_id="t-1",
    )
    health_scores_recompute(company_ids=[active.pk, silent.pk], day=TODAY - dt.timedelta(days=1))
    health_scores_recompute(company_ids=[active.pk, silent.pk], day=TODAY)

    traits = company_health_traits([active.pk, silent.pk, never_scored.pk])
    assert set(traits) == {active.pk, silent.pk, never_scored.pk}
    row = traits[active.pk]
    assert type(row["health_score"]) is float
    # 5 + (2 × 0 [steady] + 2 × 3 [active yesterday] + 1 × −3.2 [1 of 10 endusers]) / 5
    assert row["health_score"] == 5.6
    assert row["health_band"] == "amber"
    assert row["last_activity_at"] == "2026-03-14T18:05:07Z"
    assert row["active_endusers_30d"] == 1
    assert type(row["active_endusers_30d"]) is int
    assert row["activity_change_30d"] == 0.0
    assert type(row["activity_change_30d"]) is float
    assert traits[silent.pk] == EMPTY_TRAITS  # a row with no score: the same shape
    assert traits[never_scored.pk] == EMPTY_TRAITS
    assert set(traits[active.pk]) == set(EMPTY_TRAITS)


def test_traits_read_the_latest_day():
    health_defaults_ensure()
    company = CompanyFactory()
    enduser = EndUserFactory(company=company)
    usage_add(enduser=enduser, day=TODAY - dt.timedelta(days=40), count=10)
    health_scores_recompute(day=TODAY - dt.timedelta(days=5))
    usage_add(enduser=enduser, day=TODAY - dt.timedelta(days=2), count=1)
    health_scores_recompute(day=TODAY)
    assert company_health_traits([company.pk])[company.pk]["active_endusers_30d"] == 1


def test_traits_query_count_is_fixed(django_assert_num_queries):
    health_defaults_ensure()
    companies = CompanyFactory.create_batch(25)
    health_scores_recompute(day=TODAY)
    with django_assert_num_queries(1):
        company_health_traits([c.pk for c in companies])


def test_companies_with_score_changes_since_moves_only_on_change():
    health_defaults_ensure()
    a, b = CompanyFactory(), CompanyFactory()
    health_scores_recompute(day=TODAY)
    mark = timezone.now()
    assert set(companies_with_score_changes_since(None).values_list("company_id", flat=True)) == {
        a.pk,
        b.pk,
    }
    health_scores_recompute(day=TODAY)  # nothing changed
    assert not companies_with_score_changes_since(mark).exists()
    usage_add(enduser=EndUserFactory(company=b), day=TODAY - dt.timedelta(days=1))
    health_scores_recompute(day=TODAY + dt.timedelta(days=1))  # b's traits change, a's don't
    changed = companies_with_score_changes_since(mark)
    assert list(changed.values_list("company_id", flat=True)) == [b.pk]
    assert HealthScore.objects.filter(company=a).count() == 2
