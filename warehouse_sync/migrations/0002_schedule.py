"""Seed the push's beat schedule (3×/day) and the lease check, through the ensure service."""

from django.db import migrations


def seed_schedule(apps, schema_editor):
    from warehouse_sync.services.schedule import warehouse_sync_schedule_ensure

    warehouse_sync_schedule_ensure(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("warehouse_sync", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed_schedule, migrations.RunPython.noop)]
