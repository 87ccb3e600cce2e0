from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (re-match waiting events on workspace changes)
