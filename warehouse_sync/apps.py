from django.apps import AppConfig


class WarehouseSyncConfig(AppConfig):
    name = "warehouse_sync"
    verbose_name = "Segment data warehouse"
