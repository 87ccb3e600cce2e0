"""Formerly seeded the push's beat schedule here.

Every periodic task's entry is now created when missing after each migrate
(``planhat_segment.services.schedules.schedules_ensure`` on ``post_migrate``), so this
migration does nothing; it stays for the migration graph of existing installs.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("warehouse_sync", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = []
