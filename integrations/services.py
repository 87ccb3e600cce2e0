"""Writes and decisions about the integration's settings."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from .models import IntegrationSettings, MetricDefinition

SINGLETON_PK = 1


def generate_tenant_token() -> str:
    """48 random bytes (384 bits), URL-safe: well over the 32 bytes the spec asks for."""
    return secrets.token_urlsafe(48)


def generate_browser_key() -> str:
    """32 random bytes, URL-safe. Public by nature; what it may do is limited instead."""
    return secrets.token_urlsafe(32)


def integration_ensure() -> IntegrationSettings:
    """Return the one integration row, creating it with safe defaults on first use.

    Idempotent and safe under concurrency (a lost creation race re-reads the winner's row).
    A fresh install has sections 1 and 2 on, section 3 off, and a browser key.
    """
    row = IntegrationSettings.objects.filter(pk=SINGLETON_PK).first()
    if row is not None:
        if not row.browser_key:
            # A row made before browser keys existed (or built by hand in a test): give it one,
            # only where it still has none (two processes racing keep the first key).
            IntegrationSettings.objects.filter(pk=row.pk, browser_key="").update(
                browser_key=generate_browser_key()
            )
            row.refresh_from_db(fields=["browser_key"])
        return row
    try:
        with transaction.atomic():
            return IntegrationSettings.objects.create(
                pk=SINGLETON_PK,
                tenant_token=generate_tenant_token(),
                browser_key=generate_browser_key(),
            )
    except IntegrityError:
        return IntegrationSettings.objects.get(pk=SINGLETON_PK)


def rotation_grace() -> timedelta:
    return timedelta(hours=settings.TOKEN_ROTATION_GRACE_HOURS)


@transaction.atomic
def tenant_token_rotate(*, now: datetime | None = None) -> IntegrationSettings:
    """Issue a new tenant token; the current one keeps working for the grace period."""
    now = now or timezone.now()
    integration_ensure()
    row = IntegrationSettings.objects.select_for_update().get(pk=SINGLETON_PK)
    row.previous_token = row.tenant_token
    row.previous_token_valid_until = now + rotation_grace()
    row.tenant_token = generate_tenant_token()
    row.token_rotated_at = now
    row.save(
        update_fields=[
            "previous_token",
            "previous_token_valid_until",
            "tenant_token",
            "token_rotated_at",
            "updated_at",
        ]
    )
    return row


@transaction.atomic
def browser_key_rotate(*, now: datetime | None = None) -> IntegrationSettings:
    """Issue a new browser key; the current one keeps working for the grace period.

    Sites embed the key in their pages: the grace lets them deploy the new one first.
    """
    now = now or timezone.now()
    integration_ensure()
    row = IntegrationSettings.objects.select_for_update().get(pk=SINGLETON_PK)
    row.previous_browser_key = row.browser_key
    row.previous_browser_key_valid_until = now + rotation_grace()
    row.browser_key = generate_browser_key()
    row.browser_key_rotated_at = now
    row.save(
        update_fields=[
            "previous_browser_key",
            "previous_browser_key_valid_until",
            "browser_key",
            "browser_key_rotated_at",
            "updated_at",
        ]
    )
    return row


@dataclass(frozen=True)
class TokenCheck:
    valid: bool
    is_previous: bool = False


def tenant_token_check(
    *, integration: IntegrationSettings, presented: str, now: datetime | None = None
) -> TokenCheck:
    """Is ``presented`` the current token, or the previous one within its grace period?

    Constant-time comparisons, so the answer's timing says nothing about the token.
    """
    return _key_check(
        current=integration.tenant_token,
        previous=integration.previous_token,
        previous_until=integration.previous_token_valid_until,
        presented=presented,
        now=now,
    )


def browser_key_check(
    *, integration: IntegrationSettings, presented: str, now: datetime | None = None
) -> TokenCheck:
    """Is ``presented`` the browser key, or the previous one within its grace period?"""
    return _key_check(
        current=integration.browser_key,
        previous=integration.previous_browser_key,
        previous_until=integration.previous_browser_key_valid_until,
        presented=presented,
        now=now,
    )


def _key_check(
    *,
    current: str,
    previous: str,
    previous_until: datetime | None,
    presented: str,
    now: datetime | None,
) -> TokenCheck:
    # Constant-time comparisons; an empty key (none issued yet) never matches anything.
    now = now or timezone.now()
    presented_bytes = presented.encode()
    if current and hmac.compare_digest(presented_bytes, current.encode()):
        return TokenCheck(valid=True)
    if (
        previous
        and previous_until
        and now < previous_until
        and hmac.compare_digest(presented_bytes, previous.encode())
    ):
        return TokenCheck(valid=True, is_previous=True)
    return TokenCheck(valid=False)


def integration_update(*, integration: IntegrationSettings, **fields) -> IntegrationSettings:
    """Change settings fields after full validation (raises ValidationError, saves nothing)."""
    for name, value in fields.items():
        setattr(integration, name, value)
    integration.full_clean()
    integration.save()
    return integration


def metric_definition_create(
    *, key: str, label: str = "", description: str = ""
) -> MetricDefinition:
    """Define a metric; raises ValidationError for a bad or already defined key."""
    metric = MetricDefinition(key=key.strip(), label=label, description=description)
    metric.full_clean()
    metric.save()
    return metric


class MetricInUse(Exception):
    """A metric definition that something refers to with a protected key (a health factor,
    an alert rule) cannot be deleted; the message names what uses it."""


def metric_definition_delete(*, metric_id: int) -> None:
    """Delete a metric definition and, by cascade, its recorded values (no confirmation:
    callers that act for a person use ``metric_definition_purge``).

    Refused with :class:`MetricInUse` (nothing deleted) while another object refers to the
    metric through an ``on_delete=PROTECT`` key: a health factor or alert rule must not lose
    its metric under it.
    """
    try:
        with transaction.atomic():
            MetricDefinition.objects.filter(pk=metric_id).delete()
    except ProtectedError as exc:
        users = sorted({f"{o._meta.verbose_name} '{o}'" for o in exc.protected_objects})
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise MetricInUse(
            f"This metric is in use by {shown}: change or remove those first."
        ) from exc


@transaction.atomic
def metric_definition_archive(
    *, metric_id: int, now: datetime | None = None
) -> MetricDefinition | None:
    """ "Remove" a metric: hidden from the integration page and ignored by processing for new
    values; its recorded values are kept and it can be restored. Idempotent; None when there
    is no such metric."""
    metric = MetricDefinition.objects.select_for_update().filter(pk=metric_id).first()
    if metric is not None and metric.archived_at is None:
        metric.archived_at = now or timezone.now()
        metric.save(update_fields=["archived_at"])
    return metric


@transaction.atomic
def metric_definition_restore(*, metric_id: int) -> MetricDefinition | None:
    """Undo an archive: group calls record the metric's new values again. Idempotent."""
    metric = MetricDefinition.objects.select_for_update().filter(pk=metric_id).first()
    if metric is not None and metric.archived_at is not None:
        metric.archived_at = None
        metric.save(update_fields=["archived_at"])
    return metric


@transaction.atomic
def metric_definition_purge(*, metric_id: int, confirm_values: int) -> int:
    """Delete an archived metric and its recorded values, once the person confirmed how many
    values go (``confirm_values``, the count they were shown). Returns the values deleted.

    Raises ValidationError (nothing deleted) when the metric is not archived ("Remove" it
    first: two steps, so one click never loses history) or the count is not the current one.
    """
    metric = MetricDefinition.objects.select_for_update().filter(pk=metric_id).first()
    if metric is None:
        raise ValidationError("This metric no longer exists.")
    if metric.archived_at is None:
        raise ValidationError(
            f"Metric '{metric.key}' is in use: remove (archive) it before deleting its values."
        )
    # usage's MetricValue, through its reverse relation (integrations never imports usage).
    count = metric.values.count()
    if count != confirm_values:
        raise ValidationError(
            f"Metric '{metric.key}' has {count} stored values, not {confirm_values}: "
            "nothing was deleted; confirm again with the current number."
        )
    try:
        metric_definition_delete(metric_id=metric.pk)
    except MetricInUse as exc:  # a health factor or alert rule still names it
        raise ValidationError(f"Nothing was deleted: {exc}") from exc
    return count


def metric_definition_update(
    *,
    metric: MetricDefinition,
    key: str | None = None,
    label: str | None = None,
    description: str | None = None,
) -> MetricDefinition:
    """Change a metric definition's given fields; raises ValidationError (saves nothing then)."""
    if key is not None:
        metric.key = key.strip()
    if label is not None:
        metric.label = label
    if description is not None:
        metric.description = description
    metric.full_clean()
    metric.save()
    return metric
