"""Create the missing periodic task entries (django-celery-beat) from the registered defaults.

See ``planhat_segment.schedules`` for the registry and how an app adds its tasks.
"""

from __future__ import annotations

import json

from django.apps import apps as global_apps
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..schedules import PeriodicDefault, periodic_defaults

# The largest unit that divides an interval evenly is what the admin sees ("every 5 minutes").
_PERIODS = (("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1))


def schedules_ensure(*, apps=None, using: str = "default") -> list[str]:
    """Create the entry of every registered periodic task that has none; return their names.

    Existing entries are never changed (times, queue, enabled: the admin owns them), so
    running it again, after each ``migrate`` (``post_migrate``) and in ``bootstrap``, only
    brings back what is missing. ``apps`` is the migration state's registry when called from
    ``post_migrate``; without django-celery-beat's tables it does nothing.
    """
    registry = apps or global_apps
    try:
        task_model = registry.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:  # django-celery-beat is not migrated (yet)
        return []
    defaults = periodic_defaults()
    existing = set(
        task_model.objects.using(using)
        .filter(name__in=[d.name for d in defaults])
        .values_list("name", flat=True)
    )
    # A loop over the few registered defaults; only the missing ones cost queries.
    created = [
        d.name
        for d in defaults
        if d.name not in existing and _entry_create(d, registry=registry, using=using)
    ]
    if created:
        # What PeriodicTasks.update_changed() does: a running beat reloads its schedule.
        registry.get_model("django_celery_beat", "PeriodicTasks").objects.using(
            using
        ).update_or_create(ident=1, defaults={"last_update": timezone.now()})
    return created


def _entry_create(default: PeriodicDefault, *, registry, using: str) -> bool:
    """Create one entry; False when another process created it meanwhile (theirs stands)."""
    task_model = registry.get_model("django_celery_beat", "PeriodicTask")
    try:
        with transaction.atomic(using=using):
            task_model.objects.using(using).create(
                name=default.name,
                task=default.task,
                queue=default.queue,
                kwargs=json.dumps({}),
                description=default.description,
                **_schedule(default, registry=registry, using=using),
            )
    except IntegrityError:
        return False
    return True


def _schedule(default: PeriodicDefault, *, registry, using: str) -> dict:
    if default.crontab is not None:
        model = registry.get_model("django_celery_beat", "CrontabSchedule")
        fields = {**default.crontab_fields(), "timezone": "UTC"}
        crontab = model.objects.using(using).filter(**fields).first()
        return {"crontab": crontab or model.objects.using(using).create(**fields)}
    model = registry.get_model("django_celery_beat", "IntervalSchedule")
    period, seconds = next((p, s) for p, s in _PERIODS if default.every_seconds % s == 0)
    fields = {"every": default.every_seconds // seconds, "period": period}
    interval = model.objects.using(using).filter(**fields).first()
    return {"interval": interval or model.objects.using(using).create(**fields)}
