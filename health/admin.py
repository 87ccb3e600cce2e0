"""Admin of the health app. Alerts, rules, webhooks and deliveries: ``admin_alerts``."""

from . import admin_alerts  # noqa: F401 (registers the alert admin)
