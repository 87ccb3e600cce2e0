"""Forgetting an enduser: the service, the admin page and the API (issue 9, privacy)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from planhat_segment.models import Company, EndUser, Tombstone
from tests.usage.processing_support import inbox_rows
from tests.usage.test_rollups import assert_rollups_equal_a_recount
from usage.models import Activity, EnduserDay, InboxEvent
from usage.privacy import enduser_forget
from usage.services import inbox_drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(integration, user_in_role):
    """Ana (to forget) and Bob (to keep), each with processed tracks; more of Ana's events in
    every state the inbox has."""
    acme = Company.objects.create(name="Acme", external_id="ACME")
    ana = EndUser.objects.create(
        company=acme, external_id="u-ana", email="Ana@Acme.com", name="Ana Lytic", title="CTO"
    )
    bob = EndUser.objects.create(company=acme, external_id="u-bob", email="bob@acme.com")
    events = [
        {"type": "track", "userId": u, "event": "Clicked", "messageId": f"{u}-{i}"}
        for u in ("u-ana", "u-bob")
        for i in range(3)
    ]
    inbox_rows(events)
    inbox_drain()
    # Ana by email only, not processed yet; by user id, failed; by email key, dropped.
    inbox_rows(
        [
            {"type": "track", "event": "E", "messageId": "pending-email"}
            | {"traits": {"email": "ana@acme.com"}},
            {"type": "track", "userId": "u-ana", "event": "E", "messageId": "failed-id"},
            {"type": "track", "userId": "u-bob", "event": "E", "messageId": "bob-pending"},
        ]
    )
    InboxEvent.objects.filter(message_id="failed-id").update(status="failed", attempts=5)
    inbox_rows([{"type": "alias", "userId": "x", "messageId": "dropped-email"}])
    InboxEvent.objects.filter(message_id="dropped-email").update(
        status="dropped", reason="unassigned_user", email_key="ana@acme.com"
    )
    admin = user_in_role("Integration admin")
    LogEntry.objects.create(
        user=admin,
        content_type=ContentType.objects.get_for_model(EndUser),
        object_id=str(ana.pk),
        object_repr=str(ana),
        action_flag=2,
        change_message="[]",
    )
    return ana, bob, admin


def test_forget_erases_the_endusers_events_usage_and_fields_and_keeps_the_others(people):
    ana, bob, admin = people
    summary = enduser_forget(enduser_id=ana.pk, user=admin)

    assert summary.raw_events == 6  # 3 processed, 1 pending, 1 failed, 1 dropped
    assert summary.activities == 3
    assert summary.rollup_rows == 1
    assert summary.tombstone is True
    assert not EndUser.objects.filter(pk=ana.pk).exists()
    assert not Activity.objects.filter(message_id__startswith="u-ana").exists()
    assert not EnduserDay.objects.filter(enduser_id=ana.pk).exists()
    left = set(InboxEvent.objects.values_list("message_id", flat=True))
    assert left == {"u-bob-0", "u-bob-1", "u-bob-2", "bob-pending"}
    assert Activity.objects.filter(enduser=bob).count() == 3
    assert_rollups_equal_a_recount()
    # The push stays honest: a tombstone says the enduser was deleted.
    tombstone = Tombstone.objects.get(model="enduser", object_pk=ana.pk)
    assert tombstone.external_id == "u-ana"


def test_forget_is_audited_without_the_erased_data(people):
    ana, _bob, admin = people
    enduser_forget(enduser_id=ana.pk, user=admin)
    entries = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(EndUser))
    text = " ".join(f"{e.object_repr} {e.change_message}" for e in entries)
    assert f"Forgot enduser {ana.pk}" in text
    for erased in ("Ana", "ana@acme.com", "Lytic", "CTO"):
        assert erased.lower() not in text.lower()
    forgot = entries.get(change_message__startswith="Forgot")
    assert forgot.user == admin


def test_api_forget_for_integration_admins_only(people, api_client_in_role):
    ana, _bob, _admin = people
    url = f"/api/endusers/{ana.pk}/forget/"
    assert api_client_in_role("CS manager").post(url).status_code == 403
    assert EndUser.objects.filter(pk=ana.pk).exists()
    response = api_client_in_role("Integration admin").post(url)
    assert response.status_code == 200
    assert response.json()["activities"] == 3 and response.json()["tombstone"] is True
    assert not EndUser.objects.filter(pk=ana.pk).exists()
    assert api_client_in_role("Integration admin").post(url).status_code == 404


def test_admin_forget_page_confirms_then_forgets(people, client_in_role):
    ana, _bob, _admin = people
    url = reverse("admin:usage_enduser_forget", args=[ana.pk])
    manager = client_in_role("CS manager")
    change = reverse("admin:planhat_segment_enduser_change", args=[ana.pk])
    assert url not in manager.get(change).content.decode()  # no button without the permission
    assert manager.get(url).status_code == 403
    assert manager.post(url).status_code == 403
    admin = client_in_role("Integration admin")
    assert url in admin.get(change).content.decode()
    page = admin.get(url)
    assert page.status_code == 200 and "3 activities" in page.content.decode()
    assert EndUser.objects.filter(pk=ana.pk).exists()  # GET only asks
    done = admin.post(url)
    assert done.status_code == 302
    assert not EndUser.objects.filter(pk=ana.pk).exists()
