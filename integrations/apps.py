from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Segment integration"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from .preferences import time_zone_remember

        # The person's time zone goes into the session at sign-in: pages read no extra row.
        user_logged_in.connect(time_zone_remember, dispatch_uid="integrations.time_zone")
