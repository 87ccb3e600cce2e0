"""A push whose worker dies, a database cut during a push, a broker that is down (issue 9).

Found: a push whose worker died stayed "running" and refused every push for ten minutes,
then failed and never resumed; a database cut crashed the run's error handler;
``push_to_segment`` with the broker down printed "queued" and exited 0. The recovery figure
(a dead run detected within 60 s) is measured by ``scripts/fault_recovery.py``.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from planhat_segment.models import Company
from tests.warehouse_sync.conftest import integration_aim_at, push
from tests.warehouse_sync.sink import Sink
from warehouse_sync import tasks
from warehouse_sync.models import SyncRun, SyncStatus
from warehouse_sync.services import ledger as ledger_module
from warehouse_sync.services import runs, sync_run_execute, sync_run_start, sync_runs_reap_lapsed


@pytest.fixture(autouse=True)
def _fast_push(settings):
    settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 0
    settings.WAREHOUSE_PUSH_BACKOFF_SECONDS = 0.01
    settings.WAREHOUSE_PUSH_BACKOFF_MAX_SECONDS = 2
    settings.WAREHOUSE_PUSH_TIMEOUT_SECONDS = 10
    settings.WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS = 0
    settings.WAREHOUSE_PUSH_CONCURRENCY = 1
    settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES = 10


def companies(n: int) -> list[int]:
    Company.objects.bulk_create([Company(name=f"C{i}", external_id=f"C-{i:03d}") for i in range(n)])
    return list(Company.objects.order_by("pk").values_list("pk", flat=True))


def sent_pks(sink: Sink) -> list[int]:
    return [int(m["anonymousId"].rsplit(":", 1)[1]) for m in sink.of_type("group")]


class WorkerDied(BaseException):
    """What kill -9 does to a run, minus the process: nothing of the run's code handles it."""


def die_at_account(monkeypatch, n: int) -> None:
    """The worker dies while accounting its ``n``-th batch (posted, not accounted)."""
    real = ledger_module.RunLedger.account
    seen = []

    def account(self, batch, result):
        seen.append(batch.sequence)
        if len(seen) == n:
            raise WorkerDied
        return real(self, batch, result)

    monkeypatch.setattr(ledger_module.RunLedger, "account", account)


# --- the next run sends what the dead one did not ----------------------------------------------


@pytest.mark.django_db
def test_next_run_resumes_a_dead_run_from_its_checkpoint(sink, monkeypatch):
    integration_aim_at(sink)
    pks = companies(100)
    run = sync_run_start(trigger="manual", models=["company"], enqueue=False)
    die_at_account(monkeypatch, 4)
    with pytest.raises(WorkerDied):
        sync_run_execute(run_id=run.pk)
    monkeypatch.undo()
    dead = SyncRun.objects.get(pk=run.pk)
    assert dead.status == SyncStatus.RUNNING  # nobody closed it: the worker is gone
    assert dead.checkpoint == {"company": {"object": pks[29]}}
    first = sent_pks(sink)
    assert first == pks[:40]  # batch 4 reached Segment, but its outcome was never recorded
    # An object already sent changes while the run is dead: it must go out again.
    Company.objects.filter(pk=pks[5]).update(name="Renamed", updated_at=timezone.now())

    SyncRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    assert sync_runs_reap_lapsed() == [run.pk]
    sink.reset()
    resumed = push(trigger="schedule", models=["company"])

    assert resumed.status == SyncStatus.SUCCEEDED
    assert resumed.scope["company"]["resumes"] == run.pk
    again = sent_pks(sink)
    assert again == [pks[5], *pks[30:]]  # the change, then what the dead run did not settle
    # In-flight objects sent twice carry the same message id both times.
    by_id = {}
    for m in sink.messages:
        by_id.setdefault(m["anonymousId"], set()).add(m["messageId"])
    assert len(by_id[f"planhat:company:{pks[35]}"]) == 1


@pytest.mark.django_db
def test_a_resumed_run_that_dies_too_is_resumed_in_turn(sink, monkeypatch):
    integration_aim_at(sink)
    pks = companies(60)
    for die_at in (2, 3):
        run = sync_run_start(trigger="manual", models=["company"], enqueue=False)
        die_at_account(monkeypatch, die_at)
        with pytest.raises(WorkerDied):
            sync_run_execute(run_id=run.pk)
        monkeypatch.undo()
        SyncRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(1))
        sync_runs_reap_lapsed()
    sink.reset()
    last = push(models=["company"])
    # First run settled 10, the second 20 more (it started after pk 10): 30 left.
    assert sent_pks(sink) == pks[30:]
    assert last.status == SyncStatus.SUCCEEDED


@pytest.mark.django_db
def test_a_full_run_after_an_incremental_dead_one_sends_everything(sink, monkeypatch):
    integration_aim_at(sink)
    pks = companies(30)
    push(models=["company"])  # a completed run: the next one is incremental
    Company.objects.update(updated_at=timezone.now() + timedelta(seconds=1))
    run = sync_run_start(trigger="manual", models=["company"], enqueue=False)
    die_at_account(monkeypatch, 2)
    with pytest.raises(WorkerDied):
        sync_run_execute(run_id=run.pk)
    monkeypatch.undo()
    assert SyncRun.objects.get(pk=run.pk).scope["company"]["since"] is not None
    SyncRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    sync_runs_reap_lapsed()
    sink.reset()
    full = push(full=True, models=["company"])
    assert full.scope["company"]["resumes"] is None
    assert sent_pks(sink) == pks


# --- the heartbeat ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_queued_run_keeps_the_long_lease_until_a_worker_takes_it(settings, sink):
    integration_aim_at(sink)
    settings.WAREHOUSE_PUSH_QUEUED_LEASE_SECONDS = 600
    settings.WAREHOUSE_PUSH_LEASE_SECONDS = 30
    run = sync_run_start(trigger="manual", enqueue=False)
    assert run.lease_expires_at > timezone.now() + timedelta(seconds=500)
    taken = runs._run_take_over(run_id=run.pk)
    assert taken.lease_expires_at < timezone.now() + timedelta(seconds=31)
    assert set(taken.scope) == set(taken.synced_models)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_the_lease_while_one_batch_retries(settings, sink):
    # The lease is one second; one batch takes three (slow answer, then a retried 503): a
    # reaper running all along must find the run alive, thanks to the heartbeat thread.
    integration_aim_at(sink)
    settings.WAREHOUSE_PUSH_LEASE_SECONDS = 1
    settings.WAREHOUSE_PUSH_HEARTBEAT_SECONDS = 0.2
    companies(5)
    sink.script("slow", delay=1.5)
    sink.script("503")
    sink.script("slow", delay=1.5)
    reaped: list[int] = []
    done = threading.Event()

    def reaper():
        try:
            while not done.is_set():
                reaped.extend(sync_runs_reap_lapsed())
                time.sleep(0.1)
        finally:
            connection.close()

    thread = threading.Thread(target=reaper)
    thread.start()
    try:
        run = push(models=["company"])
    finally:
        done.set()
        thread.join()
    assert reaped == []
    assert run.status == SyncStatus.SUCCEEDED
    assert len(sink.of_type("group")) == 5


@pytest.mark.django_db(transaction=True)
def test_a_dead_worker_lets_the_lease_lapse_soon(settings, sink, monkeypatch):
    integration_aim_at(sink)
    settings.WAREHOUSE_PUSH_LEASE_SECONDS = 1
    settings.WAREHOUSE_PUSH_HEARTBEAT_SECONDS = 0.2
    companies(30)
    run = sync_run_start(trigger="manual", models=["company"], enqueue=False)
    die_at_account(monkeypatch, 2)
    with pytest.raises(WorkerDied):
        sync_run_execute(run_id=run.pk)
    # The heartbeat died with the worker: within about one lease the run is reaped.
    deadline = time.monotonic() + 20
    reaped: list[int] = []
    while not reaped and time.monotonic() < deadline:
        reaped = sync_runs_reap_lapsed()
        time.sleep(0.2)
    assert reaped == [run.pk]
    assert "worker stopped" in SyncRun.objects.get(pk=run.pk).error


# --- a database cut during a push ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_cut_during_a_push_leaves_the_run_to_its_lease_without_crashing(
    settings, sink, proxy_to
):
    integration_aim_at(sink)
    settings.WAREHOUSE_PUSH_LEASE_SECONDS = 1
    settings.WAREHOUSE_PUSH_HEARTBEAT_SECONDS = 0.2
    pks = companies(50)
    run = sync_run_start(trigger="manual", models=["company"], enqueue=False)
    db = connection.settings_dict
    saved = (db["HOST"], db["PORT"])
    proxy = proxy_to(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    client = runs.client_for(integration=runs.integration_ensure())
    real_pace = client.pace
    paced = []

    def pace(count):  # before the third batch is posted, the database goes away
        paced.append(count)
        if len(paced) == 3:
            proxy.drop()
        return real_pace(count)

    client.pace = pace
    try:
        connection.close()
        db["HOST"], db["PORT"] = "127.0.0.1", str(proxy.port)
        result = sync_run_execute(run_id=run.pk, client=client)  # must not raise
        assert result is None
    finally:
        proxy.forward()
        connection.close()
        db["HOST"], db["PORT"] = saved
    left = SyncRun.objects.get(pk=run.pk)
    assert left.status == SyncStatus.RUNNING
    assert left.checkpoint == {"company": {"object": pks[19]}}
    deadline = time.monotonic() + 20
    while not sync_runs_reap_lapsed() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert SyncRun.objects.get(pk=run.pk).status == SyncStatus.FAILED
    sink.reset()
    push(models=["company"])
    assert sent_pks(sink) == pks[20:]


# --- the command with the broker down ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_push_command_with_the_broker_down_says_so_and_exits_non_zero(sink, monkeypatch):
    # Transactional: the run is queued after the trigger's commit, as in a real command.
    integration_aim_at(sink)

    def broker_down(**kwargs):
        raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(tasks.run_sync, "apply_async", broker_down)
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("push_to_segment", stdout=out)
    run = SyncRun.objects.get()
    assert run.status == SyncStatus.FAILED
    assert f"Sync run {run.pk} was not queued" in str(caught.value)
    assert "could not queue the push" in str(caught.value)
    assert "queued on" not in out.getvalue()
    assert caught.value.returncode == 1
