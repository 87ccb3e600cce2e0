"""``manage.py push_to_segment``: start a push to Segment (queue it, or run it here with --wait)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from warehouse_sync.models import SyncStatus, SyncTrigger
from warehouse_sync.services import SyncRefused, sync_run_execute, sync_run_start


class Command(BaseCommand):
    help = (
        "Push workspace objects to Segment (section 3). Incremental unless --full; queued to "
        "the 'warehouse' Celery queue unless --wait runs it in this process."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--full", action="store_true", help="send everything, not changes")
        parser.add_argument(
            "--models",
            default="",
            help="comma-separated subset, e.g. company,enduser (default: the synced models)",
        )
        parser.add_argument(
            "--wait", action="store_true", help="run here and print the per-model table"
        )

    def handle(self, *args, full: bool, models: str, wait: bool, **options) -> None:
        chosen = [m.strip().lower() for m in models.split(",") if m.strip()] or None
        try:
            run = sync_run_start(
                trigger=SyncTrigger.COMMAND, full=full, models=chosen, enqueue=not wait
            )
        except SyncRefused as exc:
            raise CommandError(f"Push refused: {exc.message}") from None
        kind = "full" if full else "incremental"
        if not wait:
            # Queued after the commit: with the broker down the run is already failed by now
            # ("could not queue the push"), and saying "queued" would be a lie.
            run.refresh_from_db(fields=["status", "error"])
            if run.status != SyncStatus.RUNNING:
                raise CommandError(f"Sync run {run.pk} was not queued: {run.error}")
            self.stdout.write(f"Sync run {run.pk} ({kind}) queued on the 'warehouse' queue.")
            return
        self.stdout.write(f"Sync run {run.pk} ({kind}) running…")
        run_id = run.pk
        run = sync_run_execute(run_id=run_id)
        if run is None:
            raise CommandError(
                f"Sync run {run_id} could not be closed: the database did not answer. Its "
                "lease lapses and it is marked failed; the next push resumes it."
            )
        self._table(run)
        if run.status == SyncStatus.FAILED:
            raise CommandError(f"Sync run {run.pk} failed: {run.error}")
        if run.status == SyncStatus.PARTIAL:
            raise CommandError(f"Sync run {run.pk} ended partial: {run.error}", returncode=2)
        self.stdout.write(self.style.SUCCESS(f"Sync run {run.pk} succeeded."))

    def _table(self, run) -> None:
        self.stdout.write(f"{'model':<10} {'synced':>10} {'errors':>8}")
        for result in run.results.order_by("id"):
            self.stdout.write(
                f"{result.model:<10} {result.objects_synced:>10,} {result.errors:>8,}"
            )
            for message in result.error_messages[:5]:
                self.stdout.write(f"    {message}")
        seconds = run.duration.total_seconds() if run.duration else 0
        self.stdout.write(
            f"{'total':<10} {run.objects_synced:>10,} {run.errors:>8,}   "
            f"status {run.status}, {seconds:.1f}s"
        )
