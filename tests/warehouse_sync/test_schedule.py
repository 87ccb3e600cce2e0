"""The beat schedule: seeded by migration / ensure, and an admin's edit survives a beat restart."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from planhat_segment.celery import app as celery_app
from warehouse_sync.services import warehouse_sync_schedule_ensure
from warehouse_sync.services.schedule import REAP_TASK_NAME, SCHEDULED_TASK_NAME

pytestmark = pytest.mark.django_db


def test_schedule_is_seeded_three_times_a_day_utc_on_the_warehouse_queue():
    # Seeded by the data migration already; ensure returns the same rows.
    before = PeriodicTask.objects.count()
    rows = warehouse_sync_schedule_ensure()
    assert PeriodicTask.objects.count() == before
    push = rows["push"]
    assert push.name == SCHEDULED_TASK_NAME
    assert push.task == "warehouse_sync.scheduled_sync"
    assert push.queue == "warehouse"
    assert push.enabled
    assert (push.crontab.minute, push.crontab.hour, str(push.crontab.timezone)) == (
        "0",
        "0,8,16",
        "UTC",
    )
    assert json.loads(push.kwargs) == {}
    reap = PeriodicTask.objects.get(name=REAP_TASK_NAME)
    assert reap.task == "warehouse_sync.reap_lapsed_runs"
    assert (reap.interval.every, reap.interval.period) == (5, "minutes")


def test_schedule_ensure_recreates_after_deletion_and_is_idempotent():
    PeriodicTask.objects.filter(name__in=[SCHEDULED_TASK_NAME, REAP_TASK_NAME]).delete()
    warehouse_sync_schedule_ensure()
    warehouse_sync_schedule_ensure()
    assert PeriodicTask.objects.filter(name=SCHEDULED_TASK_NAME).count() == 1
    assert PeriodicTask.objects.filter(name=REAP_TASK_NAME).count() == 1


# Transactional: the scheduler closes a connection it finds inside an atomic block.
@pytest.mark.django_db(transaction=True)
def test_admin_edit_of_the_times_survives_beat_restart_and_ensure():
    push = warehouse_sync_schedule_ensure()["push"]
    # The admin moves the push to 06:30 and 18:30 UTC.
    edited = CrontabSchedule.objects.create(minute="30", hour="6,18", timezone="UTC")
    push.crontab = edited
    push.save()
    # Nothing in settings would re-apply the entry (that is what reverts edits at start).
    assert not any(
        e.get("task", "").startswith("warehouse_sync.")
        for e in (celery_app.conf.beat_schedule or {}).values()
    )
    # What beat does at start: build the DatabaseScheduler and set its schedule up.
    scheduler = DatabaseScheduler(app=celery_app, lazy=False)
    entry = scheduler.schedule[SCHEDULED_TASK_NAME]
    assert entry.schedule.hour == {6, 18}
    assert entry.schedule.minute == {30}
    warehouse_sync_schedule_ensure()
    push.refresh_from_db()
    assert push.crontab_id == edited.pk
    assert (push.crontab.minute, push.crontab.hour) == ("30", "6,18")
