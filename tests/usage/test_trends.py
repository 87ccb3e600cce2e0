"""Trends & Analytics aggregates and pages."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import MetricDefinition
from tests.factories import CompanyFactory, EndUserFactory
from usage.models import Activity, MetricValue
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


def _seed(company, users=3, days=10):
    endusers = [EndUserFactory(company=company) for _ in range(users)]
    rows = []
    for day in range(days):
        when = TODAY - dt.timedelta(days=day)
        for i, enduser in enumerate(endusers):
            for action in ["A", "B", "C", "D", "E", "F", "G"][: i + 2]:
                rows.append(_activity(enduser, action, when))
    Activity.objects.bulk_create(rows)
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
    assert dict(series.points) == {
        (TODAY - dt.timedelta(days=1)).date().isoformat(): 3,
        TODAY.date().isoformat(): 7,
    }


def test_activity_is_stacked_by_top_actions_with_other():
    company = CompanyFactory()
    _seed(company, users=6, days=2)
    trends = company_trends(company=company, days=30)
    labels = [s.label for s in trends.action_series]
    assert labels[:5] == ["A", "B", "C", "D", "E"]
    assert labels[-1] == "Other"
    total = sum(v for s in trends.action_series for _, v in s.points)
    assert total == trends.total_activities == Activity.objects.count()
    assert trends.active_per_day[0].points[-1][1] == 6
    assert trends.top_endusers[0]["total"] == 2 * 7  # the user with most actions, two days


def test_test_data_is_left_out_of_charts():
    company = CompanyFactory()
    test_user = EndUserFactory(company=company, is_test=True)
    Activity.objects.bulk_create([_activity(test_user, "A", TODAY)])
    assert company_trends(company=company).total_activities == 0


def test_range_limits_the_window():
    company = CompanyFactory()
    enduser = EndUserFactory(company=company)
    Activity.objects.bulk_create(
        [_activity(enduser, "Old", TODAY - dt.timedelta(days=60)), _activity(enduser, "New", TODAY)]
    )
    assert company_trends(company=company, days=30).total_activities == 1
    assert company_trends(company=company, days=90).total_activities == 2
    assert len(company_trends(company=company, days=365).labels) == 365


def test_trends_query_count_does_not_grow_with_data(django_assert_max_num_queries):
    company = CompanyFactory()
    _seed(company, users=8, days=30)
    with django_assert_max_num_queries(8):
        company_trends(company=company, days=90)


def test_company_trends_page_renders_charts(admin_client_logged_in):
    company = CompanyFactory()
    enduser = _seed(company, users=2, days=3)[0]
    response = admin_client_logged_in.get(
        reverse("admin:company_trends", args=[company.pk]) + "?days=90"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert 'id="chart-actions"' in html
    assert reverse("admin:enduser_trends", args=[enduser.pk]) in html
    enduser_page = admin_client_logged_in.get(reverse("admin:enduser_trends", args=[enduser.pk]))
    assert enduser_page.status_code == 200
    assert 'id="chart-enduser"' in enduser_page.content.decode()


def test_enduser_trends_recent_activities():
    company = CompanyFactory()
    enduser = _seed(company, users=1, days=2)[0]
    trends = enduser_trends(enduser=enduser, days=30)
    assert len(trends.recent) == 4
    assert sum(v for _, v in trends.per_day[0].points) == 4
