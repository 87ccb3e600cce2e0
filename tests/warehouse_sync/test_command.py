"""``manage.py push_to_segment``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import CompanyFactory, EndUserFactory
from warehouse_sync import tasks
from warehouse_sync.models import SyncRun, SyncStatus

pytestmark = pytest.mark.django_db


def _call(*args) -> str:
    out = StringIO()
    call_command("push_to_segment", *args, stdout=out)
    return out.getvalue()


def test_command_wait_runs_in_process_and_prints_the_table(warehouse, sink):
    company = CompanyFactory()
    EndUserFactory(company=company)
    out = _call("--wait")
    run = SyncRun.objects.get()
    assert (run.trigger, run.status, run.full) == ("command", "succeeded", False)
    assert "company             1        0" in out
    assert "enduser             1        0" in out
    assert f"Sync run {run.pk} succeeded." in out
    assert len(sink.messages) == 2


def test_command_full_with_models(warehouse, sink):
    company = CompanyFactory()
    EndUserFactory(company=company)
    _call("--wait")
    sink.reset()
    _call("--wait", "--full", "--models", "company")
    run = SyncRun.objects.order_by("-id").first()
    assert run.full and run.synced_models == ["company"]
    assert [m["type"] for m in sink.messages] == ["group"]


def test_command_without_wait_queues_the_run(
    warehouse, monkeypatch, django_capture_on_commit_callbacks
):
    calls = []
    monkeypatch.setattr(tasks.run_sync, "apply_async", lambda **kw: calls.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        out = _call()
    run = SyncRun.objects.get()
    assert run.status == SyncStatus.RUNNING
    assert calls == [{"args": [run.pk], "queue": "warehouse", "retry": False}]
    assert f"Sync run {run.pk} (incremental) queued" in out


def test_command_refused_when_section_is_off(integration):
    with pytest.raises(
        CommandError, match="Push refused: The Segment data warehouse section is off"
    ):
        _call("--wait")
    assert SyncRun.objects.count() == 0


def test_command_refused_while_running(warehouse):
    from warehouse_sync.services import sync_run_start

    sync_run_start(trigger="manual", enqueue=False)
    with pytest.raises(CommandError, match="already running"):
        _call("--wait")


def test_command_unknown_model(warehouse):
    with pytest.raises(CommandError, match="Unknown model"):
        _call("--models", "company,invoices")


def test_command_exits_non_zero_on_failed_run(warehouse, sink):
    CompanyFactory()
    sink.script("401")
    with pytest.raises(CommandError, match="failed: write key rejected"):
        _call("--wait")


def test_command_exits_2_on_partial_run(warehouse, sink):
    CompanyFactory(custom={"blob": "x" * 40_000})
    with pytest.raises(CommandError, match="ended partial") as exc:
        _call("--wait")
    assert exc.value.returncode == 2
