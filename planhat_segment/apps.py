from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PlanhatSegmentConfig(AppConfig):
    name = "planhat_segment"
    verbose_name = "Workspace"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (tombstones on every deletion, cascades included)
        from .roles import roles_on_post_migrate

        # The Viewer / CS manager / Integration admin groups, after every migrate and flush.
        post_migrate.connect(roles_on_post_migrate, dispatch_uid="planhat_segment.roles_ensure")
