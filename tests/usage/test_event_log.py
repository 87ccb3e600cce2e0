"""The event log answers "why did my event not arrive?": event names, search, what happened
and what to do, Reprocess on the event's page, internals out of the way (issue 12)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from integrations.models import MetricDefinition
from planhat_segment.models import Company
from tests.usage.processing_support import fixture_rows, inbox_rows, row
from usage.explain import event_explanation
from usage.models import InboxEvent
from usage.services import inbox_drain

pytestmark = pytest.mark.django_db
LOG = "admin:usage_inboxevent_changelist"


@pytest.fixture
def world(integration):
    Company.objects.create(external_id="INITECH", name="Initech")
    Company.objects.create(external_id="GLOBEX", name="Globex")
    MetricDefinition.objects.create(key="seats")
    fixture_rows("webhook_batch.json")
    fixture_rows("tracking_api_batch.json")
    inbox_rows(
        [
            {"type": "group", "messageId": "g-nope", "userId": "u-1", "groupId": "NOPE"},
            {
                "type": "group",
                "messageId": "g-text",
                "userId": "u-1",
                "groupId": "GLOBEX",
                "traits": {"seats": "many"},
            },
            {"type": "page", "messageId": "p-1", "userId": "u-200", "name": "Pricing"},
        ]
    )
    inbox_drain(max_seconds=30)


def _shown(client, query: str) -> dict[str, object]:
    answer = client.get(reverse(LOG) + "?" + query)
    assert answer.status_code == 200
    return {event.message_id: event for event in answer.context["cl"].result_list}


def test_list_names_the_track_event_and_the_page(admin_client_logged_in, world):
    shown = _shown(admin_client_logged_in, "")
    assert shown["b-3"].event_name == "Invoice Sent"
    assert shown["p-1"].event_name == "Pricing"
    assert shown["b-1"].event_name is None  # identify: no event name
    assert "payload" in shown["b-3"].get_deferred_fields()  # read in SQL, not loaded


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("invoice", {"b-3"}),
        ("Pricing", {"wh-2", "p-1"}),
        ("u-301", {"wh-3"}),
        ("nowhere.example", {"wh-3"}),
    ],
)
def test_search_by_event_name_user_id_and_email(admin_client_logged_in, world, term, expected):
    assert set(_shown(admin_client_logged_in, f"q={term}")) == expected


def test_each_event_says_what_happened_and_what_to_do(world):
    nope = event_explanation(row("g-nope"))
    assert nope.what == "No company with external id NOPE."
    assert nope.fix.startswith("Create it (or fix the groupId)")
    waiting = event_explanation(row("wh-3"))
    assert "user id u-301 / email no.company@nowhere.example has no known company" in waiting.what
    assert "assign the user in Unassigned users" in waiting.fix
    assert "Send userId" in event_explanation(row("wh-2")).fix


def test_a_group_whose_metric_was_ignored_says_so_in_the_list(admin_client_logged_in, world):
    html = admin_client_logged_in.get(reverse(LOG) + "?q=g-text").content.decode()
    assert (
        "Processed, with a note: metric &#x27;seats&#x27;: &#x27;many&#x27; is not a number" in html
    )


def test_event_page_has_reprocess_and_keeps_internals_collapsed(admin_client_logged_in, world):
    event = row("g-nope")
    url = reverse("admin:usage_inboxevent_change", args=[event.pk])
    html = admin_client_logged_in.get(url).content.decode()
    assert 'data-testid="reprocess-event"' in html
    assert "What to do" in html and "Create it (or fix the groupId)" in html
    # The claim's bookkeeping sits in a collapsed "Internals" fieldset at the end.
    internals = html.split(">Internals</h2>", 1)
    assert len(internals) == 2
    assert internals[0].rsplit("<fieldset", 1)[1].startswith(' class="module aligned collapse"')
    assert "Attempts" in internals[1] and "Attempts" not in internals[0]
    Company.objects.create(external_id="NOPE", name="Nope Inc")
    answer = admin_client_logged_in.post(
        reverse("admin:usage_inboxevent_reprocess", args=[event.pk])
    )
    assert answer.status_code == 302 and answer["Location"] == url
    assert InboxEvent.objects.get(pk=event.pk).status == "pending"
    inbox_drain(max_seconds=30)
    assert InboxEvent.objects.get(pk=event.pk).status == "processed"
    assert "(event page)" in LogEntry.objects.latest("pk").change_message


def test_reprocess_button_only_for_those_who_may(client_in_role, world):
    url = reverse("admin:usage_inboxevent_change", args=[row("g-nope").pk])
    assert (
        'data-testid="reprocess-event"'
        not in client_in_role("CS manager").get(url).content.decode()
    )
    assert (
        'data-testid="reprocess-event"'
        in client_in_role("Integration admin").get(url).content.decode()
    )
