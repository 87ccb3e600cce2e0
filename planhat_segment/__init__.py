"""Project package: settings, URLs, the Celery app, and the workspace's own objects."""

from .celery import app as celery_app

__all__ = ("celery_app",)
