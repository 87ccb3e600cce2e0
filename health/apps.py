from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_defaults(sender, **kwargs) -> None:
    from .services import health_defaults_ensure

    health_defaults_ensure()


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Customer health"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (re-score companies after their writes)
        from .extensions import company_api_extend, trends_panel_register

        # The default profile exists on every install (and again after a test flush).
        post_migrate.connect(_ensure_defaults, sender=self, dispatch_uid="health_defaults")
        company_api_extend()
        trends_panel_register()
