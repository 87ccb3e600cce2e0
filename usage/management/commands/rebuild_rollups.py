"""``manage.py rebuild_rollups [--since DATE]``: recount the daily usage rollups.

For back-fill and repair (e.g. after endusers were flagged as test data, or activities were
deleted in bulk). Idempotent and chunked: each chunk of days is replaced whole in one
transaction, so it may be stopped and run again. A progress bar on a terminal.
"""

from __future__ import annotations

import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from usage.rollups import rollups_rebuild


class Command(BaseCommand):
    help = "Recount the daily usage rollups from activities (UTC days), from --since or all."

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", help="first UTC day to rebuild, YYYY-MM-DD (default: the first one)"
        )
        parser.add_argument(
            "--chunk-days", type=int, default=7, help="days per transaction (default 7)"
        )

    def handle(self, *args, since: str | None, chunk_days: int, **options):
        try:
            first = date.fromisoformat(since) if since else None
        except ValueError:
            raise CommandError(f"--since takes a date as YYYY-MM-DD, not {since!r}.") from None
        if chunk_days < 1:
            raise CommandError("--chunk-days must be at least 1.")
        bar = tqdm(unit="day", disable=not sys.stderr.isatty(), desc="rebuild_rollups")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            summary = rollups_rebuild(since=first, chunk_days=chunk_days, progress=progress)
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(str(summary)))
