"""Writes of alert rules and webhooks, validated in plain words (nothing saved on error)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from integrations.models import MetricDefinition

from ..models_alerts import (
    ACTIVE_STATUSES,
    ALL_PARAMETERS,
    KIND_PARAMETERS,
    RULE_FIELDS,
    Alert,
    AlertRule,
    AlertStatus,
    Resolution,
    Webhook,
)
from .validation import rule_object_problems, webhook_problems

logger = logging.getLogger(__name__)

EMPTY = {"action": "", "operator": "", "to_band": ""}  # blank text; other parameters: None


def _emails(addresses: Any) -> Any:
    """Trimmed, without repeats (case-insensitive), order kept; anything else left to fail."""
    if not isinstance(addresses, list | tuple):
        return addresses
    seen: set[str] = set()
    result = []
    for address in addresses:
        if not isinstance(address, str):
            result.append(address)
            continue
        address = address.strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            result.append(address)
    return result


def _metric_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, MetricDefinition):
        return value.pk
    return int(value)


def _apply(rule: AlertRule, data: dict[str, Any], *, creating: bool) -> None:
    previous_kind = None if creating else rule.kind
    for name in RULE_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if name == "metric":
            rule.metric_id = _metric_id(value)
        elif name == "email_recipients":
            rule.email_recipients = _emails(value) if value is not None else []
        elif name in EMPTY and value is None:
            setattr(rule, name, "")
        else:
            setattr(rule, name, value)
    if previous_kind is not None and rule.kind != previous_kind:
        # A new kind: the old kind's parameters that were not given again are dropped.
        wanted = KIND_PARAMETERS.get(rule.kind, ())
        for name in ALL_PARAMETERS:
            if name not in wanted and name not in data:
                if name == "metric":
                    rule.metric_id = None
                else:
                    setattr(rule, name, EMPTY.get(name))


def _check(rule: AlertRule) -> None:
    problems = rule_object_problems(rule)
    if rule.metric_id and not MetricDefinition.objects.filter(pk=rule.metric_id).exists():
        problems["metric"] = "No such metric."
    if (
        "name" not in problems
        and AlertRule.objects.filter(name__iexact=rule.name.strip()).exclude(pk=rule.pk).exists()
    ):
        problems["name"] = f"There is already a rule named {rule.name.strip()!r}."
    if problems:
        raise ValidationError(problems)
    rule.name = rule.name.strip()


def _set_webhooks(rule: AlertRule, webhooks: Iterable[Webhook | int] | None) -> None:
    if webhooks is not None:
        rule.webhooks.set([getattr(w, "pk", w) for w in webhooks])


def _resolve_for_disabled(rule: AlertRule) -> int:
    return Alert.objects.filter(rule=rule, status__in=ACTIVE_STATUSES).update(
        status=AlertStatus.RESOLVED,
        resolved_at=timezone.now(),
        resolution=Resolution.RULE_DISABLED,
        resolution_note="The rule was disabled.",
    )


@transaction.atomic
def alert_rule_create(
    *, data: dict[str, Any], webhooks: Iterable[Webhook | int] | None = None
) -> AlertRule:
    """Create a rule. ``data`` holds the rule's fields (``metric``: an instance or an id)."""
    rule = AlertRule()
    _apply(rule, data, creating=True)
    _check(rule)
    rule.save()
    _set_webhooks(rule, webhooks)
    logger.info("alert_rule_created", extra={"rule_id": rule.pk, "kind": rule.kind})
    return rule


@transaction.atomic
def alert_rule_update(
    *, rule: AlertRule, data: dict[str, Any], webhooks: Iterable[Webhook | int] | None = None
) -> AlertRule:
    """Change the fields given in ``data``; ``webhooks``, when given, replace the rule's.

    Changing ``kind`` drops the old kind's parameters not given again. Disabling a rule
    resolves its active alerts ("rule disabled"); other changes take effect at the next
    evaluation, which judges the active alerts under the new parameters."""
    was_enabled = rule.enabled
    _apply(rule, data, creating=False)
    _check(rule)
    rule.save()
    _set_webhooks(rule, webhooks)
    if was_enabled and not rule.enabled:
        _resolve_for_disabled(rule)
    logger.info("alert_rule_updated", extra={"rule_id": rule.pk})
    return rule


def alert_rule_saved(*, rule: AlertRule, was_enabled: bool) -> None:
    """After the admin saved a rule through its form (validated by ``clean``): the same
    follow-up as :func:`alert_rule_update`."""
    if was_enabled and not rule.enabled:
        _resolve_for_disabled(rule)


@transaction.atomic
def alert_rule_delete(*, rule: AlertRule) -> None:
    """Delete a rule with its alerts and their deliveries."""
    rule.delete()


WEBHOOK_FIELDS = ("name", "url", "secret", "enabled")


def _webhook_check(webhook: Webhook, *, creating: bool, secret_given: bool) -> None:
    problems = webhook_problems(
        {
            "name": webhook.name,
            "url": webhook.url,
            "secret": webhook.secret if secret_given else "",
        },
        creating=creating,
    )
    if (
        "name" not in problems
        and Webhook.objects.filter(name__iexact=webhook.name.strip())
        .exclude(pk=webhook.pk)
        .exists()
    ):
        problems["name"] = f"There is already a webhook named {webhook.name.strip()!r}."
    if problems:
        raise ValidationError(problems)
    webhook.name = webhook.name.strip()


@transaction.atomic
def webhook_create(*, data: dict[str, Any]) -> Webhook:
    """Create a webhook (http(s), public address unless allowed, a secret of 16+ chars)."""
    webhook = Webhook(**{k: v for k, v in data.items() if k in WEBHOOK_FIELDS})
    _webhook_check(webhook, creating=True, secret_given=True)
    webhook.save()
    return webhook


@transaction.atomic
def webhook_update(*, webhook: Webhook, data: dict[str, Any]) -> Webhook:
    """Change the fields given; a missing or empty ``secret`` keeps the current one."""
    secret_given = bool(data.get("secret"))
    for key, value in data.items():
        if key in WEBHOOK_FIELDS and (key != "secret" or secret_given):
            setattr(webhook, key, value)
    _webhook_check(webhook, creating=False, secret_given=secret_given)
    webhook.save()
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    """Delete a webhook; its past deliveries stay (their webhook becomes empty)."""
    webhook.delete()
