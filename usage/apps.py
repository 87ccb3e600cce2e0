from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        from planhat_segment.schedules import periodic_defaults_register

        from . import receivers  # noqa: F401  (re-match waiting events on workspace changes)
        from .schedules import periodic_defaults

        periodic_defaults_register(*periodic_defaults())
