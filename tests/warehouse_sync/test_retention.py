"""Retention of sync runs, sync batches, failed objects and tombstones (the daily purge)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from planhat_segment.models import Tombstone
from tests.factories import CompanyFactory, EndUserFactory
from warehouse_sync import tasks
from warehouse_sync.models import FailedObject, SyncBatch, SyncModelResult, SyncRun, SyncStatus
from warehouse_sync.services import sync_history_purge
from warehouse_sync.services.changes import change_mark

from .conftest import push

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _retention(settings):
    settings.WAREHOUSE_RUN_RETENTION_DAYS = 90
    settings.WAREHOUSE_BATCH_RETENTION_DAYS = 14
    settings.WAREHOUSE_FAILED_OBJECT_RETENTION_DAYS = 30
    settings.WAREHOUSE_TOMBSTONE_RETENTION_DAYS = 30


def _run(days_ago: int, *, models=("company",), status=SyncStatus.SUCCEEDED) -> SyncRun:
    run = SyncRun.objects.create(
        trigger="command",
        status=status,
        synced_models=list(models),
        started_at=timezone.now() - days_ago * DAY,
        lease_expires_at=timezone.now() + DAY if status == SyncStatus.RUNNING else None,
    )
    SyncModelResult.objects.bulk_create([SyncModelResult(run=run, model=m) for m in models])
    return run


def test_sync_batches_past_their_retention_are_purged():
    run = _run(1)
    now = timezone.now()
    for sequence, days_ago in enumerate((20, 15, 13, 0), start=1):
        SyncBatch.objects.create(
            run=run, sequence=sequence, messages=1, body_bytes=10, sent_at=now - days_ago * DAY
        )
    assert sync_history_purge(now=now).batches == 2
    assert sorted(SyncBatch.objects.values_list("sequence", flat=True)) == [3, 4]


def test_runs_past_their_retention_are_purged_except_those_still_needed():
    enduser_mark = _run(200, models=("company", "enduser"))  # enduser's last completed run
    superseded = _run(100)
    failed = _run(100, status=SyncStatus.FAILED)
    running = _run(95, status=SyncStatus.RUNNING)
    holding = _run(120, status=SyncStatus.PARTIAL)  # its failed object is still retried
    FailedObject.objects.create(
        model="company", object_pk=1, run=holding, error="x", failed_at=timezone.now()
    )
    company_mark = _run(10)
    SyncBatch.objects.create(run=superseded, sequence=1, messages=1, body_bytes=1)
    marks = {m: change_mark(model=m) for m in ("company", "enduser")}

    summary = sync_history_purge()

    assert summary.runs == 2
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {
        enduser_mark.pk,
        running.pk,
        holding.pk,
        company_mark.pk,
    }
    assert not SyncRun.objects.filter(pk__in=[superseded.pk, failed.pk]).exists()
    assert not SyncBatch.objects.exists()  # went with its run
    assert not SyncModelResult.objects.filter(run_id=superseded.pk).exists()
    assert {m: change_mark(model=m) for m in ("company", "enduser")} == marks


def test_failed_objects_are_retried_for_their_retention_from_the_first_failure(warehouse, sink):
    big = EndUserFactory(custom={"blob": "x" * 40_000})  # over Segment's 32 KB: always fails
    assert push().status == SyncStatus.PARTIAL
    first = FailedObject.objects.get(object_pk=big.pk)
    second_run = push()
    assert second_run.status == SyncStatus.PARTIAL  # retried, failed again
    again = FailedObject.objects.get(object_pk=big.pk)
    assert again.run_id == second_run.pk
    assert again.failed_at == first.failed_at  # still the first failure's time

    assert sync_history_purge(now=first.failed_at + 29 * DAY).failed_objects == 0
    assert sync_history_purge(now=first.failed_at + 31 * DAY).failed_objects == 1
    assert not FailedObject.objects.exists()
    # No longer retried: the next run leaves the unchanged object alone.
    assert push().status == SyncStatus.SUCCEEDED


def test_a_tombstone_is_purged_only_once_a_completed_push_sent_it(warehouse, sink):
    sent = CompanyFactory()
    sent.delete()
    later = timezone.now() + 40 * DAY
    assert sync_history_purge(now=later).tombstones == 0  # never pushed: kept

    sink.script("401")  # a failed push does not send it either
    assert push().status == SyncStatus.FAILED
    assert sync_history_purge(now=later).tombstones == 0

    assert push().status == SyncStatus.SUCCEEDED
    unsent = CompanyFactory()
    unsent.delete()  # after the push: not sent yet
    assert Tombstone.objects.count() == 2
    assert sync_history_purge(now=timezone.now() + 20 * DAY).tombstones == 0  # too young
    assert sync_history_purge(now=later).tombstones == 1
    [kept] = Tombstone.objects.all()
    assert kept.deleted_at > SyncRun.objects.filter(status=SyncStatus.SUCCEEDED).get().started_at


def test_a_tombstone_whose_push_failed_is_kept(warehouse, sink):
    company = CompanyFactory()
    pk = company.pk
    company.delete()
    tombstone = Tombstone.objects.get()
    sink.script("400")  # a permanent error: the deletion is a failed object, retried later
    assert push().status == SyncStatus.PARTIAL
    assert FailedObject.objects.filter(kind="tombstone", object_pk=tombstone.pk).exists()
    assert sync_history_purge(now=timezone.now() + 25 * DAY).tombstones == 0
    assert Tombstone.objects.filter(object_pk=pk).exists()


def test_full_push_sends_the_tombstones_still_kept(warehouse, sink):
    old = CompanyFactory(external_id="OLD")
    old.delete()
    push()
    Tombstone.objects.update(deleted_at=timezone.now() - 60 * DAY)  # long sent
    recent = CompanyFactory(external_id="RECENT")
    recent.delete()
    push()  # sends "RECENT"'s deletion
    assert sync_history_purge().tombstones == 1

    sink.reset()
    push(full=True)
    deleted = sink.of_type("track", "Company Deleted")
    assert [m["properties"]["external_id"] for m in deleted] == ["RECENT"]


def test_purge_history_task_purges_and_reports():
    run = _run(1)
    SyncBatch.objects.create(
        run=run, sequence=1, messages=1, body_bytes=1, sent_at=timezone.now() - 30 * DAY
    )
    assert tasks.purge_history() == {"failed_objects": 0, "runs": 0, "batches": 1, "tombstones": 0}
    assert not SyncBatch.objects.exists()
