"""Shared helpers of the alert tests: a fixed day, companies with history, usage shapes."""

from __future__ import annotations

import datetime as dt

from health.alerts import alert_rule_create
from tests.factories import CompanyFactory, EndUserFactory
from tests.usage.rollup_factories import usage_add

TODAY = dt.date(2026, 3, 15)
NOW = dt.datetime(2026, 3, 15, 1, 0, tzinfo=dt.UTC)
LONG_AGO = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def day(n: int) -> dt.date:
    """The UTC day ``n`` days before TODAY (1 = yesterday)."""
    return TODAY - dt.timedelta(days=n)


def company(**kwargs):
    kwargs.setdefault("created_at", LONG_AGO)
    return CompanyFactory(**kwargs)


def usage(enduser, days: range | list[int], per_day: int, action: str = "Logged in") -> None:
    for n in days:
        usage_add(enduser=enduser, day=day(n), count=per_day, action=action)


def steady(c, per_day: int = 10, days: int = 60, users: int = 1):
    people = EndUserFactory.create_batch(users, company=c)
    for person in people:
        usage(person, range(1, days + 1), per_day)
    return people


def falling(c, before: int = 10, after: int = 2, window: int = 7, days: int = 60):
    """``before`` a day until ``window`` days ago, then ``after`` a day."""
    person = EndUserFactory(company=c)
    usage(person, range(window + 1, days + 1), before)
    usage(person, range(1, window + 1), after)
    return person


def drop_rule(**overrides):
    data = {
        "name": "Usage drop",
        "kind": "usage_drop",
        "drop_percent": 50,
        "window_days": 7,
        "baseline_periods": 4,
        "cooldown_hours": 24,
    }
    data.update(overrides)
    return alert_rule_create(data=data)
