"""The Celery task (called directly), its schedule entry, and what queues it."""

import datetime as dt
from unittest import mock

import pytest

from health import tasks
from health.models import HealthScore
from health.services import health_defaults_ensure
from planhat_segment.signals import workspace_objects_changed
from tests.factories import CompanyFactory

pytestmark = pytest.mark.django_db


def test_task_recomputes_and_returns_a_summary():
    health_defaults_ensure()
    company = CompanyFactory()
    result = tasks.recompute_scores(company_ids=None, day="2026-03-15")
    assert result["companies"] == 1
    assert result["day"] == "2026-03-15"
    assert HealthScore.objects.filter(company=company, day=dt.date(2026, 3, 15)).exists()


def test_daily_schedule_entry_names_the_task_and_a_daily_crontab():
    entry = tasks.DAILY_SCHEDULE
    assert entry["task"] == tasks.recompute_scores.name == "health.recompute_scores"
    assert entry["queue"] == "default"
    assert entry["crontab"]["hour"] == "0"
    assert entry["crontab"]["day_of_week"] == "*"


def test_company_write_signal_publishes_a_recompute_for_those_companies():
    with mock.patch.object(tasks.recompute_scores, "apply_async") as publish:
        workspace_objects_changed.send(sender=None, model="company", pks=[5, 3, 5])
        workspace_objects_changed.send(sender=None, model="enduser", pks=[1])
    publish.assert_called_once_with(
        kwargs={"company_ids": [3, 5], "day": None}, queue="default", retry=False
    )


def test_a_broker_error_is_logged_not_raised(caplog):
    with mock.patch.object(
        tasks.recompute_scores, "apply_async", side_effect=ConnectionRefusedError("down")
    ):
        workspace_objects_changed.send(sender=None, model="company", pks=[1])
    assert "health_recompute_enqueue_failed" in caplog.text
