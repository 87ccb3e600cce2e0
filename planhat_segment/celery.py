"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planhat_segment.settings")

app = Celery("planhat_segment")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_tokens(logger=None, **kwargs) -> None:
    # A worker installs its own handlers (in place of settings.LOGGING's): filter them too.
    from .logs import handlers_redact

    if logger is not None:
        handlers_redact(logger)
