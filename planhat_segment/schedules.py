"""The registry of periodic tasks' default entries (django-celery-beat), filled by each app.

Beat runs with django-celery-beat's DatabaseScheduler: the entries live in its tables and
belong to the admin (admin → Periodic tasks), who may change the times, the queue, or
disable one. ``planhat_segment.services.schedules.schedules_ensure`` creates the entry of each
registered default that has none, after every ``migrate`` and in ``bootstrap``; it never
touches an existing entry, so an admin's edit survives migrations, deploys and beat restarts.
(``CELERY_BEAT_SCHEDULE`` is not used: the scheduler re-applies it at every beat start and
would revert those edits — DESIGN.md §7.)

How an app adds its periodic tasks (no database access here: ``ready()`` must not touch it):

1. Write the Celery task with a pinned name and queue, e.g. ``@shared_task(name=
   "health.recompute_scores", queue="default")``.
2. List the defaults in ``<app>/schedules.py`` (read settings there, so they give the
   defaults of a new entry)::

       from django.conf import settings

       from planhat_segment.schedules import PeriodicDefault

       def periodic_defaults() -> list[PeriodicDefault]:
           return [
               PeriodicDefault(
                   name="Recompute health scores (health)",
                   task="health.recompute_scores",
                   queue="default",
                   crontab="15 2 * * *",  # daily at 02:15 UTC
                   description="Recomputes every company's daily health score.",
               ),
               PeriodicDefault(
                   name="Evaluate health alerts (health)",
                   task="health.evaluate_alerts",
                   queue="default",
                   every_seconds=settings.HEALTH_ALERTS_EVERY_SECONDS,
               ),
           ]

3. Register them from the app's ``AppConfig.ready()``::

       def ready(self) -> None:
           from planhat_segment.schedules import periodic_defaults_register

           from .schedules import periodic_defaults

           periodic_defaults_register(*periodic_defaults())

The next ``migrate`` (or ``bootstrap``) creates the entries; nothing else to wire.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

# Fields of a crontab string, in cron's order (each as django-celery-beat names it).
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


@dataclass(frozen=True)
class PeriodicDefault:
    """The entry a periodic task gets when it has none yet.

    ``name`` is the entry's unique name in the admin (and how an existing entry is found:
    renaming it in the admin makes the next ensure create a new one). Give exactly one of
    ``every_seconds`` (an interval) or ``crontab`` ("minute hour day-of-month month
    day-of-week", UTC, e.g. ``"0 0,8,16 * * *"``).
    """

    name: str
    task: str
    queue: str
    every_seconds: int | None = None
    crontab: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if (self.every_seconds is None) == (self.crontab is None):
            raise ImproperlyConfigured(f"{self.name}: give every_seconds or crontab (one).")
        if self.every_seconds is not None and self.every_seconds <= 0:
            raise ImproperlyConfigured(f"{self.name}: every_seconds must be positive.")
        if self.crontab is not None and len(self.crontab.split()) != len(CRONTAB_FIELDS):
            raise ImproperlyConfigured(
                f"{self.name}: crontab {self.crontab!r} needs five fields: "
                "minute hour day-of-month month day-of-week."
            )

    def crontab_fields(self) -> dict[str, str]:
        return dict(zip(CRONTAB_FIELDS, (self.crontab or "").split(), strict=True))


_defaults: dict[str, PeriodicDefault] = {}


def periodic_defaults_register(*defaults: PeriodicDefault) -> None:
    """Add defaults (from ``AppConfig.ready()``); registering the same one again is a no-op,
    another default under a taken name is an error."""
    for default in defaults:
        taken = _defaults.get(default.name)
        if taken is not None and taken != default:
            raise ImproperlyConfigured(f"Two periodic task defaults are named {default.name!r}.")
        _defaults[default.name] = default


def periodic_defaults() -> list[PeriodicDefault]:
    """Every registered default, in registration order."""
    return list(_defaults.values())
