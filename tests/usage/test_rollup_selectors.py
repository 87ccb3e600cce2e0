"""Set-based reads over the daily rollups (usage.rollup_selectors)."""

import datetime as dt

import pytest

from integrations.models import MetricDefinition
from tests.factories import CompanyFactory, EndUserFactory
from tests.usage.rollup_factories import rollups_recount, usage_add
from usage import rollup_selectors as sel
from usage.models import Activity, MetricValue

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 15)  # a Sunday
YESTERDAY = TODAY - dt.timedelta(days=1)


def _day(n: int) -> dt.date:
    """n days before today (1 = yesterday)."""
    return TODAY - dt.timedelta(days=n)


def test_window_is_complete_days_ending_yesterday():
    assert sel.window_days(days=1, today=TODAY) == (YESTERDAY, YESTERDAY)
    assert sel.window_days(days=30, today=TODAY) == (_day(30), _day(1))
    with pytest.raises(ValueError):
        sel.window_days(days=0, today=TODAY)


def test_activity_counts_all_actions_one_action_weighted_and_today_left_out():
    a, b = EndUserFactory(), EndUserFactory()
    usage_add(enduser=a, day=_day(1), action="Login", count=3, weight=2.0)
    usage_add(enduser=a, day=_day(30), action="Export", count=2)
    usage_add(enduser=a, day=_day(31), action="Login", count=100)  # outside 30 days
    usage_add(enduser=a, day=TODAY, action="Login", count=50)  # today's partial day
    usage_add(enduser=b, day=_day(5), action="Login", count=7)

    counts = sel.activity_counts(days=30, today=TODAY)
    assert counts == {a.company_id: 5, b.company_id: 7}
    assert sel.activity_counts(days=30, today=TODAY, action="Login") == {
        a.company_id: 3,
        b.company_id: 7,
    }
    weighted = sel.activity_counts(days=30, today=TODAY, weighted=True)
    assert weighted == {a.company_id: 8.0, b.company_id: 7.0}
    assert sel.activity_counts(company_ids=[b.company_id], days=30, today=TODAY) == {
        b.company_id: 7
    }
    assert sel.activity_counts(
        company_ids=range(b.company_id, b.company_id + 1), days=30, today=TODAY
    ) == {b.company_id: 7}


def test_activity_change_percent_and_null_without_previous_activity():
    falling, rising, new, quiet = (EndUserFactory() for _ in range(4))
    usage_add(enduser=falling, day=_day(3), count=20)
    usage_add(enduser=falling, day=_day(40), count=100)
    usage_add(enduser=rising, day=_day(3), count=30)
    usage_add(enduser=rising, day=_day(60), count=20)
    usage_add(enduser=new, day=_day(2), count=5)
    usage_add(enduser=quiet, day=_day(45), count=5)

    change = sel.activity_change_percents(days=30, today=TODAY)
    assert change[falling.company_id] == pytest.approx(-80.0)
    assert change[rising.company_id] == pytest.approx(50.0)
    assert change[new.company_id] is None  # nothing in the previous period
    assert change[quiet.company_id] == pytest.approx(-100.0)


def test_active_endusers_are_distinct_over_the_window():
    company = CompanyFactory()
    ann, bob = EndUserFactory(company=company), EndUserFactory(company=company)
    for n in (1, 2, 3):
        usage_add(enduser=ann, day=_day(n))
    usage_add(enduser=bob, day=_day(10))
    usage_add(enduser=bob, day=_day(40))
    assert sel.active_enduser_counts(days=30, today=TODAY) == {company.pk: 2}
    assert sel.active_enduser_counts(days=7, today=TODAY) == {company.pk: 1}


def test_last_activity_days_and_times():
    enduser = EndUserFactory()
    usage_add(enduser=enduser, day=_day(4))
    usage_add(enduser=enduser, day=TODAY)  # today: not a complete day
    assert sel.days_since_last_activity(today=TODAY) == {enduser.company_id: 4}
    when = dt.datetime(2026, 3, 11, 9, 30, tzinfo=dt.UTC)
    Activity.objects.create(
        enduser=enduser,
        company=enduser.company,
        action="x",
        occurred_at=when,
        received_at=when,
        message_id="m1",
    )
    test_user = EndUserFactory(company=enduser.company, is_test=True)
    later = when + dt.timedelta(hours=2)
    Activity.objects.create(
        enduser=test_user,
        company=enduser.company,
        action="x",
        occurred_at=later,
        received_at=later,
        message_id="m2",
    )
    silent = CompanyFactory()
    times = sel.last_activity_times(company_ids=[enduser.company_id, silent.pk])
    assert times == {enduser.company_id: when}


def test_enduser_counts_leave_test_endusers_out():
    company = CompanyFactory()
    EndUserFactory.create_batch(3, company=company)
    EndUserFactory(company=company, is_test=True)
    assert sel.enduser_counts(company_ids=[company.pk]) == {company.pk: 3}


def test_metric_latest_value_and_change():
    metric = MetricDefinition.objects.create(key="seats")
    c1, c2 = CompanyFactory(), CompanyFactory()

    def value(company, v, day, hour=12):
        when = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)
        MetricValue.objects.create(
            company=company, metric=metric, value=v, occurred_at=when, message_id=f"{v}{when}"
        )

    value(c1, 10, _day(40))
    value(c1, 12, _day(31))  # latest before the 30-day window began
    value(c1, 20, _day(2))
    value(c1, 25, _day(1), hour=8)
    value(c1, 26, _day(1), hour=20)  # the last one before today
    value(c1, 99, TODAY)  # today: not counted
    value(c2, 5, _day(3))  # no value before the window

    start = sel.day_start(TODAY)
    assert sel.metric_latest_values(metric_id=metric.pk, before=start) == {c1.pk: 26, c2.pk: 5}
    assert sel.metric_latest_values(metric_id=metric.pk) == {c1.pk: 99, c2.pk: 5}
    assert sel.metric_changes(metric_id=metric.pk, days=30, today=TODAY) == {c1.pk: 14}


def test_series_daily_weekly_monthly_with_exact_distinct_endusers():
    company = CompanyFactory()
    ann, bob = EndUserFactory(company=company), EndUserFactory(company=company)
    # Week of Mon 2026-03-02: ann on three days, bob on one → 2 distinct, not 4.
    for day in (dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)):
        usage_add(enduser=ann, day=day, count=2)
    usage_add(enduser=bob, day=dt.date(2026, 3, 4), action="Export")
    usage_add(enduser=bob, day=dt.date(2026, 2, 27))  # previous week, previous month

    first, last = dt.date(2026, 2, 1), dt.date(2026, 3, 31)
    daily = sel.company_active_enduser_series(company_id=company.pk, first=first, last=last)
    assert daily == [
        (dt.date(2026, 2, 27), 1),
        (dt.date(2026, 3, 2), 1),
        (dt.date(2026, 3, 3), 1),
        (dt.date(2026, 3, 4), 2),
    ]
    weekly = sel.company_active_enduser_series(
        company_id=company.pk, first=first, last=last, period="week"
    )
    assert weekly == [(dt.date(2026, 2, 23), 1), (dt.date(2026, 3, 2), 2)]
    monthly = sel.company_active_enduser_series(
        company_id=company.pk, first=first, last=last, period="month"
    )
    assert monthly == [(dt.date(2026, 2, 1), 1), (dt.date(2026, 3, 1), 2)]

    activity = sel.company_activity_series(
        company_id=company.pk, first=first, last=last, period="week"
    )
    assert activity == [(dt.date(2026, 2, 23), 1, 1.0), (dt.date(2026, 3, 2), 7, 7.0)]
    assert sel.company_activity_series(
        company_id=company.pk, first=first, last=last, period="month", action="Export"
    ) == [(dt.date(2026, 3, 1), 1, 1.0)]
    assert sel.enduser_activity_series(
        enduser_id=ann.pk, first=first, last=last, period="week"
    ) == [(dt.date(2026, 3, 2), 6)]
    top = sel.company_top_endusers(company_id=company.pk, first=first, last=last)
    assert [(row["enduser_id"], row["total"]) for row in top] == [(ann.pk, 6), (bob.pk, 2)]
    assert top[0]["last_day"] == dt.date(2026, 3, 4)
    with pytest.raises(ValueError):
        sel.company_activity_series(company_id=company.pk, first=first, last=last, period="year")


def test_figures_for_many_companies_cost_one_query_each(django_assert_num_queries):
    endusers = EndUserFactory.create_batch(12)
    for i, enduser in enumerate(endusers):
        usage_add(enduser=enduser, day=_day(1 + i), count=i + 1)
    with django_assert_num_queries(1):
        assert len(sel.activity_counts(days=30, today=TODAY)) == 12
    with django_assert_num_queries(1):
        sel.active_enduser_counts(days=30, today=TODAY)
    with django_assert_num_queries(1):
        sel.activity_change_percents(days=30, today=TODAY)
    with django_assert_num_queries(1):
        sel.last_activity_times()


def test_recount_from_activities_matches_the_selectors():
    """Rollups built from activities (the in-test recount) give the figures a scan would."""
    enduser = EndUserFactory()
    other = EndUserFactory(company=enduser.company)
    rows = []
    for n, (user, action, count) in enumerate(
        [(enduser, "A", 1), (enduser, "A", 2), (other, "B", 3), (enduser, "B", 4)]
    ):
        when = dt.datetime.combine(_day(1 + n % 2), dt.time(23, 59), tzinfo=dt.UTC)
        rows.append(
            Activity(
                enduser=user,
                company=user.company,
                action=action,
                count=count,
                weight=0.5,
                occurred_at=when,
                received_at=when,
                message_id=f"r{n}",
            )
        )
    Activity.objects.bulk_create(rows)
    rollups_recount()
    assert sel.activity_counts(days=2, today=TODAY) == {enduser.company_id: 10}
    assert sel.activity_counts(days=2, today=TODAY, weighted=True) == {enduser.company_id: 5.0}
    assert sel.active_enduser_counts(days=2, today=TODAY) == {enduser.company_id: 2}


def test_one_pass_enduser_activity_equals_the_separate_selectors():
    """PostgreSQL answers daily / weekly actives and the top endusers in one statement; it
    must agree with the three plain selectors (on SQLite it is those selectors)."""
    company = CompanyFactory()
    endusers = EndUserFactory.create_batch(6, company=company)
    for i, enduser in enumerate(endusers):
        for n in range(0, 40, i + 1):
            usage_add(enduser=enduser, day=_day(n), count=i + 1)
    usage_add(enduser=EndUserFactory(), day=_day(3))  # another company: left out
    first, last = _day(35), TODAY
    for period in ("day", "week", "month"):
        one = sel.company_enduser_activity(
            company_id=company.pk, first=first, last=last, period=period, limit=4
        )
        assert one.per_period == sel.company_active_enduser_series(
            company_id=company.pk, first=first, last=last, period=period
        ), period
        assert one.top == sel.company_top_endusers(
            company_id=company.pk, first=first, last=last, limit=4
        )
        assert len(one.top) == 4
    assert one.per_period[-1][1] == 6  # the month: all six endusers
