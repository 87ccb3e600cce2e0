"""What a person does with alerts: acknowledge ("we are on it") and resolve (with a note)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..models_alerts import ACTIVE_STATUSES, Alert, AlertStatus, Resolution

logger = logging.getLogger(__name__)


class AlertStateError(Exception):
    """The alert is not in a state that allows the action (e.g. it is already resolved)."""


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user) -> Alert:
    """Open → acknowledged (who and when are kept). Acknowledging an acknowledged alert
    changes nothing; a resolved alert cannot be acknowledged. An acknowledged alert still
    resolves by itself when its condition clears, and still blocks a second alert."""
    alert = _locked(alert)
    if alert.status == AlertStatus.RESOLVED:
        raise AlertStateError("This alert is already resolved: there is nothing to acknowledge.")
    if alert.status == AlertStatus.OPEN:
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = user
        alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
        logger.info("alert_acknowledged", extra={"alert_id": alert.pk, "user_id": user.pk})
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, user, note: str = "") -> Alert:
    """Open or acknowledged → resolved by a person (who, when, why). The rule's cooldown runs
    from now: if the condition still holds afterwards, a new alert opens once it has passed."""
    alert = _locked(alert)
    if alert.status == AlertStatus.RESOLVED:
        raise AlertStateError("This alert is already resolved.")
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = timezone.now()
    alert.resolved_by = user
    alert.resolution = Resolution.PERSON
    alert.resolution_note = note.strip() or f"Resolved by {user.get_username()}."
    alert.save(
        update_fields=["status", "resolved_at", "resolved_by", "resolution", "resolution_note"]
    )
    logger.info("alert_resolved", extra={"alert_id": alert.pk, "user_id": user.pk})
    return alert


@transaction.atomic
def alerts_acknowledge(*, alert_ids: Iterable[int], user) -> int:
    """Acknowledge the open ones among ``alert_ids`` (one UPDATE); returns how many."""
    return Alert.objects.filter(pk__in=list(alert_ids), status=AlertStatus.OPEN).update(
        status=AlertStatus.ACKNOWLEDGED, acknowledged_at=timezone.now(), acknowledged_by=user
    )


@transaction.atomic
def alerts_resolve(*, alert_ids: Iterable[int], user, note: str = "") -> int:
    """Resolve the active ones among ``alert_ids`` (one UPDATE); returns how many."""
    return Alert.objects.filter(pk__in=list(alert_ids), status__in=ACTIVE_STATUSES).update(
        status=AlertStatus.RESOLVED,
        resolved_at=timezone.now(),
        resolved_by=user,
        resolution=Resolution.PERSON,
        resolution_note=note.strip() or f"Resolved by {user.get_username()}.",
    )
