"""Sync runs: what changes, the single-flight lease, refusals, enqueueing, the summary."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations.services import integration_ensure, integration_update
from planhat_segment.models import Company, EndUser, License
from tests.factories import CompanyFactory, EndUserFactory, LicenseFactory
from warehouse_sync import tasks
from warehouse_sync.models import SyncModelResult, SyncRun, SyncStatus
from warehouse_sync.selectors import last_sync_summary
from warehouse_sync.services import SyncRefused, sync_run_execute, sync_run_start

from .conftest import integration_aim_at, push


@pytest.fixture
def two_companies(db):
    a = CompanyFactory(external_id="A")
    b = CompanyFactory(external_id="B")
    lic = LicenseFactory(company=a)
    EndUserFactory(company=a)
    EndUserFactory(company=b)
    return a, b, lic


@pytest.mark.django_db
def test_incremental_sends_only_changes_and_the_company_of_a_changed_license(
    warehouse, sink, two_companies
):
    a, _b, lic = two_companies
    assert push().objects_synced == 5
    sink.reset()
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert sink.messages == []  # nothing changed: nothing resent
    lic.mrr = 250
    lic.save()
    run = push()
    sent = sorted(m["anonymousId"] for m in sink.messages)
    assert sent == sorted([f"planhat:license:{lic.pk}", f"planhat:company:{a.pk}"])
    [group] = sink.of_type("group")
    assert group["traits"]["mrr"] == {"USD": 250.0}
    assert {r.model: r.objects_synced for r in run.results.all()} == {
        "company": 1,
        "enduser": 0,
        "license": 1,
        "asset": 0,
        "project": 0,
    }


@pytest.mark.django_db
def test_incremental_sends_the_company_of_a_deleted_license_once(warehouse, sink, two_companies):
    _a, _b, lic = two_companies
    push()
    sink.reset()
    License.objects.filter(pk=lic.pk).delete()
    push()
    assert len(sink.of_type("track", "License Deleted")) == 1
    [group] = sink.of_type("group")
    assert group["groupId"] == "A"
    assert group["traits"]["mrr"] == {}
    sink.reset()
    push()
    assert sink.messages == []


@pytest.mark.django_db
def test_full_sends_everything_again(warehouse, sink, two_companies):
    push()
    sink.reset()
    run = push(full=True)
    assert run.full
    assert len(sink.messages) == 5


@pytest.mark.django_db
def test_failed_run_does_not_move_the_mark(warehouse, sink, two_companies):
    push()
    a, _b, _lic = two_companies
    a.name = "A renamed"
    a.save()
    sink.script("401")
    assert push().status == SyncStatus.FAILED
    sink.reset()
    push()
    assert [m["anonymousId"] for m in sink.messages] == [f"planhat:company:{a.pk}"]


@pytest.mark.django_db
def test_safety_margin_resends_objects_committed_late(warehouse, sink, settings, two_companies):
    settings.WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS = 300
    a, b, _lic = two_companies
    run = push()
    sink.reset()
    # A change that committed late, stamped 2 minutes before the run started, is resent;
    # one stamped 10 minutes before is not (it was sent by that run).
    Company.objects.filter(pk=a.pk).update(updated_at=run.started_at - timedelta(minutes=2))
    Company.objects.filter(pk=b.pk).update(updated_at=run.started_at - timedelta(minutes=10))
    EndUser.objects.update(updated_at=run.started_at - timedelta(minutes=10))
    License.objects.update(updated_at=run.started_at - timedelta(minutes=10))
    push()
    assert [m["anonymousId"] for m in sink.messages] == [f"planhat:company:{a.pk}"]


@pytest.mark.django_db
def test_models_option_limits_the_run_and_keeps_marks_per_model(warehouse, sink, two_companies):
    run = push(models=["company"])
    assert run.synced_models == ["company"]
    assert {m["type"] for m in sink.messages} == {"group"}
    sink.reset()
    # Endusers were never pushed: the next full-model incremental run still sends them all.
    push()
    assert sorted(m["type"] for m in sink.messages) == ["identify", "identify", "track"]


@pytest.mark.django_db
def test_start_refuses_unknown_or_unsynced_models(warehouse):
    with pytest.raises(SyncRefused, match="Unknown model"):
        sync_run_start(trigger="command", models=["invoice"])
    integration_update(integration=warehouse, synced_models=["company"])
    with pytest.raises(SyncRefused, match="Not among the synced models"):
        sync_run_start(trigger="command", models=["enduser"])
    assert SyncRun.objects.count() == 0


@pytest.mark.django_db
def test_start_refuses_when_section_is_off(integration):
    with pytest.raises(SyncRefused) as exc:
        sync_run_start(trigger="manual")
    assert "section is off" in exc.value.message
    assert SyncRun.objects.count() == 0


@pytest.mark.django_db
def test_start_refuses_without_write_key(warehouse):
    warehouse.write_key = ""
    warehouse.save()
    with pytest.raises(SyncRefused, match="No Segment write key"):
        sync_run_start(trigger="manual")


@pytest.mark.django_db
def test_second_trigger_is_refused_while_a_run_holds_the_lease(warehouse):
    first = sync_run_start(trigger="manual", enqueue=False)
    with pytest.raises(SyncRefused, match="already running"):
        sync_run_start(trigger="command", enqueue=False)
    assert list(SyncRun.objects.values_list("pk", "status")) == [(first.pk, "running")]


@pytest.mark.django_db
def test_lapsed_run_is_marked_failed_and_next_trigger_proceeds(warehouse, sink, two_companies):
    dead = sync_run_start(trigger="schedule", enqueue=False)
    lapsed_at = timezone.now() - timedelta(seconds=1)
    SyncRun.objects.filter(pk=dead.pk).update(lease_expires_at=lapsed_at)
    run = push(trigger="manual")
    assert run.status == SyncStatus.SUCCEEDED
    dead.refresh_from_db()
    assert dead.status == SyncStatus.FAILED
    assert dead.error == f"worker stopped; lease lapsed at {lapsed_at:%Y-%m-%d %H:%M:%S} UTC"
    assert dead.finished_at is not None
    # A worker that picks up the dead run's message later does nothing.
    assert sync_run_execute(run_id=dead.pk) is None
    dead.refresh_from_db()
    assert dead.status == SyncStatus.FAILED


@pytest.mark.django_db
def test_beat_check_reaps_a_lapsed_run(warehouse):
    dead = sync_run_start(trigger="schedule", enqueue=False)
    SyncRun.objects.filter(pk=dead.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    tasks.reap_lapsed_runs()
    dead.refresh_from_db()
    assert dead.status == SyncStatus.FAILED
    assert dead.error.startswith("worker stopped; lease lapsed at")


@pytest.mark.django_db
def test_run_whose_lease_was_taken_away_stops_writing(warehouse, sink, settings):
    settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES = 1
    Company.objects.bulk_create([Company(name=f"C{i}") for i in range(3)])
    run = sync_run_start(trigger="manual", enqueue=False)
    # Another process reaped the run (it looked dead); the worker must notice and stop.
    original_pace = None

    def reaping_pace(count):
        SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.FAILED, error="reaped")
        return original_pace(count)

    from warehouse_sync.services import runs

    client = runs.client_for(integration=integration_ensure())
    original_pace = client.pace
    client.pace = reaping_pace
    result = sync_run_execute(run_id=run.pk, client=client)
    assert result.status == SyncStatus.FAILED
    assert result.error == "reaped"
    assert len(sink.requests) == 1  # stopped after the first batch


@pytest.mark.django_db
def test_start_enqueues_run_sync_after_commit(
    warehouse, monkeypatch, django_capture_on_commit_callbacks
):
    calls = []
    monkeypatch.setattr(tasks.run_sync, "apply_async", lambda **kw: calls.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        run = sync_run_start(trigger="manual")
        assert calls == []  # not inside the transaction
    assert calls == [{"args": [run.pk], "queue": "warehouse", "retry": False}]
    assert run.status == SyncStatus.RUNNING
    assert run.lease_expires_at > timezone.now()
    assert set(SyncModelResult.objects.filter(run=run).values_list("model", flat=True)) == {
        "company",
        "enduser",
        "license",
        "asset",
        "project",
    }


@pytest.mark.django_db
def test_broker_failure_marks_the_run_failed(
    warehouse, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise ConnectionRefusedError("redis down")

    monkeypatch.setattr(tasks.run_sync, "apply_async", broken)
    with django_capture_on_commit_callbacks(execute=True):
        run = sync_run_start(trigger="manual")
    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED
    assert "could not queue the push" in run.error


@pytest.mark.django_db
def test_scheduled_sync_skips_silently_when_section_is_off(integration, caplog):
    caplog.set_level("INFO")
    tasks.scheduled_sync()
    assert SyncRun.objects.count() == 0
    assert "warehouse_sync_scheduled_skipped" in caplog.text
    assert "section is off" in caplog.text


@pytest.mark.django_db
def test_scheduled_sync_starts_a_schedule_run(
    warehouse, monkeypatch, django_capture_on_commit_callbacks
):
    calls = []
    monkeypatch.setattr(tasks.run_sync, "apply_async", lambda **kw: calls.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.scheduled_sync()
    run = SyncRun.objects.get()
    assert (run.trigger, run.full, run.status) == ("schedule", False, "running")
    assert calls == [{"args": [run.pk], "queue": "warehouse", "retry": False}]
    # A second beat tick while it runs is skipped, not an error.
    tasks.scheduled_sync()
    assert SyncRun.objects.count() == 1


@pytest.mark.django_db
def test_run_sync_task_fails_the_run_if_section_was_turned_off(warehouse, sink, two_companies):
    run = sync_run_start(trigger="manual", enqueue=False)
    integration_update(integration=warehouse, warehouse_enabled=False)
    tasks.run_sync(run.pk)
    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED
    assert "section is off" in run.error
    assert sink.messages == []


@pytest.mark.django_db
def test_last_sync_summary(warehouse, sink, settings, two_companies):
    assert last_sync_summary() is None
    settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES = 2
    sink.script("200")
    sink.script("400", body="nope")
    run = push(trigger="manual")
    summary = last_sync_summary()
    assert summary["id"] == run.pk
    assert summary["status"] == "partial"
    assert summary["trigger"] == "manual"
    assert summary["full"] is False
    assert summary["started_at"] == run.started_at
    assert summary["finished_at"] == run.finished_at
    assert summary["duration"] == run.finished_at - run.started_at
    rows = {r["model"]: r for r in summary["models"]}
    assert rows["company"] == {
        "model": "company",
        "objects_synced": 2,
        "errors": 0,
        "error_messages": [],
    }
    assert rows["enduser"]["errors"] == 2
    assert "nope" in rows["enduser"]["error_messages"][0]
    assert summary["history_url"] == "/admin/warehouse_sync/syncrun/"
    assert summary["admin_url"] == f"/admin/warehouse_sync/syncrun/{run.pk}/change/"
    # A running run is what the page shows while it runs.
    running = sync_run_start(trigger="command", enqueue=False)
    assert last_sync_summary()["id"] == running.pk
    assert last_sync_summary()["status"] == "running"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_triggers_one_is_refused_on_postgres(sink):
    integration_aim_at(sink)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def trigger():
        try:
            barrier.wait()
            sync_run_start(trigger="manual", enqueue=False)
            outcomes.append("started")
        except SyncRefused as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("started") == 1
    assert all("already running" in o for o in outcomes if o != "started")
    assert SyncRun.objects.filter(status="running").count() == 1


@pytest.mark.django_db
def test_change_mark_finds_a_model_pushed_before_many_runs_of_others(warehouse, sink, settings):
    from warehouse_sync.services.changes import change_mark

    settings.WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS = 60
    first = push(models=["company", "license"])
    # 60 later runs pushed companies only (more than any "last N runs" window would read).
    started = first.started_at
    for i in range(60):
        run = SyncRun.objects.create(
            trigger="command",
            status=SyncStatus.SUCCEEDED,
            synced_models=["company"],
            started_at=started + timedelta(minutes=i + 1),
        )
        SyncModelResult.objects.create(run=run, model="company")
    SyncRun.objects.create(
        trigger="command",
        status=SyncStatus.FAILED,
        synced_models=["license"],
        started_at=started + timedelta(hours=3),
    ).results.create(model="license")  # a failed run does not move the mark
    assert change_mark(model="license") == started - timedelta(seconds=60)
    assert change_mark(model="company") == started + timedelta(minutes=60, seconds=-60)
    assert change_mark(model="enduser") is None


@pytest.mark.django_db
def test_scheduled_sync_checks_the_refusal_once(integration, monkeypatch):
    from warehouse_sync.services import runs

    calls = []
    refusal = runs.sync_run_refusal
    monkeypatch.setattr(runs, "sync_run_refusal", lambda **kw: calls.append(kw) or refusal(**kw))
    tasks.scheduled_sync()
    assert len(calls) == 1
    assert SyncRun.objects.count() == 0


@pytest.mark.django_db
def test_deleting_test_data_pushes_nothing(warehouse, sink):
    test_company = CompanyFactory(is_test=True)
    EndUserFactory(company=test_company)
    LicenseFactory(company=test_company)
    real = CompanyFactory()
    test_user = EndUserFactory(company=real, is_test=True)
    push()
    sink.reset()
    test_user.delete()
    test_company.delete()
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert sink.messages == []  # no "Deleted" event, and no company resent for it
