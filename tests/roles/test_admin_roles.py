"""Each role in the admin: what it sees, what it may do, what it is refused — and what the
database looks like afterwards."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from integrations.models import IntegrationSettings, MetricDefinition
from integrations.services import integration_ensure, integration_update
from planhat_segment.models import Company, EndUser
from usage.models import InboxEvent
from warehouse_sync.models import SyncRun

pytestmark = pytest.mark.django_db

PAGE = "/admin/integrations/segment/"
VIEWER, CS, ADMIN = "Viewer", "CS manager", "Integration admin"


@pytest.fixture
def configured(integration):
    """Section 3 on with a write key and a shared secret, so every secret is there to leak."""
    return integration_update(
        integration=integration,
        warehouse_enabled=True,
        write_key="wk_live_abcdefgh1234",
        shared_secret="hmac-secret-5678",
    )


def event(**fields) -> InboxEvent:
    defaults = {
        "message_id": str(uuid.uuid4()),
        "request_id": uuid.uuid4(),
        "type": "track",
        "payload": {"type": "track", "event": "Opened", "properties": {"ssn": "pii-7731"}},
        "status": "processed",
    }
    return InboxEvent.objects.create(**{**defaults, **fields})


# --- the integration page ---------------------------------------------------------------

# role → (sees the token and write key, buttons it sees)
PAGE_VIEW = [
    (VIEWER, False, set()),
    (CS, False, set()),
    (ADMIN, True, {"rotate-token", "push-now", "send-test-event", "add-metric"}),
]
BUTTONS = {"rotate-token", "push-now", "send-test-event", "add-metric"}


@pytest.mark.parametrize(("role", "sees_secrets", "buttons"), PAGE_VIEW)
def test_integration_page_shows_secrets_and_buttons_by_role(
    client_in_role, configured, role, sees_secrets, buttons
):
    MetricDefinition.objects.create(key="seats")
    answer = client_in_role(role).get(PAGE)
    html = answer.content.decode()
    assert answer.status_code == 200
    token = configured.tenant_token
    assert (token in html) is sees_secrets
    assert ("Basic " in html) is sees_secrets  # the Authorization header holds the token
    assert ("••••1234" in html) is sees_secrets  # the write key's last characters
    assert "hmac-secret-5678" not in html and "wk_live_abcdefgh1234" not in html
    if not sees_secrets:
        assert "••••" + token[-4:] in html  # the token masked
        assert 'name="write_key"' not in html and 'name="shared_secret"' not in html
        assert "Save data warehouse" not in html and ">Remove<" not in html
    shown = {b for b in BUTTONS if f'data-testid="{b}"' in html}
    assert shown == buttons
    assert "seats" in html and "/dock/segment" in html  # what they may read is there


def test_integration_page_is_refused_to_staff_without_a_role(client_in_role, configured):
    assert client_in_role(None).get(PAGE).status_code == 403


@pytest.mark.parametrize(
    ("role", "status"), [(VIEWER, 403), (CS, 403), (ADMIN, 302)], ids=[VIEWER, CS, ADMIN]
)
def test_rotate_on_the_page_by_role(client_in_role, configured, role, status):
    answer = client_in_role(role).post(PAGE, {"action": "rotate_token"})
    assert answer.status_code == status
    rotated = IntegrationSettings.objects.get().tenant_token != configured.tenant_token
    assert rotated is (status == 302)


@pytest.mark.parametrize(
    ("role", "status"), [(VIEWER, 403), (CS, 403), (ADMIN, 302)], ids=[VIEWER, CS, ADMIN]
)
def test_saving_the_write_key_on_the_page_by_role(client_in_role, configured, role, status):
    answer = client_in_role(role).post(
        PAGE,
        {
            "action": "save_warehouse",
            "warehouse_enabled": "on",
            "write_key": "wk_attacker_9999",
            "region": "us",
            "synced_models": ["company"],
        },
    )
    assert answer.status_code == status
    changed = IntegrationSettings.objects.get().write_key == "wk_attacker_9999"
    assert changed is (status == 302)


@pytest.mark.parametrize(
    ("role", "status"), [(VIEWER, 403), (CS, 403), (ADMIN, 302)], ids=[VIEWER, CS, ADMIN]
)
def test_removing_a_metric_on_the_page_by_role(client_in_role, integration, role, status):
    metric = MetricDefinition.objects.create(key="seats")
    answer = client_in_role(role).post(PAGE, {"action": "archive_metric", "metric_id": metric.pk})
    assert answer.status_code == status
    metric.refresh_from_db()
    assert (metric.archived_at is not None) is (status == 302)
    answer = client_in_role(role).post(
        PAGE, {"action": "purge_metric", "metric_id": metric.pk, "confirm_values": 0}
    )
    assert answer.status_code == status
    assert MetricDefinition.objects.filter(pk=metric.pk).exists() is (status == 403)


@pytest.mark.parametrize(
    ("role", "status"), [(VIEWER, 403), (CS, 403), (ADMIN, 302)], ids=[VIEWER, CS, ADMIN]
)
def test_push_on_the_page_by_role(client_in_role, configured, role, status):
    answer = client_in_role(role).post(PAGE, {"action": "push"})
    assert answer.status_code == status
    assert SyncRun.objects.exists() is (status == 302)


def test_app_index_links_the_page_only_for_those_who_may_see_it(client_in_role, integration):
    assert "Segment integration page" in client_in_role(VIEWER).get("/admin/").content.decode()
    assert "Segment integration page" not in client_in_role(None).get("/admin/").content.decode()


# --- trends -------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [(None, 403), (VIEWER, 200), (CS, 200), (ADMIN, 200)])
def test_trends_pages_by_role(client_in_role, role, status):
    company = Company.objects.create(name="Acme", external_id="ACME")
    enduser = EndUser.objects.create(company=company, external_id="U-1", email="ana@acme.com")
    client = client_in_role(role)
    assert client.get(reverse("admin:company_trends", args=[company.pk])).status_code == status
    assert client.get(reverse("admin:enduser_trends", args=[enduser.pk])).status_code == status


def test_company_page_links_trends_for_a_viewer_who_cannot_edit(client_in_role):
    company = Company.objects.create(name="Acme", external_id="ACME")
    answer = client_in_role(VIEWER).get(
        reverse("admin:planhat_segment_company_change", args=[company.pk])
    )
    html = answer.content.decode()
    assert answer.status_code == 200
    assert reverse("admin:company_trends", args=[company.pk]) in html
    assert 'name="_save"' not in html  # read-only for a Viewer


# --- the event log: payloads, reprocess, unassigned users ----------------------------------


@pytest.mark.parametrize(("role", "sees_payload"), [(VIEWER, False), (CS, False), (ADMIN, True)])
def test_event_page_shows_the_raw_payload_by_role(client_in_role, role, sees_payload):
    row = event()
    answer = client_in_role(role).get(reverse("admin:usage_inboxevent_change", args=[row.pk]))
    assert answer.status_code == 200
    assert ("pii-7731" in answer.content.decode()) is sees_payload


@pytest.mark.parametrize(("role", "reprocessed"), [(VIEWER, False), (CS, False), (ADMIN, True)])
def test_reprocess_action_by_role(client_in_role, role, reprocessed):
    row = event(status="failed", detail="boom", attempts=3)
    client = client_in_role(role)
    answer = client.post(
        reverse("admin:usage_inboxevent_changelist"),
        {"action": "reprocess_selected", "_selected_action": [row.pk]},
    )
    # Refused actions re-show the list ("No action selected" when others remain).
    assert answer.status_code in (200, 302)
    row.refresh_from_db()
    assert (row.status == "pending") is reprocessed
    offered = client.get(reverse("admin:usage_inboxevent_changelist")).content.decode()
    assert ('value="reprocess_selected"' in offered) is reprocessed


@pytest.mark.parametrize(
    ("role", "get", "post", "assigned"),
    [(VIEWER, 200, 403, False), (CS, 200, 302, True), (ADMIN, 200, 302, True)],
)
def test_unassigned_users_by_role(client_in_role, role, get, post, assigned):
    company = Company.objects.create(name="Acme", external_id="ACME")
    event(status="waiting", user_key="u-77")
    client = client_in_role(role)
    url = reverse("admin:usage_inboxevent_unassigned")
    page = client.get(url)
    assert page.status_code == get
    assert "u-77" in page.content.decode()
    assert ('value="Assign"' in page.content.decode()) is assigned
    answer = client.post(url, {"user_key": "u-77", "email": "", "company_id": company.pk})
    assert answer.status_code == post
    assert EndUser.objects.filter(external_id="u-77").exists() is assigned


# --- run history: the push button and action ----------------------------------------------


@pytest.mark.parametrize(("role", "pushes"), [(VIEWER, False), (CS, False), (ADMIN, True)])
def test_push_button_and_action_by_role(client_in_role, configured, role, pushes):
    client = client_in_role(role)
    changelist = client.get(reverse("admin:warehouse_sync_syncrun_changelist"))
    assert changelist.status_code == 200  # every role reads the run history
    html = changelist.content.decode()
    assert (reverse("admin:warehouse_sync_syncrun_push") in html) is pushes

    button = client.post(reverse("admin:warehouse_sync_syncrun_push"))
    assert button.status_code == (302 if pushes else 403)
    assert SyncRun.objects.count() == (1 if pushes else 0)

    SyncRun.objects.all().delete()
    # Before, the action needed only *view* permission on runs.
    first = SyncRun.objects.create(trigger="manual", status="succeeded")
    client.post(
        reverse("admin:warehouse_sync_syncrun_changelist"),
        {"action": "push_data_to_segment", "_selected_action": [first.pk]},
    )
    assert SyncRun.objects.filter(status="running").exists() is pushes


# --- workspace objects: edits, CSV export -------------------------------------------------


@pytest.mark.parametrize(
    ("role", "can_edit"), [(VIEWER, False), (CS, True), (ADMIN, True)], ids=[VIEWER, CS, ADMIN]
)
def test_company_edit_and_delete_by_role(client_in_role, role, can_edit):
    company = Company.objects.create(name="Acme", external_id="ACME")
    client = client_in_role(role)
    answer = client.post(
        reverse("admin:planhat_segment_company_change", args=[company.pk]),
        {
            "name": "Acme Renamed",
            "external_id": "ACME",
            "custom": "{}",
            "domains-TOTAL_FORMS": "0",
            "domains-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == (302 if can_edit else 403)
    company.refresh_from_db()
    assert (company.name == "Acme Renamed") is can_edit
    client.post(reverse("admin:planhat_segment_company_delete", args=[company.pk]), {"post": "yes"})
    assert Company.objects.filter(pk=company.pk).exists() is not can_edit


@pytest.mark.parametrize(("role", "exports"), [(VIEWER, False), (CS, True), (ADMIN, True)])
def test_csv_export_by_role(client_in_role, role, exports):
    acme = Company.objects.create(name="Acme", external_id="ACME", custom={"tier": "gold"})
    evil = Company.objects.create(name="=HYPERLINK(1)", external_id="EVIL")
    answer = client_in_role(role).post(
        reverse("admin:planhat_segment_company_changelist"),
        {"action": "export_csv", "_selected_action": [acme.pk, evil.pk]},
    )
    if not exports:
        assert answer.status_code == 200  # the list again, no file
        assert not answer["Content-Type"].startswith("text/csv")
        return
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert [r["external_id"] for r in rows] == ["ACME", "EVIL"]
    assert rows[0]["custom"] == '{"tier": "gold"}'
    assert rows[1]["name"] == "'=HYPERLINK(1)"  # a spreadsheet would run it as a formula


# --- API keys and the audit log -----------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [(VIEWER, 403), (CS, 403), (ADMIN, 200)])
def test_token_admin_only_for_integration_admins(client_in_role, role, status):
    assert client_in_role(role).get("/admin/authtoken/tokenproxy/").status_code == status


def test_token_admin_hides_and_refuses_superusers_keys(client_in_role, django_user_model):
    from rest_framework.authtoken.models import Token

    root = django_user_model.objects.create_superuser("root", "root@example.com", None)
    etl = django_user_model.objects.create_user("etl")
    root_key = Token.objects.create(user=root).key
    etl_key = Token.objects.create(user=etl).key
    client = client_in_role(ADMIN)

    html = client.get("/admin/authtoken/tokenproxy/").content.decode()
    assert etl_key in html and root_key not in html
    assert client.get(f"/admin/authtoken/tokenproxy/{root.pk}/change/").status_code == 302
    answer = client.post("/admin/authtoken/tokenproxy/add/", {"user": root.pk})
    assert answer.status_code == 200  # the form refuses the choice
    assert Token.objects.filter(user=root).count() == 1
    newbie = django_user_model.objects.create_user("newbie")
    assert client.post("/admin/authtoken/tokenproxy/add/", {"user": newbie.pk}).status_code == 302
    assert Token.objects.filter(user=newbie).exists()


@pytest.mark.parametrize(("role", "status"), [(VIEWER, 403), (CS, 403), (ADMIN, 200)])
def test_audit_log_only_for_integration_admins(client_in_role, integration, role, status):
    client_in_role(ADMIN).post(PAGE, {"action": "rotate_token"})
    answer = client_in_role(role).get("/admin/admin/logentry/")
    assert answer.status_code == status
    if status == 200:
        assert "Tenant token rotated (integration page)" in answer.content.decode()
    assert LogEntry.objects.count() == 1


def test_audit_log_is_read_only_even_for_integration_admins(client_in_role, integration):
    client_in_role(ADMIN).post(PAGE, {"action": "rotate_token"})
    entry = LogEntry.objects.get()
    client = client_in_role(ADMIN)
    assert client.get(f"/admin/admin/logentry/{entry.pk}/change/").status_code == 200
    assert (
        client.post(f"/admin/admin/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert LogEntry.objects.filter(pk=entry.pk).exists()
    assert integration_ensure() is not None


def _usage_of(company: Company, metric: MetricDefinition) -> None:
    from django.utils import timezone

    from usage.models import Activity, MetricValue

    enduser = EndUser.objects.create(company=company, external_id="U-1")
    now = timezone.now()
    Activity.objects.create(
        enduser=enduser,
        company=company,
        action="Opened",
        occurred_at=now,
        received_at=now,
        message_id="a-1",
    )
    MetricValue.objects.create(
        company=company, metric=metric, value=3, occurred_at=now, message_id="g-1"
    )


def test_cs_manager_deletes_a_company_with_its_usage_in_the_admin(client_in_role, integration):
    from usage.models import Activity, MetricValue

    company = Company.objects.create(name="Acme", external_id="ACME")
    _usage_of(company, MetricDefinition.objects.create(key="seats"))
    client = client_in_role(CS)
    url = reverse("admin:planhat_segment_company_delete", args=[company.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert not confirm.context["perms_lacking"]  # usage goes with its company
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Company.objects.filter(pk=company.pk).exists()
    assert not Activity.objects.exists() and not MetricValue.objects.exists()


@pytest.mark.parametrize(("role", "deletes"), [(CS, False), (ADMIN, True)])
def test_metric_definition_delete_in_the_admin_by_role(client_in_role, integration, role, deletes):
    from usage.models import MetricValue

    metric = MetricDefinition.objects.create(key="seats")
    _usage_of(Company.objects.create(name="Acme", external_id="ACME"), metric)
    url = reverse("admin:integrations_metricdefinition_delete", args=[metric.pk])
    answer = client_in_role(role).post(url, {"post": "yes"})
    assert answer.status_code == (302 if deletes else 403)
    assert MetricDefinition.objects.filter(pk=metric.pk).exists() is not deletes
    assert MetricValue.objects.exists() is not deletes
