from django.apps import AppConfig


class WarehouseSyncConfig(AppConfig):
    name = "warehouse_sync"
    verbose_name = "Segment data warehouse"

    def ready(self) -> None:
        from planhat_segment.schedules import periodic_defaults_register

        from .schedules import periodic_defaults

        periodic_defaults_register(*periodic_defaults())
