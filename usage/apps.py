import sys

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        from planhat_segment.schedules import periodic_defaults_register

        from . import receivers  # noqa: F401  (re-match waiting events on workspace changes)
        from .schedules import periodic_defaults

        periodic_defaults_register(*periodic_defaults())

        post_migrate.connect(_rollups_backfill, sender=self, dispatch_uid="usage_rollups_backfill")


def _rollups_backfill(sender, apps=None, verbosity: int = 1, stdout=None, **kwargs) -> None:
    """After ``migrate``: back-fill the rollups of an install that had activities before them.

    The upgrade path (README, "Daily rollups"): nobody has to know ``rebuild_rollups``. A
    no-op (two queries) when rollups exist or there are no activities; skipped when the
    migrated state has no rollup tables (migrating backwards).
    """
    try:
        if apps is not None:
            apps.get_model("usage", "CompanyActionDay")
    except LookupError:
        return
    from .rollups import rollups_backfill

    summary = rollups_backfill()
    if summary is not None and verbosity:
        (stdout or sys.stdout).write(f"  Usage rollups back-filled: {summary}\n")
