from django.apps import AppConfig


class PlanhatSegmentConfig(AppConfig):
    name = "planhat_segment"
    verbose_name = "Workspace"

    def ready(self) -> None:
        from .services.tombstones import tombstone_receivers_connect

        # Per syncable model, so every other model keeps Django's fast delete.
        tombstone_receivers_connect()
