from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PlanhatSegmentConfig(AppConfig):
    name = "planhat_segment"
    verbose_name = "Workspace"

    def ready(self) -> None:
        from .roles import roles_on_post_migrate
        from .services.tombstones import tombstone_receivers_connect

        # Per syncable model, so every other model keeps Django's fast delete.
        tombstone_receivers_connect()
        # The Viewer / CS manager / Integration admin groups, after every migrate and flush.
        post_migrate.connect(roles_on_post_migrate, dispatch_uid="planhat_segment.roles_ensure")
        # Once per migrate (this app's signal only), when every app's tables exist.
        post_migrate.connect(
            _schedules_ensure, sender=self, dispatch_uid="planhat_segment_schedules_ensure"
        )


def _schedules_ensure(sender, using: str = "default", apps=None, **kwargs) -> None:
    """Create the missing periodic task entries (see ``planhat_segment.schedules``)."""
    from .services.schedules import schedules_ensure

    schedules_ensure(apps=apps, using=using)
