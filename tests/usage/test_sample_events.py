"""'Send test event' runs through the real pipeline, in-process, on test data."""

import pytest
from django.urls import reverse

from planhat_segment.models import Company, EndUser
from usage.models import Activity, InboxEvent
from usage.sample_events import TEST_USER_ID, sample_events_send
from usage.trends import company_trends

pytestmark = pytest.mark.django_db


def test_test_event_is_processed_and_flagged_as_test_data(integration):
    outcomes = sample_events_send()
    assert [(o.kind, o.ok) for o in outcomes] == [("identify", True), ("track", True)]
    assert "matched the test enduser" in outcomes[0].summary
    enduser = EndUser.objects.get(external_id=TEST_USER_ID)
    assert enduser.is_test
    assert enduser.company.is_test
    activity = Activity.objects.get(enduser=enduser)
    assert activity.action == "Segment Test Event"
    assert company_trends(company=enduser.company).total_activities == 0


def test_test_event_reports_a_switched_off_section(integration):
    integration.user_tracking_enabled = False
    integration.save()
    from usage.ingest.auth import integration_cache_clear

    integration_cache_clear()
    outcomes = sample_events_send()
    assert not outcomes[1].ok
    assert "Section switched off" in outcomes[1].summary
    assert not Activity.objects.exists()


def test_send_test_event_button_shows_outcomes(admin_client_logged_in, integration):
    response = admin_client_logged_in.post(
        reverse("admin:segment_integration"), {"action": "send_test_event"}, follow=True
    )
    texts = [str(m) for m in response.context["messages"]]
    assert any(t.startswith("Test identify: processed") for t in texts)
    assert any(t.startswith("Test track: processed: recorded as an activity") for t in texts)
    assert InboxEvent.objects.count() == 2
    assert Company.objects.filter(is_test=True).count() == 1


def test_test_event_processes_only_its_own_rows(integration):
    from tests.usage.processing_support import inbox_rows

    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="someone")
    inbox_rows([{"type": "track", "messageId": "theirs", "userId": "someone", "event": "E"}])

    outcomes = sample_events_send()

    assert [o.ok for o in outcomes] == [True, True]
    # Someone else's pending event is left to the workers, not drained in the web request.
    assert InboxEvent.objects.get(message_id="theirs").status == "pending"
    assert not Activity.objects.filter(message_id="theirs").exists()
