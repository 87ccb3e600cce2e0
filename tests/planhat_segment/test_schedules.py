"""One schedules_ensure for every periodic task: creates missing entries, never edits one."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from planhat_segment import schedules
from planhat_segment.celery import app as celery_app
from planhat_segment.schedules import PeriodicDefault, periodic_defaults_register
from planhat_segment.services.schedules import schedules_ensure
from warehouse_sync.schedules import PUSH_NAME

HEALTH_SCORES = PeriodicDefault(
    name="Recompute health scores (health)",
    task="health.recompute_scores",
    queue="default",
    crontab="15 2 * * *",
)
HEALTH_ALERTS = PeriodicDefault(
    name="Evaluate health alerts (health)",
    task="health.evaluate_alerts",
    queue="default",
    every_seconds=3600,
)


@pytest.fixture
def registry(monkeypatch):
    """The registry as the apps filled it, restored after the test."""
    monkeypatch.setattr(schedules, "_defaults", dict(schedules._defaults))
    return schedules


def test_every_registered_task_exists_and_has_its_entry(db):
    celery_app.loader.import_default_modules()
    defaults = schedules.periodic_defaults()
    assert {d.task for d in defaults} >= {
        "usage.sweep_inbox",
        "usage.purge_inbox",
        "warehouse_sync.scheduled_sync",
        "warehouse_sync.reap_lapsed_runs",
    }
    for default in defaults:
        assert default.task in celery_app.tasks, default.task
        entry = PeriodicTask.objects.get(name=default.name)  # created after migrate
        assert (entry.task, entry.queue, entry.enabled) == (default.task, default.queue, True)
    sweep = PeriodicTask.objects.get(task="usage.sweep_inbox")
    assert (sweep.interval.every, sweep.interval.period) == (1, "minutes")
    purge = PeriodicTask.objects.get(task="usage.purge_inbox")
    assert (purge.interval.every, purge.interval.period) == (1, "days")


def test_nothing_comes_from_celery_beat_schedule():
    # The DatabaseScheduler re-applies that setting at every beat start (reverting edits).
    assert not celery_app.conf.beat_schedule


def test_a_missing_entry_is_created_and_ensure_is_idempotent(db):
    PeriodicTask.objects.filter(
        task__in=["usage.sweep_inbox", "warehouse_sync.scheduled_sync"]
    ).delete()
    before = PeriodicTask.objects.count()
    created = schedules_ensure()
    assert sorted(created) == sorted(["usage-sweep-inbox", PUSH_NAME])
    assert PeriodicTask.objects.count() == before + 2
    assert schedules_ensure() == []
    assert PeriodicTask.objects.count() == before + 2


def test_ensure_works_on_the_migration_state_registry(db):
    """What post_migrate hands over: historical models, no custom methods or signals."""
    PeriodicTask.objects.filter(task="usage.purge_inbox").delete()
    state_apps = MigrationLoader(None).project_state().apps
    assert schedules_ensure(apps=state_apps) == ["usage-purge-inbox"]
    purge = PeriodicTask.objects.get(task="usage.purge_inbox")
    assert (purge.interval.every, purge.interval.period, purge.queue) == (1, "days", "ingest")


# Transactional: migrate and the scheduler need to run outside the test's atomic block.
@pytest.mark.django_db(transaction=True)
def test_admin_edits_survive_ensure_migrate_and_beat_start(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # bootstrap writes the generated admin password there
    push = PeriodicTask.objects.get(name=PUSH_NAME)  # created by the flush's post_migrate
    # The admin moves the push to 06:30 and 18:30 UTC and disables the sweep, every 5 min.
    edited = CrontabSchedule.objects.create(minute="30", hour="6,18", timezone="UTC")
    push.crontab = edited
    push.save()
    sweep = PeriodicTask.objects.get(name="usage-sweep-inbox")
    sweep.interval = IntervalSchedule.objects.create(every=5, period="minutes")
    sweep.enabled = False
    sweep.save()

    assert schedules_ensure() == []
    call_command("migrate", verbosity=0)  # post_migrate runs schedules_ensure
    call_command("bootstrap", stdout=io.StringIO())
    # What beat does at start: build the DatabaseScheduler and set its schedule up.
    scheduler = DatabaseScheduler(app=celery_app, lazy=False)
    entry = scheduler.schedule[PUSH_NAME]
    assert entry.schedule.hour == {6, 18}
    assert entry.schedule.minute == {30}
    assert "usage-sweep-inbox" not in scheduler.schedule  # disabled: not scheduled

    push.refresh_from_db()
    sweep.refresh_from_db()
    assert (push.crontab.minute, push.crontab.hour) == ("30", "6,18")
    assert (sweep.interval.every, sweep.interval.period, sweep.enabled) == (5, "minutes", False)
    assert PeriodicTask.objects.filter(task="usage.sweep_inbox").count() == 1


def test_another_app_registers_its_defaults(db, registry):
    periodic_defaults_register(HEALTH_SCORES, HEALTH_ALERTS)
    periodic_defaults_register(HEALTH_SCORES)  # again (a second ready()): no-op
    assert sorted(schedules_ensure()) == sorted([HEALTH_SCORES.name, HEALTH_ALERTS.name])
    scores = PeriodicTask.objects.get(name=HEALTH_SCORES.name)
    crontab = scores.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, str(crontab.timezone)) == (
        "15",
        "2",
        "*",
        "UTC",
    )
    assert (scores.task, scores.queue) == ("health.recompute_scores", "default")
    alerts = PeriodicTask.objects.get(name=HEALTH_ALERTS.name)
    assert (alerts.interval.every, alerts.interval.period) == (1, "hours")


def test_a_second_default_under_a_taken_name_is_refused(registry):
    other = PeriodicDefault(
        name=HEALTH_SCORES.name, task="health.other", queue="default", every_seconds=60
    )
    periodic_defaults_register(HEALTH_SCORES)
    with pytest.raises(ImproperlyConfigured, match="Two periodic task defaults"):
        periodic_defaults_register(other)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "every_seconds or crontab"),
        ({"every_seconds": 60, "crontab": "0 * * * *"}, "every_seconds or crontab"),
        ({"every_seconds": 0}, "positive"),
        ({"crontab": "0 3 * *"}, "five fields"),
    ],
)
def test_a_default_needs_exactly_one_valid_schedule(kwargs, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        PeriodicDefault(name="x", task="x.y", queue="default", **kwargs)
