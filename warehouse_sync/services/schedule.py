"""The beat schedule of the push, seeded into django-celery-beat's tables.

Seeded by an idempotent ensure service (called from a data migration and by tests), never
through CELERY_BEAT_SCHEDULE: the DatabaseScheduler re-applies that setting at every beat
start and would revert an admin's edit of the times (DESIGN.md §7).
"""

from __future__ import annotations

import json

from django.apps import apps as global_apps
from django.conf import settings

SCHEDULED_TASK_NAME = "Push data to Segment (warehouse sync)"
SCHEDULED_TASK = "warehouse_sync.scheduled_sync"
REAP_TASK_NAME = "Mark dead pushes to Segment as failed (warehouse sync)"
REAP_TASK = "warehouse_sync.reap_lapsed_runs"
REAP_EVERY_MINUTES = 5


def warehouse_sync_schedule_ensure(*, apps=None) -> dict:
    """Create the push's PeriodicTask (3×/day, UTC) and the lease check when missing.

    Idempotent: existing rows are left exactly as they are, so an admin's edits survive.
    ``apps`` is the migration's app registry when called from a data migration. Returns
    ``{"push": PeriodicTask, "reap": PeriodicTask}``.
    """
    registry = apps or global_apps
    crontab_model = registry.get_model("django_celery_beat", "CrontabSchedule")
    interval_model = registry.get_model("django_celery_beat", "IntervalSchedule")
    task_model = registry.get_model("django_celery_beat", "PeriodicTask")
    queue_options = {"queue": "warehouse"}

    push = task_model.objects.filter(name=SCHEDULED_TASK_NAME).first()
    if push is None:
        crontab, _ = crontab_model.objects.get_or_create(
            minute="0",
            hour=settings.WAREHOUSE_PUSH_SCHEDULE_HOURS,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        push = task_model.objects.create(
            name=SCHEDULED_TASK_NAME,
            task=SCHEDULED_TASK,
            crontab=crontab,
            queue="warehouse",
            kwargs=json.dumps({}),
            description=(
                "Pushes changed workspace objects to Segment when the Segment data warehouse "
                "section is on (skips otherwise). Edit the crontab to change the times."
            ),
        )
    reap = task_model.objects.filter(name=REAP_TASK_NAME).first()
    if reap is None:
        interval, _ = interval_model.objects.get_or_create(
            every=REAP_EVERY_MINUTES, period="minutes"
        )
        reap = task_model.objects.create(
            name=REAP_TASK_NAME,
            task=REAP_TASK,
            interval=interval,
            queue=queue_options["queue"],
            kwargs=json.dumps({}),
            description="Marks a push whose worker died (its lease lapsed) as failed.",
        )
    if apps is None:
        # Beat notices changes through this counter; migrations run before beat anyway.
        from django_celery_beat.models import PeriodicTasks

        PeriodicTasks.update_changed()
    return {"push": push, "reap": reap}
