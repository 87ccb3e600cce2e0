"""The set-based recompute: profiles, figures from rollups, breakdowns, idempotence."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from health.models import Band, Condition, Figure, HealthFactor, HealthProfile, HealthScore
from health.services import (
    health_defaults_ensure,
    health_profile_create,
    health_scores_recompute,
)
from integrations.models import MetricDefinition
from tests.factories import CompanyFactory, EndUserFactory, LicenseFactory
from tests.usage.rollup_factories import usage_add
from usage.models import MetricValue

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 15)


def _day(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def _steady(company, users=10, per_day=5):
    endusers = EndUserFactory.create_batch(users, company=company)
    for n in range(1, 61):
        for enduser in endusers:
            usage_add(enduser=enduser, day=_day(n), count=per_day)
    return endusers


def _falling(company):
    enduser = EndUserFactory(company=company)
    for n in range(31, 61):
        usage_add(enduser=enduser, day=_day(n), count=10)
    usage_add(enduser=enduser, day=_day(20), count=10)  # −97 % and quiet for 20 days
    return enduser


def test_default_profile_scores_steady_green_falling_red_and_unused_null():
    health_defaults_ensure()
    steady, falling, unused = CompanyFactory(), CompanyFactory(), CompanyFactory()
    _steady(steady)
    _falling(falling)
    summary = health_scores_recompute(day=TODAY)
    assert summary.companies == 3
    rows = {row.company_id: row for row in HealthScore.objects.filter(day=TODAY)}
    assert rows[steady.pk].band == Band.GREEN
    assert rows[falling.pk].band == Band.RED
    assert rows[unused.pk].score is None
    assert rows[unused.pk].band is None
    assert rows[unused.pk].breakdown["note"] == "No score: no factor has data."
    assert rows[steady.pk].active_endusers_30d == 10
    assert rows[steady.pk].activity_change_30d == 0.0
    assert rows[falling.pk].activity_change_30d == pytest.approx(-96.7)
    assert summary.scored == 2
    assert summary.unscored == 1
    assert "1 without a score" in str(summary)


def test_breakdown_adds_up_to_the_score_and_names_each_factor():
    health_defaults_ensure()
    company = CompanyFactory()
    _falling(company)
    health_scores_recompute(day=TODAY)
    row = HealthScore.objects.get(company=company, day=TODAY)
    factors = row.breakdown["factors"]
    assert [f["label"] for f in factors] == [
        "Activity change vs the previous 30 days",
        "Days since the last activity",
        "Active endusers over the last 30 days",
    ]
    with_data = [f for f in factors if f["impact"] is not None]
    assert round(5 + sum(f["contribution"] for f in with_data), 1) == row.score
    days_since = factors[1]
    assert days_since["value"] == 20
    assert "linear" in days_since["why"]
    assert all(-5 <= f["impact"] <= 5 for f in with_data)


def test_recompute_is_idempotent_and_keeps_the_change_mark_when_nothing_changed():
    health_defaults_ensure()
    company = CompanyFactory()
    _steady(company, users=2)
    health_scores_recompute(day=TODAY)
    first = HealthScore.objects.get(company=company)
    health_scores_recompute(day=TODAY)
    again = HealthScore.objects.get(company=company)
    assert HealthScore.objects.count() == 1
    assert again.traits_changed_at == first.traits_changed_at
    assert again.computed_at >= first.computed_at
    # New usage on the last complete day changes the figures: the mark moves.
    usage_add(enduser=EndUserFactory(company=company), day=_day(1), count=500)
    health_scores_recompute(day=TODAY)
    changed = HealthScore.objects.get(company=company)
    assert changed.traits_changed_at > first.traits_changed_at


def test_next_day_row_with_same_traits_carries_the_mark_over():
    health_defaults_ensure()
    company = CompanyFactory()  # no usage: null score, stable traits
    health_scores_recompute(day=TODAY)
    health_scores_recompute(day=TODAY + dt.timedelta(days=1))
    rows = list(HealthScore.objects.filter(company=company).order_by("day"))
    assert len(rows) == 2
    assert rows[0].traits_changed_at == rows[1].traits_changed_at


def _profile(name, factors, **data):
    return health_profile_create(data={"name": name, **data}, factors=factors)


FLAT_GOOD = {
    "figure": Figure.ENDUSER_COUNT,
    "condition": Condition.GT,
    "threshold": -1,
    "impact": 5,
}


def test_first_matching_profile_by_order_applies_else_the_default(
    django_capture_on_commit_callbacks,
):
    health_defaults_ensure()
    big = CompanyFactory()
    LicenseFactory(company=big, mrr=Decimal("900"), currency="EUR")
    vip = CompanyFactory(custom={"tier": "vip"})
    LicenseFactory(company=vip, mrr=Decimal("2000"))
    small = CompanyFactory(custom={"tier": "basic"})
    LicenseFactory(company=small, mrr=Decimal("10"))
    _profile(
        "Enterprise",
        [FLAT_GOOD],
        order=10,
        min_mrr=Decimal("1000"),
        currency_rates={"EUR": 1.25},
    )
    _profile(
        "VIP",
        [{**FLAT_GOOD, "impact": -5}],
        order=20,
        custom_field="tier",
        custom_value="vip",
    )
    health_scores_recompute(day=TODAY)
    rows = {r.company_id: r for r in HealthScore.objects.select_related("profile")}
    assert rows[big.pk].profile.name == "Enterprise"  # 900 EUR × 1.25 = 1,125 USD
    assert rows[big.pk].mrr == 1125.0
    assert rows[vip.pk].profile.name == "Enterprise"  # order 10 wins over the VIP filter
    assert rows[small.pk].profile.is_default
    # Re-ordered: VIP comes first for the VIP company.
    HealthProfile.objects.filter(name="VIP").update(order=5)
    health_scores_recompute(day=TODAY)
    assert HealthScore.objects.get(company=vip).profile.name == "VIP"
    assert HealthScore.objects.get(company=vip).score == 0.0


def test_mrr_factor_per_currency_and_converted_and_unconvertible():
    health_defaults_ensure()
    HealthProfile.objects.filter(is_default=True).update(currency_rates={"EUR": 2})
    default = HealthProfile.objects.get(is_default=True)
    default.factors.all().delete()
    HealthFactor.objects.create(
        profile=default,
        figure=Figure.MRR,
        condition=Condition.LINEAR,
        range_min=0,
        range_max=1000,
        impact_at_min=-5,
        impact_at_max=5,
    )
    HealthFactor.objects.create(
        profile=default,
        figure=Figure.MRR,
        currency="GBP",
        condition=Condition.GT,
        threshold=0,
        impact=5,
    )
    mixed = CompanyFactory()
    LicenseFactory(company=mixed, mrr=Decimal("100"), currency="USD")
    LicenseFactory(company=mixed, mrr=Decimal("200"), currency="EUR")
    LicenseFactory(company=mixed, mrr=Decimal("50"), currency="GBP")  # no rate: left out
    LicenseFactory(company=mixed, mrr=Decimal("999"), status="churned")
    only_gbp = CompanyFactory()
    LicenseFactory(company=only_gbp, mrr=Decimal("50"), currency="GBP")
    health_scores_recompute(day=TODAY)
    mixed_row = HealthScore.objects.get(company=mixed)
    converted, gbp = mixed_row.breakdown["factors"]
    assert converted["value"] == 500.0
    assert "left out (no rate): GBP" in converted["why"]
    assert gbp["value"] == 50.0
    assert mixed_row.score == 7.5  # 5 + (0 + 5) / 2
    gbp_row = HealthScore.objects.get(company=only_gbp)
    assert gbp_row.breakdown["factors"][0]["impact"] is None
    assert "no conversion rate for GBP" in gbp_row.breakdown["factors"][0]["why"]
    assert gbp_row.score == 10.0


def test_metric_and_activity_figures_with_and_without_data():
    health_defaults_ensure()
    metric = MetricDefinition.objects.create(key="nps")
    default = HealthProfile.objects.get(is_default=True)
    default.factors.all().delete()
    common = {"condition": Condition.GT, "threshold": 0, "impact": 1, "profile": default}
    HealthFactor.objects.create(figure=Figure.METRIC_LATEST, metric=metric, **common)
    HealthFactor.objects.create(figure=Figure.METRIC_CHANGE, metric=metric, window_days=7, **common)
    HealthFactor.objects.create(
        figure=Figure.ACTIVITY_COUNT, window_days=7, action="Export", weighted=True, **common
    )
    company = CompanyFactory()
    when = dt.datetime.combine(_day(2), dt.time(9), tzinfo=dt.UTC)
    MetricValue.objects.create(
        company=company, metric=metric, value=40, occurred_at=when, message_id="n1"
    )
    usage_add(enduser=EndUserFactory(company=company), day=_day(3), action="Export", weight=2)
    health_scores_recompute(day=TODAY)
    latest, change, exports = HealthScore.objects.get(company=company).breakdown["factors"]
    assert latest["value"] == 40
    assert latest["impact"] == 1
    assert change["impact"] is None
    assert change["why"].startswith("no data")
    assert exports["value"] == 2.0
    assert exports["label"] == "Activities over the last 7 days · Export (weighted)"


def test_test_companies_are_never_scored():
    health_defaults_ensure()
    CompanyFactory(is_test=True)
    assert health_scores_recompute(day=TODAY).companies == 0
    assert not HealthScore.objects.exists()


@pytest.mark.parametrize("companies", [3, 40])
def test_recompute_query_count_does_not_depend_on_company_count(
    companies, django_assert_max_num_queries
):
    health_defaults_ensure()
    for _ in range(companies):
        enduser = EndUserFactory()
        usage_add(enduser=enduser, day=_day(2))
        LicenseFactory(company=enduser.company)
    # profiles (2), chunk read, 6 figures, last times, previous rows, upsert, savepoints.
    with django_assert_max_num_queries(16):
        summary = health_scores_recompute(day=TODAY)
    assert summary.companies == companies


def test_recompute_for_some_companies_only():
    health_defaults_ensure()
    a, b = CompanyFactory(), CompanyFactory()
    health_scores_recompute(company_ids=[a.pk], day=TODAY)
    assert list(HealthScore.objects.values_list("company_id", flat=True)) == [a.pk]
    assert b.pk not in HealthScore.objects.values_list("company_id", flat=True)


def test_command_prints_what_it_did():
    from io import StringIO

    health_defaults_ensure()
    CompanyFactory()
    out = StringIO()
    call_command("health_recompute", "--day", TODAY.isoformat(), stdout=out)
    assert f"Health scores for {TODAY}: 1 companies, 0 scored" in out.getvalue()
