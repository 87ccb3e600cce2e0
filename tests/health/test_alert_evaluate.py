"""Alert evaluation: each rule kind, idempotence, auto-resolve, cooldown, acknowledge,
history requirement, zero baseline, scope — outcomes asserted on the alert rows."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from health.alerts import (
    AlertStateError,
    alert_acknowledge,
    alert_resolve,
    alert_rule_create,
    alert_rule_update,
    alerts_evaluate,
)
from health.models import Alert, HealthScore
from health.models_alerts import AlertStatus, Resolution
from integrations.models import MetricDefinition
from tests.factories import EndUserFactory, LicenseFactory
from usage.models import MetricValue

from .alert_helpers import NOW, TODAY, company, day, drop_rule, falling, steady, usage

pytestmark = pytest.mark.django_db


def _alerts(rule, **filters):
    return list(Alert.objects.filter(rule=rule, **filters).order_by("id"))


# --- usage_drop ------------------------------------------------------------------------------


def test_usage_drop_opens_one_alert_with_its_figures():
    rule = drop_rule()
    down, flat = company(name="Down"), company(name="Flat")
    falling(down)  # 10 a day, then 2 a day for the last 7 days: −80 %
    steady(flat)
    summary = alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    assert alert.company == down
    assert alert.status == AlertStatus.OPEN
    assert alert.opened_at == NOW
    facts = alert.facts
    assert facts["current"] == 14
    assert facts["baseline_periods"] == [70, 70, 70, 70]
    assert facts["baseline_average"] == 70.0
    assert facts["drop_percent"] == 80.0
    assert facts["threshold_percent"] == 50
    assert facts["window"] == [day(7).isoformat(), day(1).isoformat()]
    assert facts["baseline_window"] == [day(35).isoformat(), day(8).isoformat()]
    assert "down 80.0 %" in facts["summary"]
    [outcome] = summary.rules
    assert (outcome.in_scope, outcome.judged, outcome.met, outcome.opened) == (2, 2, 1, 1)


def test_usage_drop_just_below_the_threshold_opens_nothing():
    rule = drop_rule(drop_percent=81)
    falling(company())
    alerts_evaluate(day=TODAY, now=NOW)
    assert _alerts(rule) == []


def test_usage_drop_of_one_action_only():
    rule = drop_rule(action="Exported")
    c = company()
    person = EndUserFactory(company=c)
    usage(person, range(8, 40), 5, action="Exported")  # exports stopped a week ago
    usage(person, range(1, 40), 10)  # logins steady
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    assert alert.facts["action"] == "Exported"
    assert alert.facts["current"] == 0
    assert alert.facts["drop_percent"] == 100.0


def test_zero_baseline_is_never_a_drop():
    rule = drop_rule()
    c = company()  # created long ago: history is there, but usage only started this week
    usage(EndUserFactory(company=c), range(1, 4), 5)
    # And one that stopped entirely for longer than the baseline: nothing to drop from.
    quiet = company()
    usage(EndUserFactory(company=quiet), range(40, 50), 5)
    summary = alerts_evaluate(day=TODAY, now=NOW)
    assert _alerts(rule) == []
    assert summary.rules[0].judged == 2


def test_usage_drop_waits_for_the_history_it_needs():
    """N × (M + 1) = 35 days: a company whose history (first activity, or creation if
    earlier) started 34 days ago is not judged; at 35 days it is."""
    rule = drop_rule()
    young = company(created_at=NOW - dt.timedelta(days=20))
    person = EndUserFactory(company=young)
    usage(person, range(8, 35), 10)  # first activity 34 days ago
    usage(person, range(1, 8), 1)
    summary = alerts_evaluate(day=TODAY, now=NOW)
    assert _alerts(rule) == []
    assert summary.rules[0].judged == 0
    usage(person, [35], 10)  # now its first activity is 35 days ago
    summary = alerts_evaluate(day=TODAY, now=NOW)
    assert summary.rules[0].judged == 1
    assert len(_alerts(rule)) == 1


def test_company_created_long_ago_counts_its_creation_as_history():
    rule = drop_rule()
    c = company(created_at=NOW - dt.timedelta(days=36))
    person = EndUserFactory(company=c)
    usage(person, range(8, 20), 10)  # first activity only 19 days ago
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    assert alert.facts["baseline_periods"] == [70, 50, 0, 0]


def test_test_companies_are_left_out():
    rule = drop_rule()
    falling(company(is_test=True))
    summary = alerts_evaluate(day=TODAY, now=NOW)
    assert _alerts(rule) == []
    assert summary.rules[0].in_scope == 0


def test_min_mrr_scope():
    rule = drop_rule(min_mrr=Decimal("500"))
    big, small, none = company(name="Big"), company(name="Small"), company(name="None")
    LicenseFactory(company=big, mrr=Decimal("600"))
    LicenseFactory(company=small, mrr=Decimal("100"))
    for c in (big, small, none):
        falling(c)
    alerts_evaluate(day=TODAY, now=NOW)
    assert [a.company for a in _alerts(rule)] == [big]


# --- idempotence, auto-resolve, cooldown, acknowledge -----------------------------------------


def test_evaluating_twice_opens_nothing_new():
    rule = drop_rule()
    falling(company())
    first = alerts_evaluate(day=TODAY, now=NOW)
    second = alerts_evaluate(day=TODAY, now=NOW + dt.timedelta(minutes=5))
    assert first.opened == 1
    assert second.opened == 0
    assert second.rules[0].still_active == 1
    assert len(_alerts(rule)) == 1


def test_alert_resolves_by_itself_when_the_condition_clears():
    rule = drop_rule()
    c = company()
    person = falling(c)
    alerts_evaluate(day=TODAY, now=NOW)
    usage(person, range(1, 8), 8)  # the last week recovers: 10 a day (2 + 8)
    summary = alerts_evaluate(day=TODAY, now=NOW + dt.timedelta(hours=1))
    [alert] = _alerts(rule)
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolution == Resolution.CONDITION_CLEARED
    assert alert.resolved_at == NOW + dt.timedelta(hours=1)
    assert alert.resolved_by is None
    assert alert.resolution_facts["drop_percent"] == 0.0
    assert alert.resolution_note.startswith("Condition cleared: activities down 0.0 %")
    assert alert.facts["drop_percent"] == 80.0  # the figures that raised it are kept
    assert summary.resolved == 1


def test_cooldown_runs_from_the_resolution(django_user_model):
    rule = drop_rule(cooldown_hours=24)
    falling(company())
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    user = django_user_model.objects.create_user("cs")
    alert_resolve(alert=alert, user=user, note="Called them: a holiday.")
    alert.refresh_from_db()
    resolved_at = alert.resolved_at
    # The condition still holds, but the cooldown holds the next alert back...
    within = alerts_evaluate(day=TODAY, now=resolved_at + dt.timedelta(hours=23))
    assert within.rules[0].in_cooldown == 1
    assert len(_alerts(rule)) == 1
    # ...until 24 h after the resolution.
    after = alerts_evaluate(day=TODAY, now=resolved_at + dt.timedelta(hours=24, minutes=1))
    assert after.opened == 1
    assert len(_alerts(rule, status=AlertStatus.OPEN)) == 1


def test_acknowledged_alert_blocks_a_second_and_still_resolves_by_itself(django_user_model):
    rule = drop_rule()
    person = falling(company())
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    user = django_user_model.objects.create_user("cs")
    alert = alert_acknowledge(alert=alert, user=user)
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by == user
    assert alert.acknowledged_at is not None
    assert alerts_evaluate(day=TODAY, now=NOW).opened == 0
    usage(person, range(1, 8), 8)
    alerts_evaluate(day=TODAY, now=NOW)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolution == Resolution.CONDITION_CLEARED
    with pytest.raises(AlertStateError):
        alert_acknowledge(alert=alert, user=user)
    with pytest.raises(AlertStateError):
        alert_resolve(alert=alert, user=user)


def test_disabling_a_rule_resolves_its_alerts():
    rule = drop_rule()
    falling(company())
    alerts_evaluate(day=TODAY, now=NOW)
    alert_rule_update(rule=rule, data={"enabled": False})
    [alert] = _alerts(rule)
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolution == Resolution.RULE_DISABLED
    assert alerts_evaluate(day=TODAY, now=NOW).rules == []


def test_company_leaving_the_scope_resolves_its_alert():
    rule = drop_rule()
    c = company()
    falling(c)
    alerts_evaluate(day=TODAY, now=NOW)
    c.is_test = True
    c.save()
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    assert alert.resolution == Resolution.OUT_OF_SCOPE


def test_one_active_alert_per_rule_and_company_is_held_by_the_database():
    from django.db import IntegrityError, transaction

    rule = drop_rule()
    falling(company())
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(rule=rule, company=alert.company, day=TODAY)


# --- inactivity ------------------------------------------------------------------------------


def test_inactivity():
    rule = alert_rule_create(data={"name": "Quiet", "kind": "inactivity", "days": 14})
    quiet, busy = company(name="Quiet"), company(name="Busy")
    never_old = company(name="Never, old")
    never_young = company(name="Never, young", created_at=NOW - dt.timedelta(days=5))
    usage(EndUserFactory(company=quiet), [15, 20], 3)  # last active 15 days ago
    usage(EndUserFactory(company=busy), [14], 3)  # 14 days ago: inside the window
    summary = alerts_evaluate(day=TODAY, now=NOW)
    alerts = {a.company.name: a for a in _alerts(rule)}
    assert sorted(alerts) == ["Never, old", "Quiet"]
    assert alerts["Quiet"].facts["last_activity_day"] == day(15).isoformat()
    assert alerts["Quiet"].facts["days_without_activity"] == 14
    assert alerts["Never, old"].facts["last_activity_day"] is None
    assert summary.rules[0].judged == 3  # the young company is not judged yet
    assert never_young.pk not in {a.company_id for a in alerts.values()}
    assert never_old.pk in {a.company_id for a in alerts.values()}


# --- active_endusers_below --------------------------------------------------------------------


def test_active_endusers_below():
    rule = alert_rule_create(
        data={
            "name": "Few users",
            "kind": "active_endusers_below",
            "threshold": 3,
            "window_days": 30,
        }
    )
    few, many = company(name="Few"), company(name="Many")
    steady(few, users=2, days=40)
    steady(many, users=3, days=40)
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    assert alert.company == few
    assert alert.facts["active_endusers"] == 2
    assert alert.facts["threshold"] == 3


# --- metric_threshold ------------------------------------------------------------------------


@pytest.mark.parametrize(("operator", "expected"), [("lt", ["Low"]), ("gt", ["High"])])
def test_metric_threshold(operator, expected):
    seats = MetricDefinition.objects.create(key="seats")
    rule = alert_rule_create(
        data={
            "name": "Seats",
            "kind": "metric_threshold",
            "metric": seats,
            "operator": operator,
            "threshold": 10,
        }
    )
    low, high, equal = company(name="Low"), company(name="High"), company(name="Equal")
    company(name="No value")
    at = dt.datetime(2026, 3, 14, 12, tzinfo=dt.UTC)
    for c, value in ((low, 4), (high, 25), (equal, 10)):
        MetricValue.objects.create(
            company=c, metric=seats, value=value, occurred_at=at, message_id=f"m-{c.pk}"
        )
    # A value from today (a partial day) is not read yet.
    MetricValue.objects.create(
        company=low, metric=seats, value=50, occurred_at=NOW, message_id="m-today"
    )
    summary = alerts_evaluate(day=TODAY, now=NOW)
    assert [a.company.name for a in _alerts(rule)] == expected
    assert summary.rules[0].judged == 3
    alert = _alerts(rule)[0]
    assert alert.facts["metric"] == "seats"
    assert alert.facts["operator"] == operator


# --- health_band_change ----------------------------------------------------------------------


def _score(c, when, band, score):
    HealthScore.objects.update_or_create(
        company=c, day=when, defaults={"band": band, "score": score}
    )


def test_health_band_change_opens_on_the_change_and_clears_when_the_band_leaves():
    rule = alert_rule_create(
        data={"name": "Turned red", "kind": "health_band_change", "to_band": "red"}
    )
    turned, always, fine = company(name="Turned"), company(name="Always"), company(name="Fine")
    _score(turned, day(1), "amber", 5.0)
    _score(turned, TODAY, "red", 3.1)
    _score(always, day(1), "red", 2.0)
    _score(always, TODAY, "red", 2.0)
    _score(fine, TODAY, "green", 8.0)
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    assert alert.company == turned
    assert alert.facts["previous_band"] == "amber"
    assert alert.facts["band"] == "red"
    # The next day it is still red: the alert holds, nothing new opens.
    tomorrow = TODAY + dt.timedelta(days=1)
    _score(turned, tomorrow, "red", 3.0)
    assert alerts_evaluate(day=tomorrow, now=NOW + dt.timedelta(days=1)).opened == 0
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    # The band leaves red: the alert clears.
    later = TODAY + dt.timedelta(days=2)
    _score(turned, later, "amber", 4.5)
    alerts_evaluate(day=later, now=NOW + dt.timedelta(days=2))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolution == Resolution.CONDITION_CLEARED
    assert alert.resolution_facts["band"] == "amber"


def test_health_band_change_seen_even_when_an_evaluation_was_missed():
    rule = alert_rule_create(
        data={"name": "Turned red", "kind": "health_band_change", "to_band": "red"}
    )
    c = company()
    _score(c, day(3), "green", 8.0)
    alerts_evaluate(day=day(3), now=NOW - dt.timedelta(days=3))
    _score(c, day(2), "red", 3.0)  # no evaluation on that day
    _score(c, day(1), "red", 3.0)
    _score(c, TODAY, "red", 3.0)
    alerts_evaluate(day=TODAY, now=NOW)
    [alert] = _alerts(rule)
    assert alert.facts["previous_band"] == "green"


# --- set-based ---------------------------------------------------------------------------------


def _queries_for(companies: int) -> int:
    for _ in range(companies):
        falling(company())
    with CaptureQueriesContext(connection) as captured:
        alerts_evaluate(day=TODAY, now=NOW)
    return len(captured)


def test_evaluation_queries_do_not_grow_with_the_companies():
    rule = drop_rule(email_recipients=["cs@example.com"])
    alert_rule_create(data={"name": "Quiet", "kind": "inactivity", "days": 14})
    few = _queries_for(2)
    Alert.objects.all().delete()
    many = _queries_for(25)
    assert len(_alerts(rule)) == 27
    assert many == few
