"""Evaluating alert rules for every company at once: open, keep and resolve alerts.

Per evaluation: the non-test companies and their first day with activity (two queries),
then per rule a fixed number of queries whatever the number of companies — its figures
(one or two), its active alerts, its recent resolutions (cooldown), and the bulk writes.
Idempotent: a rule × company has at most one active alert (a partial unique constraint), so
evaluating twice opens nothing new. Each rule is evaluated in its own transaction with its
row locked, so two evaluations of the same rule never interleave.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from usage.rollup_selectors import utc_today

from ..models_alerts import (
    ACTIVE_STATUSES,
    Alert,
    AlertRule,
    AlertStatus,
    Channel,
    Delivery,
    Resolution,
)
from ..notifications.delivery import Target, deliveries_for
from ..notifications.queue import notifications_nudge
from .conditions import CONDITIONS, Context, State, Verdict, context_build, scope_of

logger = logging.getLogger(__name__)

RESOLVE_FIELDS = ["status", "resolved_at", "resolution", "resolution_note", "resolution_facts"]


@dataclass
class RuleOutcome:
    """What evaluating one rule did."""

    rule_id: int
    name: str
    kind: str
    in_scope: int = 0
    judged: int = 0
    met: int = 0
    opened: int = 0
    still_active: int = 0
    in_cooldown: int = 0
    resolved: int = 0
    deliveries: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def log_extra(self) -> dict:
        # "name" is a LogRecord attribute: logging refuses it in ``extra``.
        return {("rule_name" if k == "name" else k): v for k, v in self.__dict__.items()}

    def __str__(self) -> str:
        waiting = self.in_scope - self.judged
        return (
            f"Rule {self.name!r} ({self.kind}): {self.in_scope} companies in scope, "
            f"{self.judged} judged ({waiting} lacking history or data), {self.met} meeting "
            f"the condition; {self.opened} alerts opened, {self.still_active} still active, "
            f"{self.in_cooldown} held back by the cooldown, {self.resolved} resolved; "
            f"{self.deliveries} notifications queued."
        )


@dataclass
class EvaluationSummary:
    day: dt.date
    rules: list[RuleOutcome] = field(default_factory=list)

    @property
    def opened(self) -> int:
        return sum(r.opened for r in self.rules)

    @property
    def resolved(self) -> int:
        return sum(r.resolved for r in self.rules)

    def as_dict(self) -> dict:
        return {
            "day": self.day.isoformat(),
            "opened": self.opened,
            "resolved": self.resolved,
            "rules": [r.as_dict() for r in self.rules],
        }

    def __str__(self) -> str:
        head = (
            f"Alert evaluation for {self.day}: {len(self.rules)} enabled rules, "
            f"{self.opened} alerts opened, {self.resolved} resolved."
        )
        return "\n".join([head, *(f"  {r}" for r in self.rules)])


def _targets(rule: AlertRule, owner_email: str) -> list[Target]:
    targets: list[Target] = []
    seen: set[str] = set()
    addresses = list(rule.email_recipients or [])
    if rule.notify_owner and owner_email:
        addresses.append(owner_email)
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            targets.append(Target(channel=Channel.EMAIL, email=address))
    for webhook in rule.webhooks.all():  # prefetched
        if webhook.enabled:
            targets.append(Target(Channel.WEBHOOK, webhook_id=webhook.pk, name=webhook.name))
    return targets


def _open(rule: AlertRule, ctx: Context, opening: dict[int, Verdict], outcome: RuleOutcome):
    alerts = [
        Alert(
            rule=rule,
            company_id=pk,
            status=AlertStatus.OPEN,
            opened_at=ctx.now,
            day=ctx.day,
            facts={**verdict.facts, "summary": verdict.summary},
        )
        for pk, verdict in sorted(opening.items())
    ]
    Alert.objects.bulk_create(alerts, batch_size=1000)
    outcome.opened = len(alerts)
    items = []
    for alert in alerts:
        targets = _targets(rule, ctx.companies[alert.company_id].owner_email)
        if targets:
            items.append((alert.pk, targets))
    rows = deliveries_for(alert_targets=items, now=ctx.now)
    if rows:
        Delivery.objects.bulk_create(rows, batch_size=1000)
        notifications_nudge()
    outcome.deliveries = len(rows)


def _resolve(alerts: list[Alert], now: dt.datetime) -> None:
    for alert in alerts:
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = now
    Alert.objects.bulk_update(alerts, RESOLVE_FIELDS, batch_size=500)


def _evaluate_rule(rule: AlertRule, ctx: Context) -> RuleOutcome:
    outcome = RuleOutcome(rule_id=rule.pk, name=rule.name, kind=rule.kind)
    scope = scope_of(rule, ctx)
    outcome.in_scope = len(scope)
    verdicts = CONDITIONS[rule.kind](rule, ctx, scope)
    outcome.judged = len(verdicts)
    active = {
        alert.company_id: alert
        for alert in Alert.objects.filter(rule=rule, status__in=ACTIVE_STATUSES).only(
            "id", "company_id", "status"
        )
    }
    cooling: set[int] = set()
    if rule.cooldown_hours:
        since = ctx.now - dt.timedelta(hours=rule.cooldown_hours)
        cooling = set(
            Alert.objects.filter(rule=rule, status=AlertStatus.RESOLVED, resolved_at__gt=since)
            .order_by()
            .values_list("company_id", flat=True)
            .distinct()
        )
    opening: dict[int, Verdict] = {}
    resolving: list[Alert] = []
    for pk, verdict in verdicts.items():
        alert = active.get(pk)
        if verdict.state == State.MET:
            outcome.met += 1
            if alert is not None:
                outcome.still_active += 1
            elif pk in cooling:
                outcome.in_cooldown += 1
            else:
                opening[pk] = verdict
        elif verdict.state == State.HOLDING:
            if alert is not None:
                outcome.still_active += 1
        elif alert is not None:
            alert.resolution = Resolution.CONDITION_CLEARED
            alert.resolution_note = f"Condition cleared: {verdict.summary}."
            alert.resolution_facts = {**verdict.facts, "summary": verdict.summary}
            resolving.append(alert)
    for pk, alert in active.items():
        if pk not in scope:
            alert.resolution = Resolution.OUT_OF_SCOPE
            alert.resolution_note = (
                "The company is no longer in the rule's scope (marked as test data, or its "
                "MRR is below the rule's minimum)."
            )
            alert.resolution_facts = {}
            resolving.append(alert)
    _resolve(resolving, ctx.now)
    outcome.resolved = len(resolving)
    _open(rule, ctx, opening, outcome)
    return outcome


def alerts_evaluate(
    *,
    day: dt.date | None = None,
    rule_ids: Iterable[int] | None = None,
    now: dt.datetime | None = None,
) -> EvaluationSummary:
    """Evaluate the enabled rules (all, or ``rule_ids``) for ``day`` (default today, UTC;
    windows are the complete UTC days before it): open alerts whose condition holds, resolve
    those whose condition cleared, and queue their notifications. Returns what it did."""
    day = day or utc_today()
    now = now or timezone.now()
    summary = EvaluationSummary(day=day)
    rules = AlertRule.objects.filter(enabled=True).order_by("id")
    if rule_ids is not None:
        rules = rules.filter(pk__in=list(rule_ids))
    rule_pks = list(rules.values_list("pk", flat=True))
    if not rule_pks:
        return summary
    ctx = context_build(day=day, now=now)
    for pk in rule_pks:
        with transaction.atomic():
            rule = (
                AlertRule.objects.select_for_update(of=("self",))
                .select_related("metric")
                .prefetch_related("webhooks")
                .filter(pk=pk, enabled=True)
                .first()
            )
            if rule is None:  # disabled or deleted meanwhile
                continue
            outcome = _evaluate_rule(rule, ctx)
            AlertRule.objects.filter(pk=pk).update(last_evaluated_at=now, last_evaluated_day=day)
        summary.rules.append(outcome)
        logger.info("alert_rule_evaluated", extra=outcome.log_extra())
    return summary
