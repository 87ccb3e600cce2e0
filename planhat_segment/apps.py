from django.apps import AppConfig


class PlanhatSegmentConfig(AppConfig):
    name = "planhat_segment"
    verbose_name = "Workspace"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (tombstones on every deletion, cascades included)
