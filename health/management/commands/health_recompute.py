"""``manage.py health_recompute [--day YYYY-MM-DD] [--company ID_OR_EXTERNAL_ID ...] [--queue]``"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from planhat_segment.models import Company

from ...services import health_recompute_queue, health_scores_recompute
from ..options import utc_day_option


class Command(BaseCommand):
    help = (
        "Recompute health scores (every company, or the ones named) for a UTC day, "
        "idempotently, and print what it did."
    )

    def add_arguments(self, parser):
        parser.add_argument("--day", help="UTC day to score, YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--company",
            action="append",
            default=[],
            help="a company id or external id (repeatable; default: every company)",
        )
        parser.add_argument(
            "--queue", action="store_true", help="queue the work for a worker instead"
        )

    def handle(self, *args, day: str | None, company: list[str], queue: bool, **options):
        when = utc_day_option(day)
        ids = self._companies(company) if company else None
        if queue:
            health_recompute_queue(company_ids=ids, day=when)
            scope = f"{len(ids)} companies" if ids is not None else "every company"
            self.stdout.write(f"Queued health.recompute_scores for {scope}.")
            return
        summary = health_scores_recompute(company_ids=ids, day=when)
        self.stdout.write(self.style.SUCCESS(str(summary)))

    def _companies(self, refs: list[str]) -> list[int]:
        numeric = [int(r) for r in refs if r.isdigit()]
        found = dict(
            Company.objects.filter(Q(pk__in=numeric) | Q(external_id__in=refs)).values_list(
                "external_id", "pk"
            )
        )
        pks = set(found.values())
        missing = [r for r in refs if r not in found and not (r.isdigit() and int(r) in pks)]
        if missing:
            raise CommandError(f"No company with id or external id: {', '.join(missing)}.")
        return sorted(pks)
