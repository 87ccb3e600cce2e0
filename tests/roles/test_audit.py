"""The audit log: who changed what and when — never the secret itself."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.urls import reverse

from integrations.models import IntegrationSettings, MetricDefinition
from integrations.services import integration_update
from planhat_segment.audit import changes_describe
from planhat_segment.models import Company
from usage.models import InboxEvent
from warehouse_sync.models import SyncRun

pytestmark = pytest.mark.django_db

PAGE = "/admin/integrations/segment/"
ADMIN = "Integration admin"


@pytest.fixture
def admin_client(client_in_role):
    return client_in_role(ADMIN)


@pytest.fixture
def api_admin(api_client_in_role):
    return api_client_in_role(ADMIN)


def only_entry() -> LogEntry:
    entries = list(LogEntry.objects.all())
    assert len(entries) == 1, [e.change_message for e in entries]
    return entries[0]


def test_saving_the_warehouse_section_records_changes_without_the_key(admin_client, integration):
    answer = admin_client.post(
        PAGE,
        {
            "action": "save_warehouse",
            "warehouse_enabled": "on",
            "write_key": "wk_live_abcdefgh1234",
            "region": "eu",
            "synced_models": ["company", "enduser"],
        },
    )
    assert answer.status_code == 302
    entry = only_entry()
    assert entry.user == admin_client.user
    assert entry.action_flag == CHANGE
    assert entry.content_type.model_class() is IntegrationSettings
    message = entry.change_message
    assert message.startswith("Settings changed (integration page): ")
    assert "Segment data warehouse: off → on" in message
    assert "Write key set" in message
    assert "Region: us → eu" in message
    assert "Synced models: company, enduser, license, asset, project → company, enduser" in message
    assert "wk_live" not in message and "1234" not in message


def test_changing_and_clearing_the_shared_secret_never_writes_it(admin_client, integration):
    integration_update(integration=integration, shared_secret="old-secret-1")
    form = {"action": "save_tracking", "user_tracking_enabled": "on", "unassigned_wait_hours": 24}
    admin_client.post(PAGE, {**form, "shared_secret": "new-secret-2"})
    admin_client.post(PAGE, {**form, "clear_shared_secret": "on"})
    messages = [e.change_message for e in LogEntry.objects.order_by("pk")]
    assert len(messages) == 2
    assert "Shared secret changed" in messages[0] and "Shared secret cleared" in messages[1]
    assert not any("secret-1" in m or "secret-2" in m for m in messages)


def test_a_save_that_changes_nothing_records_nothing(admin_client, integration):
    admin_client.post(PAGE, {"action": "save_metrics", "company_metrics_enabled": "on"})
    assert not LogEntry.objects.exists()


def test_a_refused_save_records_nothing(client_in_role, integration):
    client_in_role("CS manager").post(PAGE, {"action": "save_metrics"})
    assert not LogEntry.objects.exists()


def test_token_rotation_is_recorded_without_either_token(admin_client, api_admin, integration):
    old = integration.tenant_token
    admin_client.post(PAGE, {"action": "rotate_token"})
    middle = IntegrationSettings.objects.get().tenant_token
    new = api_admin.post("/api/integration/rotate-token/").json()["tenant_token"]
    entries = list(LogEntry.objects.order_by("pk"))
    assert [e.user for e in entries] == [admin_client.user, api_admin.user]
    assert entries[0].change_message.startswith("Tenant token rotated (integration page)")
    assert entries[1].change_message.startswith("Tenant token rotated (API)")
    for entry in entries:
        for token in (old, middle, new):
            assert token not in entry.change_message


def test_push_is_recorded_on_its_run(admin_client, integration):
    integration_update(integration=integration, warehouse_enabled=True, write_key="wk_1234567890")
    admin_client.post(PAGE, {"action": "push", "full": "1"})
    run = SyncRun.objects.get()
    entry = only_entry()
    assert (entry.action_flag, entry.object_id) == (ADDITION, str(run.pk))
    assert entry.change_message == "Started a full push (integration page)."
    history = admin_client.get(reverse("admin:warehouse_sync_syncrun_history", args=[run.pk]))
    assert "Started a full push (integration page)." in history.content.decode()


def test_push_from_the_run_history_is_recorded(admin_client, integration):
    integration_update(integration=integration, warehouse_enabled=True, write_key="wk_1234567890")
    admin_client.post(reverse("admin:warehouse_sync_syncrun_push"))
    assert only_entry().change_message == "Started an incremental push (run history button)."


def test_a_refused_push_records_nothing(admin_client, integration):
    admin_client.post(PAGE, {"action": "push"})  # section 3 is off
    assert not SyncRun.objects.exists()
    assert not LogEntry.objects.exists()


def test_reprocess_is_recorded_with_the_ids(admin_client):
    rows = [
        InboxEvent.objects.create(
            message_id=f"m-{n}",
            request_id=uuid.uuid4(),
            type="track",
            payload={"event": "x"},
            status="failed",
        )
        for n in range(3)
    ]
    admin_client.post(
        reverse("admin:usage_inboxevent_changelist"),
        {"action": "reprocess_selected", "_selected_action": [r.pk for r in rows]},
    )
    entry = only_entry()
    assert entry.content_type.model_class() is InboxEvent
    assert entry.object_repr == "3 event(s)"
    ids = ", ".join(str(r.pk) for r in sorted(rows, key=lambda r: r.pk))
    assert entry.change_message == f"Reprocessed 3 event(s) (admin action): ids {ids}."


def test_settings_patch_on_the_api_is_recorded(api_admin, integration):
    api_admin.patch("/api/integration/", {"write_key": "wk_secret_98765"}, format="json")
    api_admin.patch("/api/integration/", {"create_endusers": True}, format="json")  # no change
    entry = only_entry()
    assert entry.change_message == "Settings changed (API): Write key set"
    assert entry.user == api_admin.user


def test_metric_definitions_are_recorded_from_page_and_api(admin_client, api_admin, integration):
    admin_client.post(PAGE, {"action": "add_metric", "key": "seats"})
    metric = MetricDefinition.objects.get(key="seats")
    api_admin.patch(f"/api/metric-definitions/{metric.pk}/", {"label": "Seats used"}, format="json")
    api_admin.delete(f"/api/metric-definitions/{metric.pk}/")
    api_admin.post("/api/metric-definitions/", {"key": "mau"}, format="json")
    other = MetricDefinition.objects.get(key="mau")
    admin_client.post(PAGE, {"action": "archive_metric", "metric_id": other.pk})
    admin_client.post(PAGE, {"action": "restore_metric", "metric_id": other.pk})
    admin_client.post(PAGE, {"action": "archive_metric", "metric_id": other.pk})
    admin_client.post(PAGE, {"action": "purge_metric", "metric_id": other.pk, "confirm_values": 0})
    api_admin.post(f"/api/metric-definitions/{metric.pk}/purge/", {"confirm_values": 0})
    entries = [(e.action_flag, e.change_message) for e in LogEntry.objects.order_by("pk")]
    assert entries == [
        (ADDITION, "Metric definition 'seats' added (integration page)."),
        (CHANGE, "Metric definition changed (API): Label: Seats → Seats used"),
        (CHANGE, "Metric definition 'seats' removed (archived; its values kept) (API)."),
        (ADDITION, "Metric definition 'mau' added (API)."),
        (CHANGE, "Metric definition 'mau' removed (archived; its values kept) (integration page)."),
        (CHANGE, "Metric definition 'mau' restored (integration page)."),
        (CHANGE, "Metric definition 'mau' removed (archived; its values kept) (integration page)."),
        (DELETION, "Metric definition 'mau' deleted with its values (integration page)."),
        (DELETION, "Metric definition 'seats' deleted with its values (API)."),
    ]


def test_csv_export_and_assignment_are_recorded(client_in_role):
    client = client_in_role("CS manager")
    acme = Company.objects.create(name="Acme", external_id="ACME")
    answer = client.post(
        reverse("admin:planhat_segment_company_changelist"),
        {"action": "export_csv", "_selected_action": [acme.pk]},
    )
    b"".join(answer.streaming_content)
    InboxEvent.objects.create(
        message_id="w-1",
        request_id=uuid.uuid4(),
        type="track",
        payload={},
        status="waiting",
        user_key="u-9",
    )
    client.post(
        reverse("admin:usage_inboxevent_unassigned"),
        {"user_key": "u-9", "email": "", "company_id": acme.pk},
    )
    messages = [e.change_message for e in LogEntry.objects.order_by("pk")]
    assert messages == [
        "Exported as CSV (admin action).",
        "Assigned to company 'Acme' from the unassigned users.",
    ]


def test_changes_describe_names_secrets_without_values():
    lines = changes_describe(
        before={"token": "", "key": "a", "secret": "s1", "flag": False, "n": 1},
        after={"token": "t", "key": "", "secret": "s2", "flag": True, "n": 1},
        secret_fields={"token", "key", "secret"},
    )
    assert lines == ["Token set", "Key cleared", "Secret changed", "Flag: off → on"]
