"""The run history in the admin (with "Push data to Segment") and the read-only REST API."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import CompanyFactory
from warehouse_sync import tasks
from warehouse_sync.models import SyncRun

from .conftest import push

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_broker(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.run_sync, "apply_async", lambda **kw: calls.append(kw))
    return calls


def test_admin_changelist_and_run_page_show_results(admin_client_logged_in, warehouse, sink):
    CompanyFactory(custom={"blob": "x" * 40_000})
    CompanyFactory()
    run = push(trigger="manual")
    changelist = admin_client_logged_in.get(reverse("admin:warehouse_sync_syncrun_changelist"))
    assert changelist.status_code == 200
    body = changelist.content.decode()
    assert "Push data to Segment" in body
    assert "Partial (some objects failed)" in body
    page = admin_client_logged_in.get(reverse("admin:warehouse_sync_syncrun_change", args=[run.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "over Segment&#x27;s 32 KB limit" in text
    assert "First error messages" in text


def test_admin_push_button_starts_a_run(
    admin_client_logged_in, warehouse, no_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_logged_in.post(
            reverse("admin:warehouse_sync_syncrun_push"), follow=True
        )
    run = SyncRun.objects.get()
    assert (run.trigger, run.status) == ("manual", "running")
    assert no_broker == [{"args": [run.pk], "queue": "warehouse", "retry": False}]
    assert f"Push to Segment started (run {run.pk})" in response.content.decode()


def test_admin_push_button_refused_when_off(admin_client_logged_in, integration):
    response = admin_client_logged_in.post(
        reverse("admin:warehouse_sync_syncrun_push"), follow=True
    )
    assert "section is off" in response.content.decode()
    assert SyncRun.objects.count() == 0


def test_admin_push_action_refuses_second_run(admin_client_logged_in, warehouse, no_broker):
    from warehouse_sync.services import sync_run_start

    first = sync_run_start(trigger="schedule", enqueue=False)
    response = admin_client_logged_in.post(
        reverse("admin:warehouse_sync_syncrun_changelist"),
        {"action": "push_data_to_segment", "_selected_action": [first.pk]},
        follow=True,
    )
    assert "already running" in response.content.decode()
    assert SyncRun.objects.count() == 1


def test_admin_is_read_only(admin_client_logged_in):
    response = admin_client_logged_in.get("/admin/warehouse_sync/syncrun/add/")
    assert response.status_code == 403


def test_api_lists_runs_with_nested_results(api_client, warehouse, sink):
    CompanyFactory()
    run = push()
    response = api_client.get("/api/sync-runs/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == run.pk
    assert row["status"] == "succeeded"
    assert row["objects_synced"] == 1
    assert {r["model"]: r["objects_synced"] for r in row["results"]}["company"] == 1
    detail = api_client.get(f"/api/sync-runs/{run.pk}/").json()
    assert detail["duration_seconds"] >= 0
    assert api_client.get("/api/sync-runs/?status=failed").json()["results"] == []


def test_api_needs_a_token(client, db):
    assert client.get("/api/sync-runs/").status_code in (401, 403)
