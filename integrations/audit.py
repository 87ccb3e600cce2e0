"""Audit entries of the integration: settings changes, token rotations, metric definitions.

Called by the integration page and the REST API right after the service they call; see
``planhat_segment.audit`` for where entries live and why. Secrets are named, never shown.
"""

from __future__ import annotations

from django.contrib.admin.models import LogEntry

from planhat_segment.audit import ADDITION, CHANGE, DELETION, audit_record, changes_describe

from .models import IntegrationSettings, MetricDefinition

SECRET_FIELDS = ("write_key", "shared_secret")
AUDITED_FIELDS = (
    "user_tracking_enabled",
    "create_endusers",
    "match_by_email_domain",
    "unassigned_wait_hours",
    "shared_secret",
    "company_metrics_enabled",
    "warehouse_enabled",
    "write_key",
    "region",
    "custom_base_url",
    "synced_models",
)


def integration_snapshot(integration: IntegrationSettings) -> dict:
    """The audited fields' values, taken before a change (services change the instance)."""
    return {field: getattr(integration, field) for field in AUDITED_FIELDS}


def integration_change_record(
    *, user, before: dict, integration: IntegrationSettings, via: str
) -> LogEntry | None:
    """Record the fields that changed since ``before``; nothing when none did."""
    labels = {
        field: str(IntegrationSettings._meta.get_field(field).verbose_name).capitalize()
        for field in AUDITED_FIELDS
    }
    lines = changes_describe(
        before=before,
        after=integration_snapshot(integration),
        secret_fields=SECRET_FIELDS,
        labels=labels,
    )
    if not lines:
        return None
    return audit_record(
        user=user, obj=integration, message=f"Settings changed ({via}): " + "; ".join(lines)
    )


def token_rotation_record(*, user, integration: IntegrationSettings, via: str) -> LogEntry:
    until = integration.previous_token_valid_until
    return audit_record(
        user=user,
        obj=integration,
        message=(
            f"Tenant token rotated ({via}); the previous token works until "
            f"{until:%Y-%m-%d %H:%M} UTC."
        ),
    )


def browser_key_rotation_record(*, user, integration: IntegrationSettings, via: str) -> LogEntry:
    until = integration.previous_browser_key_valid_until
    return audit_record(
        user=user,
        obj=integration,
        message=(
            f"Browser key rotated ({via}); the previous key works until {until:%Y-%m-%d %H:%M} UTC."
        ),
    )


def metric_definition_record(
    *, user, metric: MetricDefinition, flag: int, via: str, before: dict | None = None
) -> LogEntry | None:
    """A metric definition added, changed (``before`` = its old key/label/description) or
    deleted (with its recorded values)."""
    if flag == ADDITION:
        message = f"Metric definition '{metric.key}' added ({via})."
    elif flag == DELETION:
        message = f"Metric definition '{metric.key}' deleted with its values ({via})."
    else:
        after = {field: getattr(metric, field) for field in (before or {})}
        lines = changes_describe(before=before or {}, after=after)
        if not lines:
            return None
        message = f"Metric definition changed ({via}): " + "; ".join(lines)
    return audit_record(user=user, obj=metric, message=message, flag=flag)


def metric_definition_archive_record(
    *, user, metric: MetricDefinition, archived: bool, via: str
) -> LogEntry:
    """A metric definition removed (archived, its values kept) or restored."""
    what = "removed (archived; its values kept)" if archived else "restored"
    return audit_record(
        user=user,
        obj=metric,
        message=f"Metric definition '{metric.key}' {what} ({via}).",
        flag=CHANGE,
    )


__all__ = [
    "ADDITION",
    "CHANGE",
    "DELETION",
    "browser_key_rotation_record",
    "integration_change_record",
    "integration_snapshot",
    "metric_definition_archive_record",
    "metric_definition_record",
    "token_rotation_record",
]
