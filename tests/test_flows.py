"""Flows that cross the apps: Segment in, the CRM's API writes, the worker binds them."""

import base64

import pytest

from planhat_segment.models import EndUser
from usage.ingest.auth import integration_cache_clear
from usage.models import Activity, InboxEvent
from usage.services import inbox_drain

pytestmark = pytest.mark.django_db


def test_events_wait_for_a_company_upserted_through_the_api(
    client, api_client, integration, django_capture_on_commit_callbacks
):
    integration_cache_clear()
    auth = base64.b64encode(f"{integration.tenant_token}:".encode()).decode()
    track = {
        "type": "track",
        "messageId": "early-1",
        "userId": "u-early",
        "event": "Signed Up",
        "context": {"groupId": "NEWCO", "traits": {"email": "ana@newco.example"}},
    }
    answer = client.post(
        "/dock/segment",
        data=track,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )
    assert answer.status_code == 200
    inbox_drain()
    assert InboxEvent.objects.get(message_id="early-1").status == "waiting"

    with django_capture_on_commit_callbacks(execute=True):
        upsert = api_client.post(
            "/api/companies/bulk_upsert/",
            [{"external_id": "NEWCO", "name": "New Co"}],
            format="json",
        )
    assert upsert.status_code == 200, upsert.content
    assert InboxEvent.objects.get(message_id="early-1").status == "pending"
    inbox_drain()

    row = InboxEvent.objects.get(message_id="early-1")
    assert row.status == "processed"
    enduser = EndUser.objects.get(external_id="u-early")
    assert enduser.company.external_id == "NEWCO"
    assert enduser.email == "ana@newco.example"
    assert Activity.objects.get(message_id="early-1").action == "Signed Up"
