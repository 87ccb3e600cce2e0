"""The event log, its header and action, read-only outputs, and the unassigned report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import MetricDefinition
from planhat_segment.models import Company, EndUser
from tests.usage.processing_support import fixture_rows, inbox_rows, row
from usage import selectors
from usage.models import InboxEvent
from usage.services import inbox_drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def processed_world(integration):
    Company.objects.create(external_id="INITECH", name="Initech")
    globex = Company.objects.create(external_id="GLOBEX", name="Globex")
    MetricDefinition.objects.create(key="seats")
    fixture_rows("webhook_batch.json")
    fixture_rows("tracking_api_batch.json")
    inbox_drain(max_seconds=30)
    return globex


def test_event_log_lists_with_reason_header(admin_client_logged_in, processed_world):
    response = admin_client_logged_in.get(reverse("admin:usage_inboxevent_changelist"))
    assert response.status_code == 200
    assert response.context["reason_counts"]["no_identity"] == 1
    assert response.context["inbox_counts"] == {
        "received": 7,
        "processed": 5,
        "waiting": 1,
        "dropped": 1,
        "failed": 0,
    }
    content = response.content.decode()
    assert "no_identity" in content and "u-301" in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=dropped", {"wh-2"}),
        ("reason__exact=no_identity", {"wh-2"}),
        ("type__exact=group", {"b-4"}),
        ("q=wh-3", {"wh-3"}),
        ("q=ana%40globex.example", {"b-1"}),
        ("q=u-200", {"b-1", "b-2", "b-3"}),  # group calls carry no user key
    ],
)
def test_event_log_filters_and_search(admin_client_logged_in, processed_world, query, expected):
    url = reverse("admin:usage_inboxevent_changelist") + "?" + query
    response = admin_client_logged_in.get(url)
    assert response.status_code == 200
    shown = {e.message_id for e in response.context["cl"].result_list}
    assert shown == expected


def test_event_log_defers_payload_in_the_list(admin_client_logged_in, processed_world):
    response = admin_client_logged_in.get(reverse("admin:usage_inboxevent_changelist"))
    first = response.context["cl"].result_list[0]
    assert "payload" in first.get_deferred_fields()


def test_event_change_page_shows_pretty_payload_read_only(admin_client_logged_in, processed_world):
    event = row("b-3")
    url = reverse("admin:usage_inboxevent_change", args=[event.pk])
    response = admin_client_logged_in.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert "&quot;project_id&quot;: &quot;PRJ-9&quot;" in content
    assert 'name="payload"' not in content  # not an editable field


def test_reprocess_selected_action_resets_rows(admin_client_logged_in, processed_world):
    ids = [row("b-2").pk, row("wh-2").pk]
    response = admin_client_logged_in.post(
        reverse("admin:usage_inboxevent_changelist"),
        {"action": "reprocess_selected", "_selected_action": ids},
    )
    assert response.status_code == 302
    assert set(InboxEvent.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "pending"
    }


def test_activity_and_metric_value_admins_are_read_only(admin_client_logged_in, processed_world):
    for name in ("activity", "metricvalue"):
        response = admin_client_logged_in.get(reverse(f"admin:usage_{name}_changelist"))
        assert response.status_code == 200
        assert response.context["cl"].result_count > 0
        assert admin_client_logged_in.get(reverse(f"admin:usage_{name}_add")).status_code == 403
    filtered = admin_client_logged_in.get(
        reverse("admin:usage_activity_changelist") + "?action=Signed+In"
    )
    assert [a.message_id for a in filtered.context["cl"].result_list] == ["b-2"]


def test_unassigned_report_lists_and_assigns(admin_client_logged_in, processed_world):
    inbox_rows(
        [{"type": "track", "messageId": "old", "userId": "u-301", "event": "E"}],
        received_at=timezone.now() - timedelta(hours=30),
    )
    inbox_drain(max_seconds=30)
    url = reverse("admin:usage_inboxevent_unassigned")

    response = admin_client_logged_in.get(url)

    assert response.status_code == 200
    # One row per user: the call with an email and the one without are the same user.
    rows = [r for r in response.context["rows"] if r["user_key"] == "u-301"]
    assert len(rows) == 1
    user = rows[0]
    assert user["email_key"] == "no.company@nowhere.example"
    assert (user["events"], user["waiting"], user["dropped"]) == (2, 1, 1)
    html = response.content.decode()
    assert "u-301" in html
    assert html.count("<h1>") == 1  # the heading once
    response = admin_client_logged_in.post(
        url, {"user_key": "u-301", "email": "", "company_id": processed_world.pk}
    )
    assert response.status_code == 302
    assert EndUser.objects.get(external_id="u-301").company == processed_world
    inbox_drain(max_seconds=30)
    assert {row("wh-3").status, row("old").status} == {"processed"}
    assert selectors.unassigned_users_list() == []


def test_unassigned_company_picker_never_offers_the_test_company(admin_client_logged_in, db):
    from planhat_segment.models import Company

    Company.objects.create(name="Segment test company", external_id="t", is_test=True)
    Company.objects.create(name="Acme Test Lab", external_id="ACME-LAB")
    answer = admin_client_logged_in.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "planhat_segment",
            "model_name": "enduser",
            "field_name": "company",
            "term": "test",
        },
    )
    assert [r["text"] for r in answer.json()["results"]] == ["Acme Test Lab"]


def test_unassigned_report_needs_staff(client, db):
    response = client.get(reverse("admin:usage_inboxevent_unassigned"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_metric_value_stats_selector(processed_world):
    stats = selectors.metric_value_stats()
    metric = MetricDefinition.objects.get(key="seats")
    assert stats[metric.pk]["count"] == 1
    assert stats[metric.pk]["last_value"] == 25.0
