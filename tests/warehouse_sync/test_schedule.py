"""The push's periodic tasks: their entries, created by schedules_ensure after migrate."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import PeriodicTask

from planhat_segment.services.schedules import schedules_ensure
from warehouse_sync import schedules
from warehouse_sync.schedules import PURGE_NAME, PUSH_NAME, REAP_NAME

pytestmark = pytest.mark.django_db


def test_push_runs_three_times_a_day_utc_on_the_warehouse_queue():
    # Created after the test database's migrate already; ensure adds nothing.
    assert schedules_ensure() == []
    push = PeriodicTask.objects.get(name=PUSH_NAME)
    assert push.task == "warehouse_sync.scheduled_sync"
    assert push.queue == "warehouse"
    assert push.enabled
    assert (push.crontab.minute, push.crontab.hour, str(push.crontab.timezone)) == (
        "0",
        "0,8,16",
        "UTC",
    )
    assert json.loads(push.kwargs) == {}
    reap = PeriodicTask.objects.get(name=REAP_NAME)
    assert reap.task == "warehouse_sync.reap_lapsed_runs"
    assert reap.queue == "warehouse"
    assert (reap.interval.every, reap.interval.period) == (20, "seconds")
    purge = PeriodicTask.objects.get(name=PURGE_NAME)
    assert (purge.task, purge.queue) == ("warehouse_sync.purge_history", "warehouse")
    assert (purge.crontab.minute, purge.crontab.hour, purge.crontab.day_of_week) == ("30", "3", "*")


def test_push_schedule_hours_setting_gives_the_hours_of_a_new_entry(settings):
    settings.WAREHOUSE_PUSH_SCHEDULE_HOURS = "3,15"
    [push] = [d for d in schedules.periodic_defaults() if d.name == PUSH_NAME]
    assert push.crontab_fields()["hour"] == "3,15"
    assert push.crontab_fields()["minute"] == "0"
