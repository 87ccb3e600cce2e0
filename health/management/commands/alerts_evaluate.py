"""``manage.py alerts_evaluate [--day YYYY-MM-DD] [--rule ID_OR_NAME ...] [--queue] [--send]``"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from ...alerts import alerts_evaluate
from ...models_alerts import AlertRule
from ...notifications import alerts_evaluate_queue, deliveries_send_due
from ..options import utc_day_option


class Command(BaseCommand):
    help = (
        "Evaluate the enabled alert rules (all, or the ones named) for a UTC day: open alerts "
        "whose condition holds, resolve those whose condition cleared (idempotent), and "
        "print what it did. Notifications are queued for the notifications worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--day", help="UTC day to evaluate, YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--rule",
            action="append",
            default=[],
            help="a rule id or name (repeatable; default: every enabled rule)",
        )
        parser.add_argument(
            "--queue", action="store_true", help="queue the evaluation for a worker instead"
        )
        parser.add_argument(
            "--send",
            action="store_true",
            help="also send the due notifications here, now (without a notifications worker)",
        )

    def handle(self, *args, day: str | None, rule: list[str], queue: bool, send: bool, **options):
        when = utc_day_option(day)
        ids = self._rules(rule) if rule else None
        if queue:
            if ids is not None:
                raise CommandError("--queue evaluates every enabled rule; leave out --rule.")
            alerts_evaluate_queue(day=when)
            self.stdout.write("Queued health.evaluate_alerts for every enabled rule.")
            return
        summary = alerts_evaluate(day=when, rule_ids=ids)
        if not summary.rules:
            self.stdout.write("No enabled alert rule to evaluate.")
        else:
            self.stdout.write(self.style.SUCCESS(str(summary)))
        if send:
            self.stdout.write(str(deliveries_send_due()))

    def _rules(self, refs: list[str]) -> list[int]:
        numeric = [int(r) for r in refs if r.isdigit()]
        rows = list(
            AlertRule.objects.filter(Q(pk__in=numeric) | Q(name__in=refs)).values_list(
                "pk", "name", "enabled"
            )
        )
        known = {str(pk) for pk, _, _ in rows} | {name for _, name, _ in rows}
        missing = [r for r in refs if r not in known]
        if missing:
            raise CommandError(f"No alert rule with id or name: {', '.join(missing)}.")
        disabled = [name for _, name, enabled in rows if not enabled]
        if disabled:
            raise CommandError(f"Disabled (enable it first): {', '.join(disabled)}.")
        return sorted(pk for pk, _, _ in rows)
