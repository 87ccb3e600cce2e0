"""Trends & Analytics aggregates and pages."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations.models import MetricDefinition
from tests.factories import CompanyFactory, EndUserFactory
from tests.usage.rollup_factories import rollups_recount, usage_add
from usage.models import Activity, CompanyActionDay, MetricValue
from usage.trends import company_trends, enduser_trends

pytestmark = pytest.mark.django_db

TODAY = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)


def _activity(enduser, action, when, count=1, n=[0]):
    n[0] += 1
    return Activity(
        enduser=enduser,
        company=enduser.company,
        action=action,
        count=count,
        occurred_at=when,
        received_at=when,
        message_id=f"m-{n[0]}",
    )


def _seed(company, users=3, days=10, per_action=1):
    """Rollup rows for ``users`` endusers over ``days`` days: user i does i + 2 actions a day."""
    endusers = [EndUserFactory(company=company) for _ in range(users)]
    for day in range(days):
        when = (TODAY - dt.timedelta(days=day)).date()
        for i, enduser in enumerate(endusers):
            for action in ["A", "B", "C", "D", "E", "F", "G"][: i + 2]:
                usage_add(enduser=enduser, day=when, action=action, count=per_action)
    return endusers


def test_metric_series_keeps_last_value_per_day():
    company = CompanyFactory()
    metric = MetricDefinition.objects.create(key="seats", label="Seats")
    morning = TODAY.replace(hour=8)
    MetricValue.objects.bulk_create(
        [
            MetricValue(
                company=company, metric=metric, value=5, occurred_at=morning, message_id="a"
            ),
            MetricValue(company=company, metric=metric, value=7, occurred_at=TODAY, message_id="b"),
            MetricValue(
                company=company,
                metric=metric,
                value=3,
                occurred_at=TODAY - dt.timedelta(days=1),
                message_id="c",
            ),
        ]
    )
    trends = company_trends(company=company, days=30)
    assert len(trends.metric_series) == 1
    series = trends.metric_series[0]
    assert series.label == "Seats"
    assert series.values[-2:] == [3, 7]  # yesterday's value, today's last one
    assert set(series.values[:-2]) == {None}  # a metric's gap is no value, not a zero


def test_activity_is_stacked_by_top_actions_with_other():
    company = CompanyFactory()
    _seed(company, users=6, days=2)
    trends = company_trends(company=company, days=30)
    labels = [s.label for s in trends.action_series]
    assert labels[:5] == ["A", "B", "C", "D", "E"]
    assert labels[-1] == "Other"
    total = sum(v for s in trends.action_series for v in s.values)
    assert total == trends.total_activities == 6 * 2 + 5 * 2 + 4 * 2 + 3 * 2 + 2 * 2 + 7 * 2
    assert trends.active_endusers.values[-1] == 6
    assert trends.top_endusers[0]["total"] == 2 * 7  # the user with most actions, two days
    assert trends.top_endusers[0]["last_day"] == TODAY.date()


def test_test_data_is_left_out_of_charts():
    """The rollups never count test endusers (built here from activities by a recount)."""
    company = CompanyFactory()
    test_user = EndUserFactory(company=company, is_test=True)
    real_user = EndUserFactory(company=company)
    Activity.objects.bulk_create(
        [_activity(test_user, "A", TODAY), _activity(real_user, "B", TODAY, count=3)]
    )
    rollups_recount()
    trends = company_trends(company=company)
    assert trends.total_activities == 3
    assert [s.label for s in trends.action_series] == ["B"]
    test_company = CompanyFactory(is_test=True)
    usage_add(enduser=EndUserFactory(company=test_company), day=TODAY.date())
    assert company_trends(company=test_company).total_activities == 0


def test_range_limits_the_window():
    company = CompanyFactory()
    enduser = EndUserFactory(company=company)
    usage_add(enduser=enduser, day=(TODAY - dt.timedelta(days=60)).date(), action="Old")
    usage_add(enduser=enduser, day=TODAY.date(), action="New")
    assert company_trends(company=company, days=30).total_activities == 1
    assert company_trends(company=company, days=90).total_activities == 2
    assert len(company_trends(company=company, days=30).buckets.labels) == 30


def _trends_queries(company) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        company_trends(company=company, days=365)
    return [q["sql"] for q in queries.captured_queries]


def test_trends_query_count_does_not_grow_with_data():
    """Ten times the activity (same endusers, same days) costs the very same queries, none of
    which reads the activities table: the page reads rollups, whose size does not change."""
    small, large = CompanyFactory(), CompanyFactory()
    _seed(small, users=4, days=20, per_action=1)
    _seed(large, users=4, days=20, per_action=10)
    assert (
        CompanyActionDay.objects.filter(company=small).count()
        == CompanyActionDay.objects.filter(company=large).count()
    )
    assert (
        company_trends(company=large, days=365).total_activities
        == 10 * company_trends(company=small, days=365).total_activities
    )
    small_sql, large_sql = _trends_queries(small), _trends_queries(large)
    assert len(small_sql) == len(large_sql) <= 8
    assert not [sql for sql in large_sql if "usage_activity" in sql]
    # More days and endusers do not add queries either (only rows to aggregate).
    bigger = CompanyFactory()
    _seed(bigger, users=7, days=60)
    assert len(_trends_queries(bigger)) == len(small_sql)


def test_company_trends_page_renders_charts(admin_client_logged_in):
    company = CompanyFactory()
    enduser = _seed(company, users=2, days=3)[0]
    response = admin_client_logged_in.get(
        reverse("admin:company_trends", args=[company.pk]) + "?days=90"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert 'id="chart-actions"' in html and 'id="chart-active"' in html
    assert reverse("admin:enduser_trends", args=[enduser.pk]) in html
    assert 'data-testid="trends-empty"' not in html
    enduser_page = admin_client_logged_in.get(reverse("admin:enduser_trends", args=[enduser.pk]))
    assert enduser_page.status_code == 200
    assert 'id="chart-enduser"' in enduser_page.content.decode()


def test_company_trends_page_says_days_are_utc_and_shows_panels(admin_client_logged_in):
    from django.utils.safestring import mark_safe

    from usage import trends_views

    company = CompanyFactory()

    def panel(request, shown, days):
        return mark_safe(f'<div id="extra-panel">{shown.pk}/{days}</div>')

    trends_views.company_trends_panel_register(panel)
    try:
        html = admin_client_logged_in.get(
            reverse("admin:company_trends", args=[company.pk]) + "?days=90"
        ).content.decode()
    finally:
        trends_views._company_panels.remove(panel)
    assert "Days are UTC days" in html
    assert f'<div id="extra-panel">{company.pk}/90</div>' in html


def test_enduser_trends_recent_activities():
    company = CompanyFactory()
    enduser = EndUserFactory(company=company)
    Activity.objects.bulk_create(
        [_activity(enduser, a, TODAY - dt.timedelta(days=d)) for a in "AB" for d in (0, 1)]
    )
    rollups_recount()
    trends = enduser_trends(enduser=enduser, days=30)
    assert len(trends.recent) == 4
    assert trends.activities.values[-2:] == [2, 2]
    assert sum(trends.activities.values) == 4


def test_an_activated_display_time_zone_never_moves_a_day():
    """Days are UTC days: a metric value at 23:30 UTC stays on its UTC day under UTC+14."""
    company = CompanyFactory()
    metric = MetricDefinition.objects.create(key="seats", label="Seats")
    late = (TODAY - dt.timedelta(days=1)).replace(hour=23, minute=30)
    MetricValue.objects.create(
        company=company, metric=metric, value=9, occurred_at=late, message_id="late"
    )
    with timezone.override("Pacific/Kiritimati"):
        trends = company_trends(company=company, days=30)
    assert trends.metric_series[0].values[-2:] == [9, None]  # yesterday (UTC), not today
    today = dt.datetime.now(dt.UTC).date()
    assert trends.buckets.starts[-1] == today
    assert trends.buckets.labels[-1] == f"{today.isoformat()} (so far)"


def test_90_days_are_weeks_and_365_days_are_months_zero_filled_with_the_last_partial():
    company = CompanyFactory()
    enduser, other = EndUserFactory(company=company), EndUserFactory(company=company)
    today = dt.date(2026, 3, 18)  # a Wednesday
    usage_add(enduser=enduser, day=dt.date(2026, 3, 2), action="A", count=2)  # a Monday
    usage_add(enduser=enduser, day=dt.date(2026, 3, 8), action="A", count=3)  # that Sunday
    usage_add(enduser=other, day=dt.date(2026, 3, 17), action="B", count=1)
    usage_add(enduser=enduser, day=dt.date(2026, 3, 18), action="B", count=4)

    weekly = company_trends(company=company, days=90, today=today)
    assert weekly.buckets.bucket == "week"
    starts = weekly.buckets.starts
    assert starts[0].weekday() == 0 and starts[0] <= today - dt.timedelta(days=89)
    assert starts[-1] == dt.date(2026, 3, 16) and weekly.buckets.partial_index == len(starts) - 1
    assert weekly.buckets.labels[-1] == "2026-03-16 (so far)"
    totals = [sum(s.values[i] for s in weekly.action_series) for i in range(len(starts))]
    assert totals[-3:] == [5, 0, 5]  # the empty week is a zero, not missing
    assert weekly.active_endusers.values[-3:] == [1, 0, 2]  # distinct per week, exact

    monthly = company_trends(company=company, days=365, today=today)
    assert monthly.buckets.bucket == "month"
    assert monthly.buckets.starts[0] == dt.date(2025, 3, 1)
    assert monthly.buckets.starts[-1] == dt.date(2026, 3, 1)
    assert monthly.buckets.labels[-1] == "2026-03 (so far)"
    assert monthly.active_endusers.values[-2:] == [0, 2]
    assert sum(s.values[-1] for s in monthly.action_series) == 10


def test_each_metric_gets_its_own_series_per_bucket():
    company = CompanyFactory()
    seats = MetricDefinition.objects.create(key="seats", label="Seats")
    storage = MetricDefinition.objects.create(key="storage_gb", label="Storage (GB)")
    today = dt.date(2026, 3, 18)
    at = lambda day, hour: dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)  # noqa: E731
    MetricValue.objects.bulk_create(
        [
            MetricValue(
                company=company,
                metric=seats,
                value=10,
                occurred_at=at(dt.date(2026, 3, 2), 9),
                message_id="s1",
            ),
            MetricValue(
                company=company,
                metric=seats,
                value=12,
                occurred_at=at(dt.date(2026, 3, 5), 9),
                message_id="s2",
            ),
            MetricValue(
                company=company,
                metric=storage,
                value=5000,
                occurred_at=at(dt.date(2026, 3, 17), 9),
                message_id="g1",
            ),
        ]
    )
    weekly = company_trends(company=company, days=90, today=today)
    by_label = {s.label: s.values for s in weekly.metric_series}
    assert by_label["Seats"][-3:] == [12, None, None]  # the week's latest value
    assert by_label["Storage (GB)"][-3:] == [None, None, 5000]


def test_empty_state_says_what_to_do(admin_client_logged_in, integration):
    company = CompanyFactory(external_id="ACME-9")
    MetricDefinition.objects.create(key="seats")
    html = admin_client_logged_in.get(
        reverse("admin:company_trends", args=[company.pk]) + "?days=90"
    ).content.decode()
    assert 'data-testid="trends-empty"' in html
    assert 'id="chart-actions"' not in html  # one empty state instead of empty charts
    assert 'groupId: "ACME-9"' in html and "<code>seats</code>" in html
    assert "Send test event" in html
